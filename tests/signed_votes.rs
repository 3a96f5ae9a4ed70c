//! Signed votes and signed evidence from outside: OpenSSH's own signatures (checked-in
//! `ssh-keygen -Y sign` vectors and live ones), every bad signature refused over real HTTP with
//! nothing written, and the `trustledger vote` client, whose recorded signatures
//! `ssh-keygen -Y verify` accepts.

use events::catalogue::access::AccessGranted;
use events::checkpoint::NoteSigner;
use events::payloads::{CabVoteCast, Payload};
use events::{Durability, Log, LogConfig, SystemClock, Timestamp};
use projections::policy::{self, Command};
use projections::vote_statement::{self, key_from_label, Kind, SignatureProblem, Statement};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command as Process;
use std::sync::Arc;
use trustledger::api::{app, AppState};
use trustledger::governance::{new_token, Governance, IdSource, Principal, Role, CLI_ADMIN};

mod http_client;
use http_client::{http, json_of, serve, Served};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sshsig");
const ARTIFACT: &[u8] = b"MZ... installer";

fn vector(name: &str) -> String {
    std::fs::read_to_string(Path::new(VECTORS).join(name)).unwrap()
}

/// Runs `f` on the statement `tests/data/sshsig/statement.txt` holds (with the other decision
/// when `approve` is false), as this crate builds it.
fn with_vector_statement<R>(approve: bool, f: impl FnOnce(&Statement<'_>) -> R) -> R {
    let digest = hex::encode(Sha256::digest(b"evidence"));
    f(&Statement {
        kind: Kind::Deployment,
        origin: "example.com/trustledger",
        subject: "00000000-0000-0000-0000-00000000002a",
        digest: &digest,
        approve,
        rationale: "reviewed the evidence",
        signed_at: "2026-12-04T06:20:00.000000Z",
    })
}

#[test]
fn ssh_keygen_signatures_verify_and_nothing_else_does() {
    let member = vote_statement::parse_member_key(&vector("member_ed25519.pub")).unwrap();
    assert_eq!(
        member.fingerprint, "SHA256:0DFdTqEs85MnfBfrEkrCBaZdjGgoV8RU85nNWpFkexQ",
        "the fingerprint ssh-keygen -l prints"
    );
    // The checked-in statement is byte for byte the one this crate builds.
    assert_eq!(
        with_vector_statement(true, |s| s.to_text()),
        vector("statement.txt")
    );
    let verify = |approve: bool, sshsig: &str| {
        with_vector_statement(approve, |s| vote_statement::verify(&member, s, sshsig))
    };
    verify(true, &vector("statement.txt.sig")).expect("ssh-keygen's signature verifies");
    assert_eq!(
        verify(false, &vector("statement.txt.sig")),
        Err(SignatureProblem::OtherStatement)
    );
    assert!(matches!(
        verify(true, &vector("statement.txt.file-namespace.sig")),
        Err(SignatureProblem::Namespace { found, .. }) if found == "file"
    ));
    assert!(verify(true, &vector("statement.txt.rsa.sig")).is_err());
    let garbled = vector("statement.txt.sig").replace('A', "B");
    assert!(verify(true, &garbled).is_err());
    assert!(matches!(
        verify(true, "not a signature"),
        Err(SignatureProblem::Malformed(_))
    ));
    // The auditor's ahead-of-time check gives the same answers on OpenSSH's signatures.
    let statement = vector("statement.txt");
    let ahead = |sig: &str, text: &str| {
        vote_statement::verifies_under_its_own_key(vote_statement::NAMESPACE, sig, text.as_bytes())
    };
    assert!(ahead(&vector("statement.txt.sig"), &statement));
    let rejecting = statement.replace("decision: approve", "decision: reject");
    assert!(!ahead(&vector("statement.txt.sig"), &rejecting));
    assert!(!ahead(
        &vector("statement.txt.file-namespace.sig"),
        &statement
    ));
    assert!(!ahead(&vector("statement.txt.rsa.sig"), &statement));
    assert!(!ahead(&garbled, &statement));
    let rsa = vote_statement::parse_member_key(&vector("rsa_key.pub")).unwrap_err();
    assert!(rsa.contains("Ed25519"), "{rsa}");
}

struct Server {
    served: Served,
    gov: Arc<Governance>,
    tokens: BTreeMap<&'static str, String>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn size(&self) -> u64 {
        self.gov.log().head().size
    }

    fn post(&self, path: &str, who: &str, body: &Value) -> (u16, Value) {
        let (status, bytes) = http(
            self.served.port,
            "POST",
            path,
            Some(&self.tokens[who]),
            body.to_string().as_bytes(),
        );
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A deployment waiting for the CAB (PDF reader: one approval releases it).
    fn pending(&self, n: usize) -> String {
        let evidence = http_client::signed_evidence_body(json!({
            "artifacts": [{"name": "app.msi", "sha256": hex::encode(Sha256::digest(ARTIFACT)), "size": ARTIFACT.len()}],
            "sbom": null, "tests_passed": 10, "tests_failed": 0, "scan_critical_findings": 0,
            "generated_by": "ci-bot", "packaged_by": "packager"
        }));
        let (s, e) = self.post("/api/v1/evidence", "dev", &evidence);
        assert_eq!(s, 201, "{e}");
        let submit = json!({"correlation_id": format!("c-{n}"), "app_name": "PDF reader", "app_version": "1",
            "requires_admin": false, "target_user_count": 5, "evidence_id": e["evidence_id"]});
        let (s, d) = self.post("/api/v1/deployments", "dev", &submit);
        assert_eq!(s, 201, "{d}");
        d["deployment_id"].as_str().unwrap().to_owned()
    }

    /// `member`'s vote on deployment `id`, signed with `key` at `signed_at`.
    fn vote_body(
        &self,
        key_of: &str,
        id: &str,
        approve: bool,
        rationale: &str,
        signed_at: Timestamp,
    ) -> Value {
        let signed = self
            .gov
            .with_state(|s| {
                policy::sign_vote(
                    s,
                    &key_from_label(key_of),
                    (Kind::Deployment, id),
                    (approve, rationale),
                    signed_at,
                )
            })
            .unwrap();
        json!({"approve": approve, "rationale": rationale,
               "signature": {"signed_at": signed.signed_at, "sshsig": signed.sshsig()}})
    }
}

fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        signer: Some(NoteSigner::from_seed("signed-votes", [5; 32]).unwrap()),
        durability: Durability::FlushOnlyMayLoseOnPowerFailure,
        ..LogConfig::default()
    };
    let gov = Arc::new(
        Governance::open(
            Log::open(dir.path(), config).unwrap(),
            Arc::new(SystemClock),
            IdSource::Random,
        )
        .unwrap(),
    );
    let cli = Principal::new(CLI_ADMIN, &[Role::Admin]);
    let mut tokens = BTreeMap::new();
    for (name, roles) in [
        ("dev", &["submitter"][..]),
        ("carol", &["cab"]),
        ("chen", &["cab"]),
        ("ada", &["admin"]),
    ] {
        let (token, token_sha256) = new_token();
        let grant = AccessGranted {
            principal: name.into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            token_sha256,
        };
        gov.execute(&cli, &Command::GrantAccess(grant)).unwrap();
        tokens.insert(name, token);
    }
    for member in ["carol", "chen"] {
        let line = key_from_label(member).public_key().to_openssh().unwrap();
        gov.execute(
            &cli,
            &Command::AddCabMember {
                member: member.into(),
                ssh_key: Some(line),
            },
        )
        .unwrap();
    }
    gov.execute(&cli, &policy::set_producer_by_label("ci-bot"))
        .unwrap();
    Server {
        served: serve(app(AppState::new(Arc::clone(&gov)))),
        gov,
        tokens,
        _dir: dir,
    }
}

