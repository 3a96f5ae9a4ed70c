//! `trustledger simulate`: deterministic, realistic, and clean under audit.

use events::payloads::{BlastRadiusClass, Payload};
use events::{ManualClock, Timestamp};
use std::sync::Arc;
use trustledger::governance::{Governance, IdSource};
use trustledger::simulate::{run, SimulationConfig, SimulationReport};

fn simulate(dir: &std::path::Path, config: &SimulationConfig) -> (Governance, SimulationReport) {
    let clock = ManualClock::new(Timestamp::parse("2026-02-10T09:00:00.000000Z").unwrap());
    let log = trustledger::data_dir::create_for_simulation(
        dir,
        clock.clone(),
        format!("trustledger.sim/seed-{}", config.seed),
    )
    .unwrap();
    let gov =
        Governance::open(log, Arc::new(clock.clone()), IdSource::Seeded(config.seed)).unwrap();
    let report = run(&gov, &clock, config, |_| {}).unwrap();
    (gov, report)
}

fn entries(gov: &Governance) -> Vec<Vec<u8>> {
    gov.log()
        .iter_bytes(0)
        .map(|r| r.unwrap().1.to_vec())
        .collect()
}

#[test]
fn the_same_seed_gives_a_byte_identical_log_and_another_seed_does_not() {
    let small = SimulationConfig {
        weeks: 3,
        per_week: 25,
        seed: 42,
        incident_rate_bp: 300,
    };
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (first, _) = simulate(a.path(), &small);
    let (second, _) = simulate(b.path(), &small);
    assert_eq!(entries(&first), entries(&second));
    let (other, _) = simulate(c.path(), &SimulationConfig { seed: 43, ..small });
    assert_ne!(entries(&first), entries(&other));
    assert!(
        trustledger::data_dir::create_for_simulation(
            a.path(),
            ManualClock::new(Timestamp::from_unix_micros(0)),
            "x".into()
        )
        .is_err(),
        "an existing log is refused"
    );
}

#[test]
fn a_default_simulation_tells_the_seeds_story_and_audits_clean() {
    let dir = tempfile::tempdir().unwrap();
    let (gov, report) = simulate(dir.path(), &SimulationConfig::default());
    assert_eq!(report.weeks.len(), 16);
    let first_level_1 = report.weeks.iter().find(|w| w.level >= 1).map(|w| w.week);
    assert!(
        first_level_1.is_some_and(|w| w >= 5),
        "level 1 no earlier than week 5: {first_level_1:?}\n{report}"
    );
    assert!(
        report
            .level_changes
            .iter()
            .any(|c| c.3.starts_with("REGRESSION")),
        "at least one regression:\n{report}"
    );
    assert!(
        !report.models.is_empty(),
        "a risk-model proposal backed by a backtest was activated"
    );
    for reason in ["ARTIFACT_HASH_MISMATCH", "SBOM_HASH_MISMATCH"] {
        assert!(
            report.blocked_by_reason.get(reason).is_some_and(|n| *n > 0),
            "{reason} injected and blocked:\n{report}"
        );
    }
    let state = gov.state();
    assert!(
        state.deployments.values().any(|d| d.auto_approved),
        "auto-approval was earned"
    );
    assert!(
        !state
            .deployments
            .values()
            .any(|d| d.auto_approved && d.class == BlastRadiusClass::CriticalInfrastructure),
        "CRITICAL_INFRASTRUCTURE is never auto-approved"
    );
    let proposal = state.models["1.2"].proposal.calibration_evidence.clone();
    assert!(proposal.starts_with("backtest sha256 "), "{proposal}");

    let mut auditor = replay::audit::Auditor::new();
    for bytes in entries(&gov) {
        auditor.push(events::Entry::parse(&bytes).unwrap());
    }
    let audit = auditor.finish();
    assert!(audit.findings.is_empty(), "{audit}");
    assert!(audit.decisions["deployment.submitted"] >= 1500);
    let last = gov.log().get(gov.log().head().size - 1).unwrap().unwrap();
    assert!(Payload::decode(&last).unwrap().is_some());
}
