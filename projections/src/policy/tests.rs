//! The policy on its own: given entries folded in memory (no store), when a command, then these
//! events or this rejection; and `command_of` inverts `decide` on a decision's first event.

use super::*;
use crate::genesis::{genesis_events, GENESIS_ACTOR};
use events::{Entry, Position};
use proptest::prelude::*;

/// `member`'s public key line (their key is derived from their name: see `key_from_label`).
fn public_line(member: &str) -> String {
    crate::vote_statement::key_from_label(member)
        .public_key()
        .to_openssh()
        .unwrap()
}

/// The CI system whose key signs the tests' evidence.
const PRODUCER: &str = "ci-bot";

const ARTIFACT_SHA256: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// A state folded from entries built in memory, as the service would have written them.
struct Given {
    state: GovernanceState,
    tip: (u64, Digest),
    at: Timestamp,
    next_id: u128,
}

impl Given {
    /// Genesis, an admin-made CAB of three (carol, chen, cyril).
    fn genesis() -> Self {
        let mut given = Self {
            state: GovernanceState::new(),
            tip: (0, Digest::ZERO),
            at: Timestamp::parse("2026-02-10T09:00:00.000000Z").unwrap(),
            next_id: 1,
        };
        given.record(GENESIS_ACTOR, genesis_events());
        given.decided("ada", &set_producer_by_label(PRODUCER));
        for member in ["carol", "chen", "cyril"] {
            given.decided(
                "ada",
                &Command::AddCabMember {
                    member: member.into(),
                    ssh_key: Some(public_line(member)),
                },
            );
        }
        given
    }

    /// `member`'s vote on a deployment, signed now with their key.
    fn vote(&self, member: &str, deployment_id: Uuid, approve: bool, rationale: &str) -> Command {
        Command::Vote {
            deployment_id,
            approve,
            rationale: rationale.into(),
            signature: Some(self.signature(member, deployment_id, approve, rationale)),
        }
    }

    fn signature(
        &self,
        member: &str,
        deployment_id: Uuid,
        approve: bool,
        rationale: &str,
    ) -> SignedVote {
        let subject = deployment_id.to_string();
        sign_vote(
            &self.state,
            &crate::vote_statement::key_from_label(member),
            (crate::vote_statement::Kind::Deployment, &subject),
            (approve, rationale),
            self.at,
        )
        .unwrap()
    }

    fn id(&mut self) -> Uuid {
        self.next_id += 1;
        Uuid::from_u128(self.next_id)
    }

    /// Folds `events` as entries at the next positions.
    fn record(&mut self, actor: &str, events: Vec<(String, Payload)>) {
        for (subject, payload) in events {
            let id = self.id();
            let draft = payload.to_draft(id, &subject, actor, "given");
            let entry = Entry::build(
                &draft,
                "test.example/policy",
                Position {
                    seq: self.tip.0,
                    stream_version: 0,
                    time: self.at,
                    prev_hash: self.tip.1,
                },
            )
            .unwrap();
            self.tip = (entry.seq + 1, entry.hash());
            self.state.apply(&entry);
        }
    }

    /// Decides `command` and folds what it decided; panics on a rejection.
    fn decided(&mut self, actor: &str, command: &Command) -> Vec<(String, Payload)> {
        let decision = decide(&self.state, actor, self.at, command)
            .unwrap_or_else(|r| panic!("{command:?} was refused: {r}"));
        self.record(actor, decision.events.clone());
        decision.events
    }

    fn when(&self, actor: &str, command: &Command) -> Result<Decision, Rejection> {
        decide(&self.state, actor, self.at, command)
    }

    /// Evidence, a NON_CRITICAL submission and one CAB approval; returns the deployment id.
    fn approved_deployment(&mut self) -> Uuid {
        let deployment_id = self.pending_deployment();
        self.decided(
            "carol",
            &self.vote("carol", deployment_id, true, "reviewed"),
        );
        deployment_id
    }

    /// Evidence and a NON_CRITICAL submission waiting for the CAB; returns the deployment id.
    fn pending_deployment(&mut self) -> Uuid {
        let evidence_id = self.id();
        self.decided(
            "dev",
            &record_evidence_signed_by_label(evidence_id, document(ARTIFACT_SHA256)),
        );
        let deployment_id = self.id();
        self.decided(
            "dev",
            &Command::Submit {
                deployment_id,
                request: submission(evidence_id),
            },
        );
        deployment_id
    }
}

