//! The browser interface's overview on a large simulated history (`TL_BENCH_DATA`, a data
//! directory that `trustledger simulate` wrote; 1M entries for the figure in benches/README.md),
//! server-side, beside the JSON maturity status's own work on the same state in the same run:
//! the criteria evaluation and its serialisation (what `GET /api/v1/maturity/status` computes
//! when its per-head cache misses). Also prints the overview's weight with its stylesheet.
//!
//! Run: `TL_BENCH_DATA=DIR cargo bench --bench web` (opening folds from the stored snapshot).

use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::Arc;
use std::time::Duration;
use trustledger::governance::{Governance, IdSource, Principal, Role};
use trustledger::web::{pages, session::SignedIn};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn overview(c: &mut Criterion) {
    let Some(dir) = std::env::var_os("TL_BENCH_DATA") else {
        eprintln!("SKIPPED: set TL_BENCH_DATA to a data directory `trustledger simulate` wrote");
        return;
    };
    let log = trustledger::data_dir::open_existing(std::path::Path::new(&dir)).unwrap();
    let gov =
        Arc::new(Governance::open(log, Arc::new(events::SystemClock), IdSource::Random).unwrap());
    let who = SignedIn {
        principal: Principal::new("bench", &[Role::Auditor]),
        csrf: "0".repeat(64),
        id: String::new(),
    };
    let entries = gov.log().head().size;
    let fresh = |s: &projections::state::GovernanceState| {
        projections::trends::weekly_with_calibration(s, pages::TREND_WEEKS)
    };
    let page = gov.with_state(|s| pages::overview(s, &fresh(s), &who, Some(168)).into_string());
    let style = include_str!("../src/web/assets/style.css");
    println!(
        "web/overview_weight: {} bytes of HTML + {} bytes of CSS = {} bytes (target <= 300 KB), {entries} entries",
        page.len(),
        style.len(),
        page.len() + style.len()
    );
    let mut group = c.benchmark_group("web");
    group.measurement_time(Duration::from_secs(15));
    group.sample_size(30);
    group.bench_function("floor: the maturity status's evaluation and JSON", |b| {
        b.iter(|| {
            gov.with_state(|s| {
                let at = s.last_time.unwrap();
                serde_json::to_string(&projections::maturity::evaluate(s, at, false)).unwrap()
            })
        })
    });
    // Where the overview's time goes: one pass over the deployments for its charts, which the
    // service computes once per log head, split over two threads (and, to compare, in one).
    group.bench_function("part: trends::weekly_with_calibration", |b| {
        b.iter(|| gov.with_state(fresh))
    });
    group.bench_function("part: the same trends in one thread", |b| {
        b.iter(|| {
            gov.with_state(|s| {
                projections::trends::weekly_with_calibration_in_parts(s, pages::TREND_WEEKS, 1)
            })
        })
    });
    let cache = trustledger::web::TrendsCache::default();
    group.bench_function("overview rendered, trends cached for the head", |b| {
        b.iter(|| {
            gov.with_state(|s| pages::overview(s, &cache.get(s), &who, Some(168)).into_string())
        })
    });
    group.bench_function("overview rendered, trends computed", |b| {
        b.iter(|| gov.with_state(|s| pages::overview(s, &fresh(s), &who, Some(168)).into_string()))
    });
    group.finish();
}

criterion_group!(benches, overview);
criterion_main!(benches);
