//! The governance pipeline, given/when/then: given these entries (built through the same
//! commands the service runs), when this command, then these events or this rejection.

use events::payloads::*;
use events::{Clock as _, Timestamp};
use projections::genesis;
use projections::policy::{self, ClassifyInput, Command, PresentedRelease, Rejection};
use projections::state::DeploymentStatus;
use std::collections::BTreeMap;
use std::sync::Arc;
use trustledger::governance::{
    digest_stream, CommandError, Governance, IdSource, Outcome, Principal, Role,
};
use uuid::Uuid;

mod common;

use common::*;

#[test]
fn genesis_seeds_v1_1_once() {
    let w = world();
    let state = w.gov.state();
    assert_eq!(state.active_model.as_deref(), Some("1.1"));
    let model = state.active_model().unwrap();
    assert_eq!(model.proposal.mode, "GREENFIELD_CONSERVATIVE");
    assert!(model.proposal.thresholds.values().all(|t| *t == 0));
    assert_eq!(
        (
            model.proposal.effective_date.as_str(),
            model.proposal.review_date.as_str()
        ),
        ("2026-02-10", "2026-03-10")
    );
    let quorums: Vec<u32> = BlastRadiusClass::ALL
        .iter()
        .map(|c| state.quorum(*c))
        .collect();
    assert_eq!(
        quorums,
        vec![1, 1, 2, 3],
        "NON, PRODUCTIVITY, BUSINESS, CRITICAL"
    );
    assert_eq!(state.levels.len(), 5);
    assert_eq!(
        state.levels[1].max_incident_rate_bp,
        Some(200),
        "the table's 2%, not the roadmap's 1%"
    );
    let first = w.gov.log().read_range(0, 4).unwrap();
    assert_eq!(
        first
            .iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
        [
            "trustledger.risk_model.proposed",
            "trustledger.risk_model.activated",
            "trustledger.blast_radius.policy_set",
            "trustledger.maturity.levels_defined"
        ]
    );
    // Reopening writes nothing.
    let size = w.size();
    let log = w.gov.log().clone();
    let again = Governance::open(log, Arc::new(w.clock.clone()), IdSource::Random).unwrap();
    assert_eq!(again.log().head().size, size);
    assert_eq!(again.state(), state);
}

#[test]
fn the_seeds_classification_examples() {
    let policy = genesis::blast_radius_policy_v1();
    let class = |app: &str, admin: bool| {
        policy::classify(
            &policy,
            &ClassifyInput {
                app_name: app.into(),
                requires_admin: admin,
                target_user_count: 200,
                cmdb: BTreeMap::new(),
            },
        )
    };
    for app in [
        "Windows Update",
        "Antivirus",
        "Cisco AnyConnect VPN",
        "PKI Enrollment Agent",
    ] {
        let c = class(app, true);
        assert_eq!(c.class, BlastRadiusClass::CriticalInfrastructure, "{app}");
        assert_eq!(c.rule, "security-or-os-with-admin");
    }
    assert_eq!(
        class("Antivirus", false).class,
        BlastRadiusClass::NonCritical,
        "the seed needs admin rights too"
    );
    for app in ["SAP GUI", "Salesforce Desktop", "Trading Platform"] {
        assert_eq!(
            class(app, false).class,
            BlastRadiusClass::BusinessCritical,
            "{app}"
        );
    }
    for app in ["MS Office", "Slack", "Zoom"] {
        assert_eq!(
            class(app, false).class,
            BlastRadiusClass::ProductivityTools,
            "{app}"
        );
    }
    let pdf = class("PDF reader", false);
    assert_eq!(
        (pdf.class, pdf.rule.as_str()),
        (BlastRadiusClass::NonCritical, "default")
    );
    // Whole words only: "OfficeJet" is not "office", "Erpinator" is not "ERP".
    assert_eq!(
        class("HP OfficeJet driver", false).class,
        BlastRadiusClass::NonCritical
    );
    assert_eq!(
        class("Erpinator", false).class,
        BlastRadiusClass::NonCritical
    );
    // Phrases match as consecutive whole words, in any case.
    assert_eq!(
        class("ACTIVE Directory sync", true).class,
        BlastRadiusClass::CriticalInfrastructure
    );
    assert_eq!(
        class("Directory active sync", true).class,
        BlastRadiusClass::NonCritical
    );
    // CMDB tier comes first; reach matters.
    let tier = policy::classify(
        &policy,
        &ClassifyInput {
            app_name: "PDF reader".into(),
            requires_admin: false,
            target_user_count: 5,
            cmdb: [("service_tier".into(), "Tier1".into())].into(),
        },
    );
    assert_eq!(
        (tier.class, tier.rule.as_str()),
        (BlastRadiusClass::CriticalInfrastructure, "cmdb-tier0-tier1")
    );
    let wide = policy::classify(
        &policy,
        &ClassifyInput {
            app_name: "PDF reader".into(),
            requires_admin: false,
            target_user_count: 12_000,
            cmdb: BTreeMap::new(),
        },
    );
    assert_eq!(
        (wide.class, wide.rule.as_str()),
        (BlastRadiusClass::BusinessCritical, "enterprise-reach")
    );
}

