//! Incidents, the trust-maturity engine, calibration statistics and time travel, given/when/then.

mod common;

use common::*;
use events::payloads::*;
use events::{Clock as _, Timestamp};
use projections::calibration::{calibrate, CalibrationFilter};
use projections::genesis;
use projections::maturity::{BLOCKED, READY_TO_PROGRESS, REGRESSION_REQUIRED};
use projections::policy::{Command, IncidentReport, Rejection};
use trustledger::governance::{AsOf, Principal, Role};
use uuid::Uuid;

const HOUR: i64 = 3_600_000_000;

/// Given `n` deployments of `app`, each submitted, approved by one CAB member and released,
/// spread evenly over `weeks`.
fn released(w: &World, n: u64, weeks: i64, app: &str) -> Vec<Uuid> {
    let step = weeks * 7 * 24 * HOUR / i64::try_from(n.max(1)).unwrap();
    (0..n)
        .map(|_| {
            w.clock.advance_micros(step);
            let id = w.submit(app, false, 3);
            w.vote(0, id, true).unwrap();
            w.release(id, ARTIFACT, Some(SBOM)).unwrap();
            id
        })
        .collect()
}

fn evaluate(w: &World, strict: bool) -> MaturityEvaluated {
    let operator = Principal::new("ops", &[Role::Operator]);
    w.gov
        .execute(&operator, &Command::EvaluateMaturity { strict })
        .unwrap();
    w.gov.state().last_evaluation.unwrap().evaluation
}

fn incident(w: &World, deployment_id: Uuid, severity: Severity) -> Command {
    Command::ReportIncident(IncidentReport {
        incident_id: w.gov.new_id(),
        deployment_id,
        severity,
        incident_date: w.clock.now(),
        affected_user_count: 40,
        downtime_minutes: 90,
        business_impact_usd: "12500.00".into(),
        preventable: true,
        preventability_notes: "canary would have caught it".into(),
        control_improvements: vec!["canary ring".into()],
    })
}

fn reporter() -> Principal {
    Principal::new("irene", &[Role::IncidentReporter])
}

fn criterion<'a>(e: &'a MaturityEvaluated, name: &str) -> &'a events::payloads::Criterion {
    e.criteria
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no criterion {name}"))
}

fn progress(w: &World, to_level: u32) {
    for member in [1, 2] {
        w.gov
            .execute(
                &w.cab[member],
                &Command::VoteProgression {
                    to_level,
                    approve: true,
                    rationale: "evidence reviewed".into(),
                    signature: Some(w.sign(
                        &w.cab[member].name,
                        (Kind::MaturityProgression, &to_level.to_string()),
                        true,
                        "evidence reviewed",
                    )),
                },
            )
            .unwrap();
    }
}

#[test]
fn four_clean_weeks_at_level_0_are_ready_for_level_1_and_three_are_not() {
    let w = world();
    released(&w, 300, 3, "PDF reader");
    let e = evaluate(&w, false);
    assert_eq!((e.outcome.as_str(), e.target_level), (BLOCKED, Some(1)));
    assert!(!criterion(&e, "min_weeks").met, "3 weeks are not 4");
    assert!(criterion(&e, "incident_rate").met && criterion(&e, "p1_incidents").met);

    released(&w, 100, 1, "PDF reader");
    for strict in [false, true] {
        let e = evaluate(&w, strict);
        assert_eq!(e.stats.released, 400);
        assert_eq!((e.stats.rate_bp, e.stats.wilson_low_bp), (0, 0));
        assert_eq!(e.stats.wilson_high_bp, 96, "0 of 400: Wilson upper 0.95%");
        assert_eq!(
            e.outcome, READY_TO_PROGRESS,
            "strict={strict}: {:?}",
            e.criteria
        );
        assert!(e.criteria.iter().all(|c| c.met));
    }
}

#[test]
fn small_samples_do_not_pass_strict_mode() {
    let w = world();
    released(&w, 10, 4, "PDF reader");
    assert_eq!(
        evaluate(&w, false).outcome,
        READY_TO_PROGRESS,
        "0 of 10 looks perfect as a point estimate"
    );
    let strict = evaluate(&w, true);
    assert_eq!(strict.outcome, BLOCKED);
    assert!(
        !criterion(&strict, "incident_rate").met,
        "but its Wilson upper bound is 27.76%: {:?}",
        criterion(&strict, "incident_rate")
    );
}

