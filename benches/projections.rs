//! Projection benchmarks on a large governance log built through the real commands
//! (`TL_BENCH_DEPLOYMENTS` deployments, default 200,000: each submitted, approved and released,
//! about 5 entries apiece, so about 1,000,000 entries).
//!
//! - `rebuild/*`: folding every entry into `GovernanceState` vs the floor of reading and decoding
//!   the same entries (parse + payload decode) without folding.
//! - `startup/*`: closing and reopening the log and the service with a current snapshot, beside
//!   reopening the log alone.
//!
//! Run: `cargo bench --bench projections` (building the log takes a few minutes).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use events::payloads::*;
use events::{Durability, Log, LogConfig, ManualClock, Timestamp};
use projections::policy::{self, Command, PresentedRelease, SubmitDeployment};
use projections::state::GovernanceState;
use sha2::{Digest as _, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};
use trustledger::governance::{Governance, IdSource, Principal, Role};

fn hex_sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn config(clock: &ManualClock) -> LogConfig {
    LogConfig {
        durability: Durability::FlushOnlyMayLoseOnPowerFailure,
        clock: Arc::new(clock.clone()),
        ..LogConfig::default()
    }
}

fn build(dir: &std::path::Path, deployments: u64) -> ManualClock {
    let clock = ManualClock::new(Timestamp::parse("2026-02-10T09:00:00.000000Z").unwrap());
    let log = Log::open(dir, config(&clock)).unwrap();
    let gov = Governance::open(log, Arc::new(clock.clone()), IdSource::Seeded(3)).unwrap();
    let admin = Principal::new("ada", &[Role::Admin]);
    let dev = Principal::new("dev", &[Role::Submitter]);
    let agent = Principal::new("agent", &[Role::Deployer]);
    let cab = Principal::new("carol", &[Role::Cab]);
    let carol = projections::vote_statement::key_from_label("carol");
    gov.execute(
        &admin,
        &Command::AddCabMember {
            member: "carol".into(),
            ssh_key: Some(carol.public_key().to_openssh().unwrap()),
        },
    )
    .unwrap();
    let evidence_id = gov.new_id();
    let document = EvidenceDocument {
        artifacts: vec![Artifact {
            name: "a.msi".into(),
            sha256: hex_sha(b"a"),
            size: 1,
        }],
        sbom: None,
        tests_passed: 5,
        tests_failed: 0,
        scan_critical_findings: 0,
        generated_by: "ci".into(),
        packaged_by: "pkg".into(),
        requires_admin: Some(false),
    };
    gov.execute(&admin, &policy::set_producer_by_label("ci"))
        .unwrap();
    gov.execute(
        &dev,
        &policy::record_evidence_signed_by_label(evidence_id, document),
    )
    .unwrap();
    let apps = [
        "PDF reader",
        "Slack",
        "Zoom",
        "Screen recorder",
        "Notepad++",
        "7-Zip",
    ];
    let started = Instant::now();
    for n in 0..deployments {
        clock.advance_micros(60_000_000);
        let id = gov.new_id();
        let request = SubmitDeployment {
            correlation_id: format!("c{n}"),
            app_name: apps[(n % apps.len() as u64) as usize].into(),
            app_version: format!("1.{n}"),
            requires_admin: false,
            target_user_count: 10 + n % 900,
            cmdb: Default::default(),
            evidence_id,
        };
        gov.execute(
            &dev,
            &Command::Submit {
                deployment_id: id,
                request,
            },
        )
        .unwrap();
        let subject = id.to_string();
        let at = gov.current_time();
        let signature = gov
            .with_state(|s| {
                projections::policy::sign_vote(
                    s,
                    &carol,
                    (projections::vote_statement::Kind::Deployment, &subject),
                    (true, "ok"),
                    at,
                )
            })
            .unwrap();
        gov.execute(
            &cab,
            &Command::Vote {
                deployment_id: id,
                approve: true,
                rationale: "ok".into(),
                signature: Some(signature),
            },
        )
        .unwrap();
        let presented = PresentedRelease {
            deployment_id: id,
            artifact_sha256: hex_sha(b"a"),
            artifact_size: 1,
            sbom_sha256: None,
        };
        gov.execute(&agent, &Command::Release(presented)).unwrap();
    }
    gov.save_snapshot().unwrap();
    eprintln!(
        "projections bench: {} entries in {:.1?}",
        gov.log().head().size,
        started.elapsed()
    );
    gov.log().clone().close();
    clock
}

fn benches(c: &mut Criterion) {
    let deployments: u64 = std::env::var("TL_BENCH_DEPLOYMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let clock = build(dir.path(), deployments);
    let log = Log::open(dir.path(), config(&clock)).unwrap();
    let size = log.head().size;

    let mut group = c.benchmark_group("rebuild");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(60))
        .throughput(Throughput::Elements(size));
    group.bench_function(format!("fold_all_projections_{size}_entries"), |b| {
        b.iter(|| {
            let mut state = GovernanceState::new();
            let mut next = 0;
            while let Some(last) = log
                .read_range(next, 4096)
                .unwrap()
                .iter()
                .map(|e| {
                    state.apply(e);
                    e.seq
                })
                .last()
            {
                next = last + 1;
            }
            state
        });
    });
    group.bench_function(format!("floor_read_and_decode_{size}_entries"), |b| {
        b.iter(|| {
            let mut decoded = 0u64;
            let mut next = 0;
            loop {
                let page = log.read_range(next, 4096).unwrap();
                let Some(last) = page.last() else { break };
                next = last.seq + 1;
                decoded += page
                    .iter()
                    .filter(|e| Payload::decode(e).unwrap().is_some())
                    .count() as u64;
            }
            decoded
        });
    });
    group.finish();

    let mut group = c.benchmark_group("startup");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30));
    // Only the opening is timed: closing the previous instance (sled's flush) and dropping its
    // state are shutdown work, not start-up.
    let mut log = Some(log);
    group.bench_function(
        format!("reopen_log_and_service_with_snapshot_{size}_entries"),
        |b| {
            b.iter_custom(|iters| {
                let mut opening = Duration::ZERO;
                for _ in 0..iters {
                    log.take().unwrap().close();
                    let started = Instant::now();
                    let reopened = Log::open(dir.path(), config(&clock)).unwrap();
                    let gov = Governance::open(
                        reopened.clone(),
                        Arc::new(clock.clone()),
                        IdSource::Random,
                    )
                    .unwrap();
                    opening += started.elapsed();
                    assert!(matches!(
                        gov.opened_from(),
                        trustledger::governance::OpenedFrom::Snapshot { .. }
                    ));
                    drop(gov);
                    log = Some(reopened);
                }
                opening
            });
        },
    );
    // The floor: reopening the log alone (sled's own recovery, the tail check, the Merkle edge).
    group.bench_function(format!("floor_reopen_log_only_{size}_entries"), |b| {
        b.iter_custom(|iters| {
            let mut opening = Duration::ZERO;
            for _ in 0..iters {
                log.take().unwrap().close();
                let started = Instant::now();
                log = Some(Log::open(dir.path(), config(&clock)).unwrap());
                opening += started.elapsed();
            }
            opening
        });
    });
    group.finish();
}

criterion_group!(projection_benches, benches);
criterion_main!(projection_benches);
