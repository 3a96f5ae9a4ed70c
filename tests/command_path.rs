//! The command path under concurrency and failure, against a real bound server: the sequencer
//! decides ahead of durability, group-commits, and answers only what is durable.

use events::catalogue::access::AccessGranted;
use events::checkpoint::NoteSigner;
use events::{Durability, Log, LogConfig, SystemClock};
use projections::policy::{self, Command};
use projections::state::GovernanceState;
use projections::vote_statement::{key_from_label, Kind};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use trustledger::api::{app, AppState};
use trustledger::governance::{
    new_token, CommandError, Governance, IdSource, Outcome, Principal, Role, CLI_ADMIN,
};

mod http_client;
use http_client::{http, http_with_head, json_of, serve};

const ARTIFACT: &[u8] = b"MZ... installer";
const CLIENTS: usize = 64;

struct Server {
    served: http_client::Served,
    dir: tempfile::TempDir,
    gov: Arc<Governance>,
    port: u16,
    tokens: BTreeMap<&'static str, String>,
}

fn open_governance(dir: &std::path::Path, durability: Durability) -> Governance {
    let config = LogConfig {
        signer: Some(NoteSigner::from_seed("command-path", [9; 32]).unwrap()),
        durability,
        ..LogConfig::default()
    };
    Governance::open(
        Log::open(dir, config).unwrap(),
        Arc::new(SystemClock),
        IdSource::Random,
    )
    .unwrap()
}

fn server(durability: Durability) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let gov = Arc::new(open_governance(dir.path(), durability));
    let cli = Principal::new(CLI_ADMIN, &[Role::Admin]);
    let mut tokens = BTreeMap::new();
    for (name, roles) in [
        ("dev", &["submitter"][..]),
        ("carol", &["cab"]),
        ("agent", &["deployer"]),
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
    gov.execute(
        &cli,
        &Command::AddCabMember {
            member: "carol".into(),
            ssh_key: Some(key_from_label("carol").public_key().to_openssh().unwrap()),
        },
    )
    .unwrap();
    gov.execute(&cli, &policy::set_producer_by_label("ci-bot"))
        .unwrap();
    let served = serve(app(AppState::new(Arc::clone(&gov))));
    Server {
        port: served.port,
        served,
        dir,
        gov,
        tokens,
    }
}

/// Carol's vote approving deployment `id`, signed now with her key (derived from her name).
fn carols_vote(s: &Server, id: &str) -> Vec<u8> {
    let at = s.gov.current_time();
    let signed = s
        .gov
        .with_state(|state| {
            policy::sign_vote(
                state,
                &key_from_label("carol"),
                (Kind::Deployment, id),
                (true, "reviewed"),
                at,
            )
        })
        .unwrap();
    json!({"approve": true, "rationale": "reviewed",
           "signature": {"signed_at": signed.signed_at, "sshsig": signed.sshsig()}})
    .to_string()
    .into_bytes()
}

fn evidence_document() -> Value {
    json!({
        "artifacts": [{"name": "app.msi", "sha256": hex::encode(Sha256::digest(ARTIFACT)), "size": ARTIFACT.len()}],
        "sbom": null, "tests_passed": 10, "tests_failed": 0, "scan_critical_findings": 0,
        "generated_by": "ci-bot", "packaged_by": "packager", "requires_admin": false
    })
}

/// The evidence document, signed by its producer.
fn evidence_body() -> Value {
    http_client::signed_evidence_body(evidence_document())
}

/// What one client had acknowledged with a 2xx.
#[derive(Default)]
struct Acknowledged {
    evidence: Option<String>,
    deployment: Option<String>,
    voted: bool,
    released: bool,
}

/// One client's whole workflow: evidence, submission, a CAB vote, the release.
fn one_client(s: &Server, n: usize) -> Acknowledged {
    let mut ack = Acknowledged::default();
    let post =
        |path: &str, who: &str, body: &[u8]| http(s.port, "POST", path, Some(&s.tokens[who]), body);
    let (status, e) = post(
        "/api/v1/evidence",
        "dev",
        evidence_body().to_string().as_bytes(),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&e));
    let evidence = json_of(&e)["evidence_id"].as_str().unwrap().to_owned();
    ack.evidence = Some(evidence.clone());
    let submit = json!({"correlation_id": format!("client-{n}"), "app_name": "PDF reader", "app_version": "1", "requires_admin": false, "target_user_count": 5, "evidence_id": evidence});
    let (status, d) = post("/api/v1/deployments", "dev", submit.to_string().as_bytes());
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&d));
    let id = json_of(&d)["deployment_id"].as_str().unwrap().to_owned();
    ack.deployment = Some(id.clone());
    let (status, v) = post(
        &format!("/api/v1/deployments/{id}/votes"),
        "carol",
        &carols_vote(s, &id),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&v));
    ack.voted = true;
    let (status, r) = post(
        &format!("/api/v1/deployments/{id}/release"),
        "agent",
        ARTIFACT,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&r));
    assert_eq!(
        json_of(&r)["released"],
        true,
        "{}",
        String::from_utf8_lossy(&r)
    );
    ack.released = true;
    ack
}