#[test]
fn progression_needs_two_cab_approvals_of_a_ready_evaluation() {
    let w = world();
    released(&w, 40, 4, "PDF reader");
    let vote = |member: usize| {
        w.gov.execute(
            &w.cab[member],
            &Command::VoteProgression {
                to_level: 1,
                approve: true,
                rationale: "ok".into(),
                signature: w.gov.with_state(|s| s.last_evaluation.is_some()).then(|| {
                    w.sign(
                        &w.cab[member].name,
                        (Kind::MaturityProgression, "1"),
                        true,
                        "ok",
                    )
                }),
            },
        )
    };
    assert!(
        matches!(rejected(vote(1)), Rejection::NotAllowed(_)),
        "no evaluation yet"
    );
    assert_eq!(evaluate(&w, false).outcome, READY_TO_PROGRESS);
    vote(1).unwrap();
    assert_eq!(
        w.gov.state().level,
        0,
        "one approval is not enough: the level does not change"
    );
    assert!(matches!(rejected(vote(1)), Rejection::Conflict(_)));
    let outsider = Principal::new("mallory", &[Role::Cab]);
    assert!(matches!(
        rejected(w.gov.execute(
            &outsider,
            &Command::VoteProgression {
                to_level: 1,
                approve: true,
                rationale: "x".into(),
                signature: None,
            }
        )),
        Rejection::Forbidden(_)
    ));
    vote(2).unwrap();
    let state = w.gov.state();
    assert_eq!(state.level, 1);
    let Payload::MaturityLevelChanged(change) = w.last_payload() else {
        panic!()
    };
    assert_eq!(
        (change.from, change.to, change.reason.as_str()),
        (0, 1, "PROGRESSION_APPROVED")
    );
    // The new level's window starts now: level 2 is not within reach yet.
    let e = evaluate(&w, false);
    assert_eq!(
        (e.level, e.target_level, e.outcome.as_str()),
        (1, Some(2), BLOCKED)
    );
    assert_eq!(e.stats.released, 0);
}

#[test]
fn a_p1_blocks_at_level_0_and_regresses_at_once_above_it() {
    let w = world();
    let ids = released(&w, 40, 4, "PDF reader");
    w.gov
        .execute(&reporter(), &incident(&w, ids[3], Severity::P1))
        .unwrap();
    assert_eq!(w.gov.state().level, 0);
    let e = evaluate(&w, false);
    assert_eq!(e.outcome, BLOCKED);
    assert!(!criterion(&e, "p1_incidents").met);

    let w = world();
    released(&w, 40, 4, "PDF reader");
    evaluate(&w, false);
    progress(&w, 1);
    let later = released(&w, 5, 1, "PDF reader");
    w.gov
        .execute(&reporter(), &incident(&w, later[0], Severity::P1))
        .unwrap();
    let Payload::MaturityLevelChanged(change) = w.last_payload() else {
        panic!("{:?}", w.last_payload())
    };
    assert_eq!((change.from, change.to), (1, 0));
    assert!(change.reason.starts_with("REGRESSION: P1 incident"));
    assert_eq!(w.gov.state().level, 0, "regression needs no approval");
}

#[test]
fn a_rate_above_the_current_cap_requires_regression_at_evaluation() {
    let w = world();
    released(&w, 40, 4, "PDF reader");
    evaluate(&w, false);
    progress(&w, 1);
    let ids = released(&w, 10, 1, "PDF reader");
    for id in &ids[..2] {
        w.gov
            .execute(&reporter(), &incident(&w, *id, Severity::P3))
            .unwrap();
    }
    let e = evaluate(&w, false);
    assert_eq!(e.stats.rate_bp, 2000, "2 of 10");
    assert_eq!(e.outcome, REGRESSION_REQUIRED);
    assert_eq!(w.gov.state().level, 0);
}