#[test]
fn under_v1_1_nothing_is_ever_auto_approved_and_scores_are_derived() {
    let w = world();
    for (app, admin, users) in [
        ("PDF reader", false, 3),
        ("Slack", false, 50),
        ("SAP GUI", false, 500),
        ("Antivirus", true, 9000),
    ] {
        let id = w.submit(app, admin, users);
        let d = w
            .gov
            .with_state(|s| s.deployments.get(&id).unwrap().into_owned());
        assert_eq!(d.status, DeploymentStatus::PendingCab, "{app}");
        let gate = d.gate.unwrap();
        assert_eq!(gate.threshold, 0);
        assert_eq!(gate.model_version, "1.1");
        let submitted = w.submitted(id);
        assert_eq!(submitted.factors.len(), 5);
        assert_eq!(
            submitted.factors.iter().map(|f| f.weight_bp).sum::<u32>(),
            10_000
        );
        assert_eq!(d.submitted.score_centi, submitted.score_centi);
        assert_eq!(
            submitted.score_centi,
            policy::score_centi(&submitted.factors)
        );
        assert_eq!(
            submitted.score,
            policy::centi_to_decimal(submitted.score_centi)
        );
    }
    let pdf_id = w.gov.with_state(|s| {
        s.deployments
            .iter()
            .find(|(_, d)| d.submitted.app_name == "PDF reader")
            .unwrap()
            .0
    });
    let pdf = w.submitted(pdf_id);
    // privilege 0, reach 10, class 10, gaps 0, history 0 → 0.2·10 + 0.2·10 = 4.00
    assert_eq!(pdf.score, "4.00");
}

#[test]
fn the_gate_auto_approves_only_under_both_thresholds_and_never_critical() {
    let w = world();
    let mut state = w.gov.state();
    state.level = 1; // Cautious: NON=30, PROD=20, BUS=5, CRIT=0
    let mut model = genesis::risk_model_v1_1();
    model.thresholds = [
        (BlastRadiusClass::CriticalInfrastructure, 0),
        (BlastRadiusClass::BusinessCritical, 50),
        (BlastRadiusClass::ProductivityTools, 50),
        (BlastRadiusClass::NonCritical, 10),
    ]
    .into();
    let id = (Uuid::nil(), w.gov.current_time());
    let (auto, g) = policy::gate(&state, id, BlastRadiusClass::NonCritical, 1000, &model);
    assert!(auto, "10.00 ≤ min(10, 30)");
    assert_eq!(
        (g.threshold, g.model_threshold, g.level_threshold),
        (10, 10, 30)
    );
    assert!(!policy::gate(&state, id, BlastRadiusClass::NonCritical, 1001, &model).0);
    let (auto, g) = policy::gate(&state, id, BlastRadiusClass::BusinessCritical, 500, &model);
    assert!(auto && g.threshold == 5, "min(model 50, level 5)");
    let (auto, g) = policy::gate(
        &state,
        id,
        BlastRadiusClass::CriticalInfrastructure,
        0,
        &model,
    );
    assert!(!auto && g.threshold == 0 && g.quorum == 3);
    // Even if a model and a level definition (both data) claimed otherwise, CRITICAL stays at 0.
    let mut forged = model.clone();
    forged
        .thresholds
        .insert(BlastRadiusClass::CriticalInfrastructure, 90);
    for level in &mut state.levels {
        level
            .thresholds
            .insert(BlastRadiusClass::CriticalInfrastructure, 90);
    }
    let (auto, g) = policy::gate(
        &state,
        id,
        BlastRadiusClass::CriticalInfrastructure,
        100,
        &forged,
    );
    assert!(
        !auto && g.threshold == 0,
        "CRITICAL_INFRASTRUCTURE is never auto-approved"
    );
    state.level = 0;
    assert!(
        !policy::gate(&state, id, BlastRadiusClass::NonCritical, 0, &model).0,
        "threshold 0 never auto-approves, even a 0 score"
    );
}

#[test]
fn the_submitter_cannot_approve_their_own_deployment() {
    let w = world();
    let dev_and_cab = Principal::new("carol", &[Role::Submitter, Role::Cab]);
    let evidence = w.evidence(true);
    let id = w.gov.new_id();
    w.gov
        .execute(
            &dev_and_cab,
            &Command::Submit {
                deployment_id: id,
                request: w.request("PDF reader", false, 3, evidence),
            },
        )
        .unwrap();
    let before = w.size();
    let r = rejected(w.vote(0, id, true));
    assert!(
        matches!(r, Rejection::Forbidden(ref m) if m.contains("submitter")),
        "{r}"
    );
    assert_eq!(w.size(), before);
}

