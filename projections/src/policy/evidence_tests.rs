//! Signed evidence and the per-class SBOM rule: the facts that classify and release a deployment
//! are the producer's signed word, and a class whose policy requires an SBOM never releases
//! without one.

use super::*;
use crate::vote_statement::{self, key_from_label, Kind};
use ssh_key::{HashAlg, LineEnding};

fn record(evidence_id: Uuid, document: EvidenceDocument, signature: Option<String>) -> Command {
    Command::RecordEvidence {
        evidence_id,
        document,
        signature,
    }
}

fn signed_by(key_label: &str, document: &EvidenceDocument) -> Option<String> {
    crate::evidence_signature::sign(document, &key_from_label(key_label)).ok()
}

fn forbidden(result: Result<Decision, Rejection>, says: &str) {
    match result {
        Err(Rejection::Forbidden(why)) => assert!(why.contains(says), "{why}"),
        other => panic!("expected a refusal saying {says:?}, got {other:?}"),
    }
}

#[test]
fn evidence_needs_its_producers_signature_over_exactly_its_document() {
    let mut given = Given::genesis();
    let id = given.id();
    let doc = document(ARTIFACT_SHA256);
    assert!(matches!(
        given.when("dev", &record(id, doc.clone(), None)),
        Err(Rejection::Invalid {
            field: "signature",
            ..
        })
    ));
    // Signed, then edited: the install scope is what an insider would flip.
    let edited = EvidenceDocument {
        requires_admin: Some(true),
        ..doc.clone()
    };
    forbidden(
        given.when("dev", &record(id, edited, signed_by(PRODUCER, &doc))),
        "does not verify over this evidence document",
    );
    forbidden(
        given.when("dev", &record(id, doc.clone(), signed_by("carol", &doc))),
        "not by the key in force",
    );
    let rogue = EvidenceDocument {
        generated_by: "rogue-ci".into(),
        ..doc.clone()
    };
    forbidden(
        given.when(
            "dev",
            &record(id, rogue.clone(), signed_by("rogue-ci", &rogue)),
        ),
        "rogue-ci is not an evidence producer",
    );
    let bytes = crate::evidence_signature::signed_bytes(&doc).unwrap();
    let as_a_vote = key_from_label(PRODUCER)
        .sign(vote_statement::NAMESPACE, HashAlg::Sha512, &bytes)
        .unwrap()
        .to_pem(LineEnding::LF)
        .unwrap();
    forbidden(
        given.when("dev", &record(id, doc.clone(), Some(as_a_vote))),
        "namespace",
    );
    assert!(matches!(
        given.when(
            "dev",
            &record(id, doc.clone(), Some("not a signature".into()))
        ),
        Err(Rejection::Invalid {
            field: "signature",
            ..
        })
    ));
    let unscoped = EvidenceDocument {
        requires_admin: None,
        ..doc.clone()
    };
    assert!(matches!(
        given.when(
            "dev",
            &record(id, unscoped.clone(), signed_by(PRODUCER, &unscoped))
        ),
        Err(Rejection::Invalid {
            field: "requires_admin",
            ..
        })
    ));
    // The signature is recorded, and a revoked producer signs nothing more, nor returns.
    let events = given.decided("dev", &record(id, doc.clone(), signed_by(PRODUCER, &doc)));
    let Payload::EvidenceRecorded(recorded) = &events[0].1 else {
        panic!("{events:?}")
    };
    assert_eq!(recorded.signature, signed_by(PRODUCER, &doc));
    given.decided(
        "ada",
        &Command::RevokeEvidenceProducer {
            producer: PRODUCER.into(),
            reason: "key leaked".into(),
        },
    );
    let next = given.id();
    forbidden(
        given.when("dev", &record(next, doc.clone(), signed_by(PRODUCER, &doc))),
        "not an evidence producer",
    );
    forbidden(
        given.when("ada", &set_producer_by_label(PRODUCER)),
        "revoked",
    );
}