fn minutes(n: i64) -> i64 {
    n * 60_000_000
}

#[test]
fn every_bad_signature_is_refused_over_http_with_a_problem_and_nothing_written() {
    let s = server();
    let id = s.pending(1);
    let other = s.pending(2);
    let now = s.gov.current_time();
    let at = |offset: i64| Timestamp::from_unix_micros(now.unix_micros() + offset);
    let path = format!("/api/v1/deployments/{id}/votes");
    let good = s.vote_body("carol", &id, true, "reviewed", at(0));
    let with_sshsig = |sshsig: &str| {
        let mut body = good.clone();
        body["signature"]["sshsig"] = json!(sshsig);
        body
    };
    let replayed_from_other = {
        let mut body = s.vote_body("carol", &other, true, "reviewed", at(0));
        body["approve"] = json!(true);
        body
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "unsigned",
            json!({"approve": true, "rationale": "reviewed"}),
            422,
            "requires every vote",
        ),
        (
            "malformed",
            with_sshsig("-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"),
            422,
            "not an armored SSH signature",
        ),
        (
            "another member's key",
            s.vote_body("chen", &id, true, "reviewed", at(0)),
            403,
            "not by the key in force",
        ),
        (
            "an unregistered key",
            s.vote_body("mallory", &id, true, "reviewed", at(0)),
            403,
            "not by the key in force",
        ),
        (
            "over another rationale",
            {
                let mut body = good.clone();
                body["rationale"] = json!("changed my mind about why");
                body
            },
            403,
            "does not verify",
        ),
        (
            "the other decision",
            {
                let mut body = good.clone();
                body["approve"] = json!(false);
                body
            },
            403,
            "does not verify",
        ),
        (
            "replayed from another deployment's vote",
            replayed_from_other,
            403,
            "does not verify",
        ),
        (
            "stale",
            s.vote_body("carol", &id, true, "reviewed", at(-minutes(16))),
            403,
            "stale",
        ),
        (
            "from the future",
            s.vote_body("carol", &id, true, "reviewed", at(minutes(5))),
            403,
            "after",
        ),
        (
            "a signed_at that is not a time",
            {
                let mut body = good.clone();
                body["signature"]["signed_at"] = json!("yesterday");
                body
            },
            422,
            "signed_at",
        ),
        (
            "a signature member missing",
            json!({"approve": true, "rationale": "reviewed", "signature": {"sshsig": "x"}}),
            422,
            "signed_at",
        ),
    ];
    let before = s.size();
    for (what, body, status, detail) in cases {
        let (got, problem) = s.post(&path, "carol", &body);
        assert_eq!(got, status, "{what}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap_or("").contains(detail),
            "{what}: {problem}"
        );
        assert_eq!(s.size(), before, "{what}: nothing is written");
    }
    // The good vote is recorded once; its replay is a double vote.
    let (got, body) = s.post(&path, "carol", &good);
    assert_eq!(got, 200, "{body}");
    let after = s.size();
    let (got, problem) = s.post(&path, "carol", &good);
    assert_eq!(got, 409, "{problem}");
    assert_eq!(s.size(), after);
}