#[test]
fn quorum_counts_distinct_members_and_any_rejection_rejects() {
    let w = world();
    let id = w.submit("Antivirus", true, 200);
    assert_eq!(
        w.gov.with_state(|s| s.deployments.get(&id).unwrap().class),
        BlastRadiusClass::CriticalInfrastructure
    );
    w.vote(0, id, true).unwrap();
    for _ in 0..2 {
        assert!(
            matches!(rejected(w.vote(0, id, true)), Rejection::Conflict(_)),
            "one vote per member"
        );
    }
    assert_eq!(
        w.status(id),
        DeploymentStatus::PendingCab,
        "one member voting three times is not a quorum of 3"
    );
    w.vote(1, id, true).unwrap();
    assert_eq!(w.status(id), DeploymentStatus::PendingCab);
    w.vote(2, id, true).unwrap();
    assert_eq!(w.status(id), DeploymentStatus::Approved);
    let Payload::DeploymentApproved(approved) = w.last_payload() else {
        panic!()
    };
    assert_eq!(approved.approvers, vec!["carol", "chen", "cyril"]);

    let other = w.submit("SAP GUI", false, 100);
    w.vote(0, other, true).unwrap();
    w.vote(1, other, false).unwrap();
    assert_eq!(w.status(other), DeploymentStatus::Rejected);
    assert!(matches!(
        rejected(w.vote(2, other, true)),
        Rejection::NotAllowed(_)
    ));

    let outsider = Principal::new("mallory", &[Role::Cab]);
    let third = w.submit("PDF reader", false, 3);
    let r = rejected(w.gov.execute(
        &outsider,
        &Command::Vote {
            deployment_id: third,
            approve: true,
            rationale: "lgtm".into(),
            signature: None,
        },
    ));
    assert!(matches!(r, Rejection::Forbidden(ref m) if m.contains("not a CAB member")));
    let generator = Principal::new("ci-bot", &[Role::Cab]);
    w.change(
        0,
        &[1, 2, 3],
        ProposedChange::AddMember {
            member: "ci-bot".into(),
            ssh_key: key_line("ci-bot"),
        },
    )
    .unwrap();
    let subject = third.to_string();
    let signature = w.sign("ci-bot", (Kind::Deployment, &subject), true, "lgtm");
    let r = rejected(w.gov.execute(
        &generator,
        &Command::Vote {
            deployment_id: third,
            approve: true,
            rationale: "lgtm".into(),
            signature: Some(signature),
        },
    ));
    assert!(matches!(r, Rejection::Forbidden(ref m) if m.contains("evidence generator")));
}

#[test]
fn a_clean_release_passes_every_check() {
    let w = world();
    let id = w.submit("PDF reader", false, 3);
    w.vote(0, id, true).unwrap();
    w.release(id, ARTIFACT, Some(SBOM)).unwrap();
    let Payload::DeploymentReleased(DeploymentReleased(v)) = w.last_payload() else {
        panic!("{:?}", w.last_payload())
    };
    assert!(
        v.checks.iter().all(|c| c.outcome == "PASS"),
        "{:?}",
        v.checks
    );
    assert_eq!(w.status(id), DeploymentStatus::Released);
    assert!(matches!(
        rejected(w.release(id, ARTIFACT, Some(SBOM))),
        Rejection::Conflict(_)
    ));
}

#[test]
fn a_swapped_artifact_after_approval_is_blocked() {
    let w = world();
    let id = w.submit("PDF reader", false, 3);
    w.vote(0, id, true).unwrap();
    w.release(id, b"MZ... a trojaned installer", Some(SBOM))
        .unwrap();
    let Payload::DeploymentReleaseBlocked(DeploymentReleaseBlocked(v)) = w.last_payload() else {
        panic!()
    };
    let c = check(&v, "artifact_hash");
    assert_eq!(
        (c.outcome.as_str(), c.reason_code.as_deref()),
        ("FAIL", Some("ARTIFACT_HASH_MISMATCH"))
    );
    assert_eq!(
        w.status(id),
        DeploymentStatus::Approved,
        "still approved, not released"
    );
}

#[test]
fn sbom_checks_block_a_swapped_sbom_and_a_revoked_key() {
    let w = world();
    let id = w.submit("PDF reader", false, 3);
    w.vote(0, id, true).unwrap();
    w.release(id, ARTIFACT, Some(b"{\"tampered\":true}"))
        .unwrap();
    let Payload::DeploymentReleaseBlocked(DeploymentReleaseBlocked(v)) = w.last_payload() else {
        panic!()
    };
    assert_eq!(
        check(&v, "sbom_hash").reason_code.as_deref(),
        Some("SBOM_HASH_MISMATCH")
    );

    w.gov
        .execute(
            &w.admin,
            &Command::RevokeSigningKey(SigningKeyRevoked {
                key_id: "build-2026".into(),
                reason: "leaked".into(),
            }),
        )
        .unwrap();
    w.clock.advance_micros(1);
    w.release(id, ARTIFACT, Some(SBOM)).unwrap();
    let Payload::DeploymentReleaseBlocked(DeploymentReleaseBlocked(v)) = w.last_payload() else {
        panic!()
    };
    let c = check(&v, "sbom_signature");
    assert_eq!(
        (c.outcome.as_str(), c.reason_code.as_deref()),
        ("FAIL", Some("SBOM_SIGNATURE_INVALID")),
        "{}",
        c.detail
    );
    assert!(c.detail.contains("not trusted"), "{}", c.detail);
}