#[test]
fn the_install_scope_comes_from_the_signed_evidence_and_a_submitter_only_raises_it() {
    let mut given = Given::genesis();
    let class_of = |given: &mut Given, evidence_admin: bool, declared_admin: bool| {
        let evidence_id = given.id();
        let doc = EvidenceDocument {
            requires_admin: Some(evidence_admin),
            ..document(ARTIFACT_SHA256)
        };
        given.decided("dev", &record_evidence_signed_by_label(evidence_id, doc));
        let deployment_id = given.id();
        let request = SubmitDeployment {
            app_name: "Acme patch tool".into(),
            requires_admin: declared_admin,
            ..submission(evidence_id)
        };
        let events = given.decided(
            "dev",
            &Command::Submit {
                deployment_id,
                request,
            },
        );
        let Payload::DeploymentSubmitted(submitted) = &events[0].1 else {
            panic!("{events:?}")
        };
        (
            submitted.classification.class,
            submitted.classification.sources.clone().unwrap_or_default(),
        )
    };
    // An unregistered patch tool that installs with admin rights is critical infrastructure,
    // whatever the submitter declares.
    let (class, sources) = class_of(&mut given, true, false);
    assert_eq!(class, BlastRadiusClass::CriticalInfrastructure, "{sources}");
    assert!(sources.contains("install scope (admin: true)"), "{sources}");
    assert_eq!(
        class_of(&mut given, false, true).0,
        BlastRadiusClass::CriticalInfrastructure
    );
    assert_eq!(
        class_of(&mut given, false, false).0,
        BlastRadiusClass::NonCritical
    );
}

#[test]
fn once_the_cab_has_voted_a_producer_is_set_only_by_its_signed_votes() {
    let mut given = Given::genesis();
    given.decided(
        "ada",
        &Command::AddCabMember {
            member: "cora".into(),
            ssh_key: Some(public_line("cora")),
        },
    );
    given.approved_deployment();
    assert!(matches!(
        given.when("ada", &set_producer_by_label("nightly-ci")),
        Err(Rejection::NotAllowed(_))
    ));
    let proposal_id = given.id();
    let change = ProposedChange::SetEvidenceProducer {
        producer: "nightly-ci".into(),
        ssh_key: public_line("nightly-ci"),
    };
    given.decided(
        "carol",
        &Command::ProposeChange {
            proposal_id,
            change,
        },
    );
    let mut last = Vec::new();
    for member in ["chen", "cyril", "cora"] {
        let signature = sign_vote(
            &given.state,
            &key_from_label(member),
            (Kind::Change, &proposal_id.to_string()),
            (true, "our CI"),
            given.at,
        )
        .unwrap();
        last = given.decided(
            member,
            &Command::VoteChange {
                proposal_id,
                approve: true,
                rationale: "our CI".into(),
                signature: Some(signature),
            },
        );
    }
    let Payload::EvidenceProducerSet(set) = &last[1].1 else {
        panic!("{last:?}")
    };
    assert_eq!(set.approvers, ["chen", "cora", "cyril"]);
    assert_eq!(set.proposal_id, Some(proposal_id));
    assert!(given.state.evidence_producers.contains_key("nightly-ci"));
}

#[test]
fn a_class_whose_policy_requires_an_sbom_never_releases_without_one() {
    let mut given = Given::genesis();
    let evidence_id = given.id();
    given.decided(
        "dev",
        &record_evidence_signed_by_label(evidence_id, document(ARTIFACT_SHA256)),
    );
    let deployment_id = given.id();
    let request = SubmitDeployment {
        app_name: "SAP GUI".into(),
        ..submission(evidence_id)
    };
    given.decided(
        "dev",
        &Command::Submit {
            deployment_id,
            request,
        },
    );
    for member in ["carol", "chen"] {
        given.decided(member, &given.vote(member, deployment_id, true, "ok"));
    }
    let presented = PresentedRelease {
        deployment_id,
        artifact_sha256: ARTIFACT_SHA256.into(),
        artifact_size: 10,
        sbom_sha256: None,
    };
    let blocked = given
        .when("agent", &Command::Release(presented.clone()))
        .unwrap();
    let Payload::DeploymentReleaseBlocked(DeploymentReleaseBlocked(verdict)) = &blocked.events[0].1
    else {
        panic!("{:?}", blocked.events)
    };
    let sbom_checks: Vec<_> = verdict
        .checks
        .iter()
        .filter(|c| matches!(c.check, Control::SbomHash | Control::SbomSignature))
        .collect();
    assert_eq!(sbom_checks.len(), 2);
    for check in sbom_checks {
        assert_eq!(check.outcome, CheckOutcome::Fail, "{check:?}");
        assert_eq!(check.reason_code.as_deref(), Some("SBOM_REQUIRED"));
        assert!(check.detail.contains("BUSINESS_CRITICAL"), "{check:?}");
    }
    // Breaking the glass skips no integrity check either.
    let breakglass = given.when(
        "carol",
        &Command::Breakglass {
            presented,
            justification: "outage".into(),
            approvers: Vec::new(),
        },
    );
    let released = |d: &Decision| {
        d.events
            .iter()
            .any(|(_, p)| matches!(p, Payload::BreakglassReleased(_)))
    };
    assert!(!breakglass.as_ref().is_ok_and(released), "{breakglass:?}");
}
