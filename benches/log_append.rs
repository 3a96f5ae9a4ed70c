//! Log benchmarks, each beside its floor in the same run so the ratio survives a noisy machine.
//!
//! - `durable_append/*`: 4096 durable appends of 512-byte payloads from 64 concurrent producers
//!   (one entry per call, and batches of 16 per call) vs raw sled inserting the same entry bytes
//!   with `flush` + `fdatasync` every 1000 records.
//! - `append_latency/*`: one producer's durable append vs one `fdatasync` of 512 bytes on the same disk.
//! - `verify/*`: full verification of a 20,000-entry store vs SHA-256 over the same bytes;
//!   `verify_one_entry/*`: one entry's header decoding and canonical check vs SHA-256 of it.
//! - `proof/*`: inclusion proof generation and verification in a large log
//!   (`TL_BENCH_PROOF_ENTRIES`, default 1,000,000 entries).
//!
//! Run: `cargo bench --bench log_append` (medians are the middle of criterion's estimates).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use events::checkpoint::NoteSigner;
use events::verify::verify_store;
use events::{Durability, EventDraft, Log, LogConfig};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

// The allocator the `trustledger` binary ships with, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PRODUCERS: u64 = 64;
const RECORDS: u64 = 4096;
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn payload_draft() -> EventDraft {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    // 512 bytes of payload text.
    EventDraft::new(
        Uuid::from_u128(u128::from(n)),
        "trustledger.bench.appended",
        format!("bench/{}", n % 64),
        "bench",
        "bench",
        json!({"blob": "x".repeat(512)}),
    )
}

fn open(dir: &std::path::Path, durability: Durability) -> Log {
    let signer = NoteSigner::from_seed("bench", [5; 32]).unwrap();
    Log::open(
        dir,
        LogConfig {
            durability,
            signer: Some(signer),
            ..LogConfig::default()
        },
    )
    .unwrap()
}

fn durable_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable_append");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(RECORDS));
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), Durability::Fsync);
    for per_call in [1u64, 16] {
        group.bench_function(format!("log_64_producers_{per_call}_per_call"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let drafts: Vec<Vec<EventDraft>> = (0..PRODUCERS)
                        .map(|_| (0..RECORDS / PRODUCERS).map(|_| payload_draft()).collect())
                        .collect();
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for mine in drafts {
                            let log = log.clone();
                            s.spawn(move || {
                                for chunk in mine.chunks(per_call as usize) {
                                    log.append_batch_blocking(chunk.to_vec()).unwrap();
                                }
                            });
                        }
                    });
                    total += start.elapsed();
                }
                total
            });
        });
    }
    // Floor: raw sled, the same entry bytes, flush + fdatasync every 1000 records.
    let floor_dir = tempfile::tempdir().unwrap();
    let db = sled::open(floor_dir.path()).unwrap();
    let tree = db.open_tree("raw").unwrap();
    let db_file = std::fs::File::open(floor_dir.path().join("db")).unwrap();
    // The same bytes the log stores for one entry (appended here so a filtered run has one too).
    let sample_seq = log.append_blocking(payload_draft()).unwrap().seq;
    let sample = log.get(sample_seq).unwrap().unwrap();
    let mut key = 0u64;
    group.bench_function("floor_raw_sled_fsync_every_1000", |b| {
        b.iter(|| {
            for i in 0..RECORDS {
                key += 1;
                tree.insert(key.to_be_bytes(), sample.bytes()).unwrap();
                if i % 1000 == 999 {
                    db.flush().unwrap();
                    db_file.sync_data().unwrap();
                }
            }
            db.flush().unwrap();
            db_file.sync_data().unwrap();
        });
    });
    group.finish();
}