#[test]
fn a_revoked_key_signs_nothing_and_a_key_is_registered_only_by_its_member() {
    let s = server();
    let id = s.pending(1);
    let line = |label: &str| key_from_label(label).public_key().to_openssh().unwrap();
    let before = s.size();
    // Nobody registers a key for someone else, not even an admin; nor another member's key.
    let (got, p) = http_put(
        &s,
        "/api/v1/cab/members/carol/key",
        "ada",
        &json!({"ssh_key": line("ada")}),
    );
    assert_eq!(got, 403, "{p}");
    let (got, p) = http_put(
        &s,
        "/api/v1/cab/members/carol/key",
        "carol",
        &json!({"ssh_key": line("chen")}),
    );
    assert_eq!(got, 409, "{p}");
    let (got, p) = http_put(
        &s,
        "/api/v1/cab/members/carol/key",
        "carol",
        &json!({"ssh_key": vector("rsa_key.pub")}),
    );
    assert_eq!(got, 422, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("Ed25519"), "{p}");
    assert_eq!(s.size(), before);
    // An admin revokes carol's key (a lost laptop): her signatures count no more.
    let fingerprint = s
        .gov
        .with_state(|st| st.member_keys["carol"].fingerprint.clone());
    let (got, p) = s.post(
        "/api/v1/cab/members/carol/key/revocation",
        "ada",
        &json!({"fingerprint": fingerprint, "reason": "laptop lost"}),
    );
    assert_eq!(got, 200, "{p}");
    let body = s.vote_body("carol", &id, true, "reviewed", s.gov.current_time());
    let after_revocation = s.size();
    let (got, p) = s.post(&format!("/api/v1/deployments/{id}/votes"), "carol", &body);
    assert_eq!(got, 403, "{p}");
    let (got, p) = http_put(
        &s,
        "/api/v1/cab/members/carol/key",
        "carol",
        &json!({"ssh_key": line("carol")}),
    );
    assert_eq!(got, 403, "a revoked key never returns: {p}");
    assert_eq!(s.size(), after_revocation);
    // Her new key, registered by her, signs again.
    let (got, p) = http_put(
        &s,
        "/api/v1/cab/members/carol/key",
        "carol",
        &json!({"ssh_key": line("carol-2")}),
    );
    assert_eq!(got, 200, "{p}");
    let body = s.vote_body("carol-2", &id, true, "reviewed", s.gov.current_time());
    let (got, p) = s.post(&format!("/api/v1/deployments/{id}/votes"), "carol", &body);
    assert_eq!(got, 200, "{p}");
}