#[test]
fn p2_incidents_over_the_levels_cap_require_regression_at_evaluation() {
    let w = world();
    released(&w, 40, 4, "PDF reader");
    evaluate(&w, false);
    progress(&w, 1);
    released(&w, 400, 4, "PDF reader");
    assert_eq!(evaluate(&w, false).outcome, READY_TO_PROGRESS);
    progress(&w, 2);
    assert_eq!(w.gov.state().level, 2);
    // Level 2 allows one P2 in its window; a second, within the rate cap, regresses it.
    let ids = released(&w, 300, 1, "PDF reader");
    w.gov
        .execute(&reporter(), &incident(&w, ids[0], Severity::P2))
        .unwrap();
    assert_eq!(
        evaluate(&w, false).outcome,
        BLOCKED,
        "one P2 is within level 2's cap"
    );
    w.gov
        .execute(&reporter(), &incident(&w, ids[1], Severity::P2))
        .unwrap();
    let e = evaluate(&w, false);
    assert!(
        e.stats.rate_bp <= 100,
        "the rate alone stays within level 2's cap"
    );
    assert_eq!(e.outcome, REGRESSION_REQUIRED);
    assert_eq!(w.gov.state().level, 1);
}

#[test]
fn critical_stays_at_zero_at_every_level() {
    for level in genesis::maturity_levels() {
        assert_eq!(
            level.thresholds[&BlastRadiusClass::CriticalInfrastructure],
            0,
            "level {}",
            level.level
        );
    }
}

#[test]
fn incidents_take_their_context_from_the_log_and_bad_reports_write_nothing() {
    let w = world();
    let ids = released(&w, 2, 1, "Slack");
    let pending = w.submit("Zoom", false, 3);
    let before = w.size();
    let bad = |f: &dyn Fn(&mut IncidentReport)| {
        let Command::ReportIncident(mut r) = incident(&w, ids[0], Severity::P2) else {
            unreachable!()
        };
        f(&mut r);
        rejected(w.gov.execute(&reporter(), &Command::ReportIncident(r)))
    };
    assert!(matches!(
        bad(&|r| r.deployment_id = Uuid::from_u128(5)),
        Rejection::Unknown {
            kind: "deployment",
            ..
        }
    ));
    assert!(bad(&|r| r.deployment_id = pending)
        .to_string()
        .contains("never released"));
    assert!(bad(
        &|r| r.incident_date = Timestamp::from_unix_micros(r.incident_date.unix_micros() + HOUR)
    )
    .to_string()
    .contains("after the log's time"));
    assert!(
        bad(&|r| r.incident_date = Timestamp::parse("2026-01-01T00:00:00.000000Z").unwrap())
            .to_string()
            .contains("before the deployment was released")
    );
    for money in ["12,500.00", "-5.00", "1e3", "12.5", ""] {
        assert!(
            bad(&|r| r.business_impact_usd = money.into())
                .to_string()
                .contains("business_impact_usd"),
            "{money}"
        );
    }
    assert_eq!(w.size(), before, "bad reports write nothing");
    let unauthorized = w
        .gov
        .execute(&w.cab[0], &incident(&w, ids[0], Severity::P2));
    assert!(unauthorized.is_err(), "only incident reporters report");

    let report = incident(&w, ids[0], Severity::P2);
    w.gov.execute(&reporter(), &report).unwrap();
    let Payload::IncidentReported(r) = w.last_payload() else {
        panic!()
    };
    assert_eq!(r.context.cab_approvers, vec!["carol"]);
    assert!(!r.context.auto_approved);
    assert_eq!(r.context.class, BlastRadiusClass::ProductivityTools);
    assert_eq!(r.context.model_version, "1.1");
    let size = w.size();
    w.gov.execute(&reporter(), &report).unwrap();
    assert_eq!(w.size(), size, "the same report again is a no-op");
    let Command::ReportIncident(mut changed) = report else {
        unreachable!()
    };
    changed.downtime_minutes = 5;
    assert!(matches!(
        rejected(
            w.gov
                .execute(&reporter(), &Command::ReportIncident(changed.clone()))
        ),
        Rejection::Conflict(_)
    ));

    let update = IncidentUpdated {
        incident_id: changed.incident_id,
        downtime_minutes: Some(120),
        notes: Some("root cause: config".into()),
        ..IncidentUpdated::default()
    };
    w.gov
        .execute(&reporter(), &Command::UpdateIncident(update))
        .unwrap();
    assert_eq!(
        w.gov.state().incidents[&changed.incident_id]
            .current
            .downtime_minutes,
        120
    );
    assert_eq!(w.gov.state().app_history["slack"].with_incident, 1);
}