/// Issue 3's ratio: the same batched durable appends with and without Merkle maintenance
/// (leaf hashing, subtree records, signed checkpoints), interleaved in one run.
fn merkle_overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("merkle_overhead");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Elements(RECORDS));
    let with_dir = tempfile::tempdir().unwrap();
    let without_dir = tempfile::tempdir().unwrap();
    let with = open(with_dir.path(), Durability::Fsync);
    let signer = NoteSigner::from_seed("bench", [5; 32]).unwrap();
    let without = Log::open_without_merkle_for_benchmarks(
        without_dir.path(),
        LogConfig {
            durability: Durability::Fsync,
            signer: Some(signer),
            ..LogConfig::default()
        },
    )
    .unwrap();
    for (name, log) in [
        ("append_with_merkle", &with),
        ("append_without_merkle", &without),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || (0..RECORDS).map(|_| payload_draft()).collect::<Vec<_>>(),
                |drafts| {
                    for chunk in drafts.chunks(256) {
                        log.append_batch_blocking(chunk.to_vec()).unwrap();
                    }
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

fn append_latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_latency");
    group
        .sample_size(200)
        .measurement_time(Duration::from_secs(10));
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), Durability::Fsync);
    group.bench_function("log_single_producer", |b| {
        b.iter_batched(
            payload_draft,
            |d| log.append_blocking(d).unwrap(),
            BatchSize::SmallInput,
        );
    });
    let mut file = std::fs::File::create(dir.path().join("fdatasync-floor")).unwrap();
    group.bench_function("floor_fdatasync_512_bytes", |b| {
        b.iter(|| {
            file.write_all(&[b'x'; 512]).unwrap();
            file.sync_data().unwrap();
        });
    });
    group.finish();
}

fn fill(log: &Log, entries: u64) {
    let mut left = entries;
    while left > 0 {
        let n = left.min(1024);
        log.append_batch_blocking((0..n).map(|_| payload_draft()).collect())
            .unwrap();
        left -= n;
    }
}

fn verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15));
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), Durability::FlushOnlyMayLoseOnPowerFailure);
    fill(&log, 20_000);
    let bytes: Vec<u8> = log
        .iter_bytes(0)
        .flat_map(|r| r.unwrap().1.to_vec())
        .collect();
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("verify_store_20000_entries", |b| {
        b.iter(|| verify_store(&log, log.verifier(), |_| {}).unwrap())
    });
    group.bench_function("floor_sha256_same_bytes", |b| {
        b.iter(|| Sha256::digest(&bytes))
    });
    group.finish();

    // Where one entry's share of that goes: decoding its header (which includes the canonical
    // check) and the canonical check alone, beside one SHA-256 of the same bytes (verification
    // hashes every entry twice: chain hash and Merkle leaf).
    let (_, one) = log.iter_bytes(100).next().unwrap().unwrap();
    let mut group = c.benchmark_group("verify_one_entry");
    group.throughput(Throughput::Bytes(one.len() as u64));
    group.bench_function("decode_header", |b| {
        b.iter(|| events::EntryHeader::parse(std::hint::black_box(&one)).unwrap())
    });
    group.bench_function("canonical_check", |b| {
        b.iter(|| events::canonical::check_canonical(std::hint::black_box(&one)))
    });
    group.bench_function("floor_sha256", |b| {
        b.iter(|| Sha256::digest(std::hint::black_box(&one)))
    });
    group.finish();
}

fn proofs(c: &mut Criterion) {
    let entries: u64 = std::env::var("TL_BENCH_PROOF_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), Durability::FlushOnlyMayLoseOnPowerFailure);
    let started = Instant::now();
    fill(&log, entries);
    eprintln!(
        "proof bench: built a {entries}-entry log in {:.1?}",
        started.elapsed()
    );
    let size = log.head().size;
    let root = log.head().root;
    let mut group = c.benchmark_group("proof");
    group
        .sample_size(100)
        .measurement_time(Duration::from_secs(5));
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % size
    };
    group.bench_function(
        format!("inclusion_generate_random_leaf_of_{entries}"),
        |b| {
            b.iter_batched(
                &mut next,
                |seq| log.inclusion_proof(seq, size).unwrap(),
                BatchSize::SmallInput,
            );
        },
    );
    let cases: Vec<_> = (0..256)
        .map(|_| {
            let seq = next();
            let leaf = events::merkle::leaf_hash(log.get(seq).unwrap().unwrap().bytes());
            (seq, leaf, log.inclusion_proof(seq, size).unwrap())
        })
        .collect();
    let mut i = 0;
    group.bench_function(format!("inclusion_verify_of_{entries}"), |b| {
        b.iter(|| {
            let (seq, leaf, proof) = &cases[i % cases.len()];
            i += 1;
            events::merkle::verify_inclusion(leaf, *seq, size, proof, &root).unwrap();
        });
    });
    group.bench_function(format!("consistency_generate_random_of_{entries}"), |b| {
        b.iter_batched(
            &mut next,
            |from| log.consistency_proof(from.max(1), size).unwrap(),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(
    benches,
    durable_append,
    merkle_overhead,
    append_latency,
    verify,
    proofs
);
criterion_main!(benches);