#[test]
fn an_unapproved_or_expired_approval_blocks() {
    let w = world();
    let id = w.submit("PDF reader", false, 3);
    w.release(id, ARTIFACT, Some(SBOM)).unwrap();
    let Payload::DeploymentReleaseBlocked(DeploymentReleaseBlocked(v)) = w.last_payload() else {
        panic!()
    };
    assert_eq!(
        check(&v, "approval").reason_code.as_deref(),
        Some("NOT_APPROVED")
    );
    w.vote(0, id, true).unwrap();
    w.clock.advance_micros(8 * DAY);
    w.release(id, ARTIFACT, Some(SBOM)).unwrap();
    let Payload::DeploymentReleaseBlocked(DeploymentReleaseBlocked(v)) = w.last_payload() else {
        panic!()
    };
    assert_eq!(
        check(&v, "approval").reason_code.as_deref(),
        Some("APPROVAL_EXPIRED")
    );
}

#[test]
fn exceptions_waive_only_waivable_controls_and_only_until_they_expire() {
    let w = world();
    let evidence = w.evidence(false); // unsigned SBOM
    let id = w.gov.new_id();
    w.gov
        .execute(
            &w.dev,
            &Command::Submit {
                deployment_id: id,
                request: w.request("PDF reader", false, 3, evidence),
            },
        )
        .unwrap();
    w.vote(0, id, true).unwrap();
    let now = w.gov.state().last_time.unwrap();
    let in_days = |d: i64| Timestamp::from_unix_micros(now.unix_micros() + d * DAY);
    let propose = |control: &str, expires_at: Timestamp| {
        w.exception(0, &[], (control, "pdf reader"), expires_at)
    };
    let before = w.size();
    for (result, needle) in [
        (propose("artifact_hash", in_days(10)), "never waivable"),
        (
            propose("evidence_immutability", in_days(10)),
            "never waivable",
        ),
        (propose("sbom_signature", in_days(91)), "at most 90 days"),
        (propose("sbom_signature", in_days(-1)), "in the future"),
        (propose("no_such_control", in_days(10)), "unknown control"),
    ] {
        let r = rejected(result);
        assert!(r.to_string().contains(needle), "{r} should say {needle}");
    }
    // Naming approvers is the old way: on this log each approver votes.
    let direct = Command::GrantException {
        exception_id: w.gov.new_id(),
        control: "sbom_signature".into(),
        scope: "pdf reader".into(),
        reason: "x".into(),
        approvers: vec!["carol".into(), "chen".into()],
        expires_at: in_days(2),
    };
    assert!(matches!(
        rejected(w.gov.execute(&w.cab[0], &direct)),
        Rejection::NotAllowed(_)
    ));
    assert_eq!(w.size(), before, "refused proposals write nothing");
    w.exception(0, &[1, 2], ("sbom_signature", "pdf reader"), in_days(2))
        .unwrap();
    w.release(id, ARTIFACT, Some(SBOM)).unwrap();
    let Payload::DeploymentReleased(DeploymentReleased(v)) = w.last_payload() else {
        panic!("{:?}", w.last_payload())
    };
    assert_eq!(check(&v, "sbom_signature").outcome, "WAIVED");

    // Another deployment after the exception expired: no longer waived.
    let evidence = w.evidence(false);
    let later = w.gov.new_id();
    let mut request = w.request("PDF reader", false, 4, evidence);
    request.correlation_id = "later".into();
    w.gov
        .execute(
            &w.dev,
            &Command::Submit {
                deployment_id: later,
                request,
            },
        )
        .unwrap();
    w.vote(0, later, true).unwrap();
    w.clock.advance_micros(3 * DAY);
    w.vote(1, later, true).ok();
    w.release(later, ARTIFACT, Some(SBOM)).unwrap();
    let Payload::DeploymentReleaseBlocked(DeploymentReleaseBlocked(v)) = w.last_payload() else {
        panic!("{:?}", w.last_payload())
    };
    assert_eq!(check(&v, "sbom_signature").outcome, "FAIL");
}

