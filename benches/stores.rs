//! The two stores side by side, in one run (issue: PostgreSQL at least 0.5× sled's rate; a
//! follower's lag p99 at most 50 ms).
//!
//! - `stores/*`: 4096 durable appends of 512-byte payloads from 64 concurrent producers, one
//!   entry per call, into sled (`fdatasync`) and into PostgreSQL on loopback (a throwaway cluster,
//!   `synchronous_commit = on`, `fsync = on`).
//! - `follower lag`: while 64 producers append to one handle (the leader), a second handle on the
//!   same database (a follower) is woken by each commit's `NOTIFY`, follows and folds what came
//!   into a `GovernanceState`, as `Governance::catch_up` does; for every entry, the time from its
//!   acknowledgement to the follower having it checked and folded. Beside it, its floor:
//!   the time from `pg_notify` committed to the listener hearing it.
//!
//! Run: `cargo bench --bench stores` (needs PostgreSQL's server: `scripts/test` installs it).

#[path = "../events/tests/common/postgres_cluster.rs"]
mod postgres_cluster;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use events::checkpoint::NoteSigner;
use events::{Durability, EventDraft, Log, LogConfig, StoreLocation};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PRODUCERS: u64 = 64;
const RECORDS: u64 = 4096;
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn payload_draft() -> EventDraft {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    EventDraft::new(
        Uuid::from_u128(u128::from(n)),
        "trustledger.bench.appended",
        format!("bench/{}", n % 64),
        "bench",
        "bench",
        json!({"blob": "x".repeat(512)}),
    )
}

fn open(location: &StoreLocation) -> Log {
    let signer = NoteSigner::from_seed("bench", [5; 32]).unwrap();
    Log::open_at(
        location,
        LogConfig {
            durability: Durability::Fsync,
            signer: Some(signer),
            ..LogConfig::default()
        },
    )
    .unwrap()
}

/// 4096 appends from 64 threads, one entry per call; returns when all are durable.
fn append_from_64(log: &Log, mut acked: impl FnMut(u64, Instant) + Send + Clone) {
    let drafts: Vec<Vec<EventDraft>> = (0..PRODUCERS)
        .map(|_| (0..RECORDS / PRODUCERS).map(|_| payload_draft()).collect())
        .collect();
    std::thread::scope(|s| {
        for mine in drafts {
            let (log, mut acked) = (log.clone(), acked.clone());
            s.spawn(move || {
                for draft in mine {
                    let seq = log.append_blocking(draft).unwrap().seq;
                    acked(seq, Instant::now());
                }
            });
        }
    });
    let _ = &mut acked;
}

fn stores(c: &mut Criterion) {
    let Some(cluster) = postgres_cluster::cluster("the stores bench") else {
        return;
    };
    let sled_dir = tempfile::tempdir().unwrap();
    let sled = open(&StoreLocation::Directory(sled_dir.path().to_owned()));
    let postgres = open(&StoreLocation::Postgres(cluster.new_database()));
    let mut group = c.benchmark_group("stores");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30))
        .throughput(Throughput::Elements(RECORDS));
    for (name, log) in [("sled", &sled), ("postgres", &postgres)] {
        group.bench_function(format!("log_64_producers_{name}"), |b| {
            b.iter(|| append_from_64(log, |_, _| {}));
        });
    }
    group.finish();
    follower_lag(cluster);
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Waits for notifications on `channel` on a connection of its own, calling `heard` for each.
fn listen(url: &str, channel: &str, heard: impl Fn() + Send + 'static) -> tokio::runtime::Runtime {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (url, channel) = (url.to_owned(), channel.to_owned());
    let (ready, listening) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        let (client, mut connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(message)) = futures_util::StreamExt::next(&mut messages).await {
                if let tokio_postgres::AsyncMessage::Notification(_) = message {
                    let _ = tx.send(());
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {channel}"))
            .await
            .unwrap();
        ready.send(()).unwrap();
        while rx.recv().await.is_some() {
            heard();
        }
        drop(client);
    });
    listening.recv().unwrap();
    runtime
}

fn follower_lag(cluster: &postgres_cluster::Cluster) {
    let url = cluster.new_database();
    let location = StoreLocation::Postgres(url.clone());
    let leader = open(&location);
    let follower = open(&location);
    // When the follower first held each size.
    let followed: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let (wake, woken) = std::sync::mpsc::channel::<()>();
    let following = {
        let (follower, followed) = (follower.clone(), Arc::clone(&followed));
        std::thread::spawn(move || {
            // What `Governance::catch_up` does: follow, then fold what came into the state.
            let mut state = projections::state::GovernanceState::default();
            let mut folded = 0u64;
            while woken.recv().is_ok() {
                while woken.try_recv().is_ok() {}
                let size = follower.follow().unwrap();
                while folded < size {
                    for entry in follower.read_range(folded, 1024).unwrap() {
                        state.apply(&entry);
                        folded = entry.seq + 1;
                    }
                }
                followed.lock().unwrap().push((size, Instant::now()));
            }
        })
    };
    let wake = Mutex::new(wake);
    let _listening = listen(&url, events::POSTGRES_HEAD_CHANNEL, move || {
        let _ = wake.lock().unwrap().send(());
    });
    let acked: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    for _ in 0..3 {
        let acked = Arc::clone(&acked);
        append_from_64(&leader, move |seq, at| {
            acked.lock().unwrap().push((seq, at))
        });
    }
    let target = leader.head().size;
    let started = Instant::now();
    while follower.head().size < target && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let followed = followed.lock().unwrap().clone();
    let mut lags: Vec<Duration> = acked
        .lock()
        .unwrap()
        .iter()
        .map(|(seq, at)| {
            let (_, held) = followed
                .iter()
                .find(|(size, _)| size > seq)
                .expect("the follower took in every entry");
            held.saturating_duration_since(*at)
        })
        .collect();
    lags.sort();
    // Floor: NOTIFY committed to heard, on the same server.
    let heard: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let _floor_listener = {
        let heard = Arc::clone(&heard);
        listen(&url, "bench_floor", move || {
            heard.lock().unwrap().push(Instant::now())
        })
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    });
    let mut floor = Vec::new();
    for _ in 0..200 {
        let before = heard.lock().unwrap().len();
        runtime
            .block_on(client.execute("SELECT pg_notify('bench_floor', 'x')", &[]))
            .unwrap();
        let committed = Instant::now();
        while heard.lock().unwrap().len() == before {
            std::thread::sleep(Duration::from_micros(100));
        }
        let at = *heard.lock().unwrap().last().unwrap();
        floor.push(at.saturating_duration_since(committed));
    }
    floor.sort();
    println!(
        "follower lag, ack to checked and folded, {} entries from 64 producers: p50 {:?}, p99 {:?}, max {:?}; floor (NOTIFY heard after its commit returned): p50 {:?}, p99 {:?}",
        lags.len(),
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags.last().unwrap(),
        percentile(&floor, 0.5),
        percentile(&floor, 0.99),
    );
    drop(following);
}

criterion_group!(benches, stores);
criterion_main!(benches);