/// Every entry of the log.
fn read_all(log: &Log) -> Vec<events::Entry> {
    let mut all = Vec::new();
    loop {
        let page = log.read_range(all.len() as u64, 1000).unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// Every entry of the log, decoded: (type, data).
fn entries(log: &Log) -> Vec<(String, Value)> {
    read_all(log)
        .into_iter()
        .map(|e| (e.event_type.clone(), e.data().clone()))
        .collect()
}

/// A fresh fold of the whole log.
fn fresh_fold(log: &Log) -> GovernanceState {
    let mut state = GovernanceState::new();
    for entry in read_all(log) {
        state.apply(&entry);
    }
    state
}

fn count(entries: &[(String, Value)], kind: &str, field: &str, id: &str) -> usize {
    entries
        .iter()
        .filter(|(t, d)| t == kind && d[field] == id)
        .count()
}

#[test]
fn sixty_four_clients_at_once_share_commits_and_every_acknowledged_id_is_logged_once() {
    let s = server(Durability::Fsync);
    let commits_before = s.gov.log().commit_stats();
    let acknowledged: Vec<Acknowledged> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|n| {
                let s = &s;
                scope.spawn(move || one_client(s, n))
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let log = s.gov.log();
    let all = entries(log);
    for ack in &acknowledged {
        let evidence = ack.evidence.as_deref().unwrap();
        let deployment = ack.deployment.as_deref().unwrap();
        assert_eq!(
            count(
                &all,
                "trustledger.evidence.recorded",
                "evidence_id",
                evidence
            ),
            1
        );
        assert_eq!(
            count(
                &all,
                "trustledger.deployment.submitted",
                "deployment_id",
                deployment
            ),
            1
        );
        assert!(ack.voted && ack.released);
        let votes = read_all(log)
            .iter()
            .filter(|e| {
                e.event_type == "trustledger.cab.vote_cast"
                    && e.subject == format!("deployment/{deployment}")
            })
            .count();
        assert_eq!(votes, 1);
        assert_eq!(
            count(
                &all,
                "trustledger.deployment.released",
                "deployment_id",
                deployment
            ),
            1
        );
    }
    // The HTTP commands shared fsyncs: fewer commits than the commands that wrote.
    let stats = log.commit_stats();
    let commits = stats.commits - commits_before.commits;
    let commands = (CLIENTS * 4) as u64;
    assert!(
        commits < commands,
        "{commits} commits for {commands} commands: nothing was group-committed"
    );
    // The published state is exactly a fresh fold of the log.
    assert_eq!(s.gov.state(), fresh_fold(log));
    let report = replay::audit::audit_log(log, log.verifier(), |_| {}).unwrap();
    assert!(report.clean(), "{report:?}");
    drop(s.dir);
}

#[test]
fn a_failed_commit_fails_its_callers_and_every_decision_after_it_and_loses_nothing_acknowledged() {
    let s = server(Durability::FlushOnlyMayLoseOnPowerFailure);
    let gov = &s.gov;
    let dev = Principal::new("dev", &[Role::Submitter]);
    let document = |n: u64| {
        serde_json::from_value::<events::payloads::EvidenceDocument>(json!({
            "artifacts": [{"name": format!("app-{n}.msi"), "sha256": hex::encode(Sha256::digest(ARTIFACT)), "size": n + 1}],
            "sbom": null, "tests_passed": 10, "tests_failed": 0, "scan_critical_findings": 0,
            "generated_by": "ci-bot", "packaged_by": "packager", "requires_admin": false
        }))
        .unwrap()
    };
    // Commands race the injected failure from 16 threads.
    let results: Vec<(uuid::Uuid, Result<Outcome, CommandError>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..16u64)
            .map(|t| {
                let dev = &dev;
                scope.spawn(move || {
                    (0..20u64)
                        .map(|k| {
                            if t == 0 && k == 5 {
                                gov.log().inject_commit_failure();
                            }
                            let evidence_id = gov.new_id();
                            let command = policy::record_evidence_signed_by_label(
                                evidence_id,
                                document(t * 100 + k),
                            );
                            (evidence_id, gov.execute(dev, &command))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    assert!(failed > 0, "the injected failure failed nothing");
    for (_, result) in &results {
        if let Err(e) = result {
            assert!(
                matches!(
                    e,
                    CommandError::Unavailable(_)
                        | CommandError::Append(
                            events::AppendError::Storage(_) | events::AppendError::HeadMoved { .. }
                        )
                ),
                "{e}"
            );
        }
    }
    // Nothing acknowledged is lost; nothing refused was written.
    let all = entries(gov.log());
    for (id, result) in &results {
        let logged = count(
            &all,
            "trustledger.evidence.recorded",
            "evidence_id",
            &id.to_string(),
        );
        assert_eq!(logged, usize::from(result.is_ok()), "{id}: {result:?}");
    }
    // The published state is a fresh fold of the durable log, and the service says why it
    // refuses writes.
    assert_eq!(gov.state(), fresh_fold(gov.log()));
    assert!(gov.failure().is_some());
    // Over HTTP, the refusal is a 503 problem with Retry-After, and writes nothing.
    let size = gov.log().head().size;
    let (status, head, body) = http_with_head(
        s.port,
        "POST",
        "/api/v1/evidence",
        Some(&s.tokens["dev"]),
        evidence_body().to_string().as_bytes(),
    );
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    assert!(head.contains("retry-after:"), "{head}");
    assert_eq!(gov.log().head().size, size);
    // Reopened, the log holds exactly what was acknowledged, and takes writes again.
    let expected: BTreeSet<String> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(id, _)| id.to_string())
        .collect();
    let Server {
        served, dir, gov, ..
    } = s;
    drop(served);
    drop(gov);
    let gov = open_governance(dir.path(), Durability::FlushOnlyMayLoseOnPowerFailure);
    let logged: BTreeSet<String> = entries(gov.log())
        .into_iter()
        .filter(|(t, _)| t == "trustledger.evidence.recorded")
        .map(|(_, d)| d["evidence_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(logged, expected);
    let evidence_id = gov.new_id();
    gov.execute(
        &dev,
        &policy::record_evidence_signed_by_label(evidence_id, document(9999)),
    )
    .unwrap();
}

#[test]
fn an_sbom_uploaded_before_a_restart_is_checked_at_the_release_after_it() {
    const SBOM: &[u8] = br#"{"bomFormat":"CycloneDX","components":[]}"#;
    let s = server(Durability::FlushOnlyMayLoseOnPowerFailure);
    let post = |s: &Server, path: &str, who: &str, body: &[u8]| {
        let (status, body) = http(s.port, "POST", path, Some(&s.tokens[who]), body);
        assert!(
            (200..300).contains(&status),
            "{path}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        json_of(&body)
    };
    let mut document = evidence_document();
    document["sbom"] = json!({"format": "CycloneDX-1.5", "sha256": hex::encode(Sha256::digest(SBOM)), "signature": null});
    let evidence = http_client::signed_evidence_body(document);
    let e = post(
        &s,
        "/api/v1/evidence",
        "dev",
        evidence.to_string().as_bytes(),
    );
    let submit = json!({"correlation_id": "sbom-restart", "app_name": "PDF reader", "app_version": "1", "requires_admin": false, "target_user_count": 5, "evidence_id": e["evidence_id"]});
    let d = post(
        &s,
        "/api/v1/deployments",
        "dev",
        submit.to_string().as_bytes(),
    );
    let id = d["deployment_id"].as_str().unwrap().to_owned();
    post(
        &s,
        &format!("/api/v1/deployments/{id}/votes"),
        "carol",
        &carols_vote(&s, &id),
    );
    let (status, body) = http(
        s.port,
        "PUT",
        &format!("/api/v1/deployments/{id}/sbom"),
        Some(&s.tokens["agent"]),
        SBOM,
    );
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    // The service stops between the upload and the release.
    let Server {
        served,
        dir,
        gov,
        tokens,
        ..
    } = s;
    drop(served);
    drop(gov);
    let gov = Arc::new(open_governance(
        dir.path(),
        Durability::FlushOnlyMayLoseOnPowerFailure,
    ));
    let served = serve(app(AppState::new(Arc::clone(&gov))));
    let s = Server {
        port: served.port,
        served,
        dir,
        gov,
        tokens,
    };
    let r = post(
        &s,
        &format!("/api/v1/deployments/{id}/release"),
        "agent",
        ARTIFACT,
    );
    let verdict = r.to_string();
    assert!(
        verdict.contains(&format!("presented {}", hex::encode(Sha256::digest(SBOM)))),
        "the release did not see the SBOM uploaded before the restart: {verdict}"
    );
    assert!(!verdict.contains("SBOM_HASH_MISMATCH"), "{verdict}");
    let report = replay::audit::audit_log(s.gov.log(), s.gov.log().verifier(), |_| {}).unwrap();
    assert!(report.clean(), "{report:?}");
}
