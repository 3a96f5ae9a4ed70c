//! The command path on loopback, each figure beside its floor in the same run (a timed run, not
//! criterion: the figures are throughput ratios and latency percentiles).
//!
//! - Floor: the log's own durable appends (`Durability::Fsync`) from 64 producer threads.
//! - `POST /api/v1/evidence` from 64 keep-alive clients through the hardened server (rate limits
//!   off), durable: throughput as a ratio of the floor, p50 and p99.
//! - `GET /api/v1/maturity/status/` from 8 keep-alive clients alone, then while that write load
//!   runs: throughput ratio and p99.
//! - `/healthz` latency alone, then while four clients ask for a past state (`as_of`) of a
//!   50k-entry log.
//!
//! Run: `cargo bench --bench command_path`. Bounded: a fixed number of requests per client.

use events::catalogue::access::AccessGranted;
use events::payloads::EvidenceDocument;
use events::{Durability, EventDraft, Log, LogConfig, SystemClock};
use projections::policy::{self, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use trustledger::api::server::{serve, ServerLimits};
use trustledger::api::{app, AppState, Limits};
use trustledger::governance::{new_token, Governance, IdSource, Principal, Role, CLI_ADMIN};
use uuid::Uuid;

// The shipped binary's allocator, so the figures are its figures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PRODUCERS: usize = 64;
const APPENDS_PER_PRODUCER: usize = 200;
const WRITERS: usize = 64;
const WRITES_PER_CLIENT: usize = 150;
const READERS: usize = 8;
const READS_PER_CLIENT: usize = 1_500;
/// Entries in the log before the time-travel phase (the 50k-entry log).
const TIME_TRAVEL_ENTRIES: u64 = 50_000;
const PAST_READERS: usize = 4;
const HEALTH_CHECKS: usize = 2_000;

fn log_floor() -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for p in 0..PRODUCERS {
            let log = &log;
            scope.spawn(move || {
                for n in 0..APPENDS_PER_PRODUCER {
                    let draft = EventDraft::new(
                        uuid::Uuid::new_v4(),
                        "trustledger.bench.appended",
                        format!("bench/{p}"),
                        "bench",
                        format!("c-{p}-{n}"),
                        serde_json::json!({"n": n, "padding": "x".repeat(600)}),
                    );
                    log.append_blocking(draft).unwrap();
                }
            });
        }
    });
    (PRODUCERS * APPENDS_PER_PRODUCER) as f64 / started.elapsed().as_secs_f64()
}

/// One keep-alive connection, driven by the load generator's single-threaded runtime (so that
/// the generator spends as little of the two cores as it can).
struct Client(tokio::io::BufReader<tokio::net::TcpStream>);

impl Client {
    async fn connect(port: u16) -> Self {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Self(tokio::io::BufReader::new(stream))
    }