fn document(artifact_sha256: &str) -> EvidenceDocument {
    EvidenceDocument {
        artifacts: vec![Artifact {
            name: "app.msi".into(),
            sha256: artifact_sha256.into(),
            size: 10,
        }],
        sbom: None,
        tests_passed: 10,
        tests_failed: 0,
        scan_critical_findings: 0,
        generated_by: PRODUCER.into(),
        packaged_by: "packager".into(),
        requires_admin: Some(false),
    }
}

fn submission(evidence_id: Uuid) -> SubmitDeployment {
    SubmitDeployment {
        correlation_id: format!("c-{evidence_id}"),
        app_name: "PDF reader".into(),
        app_version: "1".into(),
        requires_admin: false,
        target_user_count: 5,
        cmdb: BTreeMap::new(),
        evidence_id,
    }
}

fn types(events: &[(String, Payload)]) -> Vec<&'static str> {
    events
        .iter()
        .map(|(_, payload)| match payload {
            Payload::DeploymentSubmitted(_) => "submitted",
            Payload::DeploymentRoutedToCab(_) => "routed_to_cab",
            Payload::DeploymentAutoApproved(_) => "auto_approved",
            Payload::CabVoteCast(_) => "vote_cast",
            Payload::DeploymentApproved(_) => "approved",
            Payload::DeploymentReleased(_) => "released",
            Payload::DeploymentReleaseBlocked(_) => "release_blocked",
            Payload::SbomPresented(_) => "sbom_presented",
            _ => "other",
        })
        .collect()
}

#[test]
fn at_zero_thresholds_a_submission_goes_to_the_cab() {
    let mut given = Given::genesis();
    let evidence_id = given.id();
    given.decided(
        "dev",
        &record_evidence_signed_by_label(evidence_id, document(ARTIFACT_SHA256)),
    );
    let deployment_id = given.id();
    let decision = given
        .when(
            "dev",
            &Command::Submit {
                deployment_id,
                request: submission(evidence_id),
            },
        )
        .unwrap();
    assert_eq!(types(&decision.events), ["submitted", "routed_to_cab"]);
}

#[test]
fn a_vote_by_someone_outside_the_cab_is_refused() {
    let mut given = Given::genesis();
    let deployment_id = given.approved_deployment();
    let refused = given.when(
        "mallory",
        &given.vote("carol", deployment_id, true, "trust me"),
    );
    assert!(
        matches!(refused, Err(Rejection::Forbidden(_))),
        "{refused:?}"
    );
}

#[test]
fn a_substituted_artifact_is_blocked_and_the_right_one_released() {
    let mut given = Given::genesis();
    let deployment_id = given.approved_deployment();
    let release = |sha: &str| {
        Command::Release(PresentedRelease {
            deployment_id,
            artifact_sha256: sha.into(),
            artifact_size: 10,
            sbom_sha256: None,
        })
    };
    let blocked = given.when("agent", &release(&"b".repeat(64))).unwrap();
    assert_eq!(types(&blocked.events), ["release_blocked"]);
    let Payload::DeploymentReleaseBlocked(DeploymentReleaseBlocked(verdict)) = &blocked.events[0].1
    else {
        unreachable!()
    };
    assert!(verdict
        .checks
        .iter()
        .any(|c| c.reason_code.as_deref() == Some("ARTIFACT_HASH_MISMATCH")));
    let released = given.when("agent", &release(ARTIFACT_SHA256)).unwrap();
    assert_eq!(types(&released.events), ["released"]);
}

#[test]
fn an_sbom_is_presented_only_for_a_known_unreleased_deployment_with_a_sha256() {
    let mut given = Given::genesis();
    let deployment_id = given.approved_deployment();
    let present = |id: Uuid, sha: &str| {
        Command::PresentSbom(SbomPresented {
            deployment_id: id,
            sbom_sha256: sha.into(),
            size: 1,
        })
    };
    assert!(matches!(
        given.when("agent", &present(Uuid::from_u128(999), ARTIFACT_SHA256)),
        Err(Rejection::Unknown { .. })
    ));
    assert!(matches!(
        given.when("agent", &present(deployment_id, "not hex")),
        Err(Rejection::Invalid { .. })
    ));
    given.decided(
        "agent",
        &Command::Release(PresentedRelease {
            deployment_id,
            artifact_sha256: ARTIFACT_SHA256.into(),
            artifact_size: 10,
            sbom_sha256: None,
        }),
    );
    assert!(matches!(
        given.when("agent", &present(deployment_id, ARTIFACT_SHA256)),
        Err(Rejection::Conflict(_))
    ));
}

