//! HTTP API measurements on loopback, each beside its floor in the same run (a timed run, not
//! criterion: the figures are a throughput ratio and a latency percentile).
//!
//! - `GET /api/v1/maturity/status/` throughput vs a minimal axum handler returning a fixed body of
//!   the same size, both driven by the same keep-alive load (8 connections, bounded count).
//! - An appended entry reaching 100 connected SSE subscribers: p50/p99 over 20 appends.
//!
//! Run: `cargo bench --bench api`.

use events::{Durability, Log, LogConfig};
use projections::policy::Command;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use trustledger::api::{app, AppState};
use trustledger::governance::{new_token, Governance, IdSource, Principal, Role, CLI_ADMIN};

const CONNECTIONS: usize = 8;
const REQUESTS_PER_CONNECTION: usize = 2_000;
const SUBSCRIBERS: usize = 100;
const APPENDS: usize = 20;

fn serve(router: axum::Router) -> u16 {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap().port()).unwrap();
                axum::serve(listener, router).await.unwrap();
            });
    });
    rx.recv().unwrap()
}

/// Reads one HTTP/1.1 response with a Content-Length body; returns the body length.
fn read_response(reader: &mut BufReader<TcpStream>) -> usize {
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    length
}

/// Requests per second over CONNECTIONS keep-alive connections, REQUESTS_PER_CONNECTION each.
fn load(port: u16, path: &str, token: &str) -> (f64, usize) {
    let barrier = Arc::new(Barrier::new(CONNECTIONS + 1));
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (barrier, path, token) = (Arc::clone(&barrier), path.to_owned(), token.to_owned());
            std::thread::spawn(move || {
                let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                stream.set_nodelay(true).unwrap();
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let request = format!(
                    "GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n"
                );
                barrier.wait();
                let mut size = 0;
                for _ in 0..REQUESTS_PER_CONNECTION {
                    writer.write_all(request.as_bytes()).unwrap();
                    size = read_response(&mut reader);
                }
                size
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let sizes: Vec<usize> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let elapsed = started.elapsed().as_secs_f64();
    (
        (CONNECTIONS * REQUESTS_PER_CONNECTION) as f64 / elapsed,
        sizes[0],
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // criterion-style discovery: nothing to list
    }
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        LogConfig {
            durability: Durability::Fsync,
            ..LogConfig::default()
        },
    )
    .unwrap();
    let gov =
        Arc::new(Governance::open(log, Arc::new(events::SystemClock), IdSource::Random).unwrap());
    let (token, token_sha256) = new_token();
    let cli = Principal::new(CLI_ADMIN, &[Role::Admin]);
    let grant = events::catalogue::access::AccessGranted {
        principal: "bench".into(),
        roles: vec!["admin".into(), "auditor".into()],
        token_sha256,
    };
    gov.execute(&cli, &Command::GrantAccess(grant)).unwrap();
    let port = serve(app(AppState::new(Arc::clone(&gov))));

    // Floor: a minimal handler returning a body of the same size as the status response.
    let (_, status_size) = load(port, "/api/v1/maturity/status/", &token);
    let body: &'static str = Box::leak("x".repeat(status_size).into_boxed_str());
    let floor_port =
        serve(axum::Router::new().route("/fixed", axum::routing::get(move || async move { body })));
    let mut status_rates = Vec::new();
    let mut floor_rates = Vec::new();
    for _ in 0..3 {
        floor_rates.push(load(floor_port, "/fixed", &token).0);
        status_rates.push(load(port, "/api/v1/maturity/status/", &token).0);
    }
    status_rates.sort_by(f64::total_cmp);
    floor_rates.sort_by(f64::total_cmp);
    let (status, floor) = (status_rates[1], floor_rates[1]);
    println!("api/status_throughput: {status:.0} req/s (median of 3), body {status_size} bytes");
    println!("api/floor_fixed_body_same_size: {floor:.0} req/s (median of 3)");
    println!(
        "api/status_vs_floor: {:.2}x (target >= 0.5x)",
        status / floor
    );

    // SSE fan-out: 100 subscribers, each timestamps the arrival of every new seq.
    let head = gov.log().head().size;
    let barrier = Arc::new(Barrier::new(SUBSCRIBERS + 1));
    let subscribers: Vec<_> = (0..SUBSCRIBERS)
        .map(|_| {
            let (barrier, token) = (Arc::clone(&barrier), token.clone());
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                write!(stream, "GET /api/v1/events/stream?after={} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n", head - 1).unwrap();
                let mut reader = BufReader::new(stream);
                barrier.wait();
                let mut arrivals = Vec::new();
                let mut line = String::new();
                while arrivals.len() < APPENDS {
                    line.clear();
                    if reader.read_line(&mut line).unwrap() == 0 {
                        break;
                    }
                    if let Some(id) = line.strip_prefix("id: ") {
                        arrivals.push((id.trim().parse::<u64>().unwrap(), Instant::now()));
                    }
                }
                arrivals
            })
        })
        .collect();
    barrier.wait();
    std::thread::sleep(Duration::from_millis(300)); // let every stream reach the live tail
    let keys: Vec<String> = (0..APPENDS)
        .map(|k| {
            projections::vote_statement::key_from_label(&format!("member-{k}"))
                .public_key()
                .to_openssh()
                .unwrap()
        })
        .collect();
    let mut sent = Vec::new();
    for (k, key) in keys.iter().enumerate() {
        let started = Instant::now();
        let appended = gov
            .execute(
                &cli,
                &Command::AddCabMember {
                    member: format!("member-{k}"),
                    ssh_key: Some(key.clone()),
                },
            )
            .unwrap();
        let trustledger::governance::Outcome::Appended(a) = appended else {
            unreachable!()
        };
        sent.push((a[0].seq, started));
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut latencies_us: Vec<u128> = Vec::new();
    for s in subscribers {
        for (seq, arrived) in s.join().unwrap() {
            if let Some((_, started)) = sent.iter().find(|(q, _)| *q == seq) {
                latencies_us.push(arrived.duration_since(*started).as_micros());
            }
        }
    }
    latencies_us.sort_unstable();
    let pct = |p: usize| latencies_us[(latencies_us.len() * p / 100).min(latencies_us.len() - 1)];
    println!(
        "api/sse_fanout_{SUBSCRIBERS}_subscribers: {} deliveries; from the append call to arrival: p50 {} us, p99 {} us (target p99 <= 10 ms)",
        latencies_us.len(),
        pct(50),
        pct(99)
    );
}