#[test]
fn risk_models_tighten_at_once_and_loosen_only_with_three_cab_approvals() {
    let w = world();
    let mut loose = genesis::risk_model_v1_1();
    loose.version = "1.2".into();
    loose.mode = "CAUTIOUS".into();
    loose.thresholds.insert(BlastRadiusClass::NonCritical, 30);
    let before = w.size();
    let mut bad = loose.clone();
    bad.thresholds
        .insert(BlastRadiusClass::CriticalInfrastructure, 5);
    assert!(
        rejected(w.gov.execute(&w.admin, &Command::ProposeRiskModel(bad)))
            .to_string()
            .contains("CRITICAL_INFRASTRUCTURE must be 0")
    );
    let mut heavy = loose.clone();
    heavy.weights_bp.insert("privilege".into(), 2001);
    assert!(
        rejected(w.gov.execute(&w.admin, &Command::ProposeRiskModel(heavy)))
            .to_string()
            .contains("10001")
    );
    let mut over = loose.clone();
    over.thresholds.insert(BlastRadiusClass::NonCritical, 101);
    assert!(
        rejected(w.gov.execute(&w.admin, &Command::ProposeRiskModel(over)))
            .to_string()
            .contains("outside 0–100")
    );
    assert_eq!(w.size(), before);

    let proposer = Principal::new("carol", &[Role::Cab]);
    w.cite_backtest(&mut loose);
    w.gov
        .execute(&proposer, &Command::ProposeRiskModel(loose.clone()))
        .unwrap();
    let activate = Command::ActivateRiskModel {
        version: "1.2".into(),
    };
    assert!(
        matches!(
            rejected(w.gov.execute(&w.admin, &activate)),
            Rejection::NotAllowed(_)
        ),
        "loosening needs the CAB"
    );
    let vote = |member: usize| Command::VoteRiskModel {
        version: "1.2".into(),
        approve: true,
        rationale: "backtest attached".into(),
        signature: Some(w.sign(
            &w.cab[member].name,
            (Kind::RiskModel, "1.2"),
            true,
            "backtest attached",
        )),
    };
    assert!(
        matches!(
            rejected(w.gov.execute(&w.cab[0], &vote(0))),
            Rejection::Forbidden(_)
        ),
        "the proposer may not approve"
    );
    w.gov.execute(&w.cab[1], &vote(1)).unwrap();
    w.gov.execute(&w.cab[2], &vote(2)).unwrap();
    assert!(
        matches!(
            rejected(w.gov.execute(&w.admin, &activate)),
            Rejection::NotAllowed(_)
        ),
        "two approvals are not three"
    );
    w.gov.execute(&w.cab[3], &vote(3)).unwrap();
    assert!(
        matches!(w.last_payload(), Payload::RiskModelApproved(ref a) if a.approvers.len() == 3)
    );
    w.gov.execute(&w.admin, &activate).unwrap();
    assert_eq!(w.gov.state().active_model.as_deref(), Some("1.2"));

    // Tightening back to all-zero thresholds is immediate, by an admin alone.
    let mut strict = genesis::risk_model_v1_1();
    strict.version = "1.3".into();
    w.gov
        .execute(&w.admin, &Command::ProposeRiskModel(strict))
        .unwrap();
    w.gov
        .execute(
            &w.admin,
            &Command::ActivateRiskModel {
                version: "1.3".into(),
            },
        )
        .unwrap();
    let Payload::RiskModelActivated(a) = w.last_payload() else {
        panic!()
    };
    assert_eq!(
        (a.basis.as_str(), a.previous_version.as_deref()),
        ("ALL_THRESHOLDS_ZERO", Some("1.2"))
    );
}

#[test]
fn submissions_are_idempotent_by_correlation_id() {
    let w = world();
    let evidence = w.evidence(true);
    let request = w.request("Slack", false, 40, evidence);
    let first = w.gov.new_id();
    w.gov
        .execute(
            &w.dev,
            &Command::Submit {
                deployment_id: first,
                request: request.clone(),
            },
        )
        .unwrap();
    let size = w.size();
    let retry = w
        .gov
        .execute(
            &w.dev,
            &Command::Submit {
                deployment_id: w.gov.new_id(),
                request: request.clone(),
            },
        )
        .unwrap();
    assert_eq!(
        retry,
        Outcome::Replayed {
            deployment_id: first
        }
    );
    assert_eq!(w.size(), size);
    let mut changed = request;
    changed.target_user_count = 41;
    assert!(matches!(
        rejected(w.gov.execute(
            &w.dev,
            &Command::Submit {
                deployment_id: w.gov.new_id(),
                request: changed
            }
        )),
        Rejection::Conflict(_)
    ));
    assert_eq!(w.size(), size);
}