    /// One request (already encoded); returns the status.
    async fn call(&mut self, request: &[u8]) -> u16 {
        use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
        self.0.get_mut().write_all(request).await.unwrap();
        let mut line = String::new();
        self.0.read_line(&mut line).await.unwrap();
        let status = line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut length = 0usize;
        loop {
            line.clear();
            self.0.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.0.read_exact(&mut body).await.unwrap();
        status
    }
}

fn encode(method: &str, path: &str, token: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    request.extend_from_slice(body);
    request
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn token(gov: &Governance, principal: &str, role: &str) -> String {
    let (token, token_sha256) = new_token();
    let grant = AccessGranted {
        principal: principal.into(),
        roles: vec![role.into()],
        token_sha256,
    };
    gov.execute(
        &Principal::new(CLI_ADMIN, &[Role::Admin]),
        &Command::GrantAccess(grant),
    )
    .unwrap();
    token
}

/// Runs `clients` keep-alive connections of `count` requests each, all on one thread; returns
/// (requests/s, latencies). Stops early once `stop` is set.
fn load(
    port: u16,
    clients: usize,
    count: usize,
    request: &[u8],
    stop: Option<&AtomicBool>,
) -> (f64, Vec<Duration>) {
    load_accepting(port, clients, count, request, stop, |status| {
        (200..300).contains(&status)
    })
}

/// [`load`], accepting the statuses `accept` allows (a 503 from the past-state limiter is an
/// expected answer under load, not a failure).
fn load_accepting(
    port: u16,
    clients: usize,
    count: usize,
    request: &[u8],
    stop: Option<&AtomicBool>,
    accept: fn(u16) -> bool,
) -> (f64, Vec<Duration>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let mut latencies: Vec<Duration> = runtime.block_on(async {
        let tasks = (0..clients).map(|_| async {
            let mut client = Client::connect(port).await;
            let mut own = Vec::with_capacity(count);
            for _ in 0..count {
                if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                    break;
                }
                let t = Instant::now();
                let status = client.call(request).await;
                assert!(accept(status), "status {status}");
                own.push(t.elapsed());
            }
            own
        });
        futures_util::future::join_all(tasks)
            .await
            .into_iter()
            .flatten()
            .collect()
    });
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    (rate, latencies)
}

fn main() {
    let floor = log_floor();
    let dir = tempfile::tempdir().unwrap();
    let gov = Arc::new(
        Governance::open(
            Log::open(
                dir.path(),
                LogConfig {
                    durability: Durability::Fsync,
                    ..LogConfig::default()
                },
            )
            .unwrap(),
            Arc::new(SystemClock),
            IdSource::Random,
        )
        .unwrap(),
    );
    gov.execute(
        &Principal::new("ada", &[Role::Admin]),
        &policy::set_producer_by_label("ci-bot"),
    )
    .unwrap();
    let dev = token(&gov, "dev", "submitter");
    let auditor = token(&gov, "audrey", "auditor");
    let router = app(AppState::with_limits(
        Arc::clone(&gov),
        Limits {
            rate_per_address: 0,
            rate_per_principal: 0,
            ..Limits::default()
        },
    ));
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                serve(
                    listener,
                    router,
                    ServerLimits::default(),
                    std::future::pending(),
                )
                .await
                .unwrap();
            });
    });
    let port = port_rx.recv().unwrap();
    let Command::RecordEvidence {
        document,
        signature,
        ..
    } = policy::record_evidence_signed_by_label(Uuid::nil(), document())
    else {
        unreachable!("the helper records evidence")
    };
    let evidence = serde_json::json!({"document": document, "signature": signature}).to_string();
    let write = encode("POST", "/api/v1/evidence", &dev, evidence.as_bytes());
    let read = encode("GET", "/api/v1/maturity/status/", &auditor, b"");

    let (reads_alone, read_lat_alone) = load(port, READERS, READS_PER_CLIENT, &read, None);
    let writing = AtomicBool::new(false);
    let ((writes, write_lat), (reads_loaded, read_lat_loaded)) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let result = load(port, WRITERS, WRITES_PER_CLIENT, &write, None);
            writing.store(true, Ordering::Relaxed);
            result
        });
        std::thread::sleep(Duration::from_millis(200));
        let reads = load(port, READERS, READS_PER_CLIENT, &read, Some(&writing));
        (writer.join().unwrap(), reads)
    });
    println!("log floor: {floor:.0} durable appends/s from {PRODUCERS} producers");
    println!(
        "POST /api/v1/evidence, {WRITERS} clients: {writes:.0} req/s = {:.2}x the floor; p50 {:?}, p99 {:?}",
        writes / floor,
        percentile(&write_lat, 0.5),
        percentile(&write_lat, 0.99)
    );
    println!(
        "GET /api/v1/maturity/status/ alone: {reads_alone:.0} req/s, p50 {:?}, p99 {:?}",
        percentile(&read_lat_alone, 0.5),
        percentile(&read_lat_alone, 0.99)
    );
    println!(
        "GET /api/v1/maturity/status/ under the write load: {reads_loaded:.0} req/s = {:.2}x alone; p50 {:?}, p99 {:?}",
        reads_loaded / reads_alone,
        percentile(&read_lat_loaded, 0.5),
        percentile(&read_lat_loaded, 0.99)
    );

    time_travel(port, &gov, &auditor);
}

/// The evidence every write records (signed by the producer `ci-bot`).
fn document() -> EvidenceDocument {
    serde_json::from_value(serde_json::json!({
        "artifacts": [{"name": "app.msi", "sha256": "ab".repeat(32), "size": 10}],
        "sbom": null, "tests_passed": 10, "tests_failed": 0, "scan_critical_findings": 0,
        "generated_by": "ci-bot", "packaged_by": "packager", "requires_admin": false
    }))
    .unwrap()
}

/// `/healthz` latency alone, then while four clients ask for a past state of a 50k-entry log.
fn time_travel(port: u16, gov: &Governance, auditor: &str) {
    // Fill the log to 50k entries through the command path itself.
    let submitter = Principal::new("dev", &[Role::Submitter]);
    std::thread::scope(|scope| {
        for _ in 0..16 {
            scope.spawn(|| {
                while gov.log().head().size < TIME_TRAVEL_ENTRIES {
                    let command = policy::record_evidence_signed_by_label(gov.new_id(), document());
                    gov.execute(&submitter, &command).unwrap();
                }
            });
        }
    });
    let health = encode("GET", "/healthz", "none", b"");
    let (_, alone) = load(port, 1, HEALTH_CHECKS, &health, None);
    let past = encode(
        "GET",
        &format!("/api/v1/maturity/status/?as_of={}", TIME_TRAVEL_ENTRIES / 2),
        auditor,
        b"",
    );
    let done = AtomicBool::new(false);
    let (loaded, (past_rate, past_lat)) = std::thread::scope(|scope| {
        let readers = scope.spawn(|| {
            load_accepting(port, PAST_READERS, 1_000, &past, Some(&done), |status| {
                status == 200 || status == 503
            })
        });
        std::thread::sleep(Duration::from_millis(300));
        let (_, loaded) = load(port, 1, HEALTH_CHECKS, &health, None);
        done.store(true, Ordering::Relaxed);
        (loaded, readers.join().unwrap())
    });
    println!(
        "GET /healthz alone: p50 {:?}, p99 {:?}; while {PAST_READERS} clients ask for as_of={} of a {TIME_TRAVEL_ENTRIES}-entry log ({past_rate:.1} answers/s, p50 {:?}): p50 {:?}, p99 {:?}",
        percentile(&alone, 0.5),
        percentile(&alone, 0.99),
        TIME_TRAVEL_ENTRIES / 2,
        percentile(&past_lat, 0.5),
        percentile(&loaded, 0.5),
        percentile(&loaded, 0.99)
    );
}