/// Earns level 1, then approves and activates a model that auto-approves NON_CRITICAL up to 30.
fn level_one_with_a_model_that_auto_approves(w: &World) {
    // Earn level 1, then approve and activate a model that auto-approves NON_CRITICAL up to 30.
    released(w, 40, 4, "PDF reader");
    evaluate(w, false);
    progress(w, 1);
    loosened_model(w, "1.2", "2026-06-30");
}

/// Proposes `version` (NON_CRITICAL up to 30, reviewed by `review_date`), has three members
/// approve it with signed votes, and activates it.
fn loosened_model(w: &World, version: &str, review_date: &str) {
    let mut model = genesis::risk_model_v1_1();
    model.version = version.into();
    model.review_date = review_date.into();
    model.thresholds.insert(BlastRadiusClass::NonCritical, 30);
    w.cite_backtest(&mut model);
    w.gov
        .execute(&w.admin, &Command::ProposeRiskModel(model))
        .unwrap();
    for member in [1, 2, 3] {
        w.gov
            .execute(
                &w.cab[member],
                &Command::VoteRiskModel {
                    version: version.into(),
                    approve: true,
                    rationale: "backtested".into(),
                    signature: Some(w.sign(
                        &w.cab[member].name,
                        (Kind::RiskModel, version),
                        true,
                        "backtested",
                    )),
                },
            )
            .unwrap();
    }
    w.gov
        .execute(
            &w.admin,
            &Command::ActivateRiskModel {
                version: version.into(),
            },
        )
        .unwrap();
}

/// Past its review date a model auto-approves nothing, until the CAB approves a renewed one.
#[test]
fn a_model_past_its_review_date_auto_approves_nothing_until_renewed() {
    let w = world();
    level_one_with_a_model_that_auto_approves(&w);
    w.clock.advance_micros(HOUR);
    assert_eq!(
        w.status(w.submit("PDF reader", false, 3)),
        projections::state::DeploymentStatus::AutoApproved
    );
    let review = Timestamp::parse("2026-06-30T23:59:59.000000Z").unwrap();
    w.clock.set(review);
    assert_eq!(
        w.status(w.submit("PDF reader", false, 4)),
        projections::state::DeploymentStatus::AutoApproved,
        "the review date itself is still in force"
    );
    w.clock.advance_micros(HOUR);
    let lapsed = w.submit("PDF reader", false, 5);
    assert_eq!(
        w.status(lapsed),
        projections::state::DeploymentStatus::PendingCab
    );
    let Payload::DeploymentRoutedToCab(DeploymentRoutedToCab(gate)) = w.last_payload() else {
        panic!("{:?}", w.last_payload())
    };
    assert_eq!((gate.model_threshold, gate.threshold), (0, 0));
    loosened_model(&w, "1.3", "2026-09-30");
    assert_eq!(
        w.status(w.submit("PDF reader", false, 6)),
        projections::state::DeploymentStatus::AutoApproved,
        "renewed"
    );
}