#[test]
fn bad_input_is_refused_with_a_precise_error_and_nothing_written() {
    let w = world();
    let before = w.size();
    let mut document = EvidenceDocument {
        artifacts: vec![Artifact {
            name: "a.msi".into(),
            sha256: "00".repeat(32),
            size: 1,
        }],
        sbom: None,
        tests_passed: 1,
        tests_failed: 0,
        scan_critical_findings: 0,
        generated_by: "same".into(),
        packaged_by: "same".into(),
        requires_admin: Some(false),
    };
    let r = rejected(w.gov.execute(
        &w.dev,
        &record_evidence_signed_by_label(Uuid::nil(), document.clone()),
    ));
    assert!(r.to_string().contains("separation of duties"), "{r}");
    document.packaged_by = "other".into();
    document.artifacts[0].sha256 = "XYZ".into();
    assert!(rejected(w.gov.execute(
        &w.dev,
        &record_evidence_signed_by_label(Uuid::nil(), document)
    ))
    .to_string()
    .contains("sha256"));
    let unknown = w.request("Slack", false, 1, Uuid::from_u128(42));
    assert!(matches!(
        rejected(w.gov.execute(
            &w.dev,
            &Command::Submit {
                deployment_id: Uuid::nil(),
                request: unknown
            }
        )),
        Rejection::Unknown {
            kind: "evidence",
            ..
        }
    ));
    assert!(matches!(
        rejected(w.vote(0, Uuid::from_u128(99), true)),
        Rejection::Unknown {
            kind: "deployment",
            ..
        }
    ));
    // Roles: a submitter cannot vote, a CAB member cannot release.
    let r = w.gov.execute(
        &w.dev,
        &Command::Vote {
            deployment_id: Uuid::nil(),
            approve: true,
            rationale: "x".into(),
            signature: None,
        },
    );
    assert!(matches!(r, Err(CommandError::Unauthorized { .. })));
    assert_eq!(w.size(), before);
}

#[test]
fn a_cab_member_can_raise_a_class_never_lower_it() {
    let w = world();
    let id = w.submit("PDF reader", false, 3);
    let raise = |to| Command::RaiseClassification {
        deployment_id: id,
        to,
        reason: "it runs on the trading floor".into(),
    };
    w.gov
        .execute(&w.cab[0], &raise(BlastRadiusClass::BusinessCritical))
        .unwrap();
    let d = w
        .gov
        .with_state(|s| s.deployments.get(&id).unwrap().into_owned());
    assert_eq!(
        (d.class, d.gate.unwrap().quorum),
        (BlastRadiusClass::BusinessCritical, 2)
    );
    assert!(matches!(
        rejected(
            w.gov
                .execute(&w.cab[0], &raise(BlastRadiusClass::NonCritical))
        ),
        Rejection::NotAllowed(_)
    ));
    w.vote(1, id, true).unwrap();
    assert_eq!(
        w.status(id),
        DeploymentStatus::PendingCab,
        "the raised class needs 2"
    );
}

#[test]
fn break_glass_releases_at_once_keeps_integrity_and_needs_a_signed_quorum_review() {
    let w = world();
    let id = w.submit("Antivirus", true, 9000); // CRITICAL_INFRASTRUCTURE: quorum 3
    let presented = |artifact: &[u8]| PresentedRelease {
        deployment_id: id,
        artifact_sha256: hex_sha(artifact),
        artifact_size: artifact.len() as u64,
        sbom_sha256: Some(hex_sha(SBOM)),
    };
    let glass = |artifact: &[u8], approvers: &[&str]| Command::Breakglass {
        presented: presented(artifact),
        justification: "zero-day actively exploited".into(),
        approvers: approvers.iter().map(|a| (*a).to_owned()).collect(),
    };
    // Names carry no weight: naming approvers is refused.
    assert!(matches!(
        rejected(
            w.gov
                .execute(&w.cab[0], &glass(ARTIFACT, &["carol", "chen"]))
        ),
        Rejection::Invalid {
            field: "approvers",
            ..
        }
    ));
    let r = rejected(w.gov.execute(&w.cab[0], &glass(b"swapped", &[])));
    assert!(r.to_string().contains("cannot bypass artifact_hash"), "{r}");
    // Nor a substituted SBOM: break-glass skips the approval, never an integrity check.
    let mut wrong_sbom = glass(ARTIFACT, &[]);
    if let Command::Breakglass { presented, .. } = &mut wrong_sbom {
        presented.sbom_sha256 = Some(hex_sha(b"another SBOM"));
    }
    let r = rejected(w.gov.execute(&w.cab[0], &wrong_sbom));
    assert!(r.to_string().contains("cannot bypass sbom_hash"), "{r}");
    let size = w.size();
    let mut no_sbom = glass(ARTIFACT, &[]);
    if let Command::Breakglass { presented, .. } = &mut no_sbom {
        presented.sbom_sha256 = None;
    }
    let r = rejected(w.gov.execute(&w.cab[0], &no_sbom));
    assert!(r.to_string().contains("cannot bypass sbom_hash"), "{r}");
    assert_eq!(w.size(), size, "a refused break-glass wrote something");
    // One member and a justification release at once.
    w.breakglass(0, id).unwrap();
    assert_eq!(w.status(id), DeploymentStatus::BreakglassReleased);
    let Payload::BreakglassReleased(b) = w.last_payload() else {
        panic!()
    };
    let released_at = w.gov.state().last_time.unwrap();
    assert_eq!(
        Timestamp::parse(&b.review_due_at).unwrap().unix_micros() - released_at.unix_micros(),
        3 * DAY
    );
    // Until it is reviewed, carol may not break the glass again.
    let other = w.submit("VPN", true, 9000);
    let r = rejected(w.breakglass(0, other));
    assert!(r.to_string().contains("awaits its review"), "{r}");
    // Who broke the glass does not review it, an unsigned review counts for nothing, and
    // a single member's review is not the class's quorum.
    assert!(rejected(w.review(0, id, true))
        .to_string()
        .contains("may not review it"));
    let unsigned = Command::VoteBreakglassReview {
        deployment_id: id,
        justified: true,
        findings: "fine".into(),
        signature: None,
    };
    assert!(matches!(
        rejected(w.gov.execute(&w.cab[1], &unsigned)),
        Rejection::Invalid {
            field: "signature",
            ..
        }
    ));
    let legacy = Command::ReviewBreakglass {
        deployment_id: id,
        justified: true,
        findings: "fine".into(),
    };
    assert!(matches!(
        rejected(w.gov.execute(&w.cab[1], &legacy)),
        Rejection::NotAllowed(_)
    ));
    w.review(1, id, true).unwrap();
    w.review(2, id, true).unwrap();
    assert!(matches!(
        rejected(w.review(2, id, true)),
        Rejection::Conflict(_)
    ));
    w.clock.advance_micros(2 * DAY);
    assert_eq!(
        w.gov.state().overdue_breakglass_reviews(w.clock.now()),
        Vec::<Uuid>::new()
    );
    w.review(3, id, false).unwrap();
    let Payload::BreakglassReviewed(reviewed) = w.last_payload() else {
        panic!("{:?}", w.last_payload())
    };
    assert!(!reviewed.justified, "one reviewer judged it unjustified");
    assert!(reviewed.findings.contains("cora"), "{}", reviewed.findings);
    // Reviewed, carol's next break-glass is hers to make again.
    assert!(w.breakglass(0, other).is_ok());
}

