//! Serving the log as C2SP tlog-tiles from a 1M-entry log (`TL_BENCH_TILE_ENTRIES`, default
//! 1,048,576 entries of about 700 bytes, appended directly): what `GET /tlog/tile/...` does on
//! the server side (`Log::tile`) for full level-0 tiles, full level-1 tiles and full entry
//! bundles at random indexes, beside the floor of reading one entry (`Log::get`) in the same run.
//!
//! Run: `cargo bench --bench tiles` (building the log takes about a minute).

use criterion::{criterion_group, criterion_main, Criterion};
use events::checkpoint::NoteSigner;
use events::tiles::{Tile, TileKind, TILE_WIDTH};
use events::{Durability, EventDraft, Log, LogConfig};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

// The allocator the `trustledger` binary ships with, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn entries() -> u64 {
    std::env::var("TL_BENCH_TILE_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 20)
}

fn build(dir: &std::path::Path, size: u64) -> Log {
    let log = Log::open(
        dir,
        LogConfig {
            durability: Durability::FlushOnlyMayLoseOnPowerFailure,
            signer: Some(NoteSigner::from_seed("bench", [5; 32]).unwrap()),
            ..LogConfig::default()
        },
    )
    .unwrap();
    let mut n = 0u64;
    while n < size {
        let batch: Vec<EventDraft> = (n..(n + 1024).min(size))
            .map(|k| {
                EventDraft::new(
                    Uuid::from_u128(u128::from(k) + 1),
                    "trustledger.bench.appended",
                    format!("bench/{}", k % 64),
                    "bench",
                    "bench",
                    json!({"blob": "x".repeat(512)}),
                )
            })
            .collect();
        n += batch.len() as u64;
        log.append_batch_blocking(batch).unwrap();
    }
    log
}

/// A cheap, reproducible sequence of indexes below `below`.
fn indexes(below: u64) -> impl FnMut() -> u64 {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    }
}

fn serve_tiles(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let size = entries();
    let log = build(dir.path(), size);
    let full_level0 = size / TILE_WIDTH;
    let full_level1 = size / (TILE_WIDTH * TILE_WIDTH);
    let mut group = c.benchmark_group("tiles");
    group.measurement_time(Duration::from_secs(10));
    let mut next = indexes(size);
    group.bench_function("floor: Log::get of one entry", |b| {
        b.iter(|| log.get(next()).unwrap().unwrap())
    });
    for (name, kind, count) in [
        (
            "full level-0 tile",
            TileKind::Hashes { level: 0 },
            full_level0,
        ),
        ("full entry bundle", TileKind::Entries, full_level0),
        (
            "full level-1 tile",
            TileKind::Hashes { level: 1 },
            full_level1,
        ),
    ] {
        if count == 0 {
            continue;
        }
        let mut next = indexes(count);
        group.bench_function(name, |b| {
            b.iter(|| {
                let tile = Tile {
                    kind,
                    index: next(),
                    width: TILE_WIDTH,
                };
                log.tile(&tile).unwrap().unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, serve_tiles);
criterion_main!(benches);
