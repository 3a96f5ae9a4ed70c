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
    let proposal = &state.models["1.2"].proposal;
    assert!(
        proposal.calibration_evidence.starts_with("backtest over "),
        "{proposal:?}"
    );
    let cited = proposal
        .backtest
        .clone()
        .expect("the looser model cites its backtest");

    let mut auditor = replay::audit::Auditor::new();
    for bytes in entries(&gov) {
        auditor.push(events::Entry::parse(&bytes).unwrap());
    }
    let mut audit = auditor.finish().unwrap();
    replay::citations::check_cited_backtests(&mut audit, |log_size| {
        gov.log()
            .iter_bytes_until(0, log_size)
            .map(|item| item.map(|(_, bytes)| bytes))
    })
    .unwrap();
    assert!(audit.findings.is_empty(), "{audit}");
    assert_eq!(
        audit.backtests_rerun, 1,
        "the cited backtest ({cited:?}) was re-run"
    );
    assert!(audit.decisions["deployment.submitted"] >= 1500);
    let last = gov.log().get(gov.log().head().size - 1).unwrap().unwrap();
    assert!(Payload::decode(&last).unwrap().is_some());
}

/// The auditor keeps settled deployments and their evidence in a temporary file. Where a record
/// is kept must change nothing: the same state, encoding, fingerprint and maturity statistics at
/// every point, with late incidents bringing settled deployments back to memory on the way.
#[test]
fn settled_records_kept_in_a_file_fold_to_the_same_state_at_every_point() {
    use projections::maturity::window_stats;
    use projections::snapshot::{encode, fingerprint};
    use projections::state::GovernanceState;
    let dir = tempfile::tempdir().unwrap();
    let config = SimulationConfig {
        weeks: 6,
        per_week: 60,
        seed: 7,
        incident_rate_bp: 1500,
    };
    let (gov, _) = simulate(dir.path(), &config);
    let mut in_memory = GovernanceState::new();
    let mut spilling = GovernanceState::new();
    spilling.spill_settled_to(Arc::new(replay::spill::TempFileSpill::new().unwrap()));
    let entries = entries(&gov);
    let mut incidents_on_settled = 0;
    for (i, bytes) in entries.iter().enumerate() {
        let entry = events::Entry::parse(bytes).unwrap();
        if let Ok(Some(Payload::IncidentReported(p))) = Payload::decode(&entry) {
            incidents_on_settled += usize::from(spilling.deployments.is_spilled(&p.deployment_id));
        }
        in_memory.apply(&entry);
        spilling.apply(&entry);
        if i % 500 == 0 || i == entries.len() - 1 {
            assert_eq!(spilling, in_memory, "at seq {i}");
            assert_eq!(
                window_stats(&spilling, entry.time),
                window_stats(&in_memory, entry.time),
                "at seq {i}"
            );
        }
    }
    let deployments = &spilling.deployments;
    assert!(
        deployments.settled_len() * 2 > deployments.len(),
        "most deployments settle: {} of {}",
        deployments.settled_len(),
        deployments.len()
    );
    assert!(spilling.evidence.settled_len() * 2 > spilling.evidence.len());
    assert_eq!(in_memory.deployments.settled_len(), 0);
    assert!(incidents_on_settled > 0, "the history has late incidents");
    assert_eq!(encode(&spilling), encode(&in_memory));
    assert_eq!(fingerprint(&spilling), fingerprint(&in_memory));
}

#[test]
fn the_overview_trends_split_across_threads_equal_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (gov, _) = simulate(dir.path(), &SimulationConfig::default());
    gov.with_state(|s| {
        use projections::calibration::{calibrate, calibrate_observing_in_parts};
        let filter = Default::default();
        let one_pass = calibrate(s, &filter);
        assert!(
            one_pass.released > 100 && one_pass.failed > 0,
            "{one_pass:?}"
        );
        for parts in 1..=3 {
            let (split, observers) =
                calibrate_observing_in_parts(s, &filter, parts, |n: &mut u64, _| *n += 1);
            assert_eq!(split, one_pass, "{parts} parts");
            assert_eq!(observers.iter().sum::<u64>(), one_pass.deployments);
        }
        let (weeks, report) = projections::trends::weekly_with_calibration(s, 12);
        assert_eq!(report, one_pass);
        assert_eq!(weeks, projections::trends::weekly(s, 12));
    });
}