#[test]
fn streamed_digests_match_and_respect_the_limit() {
    let data = vec![7u8; 3 * 256 * 1024 + 17];
    let (hash, size) = digest_stream(&data[..], 10 * 1024 * 1024).unwrap();
    assert_eq!((hash, size), (hex_sha(&data), data.len() as u64));
    assert!(digest_stream(&data[..], 1000).is_err());
}

#[test]
fn blast_radius_rules_change_only_with_three_cab_approvers_and_take_effect() {
    let w = world();
    let mut next = genesis::blast_radius_policy_v1();
    next.version = 2;
    next.approval_validity_hours = 24;
    next.rules.insert(
        0,
        ClassificationRule {
            id: "pdf-is-business".into(),
            class: BlastRadiusClass::BusinessCritical,
            cmdb_tiers: vec![],
            keywords: vec!["pdf".into()],
            requires_admin: None,
            min_target_users: None,
        },
    );
    let propose =
        |p: &BlastRadiusPolicySet| w.change(0, &[], ProposedChange::BlastRadiusPolicy(p.clone()));
    let before = w.size();
    // Naming approvers is the old way: on this log the CAB votes.
    let mut named = next.clone();
    named.approvers = vec!["carol".into(), "chen".into(), "cyril".into()];
    assert!(matches!(
        rejected(
            w.gov
                .execute(&w.cab[0], &Command::SetBlastRadiusPolicy(named))
        ),
        Rejection::NotAllowed(_)
    ));
    let mut skipped = next.clone();
    skipped.version = 3;
    assert!(rejected(propose(&skipped))
        .to_string()
        .contains("next version"));
    let mut zero = next.clone();
    zero.classes[0].quorum = 0;
    assert!(rejected(propose(&zero)).to_string().contains("quorum 0"));
    assert_eq!(w.size(), before);

    let id = propose(&next).unwrap();
    w.vote_change(1, id, true).unwrap();
    w.vote_change(2, id, true).unwrap();
    assert_eq!(
        w.gov.state().blast_policy.unwrap().version,
        1,
        "two approvals are not three"
    );
    w.vote_change(3, id, true).unwrap();
    let Payload::BlastRadiusPolicySet(set) = w.last_payload() else {
        panic!("{:?}", w.last_payload())
    };
    assert_eq!(set.approvers, ["chen", "cora", "cyril"]);
    let id = w.submit("PDF reader", false, 3);
    let d = w
        .gov
        .with_state(|s| s.deployments.get(&id).unwrap().into_owned());
    let submitted = w.submitted(id);
    assert_eq!(
        (
            d.class,
            submitted.classification.rule.as_str(),
            submitted.classification.policy_version
        ),
        (BlastRadiusClass::BusinessCritical, "pdf-is-business", 2)
    );
    w.vote(1, id, true).unwrap();
    w.vote(2, id, true).unwrap();
    let (_, expires) = w
        .gov
        .with_state(|s| s.deployments.get(&id).unwrap().approval.clone())
        .unwrap();
    assert_eq!(
        expires.unix_micros() - w.gov.state().last_time.unwrap().unix_micros(),
        24 * 3_600_000_000,
        "the policy's 24-hour validity"
    );
}