#[test]
fn a_principal_holds_one_token_in_force() {
    let mut given = Given::genesis();
    let grant = |sha: &str| {
        Command::GrantAccess(events::catalogue::access::AccessGranted {
            principal: "carol".into(),
            roles: vec!["cab".into()],
            token_sha256: sha.into(),
        })
    };
    given.decided("system:cli", &grant(&"1".repeat(64)));
    // A second token under carol's name would vote as carol.
    assert!(matches!(
        given.when("system:cli", &grant(&"2".repeat(64))),
        Err(Rejection::Conflict(_))
    ));
    given.decided(
        "system:cli",
        &Command::RevokeAccess(events::catalogue::access::AccessRevoked {
            principal: "carol".into(),
            token_sha256: "1".repeat(64),
            reason: "rotated".into(),
        }),
    );
    given.decided("system:cli", &grant(&"2".repeat(64)));
}

#[test]
fn names_that_look_like_a_known_one_are_refused() {
    let given = Given::genesis();
    // Cyrillic "а" in place of the Latin one: carol's look-alike.
    let lookalike = "c\u{0430}rol";
    assert!(matches!(
        given.when(
            "ada",
            &Command::AddCabMember {
                member: lookalike.into(),
                ssh_key: Some(public_line("dora")),
            }
        ),
        Err(Rejection::Conflict(_))
    ));
    assert!(matches!(
        given.when(
            "ada",
            &Command::AddCabMember {
                member: "dora\u{200B}".into(),
                ssh_key: Some(public_line("dora")),
            }
        ),
        Err(Rejection::Invalid { .. })
    ));
    let mut given = given;
    given.decided(
        "system:cli",
        &Command::GrantAccess(events::catalogue::access::AccessGranted {
            principal: "carol".into(),
            roles: vec!["cab".into()],
            token_sha256: "1".repeat(64),
        }),
    );
    assert!(matches!(
        given.when(
            "system:cli",
            &Command::GrantAccess(events::catalogue::access::AccessGranted {
                principal: "CAROL".into(),
                roles: vec!["cab".into()],
                token_sha256: "2".repeat(64),
            })
        ),
        Err(Rejection::Conflict(_))
    ));
}

fn hex64() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<u8>(), 32).prop_map(hex::encode)
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9 ,.-]{0,39}"
}

/// Commands a decision records as its first event: votes and raised classes on a deployment
/// waiting for the CAB, evidence, and an SBOM and a release for an approved deployment.
fn command(pending: Uuid, deployment_id: Uuid) -> impl Strategy<Value = Command> {
    prop_oneof![
        (any::<bool>(), text()).prop_map(move |(approve, rationale)| Command::Vote {
            deployment_id: pending,
            approve,
            rationale,
            signature: None,
        }),
        (hex64(), 1..1_000_000u64, 0..50u64, 0..5u64, text()).prop_map(
            |(sha, size, passed, critical, packaged_by)| record_evidence_signed_by_label(
                Uuid::from_u128(77),
                EvidenceDocument {
                    artifacts: vec![Artifact {
                        name: "a.msi".into(),
                        sha256: sha,
                        size,
                    }],
                    tests_passed: passed,
                    scan_critical_findings: critical,
                    packaged_by,
                    ..document(ARTIFACT_SHA256)
                },
            )
        ),
        (hex64(), 1..1_000_000u64).prop_map(move |(sha, size)| Command::PresentSbom(
            SbomPresented {
                deployment_id,
                sbom_sha256: sha,
                size,
            }
        )),
        (hex64(), 1..1_000_000u64, proptest::option::of(hex64())).prop_map(
            move |(sha, size, sbom)| Command::Release(PresentedRelease {
                deployment_id,
                artifact_sha256: sha,
                artifact_size: size,
                sbom_sha256: sbom,
            })
        ),
        (text(), text()).prop_map(move |(reason, to_words)| Command::RaiseClassification {
            deployment_id: pending,
            to: if to_words.len() % 2 == 0 {
                BlastRadiusClass::BusinessCritical
            } else {
                BlastRadiusClass::CriticalInfrastructure
            },
            reason,
        }),
    ]
}