/// An application the registry does not know is never auto-approved, whatever its score; once
/// the CAB registers it (three other members' signed votes), it is.
#[test]
fn an_unregistered_app_is_never_auto_approved_until_the_cab_registers_it() {
    let w = world();
    level_one_with_a_model_that_auto_approves(&w);
    w.clock.advance_micros(HOUR);
    let id = w.submit("Tetris", false, 3);
    assert_eq!(
        w.status(id),
        projections::state::DeploymentStatus::PendingCab
    );
    let Payload::DeploymentRoutedToCab(DeploymentRoutedToCab(gate)) = w.last_payload() else {
        panic!("{:?}", w.last_payload())
    };
    assert!(
        gate.score_centi <= gate.threshold * 100,
        "the score alone would pass"
    );
    let classification = w.submitted(id).classification;
    assert_eq!(classification.registered_app, None);
    assert!(
        classification
            .sources
            .unwrap()
            .contains("UNREGISTERED_APPLICATION"),
        "the submission says why"
    );
    let proposal_id = w.gov.new_id();
    let entry = AppEntry {
        app_id: "tetris".into(),
        display_names: vec!["Tetris".into()],
        service_tier: "Tier3".into(),
        criticality: BlastRadiusClass::NonCritical,
        expected_reach: 10,
    };
    w.gov
        .execute(
            &w.cab[0],
            &Command::ProposeRegistryChange { proposal_id, entry },
        )
        .unwrap();
    let vote = |member: usize| {
        let subject = proposal_id.to_string();
        let name = &w.cab[member].name;
        w.gov.execute(
            &w.cab[member],
            &Command::VoteRegistryChange {
                proposal_id,
                approve: true,
                rationale: "in the CMDB".into(),
                signature: w.try_sign(name, (Kind::RegistryChange, &subject), true, "in the CMDB"),
            },
        )
    };
    assert!(
        matches!(rejected(vote(0)), Rejection::Forbidden(_)),
        "the proposer"
    );
    vote(1).unwrap();
    vote(2).unwrap();
    assert!(w.submit("Tetris", false, 4) != id);
    assert_eq!(
        w.status(w.submit("Tetris", false, 5)),
        projections::state::DeploymentStatus::PendingCab,
        "two approvals are not the registry's quorum of three"
    );
    vote(3).unwrap();
    assert!(matches!(w.last_payload(), Payload::AppRegistered(_)));
    let now_registered = w.submit("Tetris", false, 6);
    assert_eq!(
        w.status(now_registered),
        projections::state::DeploymentStatus::AutoApproved
    );
}