/// The first insider attack: a CAB member who also submits asks for an exception waiving
/// approval of their own CRITICAL_INFRASTRUCTURE deployment. Naming approvers grants nothing;
/// the proposer never counts, the submitter never approves, and only two other members' signed
/// votes, before the proposal expires, grant it.
#[test]
fn an_exception_for_your_own_deployment_needs_two_other_members_signed_votes() {
    let w = world();
    let carol_submits = Principal::new("carol", &[Role::Submitter, Role::Cab]);
    let evidence = w.evidence(true);
    let id = w.gov.new_id();
    w.gov
        .execute(
            &carol_submits,
            &Command::Submit {
                deployment_id: id,
                request: w.request("Windows Update", true, 9_000, evidence),
            },
        )
        .unwrap();
    assert_eq!(w.status(id), DeploymentStatus::PendingCab);
    let scope = format!("deployment:{id}");
    let expires = Timestamp::from_unix_micros(w.clock.now().unix_micros() + 10 * DAY);
    // carol proposes; she may not approve her own proposal.
    let mine = w.exception(0, &[], ("approval", &scope), expires).unwrap();
    assert!(matches!(
        rejected(w.vote_exception(0, mine, true)),
        Rejection::Forbidden(ref m) if m.contains("proposer")
    ));
    // chen proposes for carol's deployment; carol, the submitter, may not approve it either.
    let theirs = w.exception(1, &[], ("approval", &scope), expires).unwrap();
    assert!(matches!(
        rejected(w.vote_exception(0, theirs, true)),
        Rejection::Forbidden(ref m) if m.contains("submitter")
    ));
    // One other member's approval is not a quorum: the release is blocked on approval.
    w.vote_exception(2, mine, true).unwrap();
    w.release(id, ARTIFACT, Some(SBOM)).unwrap();
    let Payload::DeploymentReleaseBlocked(DeploymentReleaseBlocked(v)) = w.last_payload() else {
        panic!("{:?}", w.last_payload())
    };
    assert_eq!(check(&v, "approval").outcome, "FAIL");
    // A rejection closes a proposal; a vote after the proposal expires is refused.
    w.vote_exception(2, theirs, false).unwrap();
    assert!(matches!(
        rejected(w.vote_exception(3, theirs, true)),
        Rejection::NotAllowed(ref m) if m.contains("rejected")
    ));
    let late = w.exception(1, &[], ("approval", &scope), expires).unwrap();
    w.clock.advance_micros(3 * DAY + 1);
    assert!(matches!(
        rejected(w.vote_exception(2, late, true)),
        Rejection::NotAllowed(ref m) if m.contains("expired")
    ));
    // A second other member's signed approval grants it, naming exactly those two.
    let mine_again = w.exception(0, &[3], ("approval", &scope), expires).unwrap();
    w.vote_exception(4, mine_again, true).unwrap();
    let Payload::ExceptionGranted(granted) = w.last_payload() else {
        panic!("{:?}", w.last_payload())
    };
    assert_eq!(granted.approvers, ["cass", "cora"]);
    w.release(id, ARTIFACT, Some(SBOM)).unwrap();
    let Payload::DeploymentReleased(DeploymentReleased(v)) = w.last_payload() else {
        panic!("{:?}", w.last_payload())
    };
    assert_eq!(check(&v, "approval").outcome, "WAIVED");
}

/// An admin seats the CAB only until it first votes; after that a member joins or leaves only
/// when three other members approve with signed votes, and nobody votes on their own removal.
#[test]
fn once_the_cab_has_voted_only_its_signed_votes_change_its_membership() {
    let w = world();
    let id = w.submit("PDF reader", false, 3);
    w.vote(0, id, true).unwrap();
    let stuffed = Command::AddCabMember {
        member: "mallory".into(),
        ssh_key: Some(key_line("mallory")),
    };
    assert!(matches!(
        rejected(w.gov.execute(&w.admin, &stuffed)),
        Rejection::NotAllowed(ref m) if m.contains("proposal")
    ));
    let remove = Command::RemoveCabMember {
        member: "carol".into(),
    };
    assert!(matches!(
        rejected(w.gov.execute(&w.admin, &remove)),
        Rejection::NotAllowed(_)
    ));
    let dora = ProposedChange::AddMember {
        member: "dora".into(),
        ssh_key: key_line("dora"),
    };
    let proposal = w.change(0, &[1, 2], dora).unwrap();
    assert!(!w.gov.state().cab_members.contains("dora"), "two of three");
    assert!(matches!(
        rejected(w.vote_change(0, proposal, true)),
        Rejection::Forbidden(_)
    ));
    w.vote_change(3, proposal, true).unwrap();
    assert!(w.gov.state().cab_members.contains("dora"));
    let out = w
        .change(
            1,
            &[],
            ProposedChange::RemoveMember {
                member: "carol".into(),
            },
        )
        .unwrap();
    assert!(matches!(
        rejected(w.vote_change(0, out, true)),
        Rejection::Forbidden(ref m) if m.contains("own removal")
    ));
    for member in [2, 3, 4] {
        w.vote_change(member, out, true).unwrap();
    }
    assert!(!w.gov.state().cab_members.contains("carol"));
    assert!(!w.gov.state().member_keys.contains_key("carol"));
}