/// The auditor rebuilds each request from its decision's first event: that must give back
/// exactly the command decided, for any command of these kinds.
#[test]
fn command_of_inverts_decide() {
    let mut given = Given::genesis();
    let pending = given.pending_deployment();
    let deployment_id = given.approved_deployment();
    let config = ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    // A fixed seed: the same cases on every run, so CI never meets a case a developer did not.
    let rng = proptest::test_runner::TestRng::deterministic_rng(config.rng_algorithm);
    let mut runner = proptest::test_runner::TestRunner::new_with_rng(config, rng);
    runner
        .run(&command(pending, deployment_id), |command| {
            let actor = match &command {
                Command::Vote { .. } | Command::RaiseClassification { .. } => "chen",
                Command::RecordEvidence { .. } => "dev",
                _ => "agent",
            };
            let command = match command {
                Command::Vote {
                    deployment_id,
                    approve,
                    rationale,
                    ..
                } => given.vote(actor, deployment_id, approve, &rationale),
                other => other,
            };
            let decision = given.when(actor, &command).unwrap();
            let (_, first) = &decision.events[0];
            prop_assert_eq!(command_of(first), Ok(Some(command)));
            Ok(())
        })
        .unwrap();
}

/// Signs `statement` with `member`'s key, as a client that built it itself would.
fn signed_over(member: &str, statement: &crate::vote_statement::Statement<'_>) -> SignedVote {
    SignedVote::ssh(
        statement.signed_at.to_owned(),
        statement
            .sign(&crate::vote_statement::key_from_label(member))
            .unwrap(),
    )
}

#[test]
fn a_vote_needs_its_members_signature_over_exactly_its_statement() {
    let mut given = Given::genesis();
    let id = given.pending_deployment();
    let other = given.pending_deployment();
    let vote = |signature| Command::Vote {
        deployment_id: id,
        approve: true,
        rationale: "reviewed".into(),
        signature,
    };
    let forbidden = |r: Result<Decision, Rejection>| matches!(r, Err(Rejection::Forbidden(_)));
    // Unsigned.
    assert!(matches!(
        given.when("chen", &vote(None)),
        Err(Rejection::Invalid {
            field: "signature",
            ..
        })
    ));
    // Signed by another member's key.
    let by_carol = given.signature("carol", id, true, "reviewed");
    assert!(forbidden(given.when("chen", &vote(Some(by_carol)))));
    // Over another statement: another rationale, the other decision, another deployment.
    let other_rationale = given.signature("chen", id, true, "looks fine");
    assert!(forbidden(given.when("chen", &vote(Some(other_rationale)))));
    let rejecting = given.signature("chen", id, false, "reviewed");
    assert!(forbidden(given.when("chen", &vote(Some(rejecting)))));
    let replayed = given.signature("chen", other, true, "reviewed");
    assert!(forbidden(given.when("chen", &vote(Some(replayed)))));
    // For another log.
    let subject = id.to_string();
    let digest = vote_digest(
        &given.state,
        crate::vote_statement::Kind::Deployment,
        &subject,
    )
    .unwrap();
    let signed_at = given.at.to_string();
    let statement = crate::vote_statement::Statement {
        kind: crate::vote_statement::Kind::Deployment,
        origin: "other.example/log",
        subject: &subject,
        digest: &digest,
        approve: true,
        rationale: "reviewed",
        signed_at: &signed_at,
    };
    assert!(forbidden(
        given.when("chen", &vote(Some(signed_over("chen", &statement))))
    ));
    // The same statement for this log is accepted.
    let here = crate::vote_statement::Statement {
        origin: "test.example/policy",
        ..statement
    };
    given.decided("chen", &vote(Some(signed_over("chen", &here))));
}

#[test]
fn a_stale_or_future_signature_is_refused() {
    let mut given = Given::genesis();
    let id = given.pending_deployment();
    let at = given.at;
    for (offset_minutes, accepted) in [(-16, false), (-14, true), (3, false), (1, true)] {
        given.at = Timestamp::from_unix_micros(at.unix_micros() + offset_minutes * 60_000_000);
        let signature = given.signature("chen", id, true, "reviewed");
        given.at = at;
        let decided = given.when(
            "chen",
            &Command::Vote {
                deployment_id: id,
                approve: true,
                rationale: "reviewed".into(),
                signature: Some(signature),
            },
        );
        assert_eq!(
            decided.is_ok(),
            accepted,
            "{offset_minutes} min: {decided:?}"
        );
    }
}