fn http_put(s: &Server, path: &str, who: &str, body: &Value) -> (u16, Value) {
    let (status, bytes) = http(
        s.served.port,
        "PUT",
        path,
        Some(&s.tokens[who]),
        body.to_string().as_bytes(),
    );
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// `Some(path)` of an OpenSSH tool, or `None` with the reason printed (the test then checks
/// nothing more: `.ci/run` installs openssh-client, so CI always runs it).
fn openssh_tool(name: &str) -> Option<()> {
    let found = Process::new(name).arg("-h").output().is_ok();
    if !found {
        eprintln!("SKIPPED: {name} is not installed (apt-get install openssh-client); the ssh-keygen interoperability checks did not run");
    }
    found.then_some(())
}

fn ssh_keygen(args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Process::new("ssh-keygen")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// The documented manual path: fetch the statement, sign it with `ssh-keygen -Y sign`, post it.
#[test]
fn a_vote_signed_by_ssh_keygen_itself_is_accepted() {
    if openssh_tool("ssh-keygen").is_none() {
        return;
    }
    let s = server();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id_ed25519");
    let made = ssh_keygen(
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "chen@laptop",
            "-f",
            key.to_str().unwrap(),
        ],
        b"",
    );
    assert!(made.status.success(), "{made:?}");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let (got, p) = http_put(
        &s,
        "/api/v1/cab/members/chen/key",
        "chen",
        &json!({"ssh_key": public}),
    );
    assert_eq!(got, 200, "{p}");
    let id = s.pending(1);
    let rationale = "evidence and blast radius reviewed";
    let query = format!(
        "/api/v1/cab/vote-statement?kind=deployment&subject={id}&approve=true&rationale_sha256={}",
        hex::encode(Sha256::digest(rationale.as_bytes()))
    );
    let (got, offered) = http(s.served.port, "GET", &query, Some(&s.tokens["chen"]), b"");
    assert_eq!(got, 200);
    let offered = json_of(&offered);
    let statement = offered["statement"].as_str().unwrap();
    let signed = ssh_keygen(
        &[
            "-q",
            "-Y",
            "sign",
            "-n",
            "trustledger-vote",
            "-f",
            key.to_str().unwrap(),
        ],
        statement.as_bytes(),
    );
    assert!(signed.status.success(), "{signed:?}");
    let body = json!({"approve": true, "rationale": rationale, "signature": {
        "signed_at": offered["signed_at"], "sshsig": String::from_utf8(signed.stdout).unwrap()}});
    let (got, p) = s.post(&format!("/api/v1/deployments/{id}/votes"), "chen", &body);
    assert_eq!(got, 200, "{p}");
    assert_eq!(p["status"], "APPROVED", "{p}");
}

/// The newest vote in the log, its entry's actor and its payload.
fn last_vote(gov: &Governance) -> (String, CabVoteCast) {
    let log = gov.log();
    (0..log.head().size)
        .rev()
        .find_map(|seq| {
            let entry = log.get(seq).unwrap().unwrap();
            match Payload::decode(&entry) {
                Ok(Some(Payload::CabVoteCast(v))) => Some((entry.actor.clone(), v)),
                _ => None,
            }
        })
        .unwrap()
}

#[test]
fn the_vote_client_signs_what_it_asked_for_and_openssh_verifies_what_was_recorded() {
    let s = server();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("carol_ed25519");
    std::fs::write(
        &key,
        key_from_label("carol")
            .to_openssh(ssh_key::LineEnding::LF)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let id = s.pending(1);
    let url = format!("http://127.0.0.1:{}", s.served.port);
    let run = |extra: &[&str]| {
        Process::new(env!("CARGO_BIN_EXE_trustledger"))
            .args(["vote", "--url", &url, "--key", key.to_str().unwrap()])
            .args(extra)
            .env("TRUSTLEDGER_TOKEN", &s.tokens["carol"])
            .output()
            .unwrap()
    };
    let before = s.size();
    // A vote the rules refuse (no such deployment) fails with the service's reason.
    let refused = run(&[
        "--approve",
        "--rationale",
        "ok",
        "deployment",
        "00000000-0000-0000-0000-000000000001",
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("unknown deployment"), "{stderr}");
    assert_eq!(s.size(), before);
    let rationale = "tests green, reach small";
    let voted = run(&["--approve", "--rationale", rationale, "deployment", &id]);
    let stderr = String::from_utf8_lossy(&voted.stderr);
    assert!(voted.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("subject: {id}")),
        "the statement is shown: {stderr}"
    );
    let answer: Value = serde_json::from_slice(&voted.stdout).unwrap();
    assert_eq!(answer["status"], "APPROVED", "{answer}");
    let (actor, vote) = last_vote(&s.gov);
    assert_eq!(actor, "carol");
    let signature = vote.signature.expect("recorded with its signature");
    if openssh_tool("ssh-keygen").is_none() {
        return;
    }
    let origin = s.gov.with_state(|st| st.origin.clone());
    let statement = Statement {
        kind: Kind::Deployment,
        origin: &origin,
        subject: &id,
        digest: &signature.digest,
        approve: true,
        rationale,
        signed_at: &signature.signed_at,
    }
    .to_text();
    let allowed = keys.path().join("allowed_signers");
    std::fs::write(
        &allowed,
        format!(
            "carol {}\n",
            key_from_label("carol").public_key().to_openssh().unwrap()
        ),
    )
    .unwrap();
    let sig = keys.path().join("vote.sig");
    std::fs::write(&sig, &signature.sshsig).unwrap();
    let verified = ssh_keygen(
        &[
            "-Y",
            "verify",
            "-f",
            allowed.to_str().unwrap(),
            "-I",
            "carol",
            "-n",
            "trustledger-vote",
            "-s",
            sig.to_str().unwrap(),
        ],
        statement.as_bytes(),
    );
    assert!(
        verified.status.success(),
        "ssh-keygen -Y verify: {}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

/// Stops a process the test started.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A key only the agent holds (the member gives its `.pub`): the client has ssh-keygen sign.
#[test]
fn the_vote_client_signs_with_a_key_held_by_the_agent() {
    if openssh_tool("ssh-keygen").is_none() || openssh_tool("ssh-agent").is_none() {
        return;
    }
    let s = server();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id_ed25519");
    let made = ssh_keygen(
        &["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()],
        b"",
    );
    assert!(made.status.success(), "{made:?}");
    let public = key.with_extension("pub");
    let line = std::fs::read_to_string(&public).unwrap();
    let (got, p) = http_put(
        &s,
        "/api/v1/cab/members/chen/key",
        "chen",
        &json!({ "ssh_key": line }),
    );
    assert_eq!(got, 200, "{p}");
    let socket = keys.path().join("agent.sock");
    let _agent = Child(
        Process::new("ssh-agent")
            .args(["-D", "-a", socket.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !socket.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let added = Process::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    std::fs::remove_file(&key).unwrap(); // only the agent holds it now
    let id = s.pending(1);
    let voted = Process::new(env!("CARGO_BIN_EXE_trustledger"))
        .args([
            "vote",
            "--url",
            &format!("http://127.0.0.1:{}", s.served.port),
        ])
        .args([
            "--token",
            &s.tokens["chen"],
            "--key",
            public.to_str().unwrap(),
        ])
        .args([
            "--reject",
            "--rationale",
            "no rollback plan",
            "deployment",
            &id,
        ])
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(
        voted.status.success(),
        "{}",
        String::from_utf8_lossy(&voted.stderr)
    );
    let answer: Value = serde_json::from_slice(&voted.stdout).unwrap();
    assert_eq!(answer["status"], "REJECTED", "{answer}");
    let (actor, vote) = last_vote(&s.gov);
    assert_eq!((actor.as_str(), vote.approve), ("chen", false));
}

/// What a producer posts: `document` (JSON) and a signature over its canonical bytes.
fn evidence_post(s: &Server, document: &Value, signature: Value) -> (u16, Value) {
    s.post(
        "/api/v1/evidence",
        "dev",
        &json!({"document": document, "signature": signature}),
    )
}

fn ci_document(generated_by: &str) -> Value {
    json!({
        "artifacts": [{"name": "app.msi", "sha256": hex::encode(Sha256::digest(ARTIFACT)), "size": ARTIFACT.len()}],
        "sbom": null, "tests_passed": 10, "tests_failed": 0, "scan_critical_findings": 0,
        "generated_by": generated_by, "packaged_by": "packager", "requires_admin": true
    })
}

/// `document` signed in-process with the key derived from `label`.
fn signed_by_label(label: &str, document: &Value) -> Value {
    let parsed: events::payloads::EvidenceDocument =
        serde_json::from_value(document.clone()).unwrap();
    json!(projections::evidence_signature::sign(&parsed, &key_from_label(label)).unwrap())
}

#[test]
fn bad_evidence_signatures_are_refused_over_http_with_a_problem_and_nothing_written() {
    let s = server();
    let size = s.size();
    let document = ci_document("ci-bot");
    let good = signed_by_label("ci-bot", &document);
    let mut edited = document.clone();
    edited["requires_admin"] = json!(false);
    let rogue = ci_document("rogue-ci");
    let cases: Vec<(&str, Value, Value, u16, &str)> = vec![
        (
            "unsigned",
            document.clone(),
            Value::Null,
            422,
            "requires evidence signed",
        ),
        (
            "edited after signing",
            edited,
            good.clone(),
            403,
            "does not verify",
        ),
        (
            "another key",
            document.clone(),
            signed_by_label("carol", &document),
            403,
            "not by the key in force",
        ),
        (
            "an unregistered producer",
            rogue.clone(),
            signed_by_label("rogue-ci", &rogue),
            403,
            "not an evidence producer",
        ),
        (
            "malformed",
            document.clone(),
            json!("-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----"),
            422,
            "signature",
        ),
        (
            "of the wrong type",
            document.clone(),
            json!(42),
            422,
            "signature",
        ),
    ];
    for (what, document, signature, status, says) in cases {
        let (got, problem) = evidence_post(&s, &document, signature);
        assert_eq!(got, status, "{what}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{what}: {problem}"
        );
        assert_eq!(s.size(), size, "{what} wrote something");
    }
    // Only an admin sets or revokes a producer; a revoked producer signs nothing more.
    let line = key_from_label("other-ci")
        .public_key()
        .to_openssh()
        .unwrap();
    let (got, _) = http_put(
        &s,
        "/api/v1/evidence-producers/other-ci",
        "dev",
        &json!({"ssh_key": line}),
    );
    assert_eq!(got, 403);
    assert_eq!(s.size(), size);
    let (got, p) = s.post(
        "/api/v1/evidence-producers/ci-bot/revocation",
        "ada",
        &json!({"reason": "key leaked"}),
    );
    assert_eq!(got, 200, "{p}");
    assert_eq!(p["producers"], json!({}), "{p}");
    let size = s.size();
    let (got, problem) = evidence_post(&s, &document, good);
    assert_eq!(got, 403, "{problem}");
    assert_eq!(s.size(), size);
}

/// The documented producer's path: register the CI's OpenSSH key, canonicalise the document
/// with `trustledger canonical`, sign it with `ssh-keygen -Y sign`, post it.
#[test]
fn evidence_signed_by_ssh_keygen_over_trustledger_canonical_is_accepted() {
    if openssh_tool("ssh-keygen").is_none() {
        return;
    }
    let s = server();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("ci_ed25519");
    let made = ssh_keygen(
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "jenkins",
            "-f",
            key.to_str().unwrap(),
        ],
        b"",
    );
    assert!(made.status.success(), "{made:?}");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let (got, p) = http_put(
        &s,
        "/api/v1/evidence-producers/jenkins",
        "ada",
        &json!({"ssh_key": public}),
    );
    assert_eq!(got, 200, "{p}");
    assert!(
        p["producers"]["jenkins"]["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("SHA256:"),
        "{p}"
    );
    let document = ci_document("jenkins");
    let mut canonical = Process::new(env!("CARGO_BIN_EXE_trustledger"))
        .arg("canonical")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        // Pretty-printed on purpose: what is signed is the canonical form, not what was typed.
        let typed = serde_json::to_string_pretty(&document).unwrap();
        canonical
            .stdin
            .take()
            .unwrap()
            .write_all(typed.as_bytes())
            .unwrap();
    }
    let canonical = canonical.wait_with_output().unwrap();
    assert!(canonical.status.success(), "{canonical:?}");
    let signed = ssh_keygen(
        &[
            "-q",
            "-Y",
            "sign",
            "-n",
            "trustledger-evidence",
            "-f",
            key.to_str().unwrap(),
        ],
        &canonical.stdout,
    );
    assert!(signed.status.success(), "{signed:?}");
    let sshsig = String::from_utf8(signed.stdout).unwrap();
    let (got, recorded) = evidence_post(&s, &document, json!(sshsig));
    assert_eq!(got, 201, "{recorded}");
    assert_eq!(
        recorded["evidence_hash"],
        hex::encode(Sha256::digest(&canonical.stdout)),
        "the evidence hash is the SHA-256 of the signed bytes"
    );
    let (got, read) = http(
        s.served.port,
        "GET",
        &format!(
            "/api/v1/evidence/{}",
            recorded["evidence_id"].as_str().unwrap()
        ),
        Some(&s.tokens["dev"]),
        b"",
    );
    assert_eq!(got, 200);
    assert_eq!(json_of(&read)["signature"], json!(sshsig));
}