#[test]
fn calibration_statistics_against_a_hand_count() {
    let w = world();
    level_one_with_a_model_that_auto_approves(&w);

    // At level 1: two auto-approved PDF readers (one later fails), two CAB-routed Slack releases
    // (one later fails), one Slack still pending.
    w.clock.advance_micros(HOUR);
    let auto: Vec<Uuid> = (0..2).map(|_| w.submit("PDF reader", false, 3)).collect();
    for id in &auto {
        assert_eq!(
            w.status(*id),
            projections::state::DeploymentStatus::AutoApproved,
            "score 4.00 ≤ min(30, 30)"
        );
        w.release(*id, ARTIFACT, Some(SBOM)).unwrap();
    }
    let cab_routed = released(&w, 2, 1, "Slack");
    w.submit("Slack", false, 7);
    w.gov
        .execute(&reporter(), &incident(&w, auto[0], Severity::P2))
        .unwrap();
    w.gov
        .execute(&reporter(), &incident(&w, cab_routed[1], Severity::P3))
        .unwrap();

    let report = calibrate(
        &w.gov.state(),
        &CalibrationFilter {
            level: Some(1),
            ..CalibrationFilter::default()
        },
    );
    assert_eq!(
        (
            report.deployments,
            report.gated,
            report.auto_approved,
            report.released,
            report.failed
        ),
        (5, 5, 2, 4, 2)
    );
    assert_eq!(report.auto_approval_rate_bp, 4000);
    assert_eq!(report.change_failure_rate_bp, 5000);
    assert_eq!(
        report.change_failure_wilson_bp,
        (1500, 8500),
        "2 of 4: Wilson 15.00%–85.00%"
    );
    let c = &report.confusion;
    assert_eq!(
        (
            c.true_positive,
            c.false_positive,
            c.true_negative,
            c.false_negative
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(report.severity_mix[&Severity::P2], 1);
    assert_eq!((report.preventable, report.incidents), (2, 2));
    // Both incidents happened in the same week, and both reports named the same control gap.
    assert_eq!(report.weekly_incidents.values().sum::<u64>(), 2);
    assert_eq!(
        report.weekly_incidents.len(),
        1,
        "{:?}",
        report.weekly_incidents
    );
    assert_eq!(
        report.control_gaps,
        std::collections::BTreeMap::from([("canary ring".to_owned(), 2)])
    );
    // PDF reader scores 4.00, Slack (PRODUCTIVITY) 10.00: the failed pair (4.00, 10.00) against the
    // clean pair (4.00, 10.00) ranks exactly as chance.
    assert_eq!(report.auc_bp, Some(5000));
    assert_eq!(
        (report.score_histogram[0], report.score_histogram[1]),
        (2, 3),
        "4.00 twice; 10.00 three times"
    );
    assert!(report.review_minutes_median.is_some());
    let everything = calibrate(&w.gov.state(), &CalibrationFilter::default());
    assert_eq!(everything.released, 44);
}

#[test]
fn time_travel_shows_the_level_the_engine_recorded_then() {
    let w = world();
    released(&w, 40, 4, "PDF reader");
    evaluate(&w, false);
    let before_progression = w.gov.log().head().size - 1;
    progress(&w, 1);
    let level_change_time = w.gov.state().last_time.unwrap();
    assert_eq!(
        w.gov
            .state_as_of(AsOf::Seq(before_progression))
            .unwrap()
            .level,
        0
    );
    let then = w.gov.state_as_of(AsOf::Seq(before_progression)).unwrap();
    assert_eq!(
        then.last_evaluation.unwrap().evaluation.outcome,
        READY_TO_PROGRESS,
        "and why: the evaluation in force then"
    );
    assert_eq!(
        w.gov
            .state_as_of(AsOf::Time(level_change_time))
            .unwrap()
            .level,
        1
    );
    assert_eq!(
        w.gov.state_as_of(AsOf::Seq(u64::MAX)).unwrap(),
        w.gov.state(),
        "a full replay equals the live state"
    );
}

#[test]
fn scheduled_evaluation_runs_on_the_logs_clock() {
    let w = world();
    let week = 7 * 24 * HOUR;
    assert!(
        !w.gov.evaluate_if_due(week, false).unwrap(),
        "not a week since genesis"
    );
    w.clock.advance_micros(week);
    assert!(w.gov.evaluate_if_due(week, false).unwrap());
    assert!(!w.gov.evaluate_if_due(week, false).unwrap(), "just ran");
    let state = w.gov.state();
    assert_eq!(state.last_evaluation.unwrap().evaluation.outcome, BLOCKED);
}

#[test]
fn read_models_answer_as_of_the_logs_time() {
    use projections::views::{self, ExceptionStanding, IncidentFilter};
    let w = world();
    let done = released(&w, 3, 1, "Slack");
    let waiting = w.submit("Antivirus", true, 300);
    w.clock.advance_micros(5 * HOUR);
    let now = w.clock.now();
    let queue = views::cab_queue(&w.gov.state(), now);
    assert_eq!(queue.len(), 1);
    assert_eq!(
        (
            queue[0].deployment_id,
            queue[0].quorum,
            queue[0].approvals,
            queue[0].age_minutes
        ),
        (waiting, 3, 0, 300)
    );

    w.gov
        .execute(&reporter(), &incident(&w, done[0], Severity::P3))
        .unwrap();
    w.gov
        .execute(&reporter(), &incident(&w, done[1], Severity::P2))
        .unwrap();
    let state = w.gov.state();
    let p2 = views::incidents(
        &state,
        &IncidentFilter {
            severity: Some(Severity::P2),
            ..IncidentFilter::default()
        },
    );
    assert_eq!(p2.len(), 1);
    let productivity = views::incidents(
        &state,
        &IncidentFilter {
            blast_radius: Some(BlastRadiusClass::ProductivityTools),
            ..IncidentFilter::default()
        },
    );
    assert_eq!(productivity.len(), 2);
    let none = views::incidents(
        &state,
        &IncidentFilter {
            to: Some(Timestamp::parse("2026-02-01T00:00:00.000000Z").unwrap()),
            ..IncidentFilter::default()
        },
    );
    assert!(none.is_empty());

    w.exception(
        0,
        &[1, 2],
        ("sbom_signature", "slack"),
        Timestamp::from_unix_micros(now.unix_micros() + 2 * DAY),
    )
    .unwrap();
    let standing = |at: i64| {
        views::exceptions(
            &w.gov.state(),
            Timestamp::from_unix_micros(now.unix_micros() + at),
            DAY,
        )[0]
        .1
    };
    assert_eq!(standing(0), ExceptionStanding::Open);
    assert_eq!(standing(DAY + HOUR), ExceptionStanding::Expiring);
    assert_eq!(standing(2 * DAY), ExceptionStanding::Expired);
}