#[test]
fn keys_are_each_members_own_and_revoked_keys_never_return() {
    let mut given = Given::genesis();
    let register = |member: &str, key_of: &str| Command::RegisterMemberKey {
        member: member.into(),
        ssh_key: public_line(key_of),
    };
    // Only the member registers their key, and never someone else's.
    assert!(matches!(
        given.when("ada", &register("chen", "chen-new")),
        Err(Rejection::Forbidden(_))
    ));
    assert!(matches!(
        given.when("chen", &register("chen", "carol")),
        Err(Rejection::Conflict(_))
    ));
    assert!(matches!(
        given.when(
            "chen",
            &Command::RegisterMemberKey {
                member: "chen".into(),
                ssh_key: "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDJ".into(),
            }
        ),
        Err(Rejection::Invalid { .. })
    ));
    assert!(matches!(
        given.when(
            "ada",
            &Command::AddCabMember {
                member: "dora".into(),
                ssh_key: None,
            }
        ),
        Err(Rejection::Invalid {
            field: "ssh_key",
            ..
        })
    ));
    // Revoked: chen cannot vote, and the key never comes back.
    let fingerprint = given.state.member_keys["chen"].fingerprint.clone();
    given.decided(
        "chen",
        &Command::RevokeMemberKey {
            member: "chen".into(),
            fingerprint,
            reason: "laptop lost".into(),
        },
    );
    let id = given.pending_deployment();
    let vote = given.vote("chen", id, true, "reviewed");
    assert!(matches!(
        given.when("chen", &vote),
        Err(Rejection::Forbidden(_))
    ));
    assert!(matches!(
        given.when("chen", &register("chen", "chen")),
        Err(Rejection::Forbidden(_))
    ));
    // A new key of chen's own: votes signed with it count, with the old one they do not.
    given.decided("chen", &register("chen", "chen-new"));
    assert!(matches!(
        given.when("chen", &vote),
        Err(Rejection::Forbidden(_))
    ));
    let subject = id.to_string();
    let signature = sign_vote(
        &given.state,
        &crate::vote_statement::key_from_label("chen-new"),
        (crate::vote_statement::Kind::Deployment, &subject),
        (true, "reviewed"),
        given.at,
    )
    .unwrap();
    given.decided(
        "chen",
        &Command::Vote {
            deployment_id: id,
            approve: true,
            rationale: "reviewed".into(),
            signature: Some(signature),
        },
    );
}

/// Only a model that loosens the one in force needs a backtest: one that raises a threshold or
/// lowers a weight is refused without one; a stricter one is not.
#[test]
fn a_looser_model_needs_a_cited_backtest_and_a_stricter_one_does_not() {
    let given = Given::genesis();
    let mut looser = crate::genesis::risk_model_v1_1();
    looser.version = "1.2".into();
    looser.thresholds.insert(BlastRadiusClass::NonCritical, 10);
    assert!(matches!(
        given.when("ada", &Command::ProposeRiskModel(looser.clone())),
        Err(Rejection::Invalid {
            field: "backtest",
            ..
        })
    ));
    let mut moved = crate::genesis::risk_model_v1_1();
    moved.version = "1.3".into();
    *moved.weights_bp.get_mut("privilege").unwrap() -= 100;
    *moved.weights_bp.get_mut("reach").unwrap() += 100;
    assert!(matches!(
        given.when("ada", &Command::ProposeRiskModel(moved)),
        Err(Rejection::Invalid {
            field: "backtest",
            ..
        })
    ));
    let mut stricter = crate::genesis::risk_model_v1_1();
    stricter.version = "1.4".into();
    stricter.review_date = "2027-12-31".into();
    assert!(given
        .when("ada", &Command::ProposeRiskModel(stricter))
        .is_ok());
    looser.backtest = Some(BacktestCitation {
        log_size: given.tip.0 + 1,
        report_sha256: "ab".repeat(32),
    });
    assert!(matches!(
        given.when("ada", &Command::ProposeRiskModel(looser)),
        Err(Rejection::Invalid {
            field: "backtest.log_size",
            ..
        })
    ));
}

#[path = "insider_tests.rs"]
mod insider;

#[path = "evidence_tests.rs"]
mod evidence;

#[path = "passkey_tests.rs"]
mod passkey_tests;
