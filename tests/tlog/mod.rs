//! Shared by the transparency tests: `trustledger` processes on free loopback ports, small
//! signed logs (and forks of them), and a witness's add-checkpoint requests.
#![allow(dead_code)]

use events::checkpoint::NoteSigner;
use events::cosignature::CosignatureVerifier;
use events::witness::AddCheckpoint;
use events::{EventDraft, Log, LogConfig};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ORIGIN: &str = "ops.example/deployments";

/// A `trustledger` process on a free loopback port, killed when dropped.
pub struct Running {
    child: Child,
    pub url: String,
}

impl Running {
    /// Starts `trustledger <args> --listen 127.0.0.1:<free port>` and waits for the port.
    pub fn start(args: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port, args)
    }

    pub fn start_on(port: u16, args: &[&str]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_trustledger"))
            .args(args)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{args:?} never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn witness(dir: &Path, log_key: &str) -> (Running, CosignatureVerifier) {
    witness_on(None, dir, ORIGIN, log_key)
}

/// A witness of the log `origin` on `port` (or a free one) with its key.
pub fn witness_on(
    port: Option<u16>,
    dir: &Path,
    origin: &str,
    log_key: &str,
) -> (Running, CosignatureVerifier) {
    let args = [
        "witness",
        "serve",
        "--data",
        dir.to_str().unwrap(),
        "--log",
        &format!("{origin}={log_key}"),
        "--name",
        "auditor.example/witness",
    ];
    let running = match port {
        Some(port) => Running::start_on(port, &args),
        None => Running::start(&args),
    };
    let key = std::fs::read_to_string(dir.join("witness-key.pub")).unwrap();
    (running, CosignatureVerifier::parse(key.trim()).unwrap())
}

/// A log signed with `signer` holding `entries` (entry `fork_at` changed when given).
/// The same arguments give the same entries, byte for byte (the clock is fixed), so two such
/// logs of different sizes are one history at two sizes.
pub fn log_with(dir: &Path, signer: &NoteSigner, entries: u64, fork_at: Option<u64>) -> Log {
    let log = Log::open(
        dir,
        LogConfig {
            origin: Some(ORIGIN.into()),
            signer: Some(signer.clone()),
            clock: std::sync::Arc::new(events::ManualClock::new(
                events::Timestamp::from_unix_micros(1_780_000_000_000_000),
            )),
            ..LogConfig::default()
        },
    )
    .unwrap();
    for i in 0..entries {
        let answer = if Some(i) == fork_at { 0 } else { i + 1 };
        let draft = EventDraft::new(
            uuid::Uuid::from_u128(u128::from(i) + 1),
            "trustledger.test.happened",
            "test/1",
            "alice",
            "corr",
            serde_json::json!({ "answer": answer }),
        );
        log.append_blocking(draft).unwrap();
    }
    log
}

/// An `add-checkpoint` request for `log` at `size`, from `old`.
pub fn request(log: &Log, old: u64, size: u64) -> String {
    AddCheckpoint {
        old_size: old,
        proof: if old == 0 {
            vec![]
        } else {
            log.consistency_proof(old, size).unwrap()
        },
        checkpoint: log.checkpoint_at(size).unwrap().unwrap(),
    }
    .to_body()
}

/// POSTs to the witness: status, content type and body.
pub fn add(witness: &Running, body: &str) -> (u16, String, String) {
    match ureq::post(&format!("{}/add-checkpoint", witness.url)).send_string(body) {
        Ok(r) => (
            r.status(),
            r.content_type().to_owned(),
            r.into_string().unwrap(),
        ),
        Err(ureq::Error::Status(code, r)) => {
            (code, r.content_type().to_owned(), r.into_string().unwrap())
        }
        Err(e) => panic!("{e}"),
    }
}

pub fn trustledger(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trustledger"))
        .args(args)
        .output()
        .unwrap()
}

pub fn output(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn get(url: &str, token: Option<&str>) -> String {
    let mut request = ureq::get(url);
    if let Some(token) = token {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    request.call().unwrap().into_string().unwrap()
}

/// Polls `what` every 100 ms for up to 30 s until it holds.
pub fn eventually(why: &str, mut what: impl FnMut() -> bool) {
    let started = Instant::now();
    while !what() {
        assert!(started.elapsed() < Duration::from_secs(30), "never: {why}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
