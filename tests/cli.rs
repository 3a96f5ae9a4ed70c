//! The `trustledger` binary as a user runs it: export, verify (store and bundle), checkpoint,
//! keygen, and the exit codes 0 valid / 1 invalid / 2 error.

#[path = "../events/tests/shared/raw_sled.rs"]
mod raw_sled;
use events::checkpoint::{Checkpoint, NoteSigner};
use events::{EventDraft, Log, LogConfig};
use raw_sled::{edit_entries, open_raw_sled};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use std::path::Path;
use std::process::{Command, Output};
use uuid::Uuid;

fn trustledger(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trustledger"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A data directory holding `n` entries written in commits of 7, as `serve` lays it out.
fn populated(dir: &Path, n: u64) {
    let log = trustledger::data_dir::open(dir, true).unwrap();
    append(&log, 0, n);
    log.close();
}

fn append(log: &Log, from: u64, to: u64) {
    let drafts: Vec<_> = (from..to)
        .map(|i| {
            EventDraft::new(
                Uuid::from_u128(u128::from(i) + 1),
                "trustledger.test.happened",
                format!("s/{}", i % 5),
                "alice",
                format!("c{i}"),
                json!({"i": i}),
            )
        })
        .collect();
    for chunk in drafts.chunks(7) {
        log.append_batch_blocking(chunk.to_vec()).unwrap();
    }
}

fn export(data: &Path, out: &Path) {
    let o = trustledger(&[
        "export",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

fn verify_bundle(bundle: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["verify", "--bundle", bundle.to_str().unwrap()];
    args.extend_from_slice(extra);
    trustledger(&args)
}

#[test]
fn export_then_verify_with_standard_tools_and_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("data"), tmp.path().join("export"));
    populated(&data, 50);
    let o = trustledger(&["verify", "--data", data.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("valid: 50 entries verified"),
        "{}",
        text(&o)
    );

    export(&data, &out);
    let jsonl = std::fs::read(out.join("entries.jsonl")).unwrap();
    let lines: Vec<&[u8]> = jsonl.split(|b| *b == b'\n').collect();
    assert_eq!(lines.len(), 51, "50 lines each ending in \\n");
    // The pinned format: `sed -n 2p | tr -d '\n' | sha256sum` is entry 1's hash, which is entry 2's prevhash.
    let hash1 = hex::encode(Sha256::digest(lines[1]));
    assert!(String::from_utf8_lossy(lines[2]).contains(&format!("\"prevhash\":\"{hash1}\"")));

    let key = std::fs::read_to_string(out.join("verifier-key")).unwrap();
    let o = verify_bundle(&out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("not independently pinned"),
        "unpinned keys are called out: {}",
        text(&o)
    );
    let o = verify_bundle(&out, &["--key", key.trim()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("the key you pinned"));
    let cp = trustledger(&["checkpoint", "--data", data.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8(cp.stdout).unwrap(),
        std::fs::read_to_string(out.join("checkpoint")).unwrap()
    );
}

fn tampered_copy(
    tmp: &Path,
    from: &Path,
    name: &str,
    edit: impl FnOnce(&mut Vec<u8>),
) -> std::path::PathBuf {
    let to = tmp.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for f in ["entries.jsonl", "checkpoint", "verifier-key"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    let mut bytes = std::fs::read(to.join("entries.jsonl")).unwrap();
    edit(&mut bytes);
    std::fs::write(to.join("entries.jsonl"), bytes).unwrap();
    to
}

#[test]
fn bundle_tampering_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("data"), tmp.path().join("export"));
    populated(&data, 30);
    export(&data, &out);
    let key = std::fs::read_to_string(out.join("verifier-key")).unwrap();
    let key = key.trim();

    let changed = tampered_copy(tmp.path(), &out, "changed", |b| {
        let at = b.windows(6).position(|w| w == b"\"i\":12").unwrap();
        b[at + 4] = b'3';
    });
    let o = verify_bundle(&changed, &["--key", key]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("seq 12") && text(&o).contains("entry 12 was altered"),
        "entry 13's prevhash exposes entry 12, and entry 14 confirms entry 13: {}",
        text(&o)
    );

    // An edit of entry 20's own prevhash: entry 21 does not confirm entry 20, so the damage is
    // reported at 20, not at 19.
    let relinked = tampered_copy(tmp.path(), &out, "relinked", |b| {
        let line_start = b
            .split(|c| *c == b'\n')
            .take(20)
            .map(|l| l.len() + 1)
            .sum::<usize>();
        let at = line_start
            + b[line_start..]
                .windows(12)
                .position(|w| w == b"\"prevhash\":\"")
                .unwrap()
            + 12;
        b[at] = if b[at] == b'0' { b'1' } else { b'0' };
    });
    let o = verify_bundle(&relinked, &["--key", key]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("seq 20") && !text(&o).contains("altered"),
        "{}",
        text(&o)
    );

    let dropped = tampered_copy(tmp.path(), &out, "dropped", |b| {
        let cut = b[..b.len() - 1].iter().rposition(|c| *c == b'\n').unwrap();
        b.truncate(cut + 1);
    });
    let o = verify_bundle(&dropped, &["--key", key]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("checkpoint covers 30 entries"),
        "{}",
        text(&o)
    );

    // A forger edits entry 5 and re-chains everything after it: the chain is valid again, and
    // only the signed checkpoint shows the rewrite.
    let rechained = tampered_copy(tmp.path(), &out, "rechained", |b| {
        let mut lines: Vec<Vec<u8>> = b
            .split(|c| *c == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        let mut entries: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        entries[5]["data"]["i"] = json!(555);
        for i in 0..entries.len() {
            if i > 0 {
                let prev = events::canonical::to_canonical_vec(&entries[i - 1]).unwrap();
                entries[i]["prevhash"] = json!(hex::encode(Sha256::digest(&prev)));
            }
            lines[i] = events::canonical::to_canonical_vec(&entries[i]).unwrap();
        }
        *b = lines
            .into_iter()
            .flat_map(|mut l| {
                l.push(b'\n');
                l
            })
            .collect();
    });
    let o = verify_bundle(&rechained, &["--key", key]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("INVALID: checkpoint covers 30 entries with root"),
        "{}",
        text(&o)
    );

    // ... and a forger who also re-signs with their own key is stopped by the pinned key.
    let forger = NoteSigner::from_seed("trustledger", [66; 32]).unwrap();
    let root = {
        let mut tree = events::merkle::MemoryTree::new();
        for l in std::fs::read(rechained.join("entries.jsonl"))
            .unwrap()
            .split(|c| *c == b'\n')
            .filter(|l| !l.is_empty())
        {
            tree.push_entry(l);
        }
        tree.root()
    };
    let origin = Checkpoint::parse_text(
        &std::fs::read_to_string(out.join("checkpoint"))
            .unwrap()
            .split("\n\n")
            .next()
            .unwrap()
            .to_owned()
            .add_newline(),
    )
    .unwrap()
    .origin;
    std::fs::write(
        rechained.join("checkpoint"),
        Checkpoint {
            origin,
            size: 30,
            root,
        }
        .sign(&forger),
    )
    .unwrap();
    std::fs::write(
        rechained.join("verifier-key"),
        format!("{}\n", forger.verifier()),
    )
    .unwrap();
    assert_eq!(
        verify_bundle(&rechained, &[]).status.code(),
        Some(0),
        "self-consistent under the forger's own key"
    );
    let o = verify_bundle(&rechained, &["--key", key]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no signature by key"), "{}", text(&o));
}

trait AddNewline {
    fn add_newline(self) -> String;
}
impl AddNewline for String {
    fn add_newline(mut self) -> String {
        self.push('\n');
        self
    }
}

#[test]
fn a_bundle_must_extend_the_checkpoint_the_auditor_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    populated(&data, 20);
    let kept = tmp.path().join("kept-checkpoint");
    std::fs::write(
        &kept,
        trustledger(&["checkpoint", "--data", data.to_str().unwrap()]).stdout,
    )
    .unwrap();
    let log = trustledger::data_dir::open(&data, false).unwrap();
    append(&log, 20, 45);
    log.close();
    let out = tmp.path().join("later");
    export(&data, &out);
    let o = verify_bundle(&out, &["--from-checkpoint", kept.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("extends the earlier checkpoint of size 20"));

    // A log rebuilt from scratch with different history, signed by the same key, does not.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(data.join("signing-key"), other.join("signing-key")).unwrap();
    let origin = Log::open(data.join("sled"), LogConfig::default())
        .unwrap()
        .origin()
        .to_owned();
    let signer = trustledger::data_dir::read_key_file(&other.join("signing-key")).unwrap();
    let rewritten = Log::open(
        other.join("sled"),
        LogConfig {
            origin: Some(origin),
            signer: Some(signer),
            ..LogConfig::default()
        },
    )
    .unwrap();
    append(&rewritten, 1000, 1045);
    rewritten.close();
    let out2 = tmp.path().join("rewritten");
    export(&other, &out2);
    assert_eq!(
        verify_bundle(&out2, &[]).status.code(),
        Some(0),
        "the rewrite is internally consistent"
    );
    let o = verify_bundle(&out2, &["--from-checkpoint", kept.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("is not a prefix of this bundle"),
        "{}",
        text(&o)
    );
}

#[test]
fn keygen_writes_a_private_file_once_and_errors_are_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("key");
    let o = trustledger(&[
        "keygen",
        "--out",
        key.to_str().unwrap(),
        "--name",
        "ops.example",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let verifier = String::from_utf8(o.stdout).unwrap();
    assert!(verifier.starts_with("ops.example+"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let o = trustledger(&["keygen", "--out", key.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--force"), "{}", text(&o));
    assert!(
        trustledger(&["keygen", "--out", key.to_str().unwrap(), "--force"])
            .status
            .success()
    );

    let missing = tmp.path().join("nothing-here");
    let o = trustledger(&["verify", "--data", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("no trustledger log"), "{}", text(&o));
    assert!(!missing.exists(), "verify must not create a log");
    assert_eq!(trustledger(&["verify"]).status.code(), Some(2));
    assert_eq!(
        trustledger(&["verify", "--bundle", missing.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
    let o = trustledger(&[
        "verify",
        "--bundle",
        tmp.path().to_str().unwrap(),
        "--key",
        "not-a-key",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn verify_data_names_the_first_bad_seq() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    populated(&data, 25);
    {
        let db = open_raw_sled(&data.join("sled"));
        let tree = db.open_tree("log").unwrap();
        edit_entries(&tree, |entries| {
            entries.remove(&9).unwrap();
        });
        db.flush().unwrap();
    }
    let o = trustledger(&["verify", "--data", data.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("INVALID at seq 9"), "{}", text(&o));
}

#[test]
fn serve_creates_the_data_directory_and_key_then_holds_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_trustledger"))
        .args([
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--origin",
            "ops.example/deployments",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let key_file = data.join("signing-key");
    let started = std::time::Instant::now();
    while !(key_file.exists() && data.join("sled/conf").exists())
        && started.elapsed() < std::time::Duration::from_secs(20)
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // While it runs, another process is told clearly that the directory is in use.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let o = trustledger(&["verify", "--data", data.to_str().unwrap()]);
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("in use by another process"),
        "{}",
        text(&o)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let log = trustledger::data_dir::open(&data, false).unwrap();
    assert_eq!(log.origin(), "ops.example/deployments");
    assert!(
        log.verifier()
            .unwrap()
            .to_string()
            .starts_with("ops.example/deployments+"),
        "a new log's key is named after its origin"
    );
}

/// The README's command-line walkthrough, run as written (smaller), so the README cannot rot:
/// simulate → export → verify the bundle → audit it → backtest a looser model on it.
#[test]
fn the_readme_walkthrough_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("demo");
    let export = tmp.path().join("export");
    let o = trustledger(&[
        "simulate",
        "--data",
        data.to_str().unwrap(),
        "--weeks",
        "6",
        "--per-week",
        "40",
        "--seed",
        "7",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("week released"), "{}", text(&o));
    let o = trustledger(&[
        "export",
        "--data",
        data.to_str().unwrap(),
        "--out",
        export.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let key = std::fs::read_to_string(export.join("verifier-key")).unwrap();
    let o = trustledger(&[
        "verify",
        "--bundle",
        export.to_str().unwrap(),
        "--key",
        key.trim(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = trustledger(&[
        "audit",
        "--bundle",
        export.to_str().unwrap(),
        "--key",
        key.trim(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("verdict: CLEAN"));
    let o = trustledger(&["audit", "--data", data.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("matches the stored snapshot"),
        "{}",
        text(&o)
    );
    // A stored snapshot whose state differs from the rebuild (sealed again, so its checksum
    // holds) is a finding, not a silent pass.
    let snapshots = data.join("sled").join("projection-snapshots");
    let snapshot_file = snapshots.join("governance.snapshot");
    let sealed = std::fs::read(&snapshot_file).unwrap();
    let mut opened = projections::snapshot::unseal(&sealed).unwrap();
    opened.state.cab_members.insert("mallory".into());
    std::fs::write(
        &snapshot_file,
        projections::snapshot::seal(&opened.state, opened.seq, opened.head),
    )
    .unwrap();
    let o = trustledger(&["audit", "--data", data.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("DIFFERS from the stored snapshot"),
        "{}",
        text(&o)
    );
    std::fs::write(&snapshot_file, &sealed).unwrap();
    // Without a snapshot to compare, the audit says so instead of staying silent.
    std::fs::remove_file(&snapshot_file).unwrap();
    let o = trustledger(&["audit", "--data", data.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("projection not compared: the data directory holds no stored snapshot"),
        "{}",
        text(&o)
    );
    let model = tmp.path().join("model.json");
    let mut candidate = projections::genesis::risk_model_v1_1();
    candidate.version = "1.3-candidate".into();
    candidate
        .thresholds
        .insert(events::payloads::BlastRadiusClass::NonCritical, 40);
    std::fs::write(&model, serde_json::to_string_pretty(&candidate).unwrap()).unwrap();
    let o = trustledger(&[
        "backtest",
        "--bundle",
        export.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("\"report_sha256\": \""), "{}", text(&o));
}

/// The README's HTTP half, as written: token create, serve, then the curl requests.
#[test]
fn the_readme_http_walkthrough_runs_against_the_real_binary() {
    use std::io::{Read as _, Write as _};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("demo");
    assert!(trustledger(&[
        "simulate",
        "--data",
        data.to_str().unwrap(),
        "--weeks",
        "2",
        "--per-week",
        "15"
    ])
    .status
    .success());
    let o = trustledger(&[
        "token",
        "create",
        "--data",
        data.to_str().unwrap(),
        "--principal",
        "ada",
        "--role",
        "admin",
        "--role",
        "auditor",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let token = String::from_utf8(o.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("tl_"));
    let server = Served::start(&data);
    let port = server.port;
    let get = |path: &str, extra: &str| -> String {
        for _ in 0..100 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
                    .unwrap();
                write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n{extra}Connection: close\r\n\r\n").unwrap();
                let mut out = Vec::new();
                let _ = s.read_to_end(&mut out);
                return String::from_utf8_lossy(&out).into_owned();
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the server did not start");
    };
    let status = get("/api/v1/maturity/status/", "");
    let calibration = get("/api/v1/calibration/?class=NON_CRITICAL", "");
    let stream = get("/api/v1/events/stream", "Last-Event-ID: 3\r\n");
    drop(server);
    assert!(
        status.starts_with("HTTP/1.1 200") && status.contains("\"criteria\""),
        "{status}"
    );
    assert!(
        calibration.starts_with("HTTP/1.1 200") && calibration.contains("\"auto_approval_rate\""),
        "{calibration}"
    );
    assert!(
        stream.contains("id: 4\n") && !stream.contains("id: 3\n"),
        "the stream resumes after Last-Event-ID"
    );
}

/// Runs `serve` on a free loopback port until dropped.
struct Served {
    child: std::process::Child,
    port: u16,
    url: String,
}

impl Served {
    fn start(data: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_trustledger"))
            .args([
                "serve",
                "--data",
                data.to_str().unwrap(),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Self {
            child,
            port,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn audit_url_checks_a_live_server_against_the_checkpoint_the_auditor_kept() {
    use std::io::{Read as _, Write as _};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let kept = tmp.path().join("kept");
    let d = data.to_str().unwrap();
    let o = trustledger(&["simulate", "--data", d, "--weeks", "2", "--per-week", "30"]);
    assert!(o.status.success(), "{}", text(&o));
    // What the auditor kept from last time: the verifier key and a checkpoint.
    export(&data, &kept);
    let o = trustledger(&[
        "token",
        "create",
        "--data",
        d,
        "--principal",
        "ines",
        "--role",
        "auditor",
        "--role",
        "operator",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let token = String::from_utf8(o.stdout).unwrap().trim().to_owned();
    let server = Served::start(&data);
    // The log grows while served: an on-demand maturity evaluation.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(s, "POST /api/v1/maturity/evaluate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let key = kept.join("verifier-key");
    let checkpoint = kept.join("checkpoint");
    let audit = |extra: &[&str]| {
        let mut args = vec![
            "audit",
            "--url",
            &server.url,
            "--key",
            key.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        trustledger(&args)
    };
    let o = audit(&[
        "--token",
        &token,
        "--from-checkpoint",
        checkpoint.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["verdict"], "CLEAN");
    assert_eq!(report["projection_check"]["reported_by"], "the server");
    assert_eq!(report["projection_check"]["matches"], true);
    let summary = report["integrity"]["summary"].as_str().unwrap();
    assert!(summary.contains("(the key you pinned)"), "{summary}");
    assert!(
        summary.contains("extends the earlier checkpoint"),
        "{summary}"
    );
    let kept_size: u64 = std::fs::read_to_string(&checkpoint)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(report["entries"].as_u64().unwrap() > kept_size);

    // A checkpoint "kept" from another history, signed with the same key: rewritten history.
    let signer =
        trustledger::data_dir::read_key_file(&trustledger::data_dir::key_file(&data)).unwrap();
    let origin = std::fs::read_to_string(&checkpoint)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let other = tmp.path().join("other-checkpoint");
    std::fs::write(
        &other,
        Checkpoint {
            origin,
            size: 10,
            root: events::Digest::of(b"another history"),
        }
        .sign(&signer),
    )
    .unwrap();
    let o = audit(&[
        "--token",
        &token,
        "--from-checkpoint",
        other.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("history was rewritten"), "{}", text(&o));

    // No token, or a server that is not there: unusable input, exit 2.
    let o = audit(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("HTTP 401"), "{}", text(&o));
    let gone = server.url.clone();
    drop(server);
    let o = trustledger(&["audit", "--url", &gone, "--token", &token]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// An unusable input is exit 2 with one line that names the file and says why, once.
#[test]
fn an_unreadable_bundle_is_exit_2_and_the_reason_is_said_once() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-bundle");
    let o = trustledger(&["audit", "--bundle", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.starts_with("trustledger: error: cannot read "),
        "{stderr}"
    );
    assert!(stderr.contains("no-such-bundle"), "{stderr}");
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_new_log_prints_one_admin_token_and_tokens_are_made_through_the_running_server() {
    use std::io::BufRead as _;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_trustledger"))
        .args([
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let admin = first_line.trim().to_owned();
    assert!(admin.starts_with("tl_"), "{first_line:?}");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // No restart: a token is made through the running server with the admin's token.
    let o = trustledger(&[
        "token",
        "create",
        "--url",
        &url,
        "--token",
        &admin,
        "--principal",
        "audrey",
        "--role",
        "auditor",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let audrey = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    assert!(audrey.starts_with("tl_"));
    // A forged admin token is refused with the server's reason, and nothing is printed.
    let o = trustledger(&[
        "token",
        "create",
        "--url",
        &url,
        "--token",
        "tl_forged",
        "--principal",
        "eve",
        "--role",
        "admin",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("401"), "{}", text(&o));
    let _ = child.kill();
    let _ = child.wait();
    // Stopped, the data directory takes `token create --data` again.
    let o = Command::new(env!("CARGO_BIN_EXE_trustledger"))
        .args([
            "token",
            "create",
            "--data",
            data.to_str().unwrap(),
            "--principal",
            "x",
            "--role",
            "auditor",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // Revoked by principal: the raw token is never needed; a second revocation has nothing
    // in force to revoke.
    let d = data.to_str().unwrap();
    let revoke = [
        "token",
        "revoke",
        "--data",
        d,
        "--principal",
        "audrey",
        "--reason",
        "left",
    ];
    let o = trustledger(&revoke);
    assert!(o.status.success(), "{}", text(&o));
    let o = trustledger(&revoke);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no token in force"), "{}", text(&o));
}

#[test]
fn a_store_damaged_so_that_sled_recovers_a_shorter_log_is_invalid_and_refuses_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    populated(&data, 300);
    let db = trustledger::data_dir::sled_dir(&data).join("db");
    let pristine = std::fs::read(&db).unwrap();
    // sled, finding a damaged segment, opens the part before it as if nothing were wrong.
    for fraction in [4, 2] {
        let mut damaged = pristine.clone();
        let at = damaged.len() / fraction;
        damaged[at] ^= 0x55;
        std::fs::write(&db, &damaged).unwrap();
        let o = trustledger(&["verify", "--data", data.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "byte {at}: {}", text(&o));
        assert!(
            text(&o).contains("but 300 were acknowledged"),
            "byte {at}: {}",
            text(&o)
        );
        std::fs::write(&db, &pristine).unwrap();
    }
    let mut damaged = pristine.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 0x55;
    std::fs::write(&db, &damaged).unwrap();
    let log = trustledger::data_dir::open(&data, false).unwrap();
    let refusal = log.refusal().map(ToString::to_string).unwrap_or_default();
    assert!(refusal.contains("were acknowledged"), "{refusal:?}");
    let draft = events::EventDraft::new(
        uuid::Uuid::new_v4(),
        "trustledger.test.happened",
        "test/1",
        "alice",
        "corr",
        serde_json::json!({}),
    );
    assert!(
        log.append_blocking(draft).is_err(),
        "a short store takes no writes"
    );
}
