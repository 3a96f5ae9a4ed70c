//! The insider property: no sequence of commands by one principal, whatever roles it holds, makes
//! a deployment of a class above NON_CRITICAL approved or released without the signed votes of
//! other members.

use super::*;

/// What the lone insider (carol, a CAB member who also submits) tries.
#[derive(Debug, Clone)]
enum Move {
    /// Evidence and a submission of app `app` with the declared inputs.
    Submit { app: usize, admin: bool, users: u64 },
    /// A signed approval of deployment `k` (a rejection never helps the insider).
    Vote { k: usize },
    /// An exception waiving `control` for deployment `k`, proposed and voted on by carol.
    Exception { k: usize, control: usize },
    /// Break-glass for deployment `k`.
    Breakglass { k: usize },
    /// A release of deployment `k` with the right artifact.
    Release { k: usize },
    /// A new member with a key carol holds, proposed and voted on by carol.
    StuffTheCab,
    /// A direct add of a member (the admin's way before the CAB votes).
    SeatDirectly,
    /// A looser risk model, proposed, voted on and activated by carol.
    LooserModel,
    /// A registry entry lowering Windows Update, proposed and voted on by carol.
    LowerTheRegistry,
    /// Raising deployment `k` to BUSINESS_CRITICAL.
    Raise { k: usize },
    /// An evidence producer with a key carol holds, then evidence it signs saying app `app`
    /// needs no admin rights, and a submission of it.
    OwnProducer { app: usize },
}

const APPS: [&str; 5] = ["Windows Update", "SAP GUI", "Slack", "PDF reader", "Tetris"];
const CONTROLS: [&str; 2] = ["approval", "blast_radius"];

fn a_move() -> impl Strategy<Value = Move> {
    prop_oneof![
        (0..APPS.len(), any::<bool>(), 1..8_000u64).prop_map(|(app, admin, users)| Move::Submit {
            app,
            admin,
            users
        }),
        (0..4usize).prop_map(|k| Move::Vote { k }),
        (0..4usize, 0..CONTROLS.len()).prop_map(|(k, control)| Move::Exception { k, control }),
        (0..4usize).prop_map(|k| Move::Breakglass { k }),
        (0..4usize).prop_map(|k| Move::Release { k }),
        Just(Move::StuffTheCab),
        Just(Move::SeatDirectly),
        Just(Move::LooserModel),
        Just(Move::LowerTheRegistry),
        (0..4usize).prop_map(|k| Move::Raise { k }),
        (0..APPS.len()).prop_map(|app| Move::OwnProducer { app }),
    ]
}

const INSIDER: &str = "carol";

impl Given {
    /// Decides `command` as the insider and folds it if the rules accept it.
    fn attempt(&mut self, command: &Command) {
        if let Ok(decision) = decide(&self.state, INSIDER, self.at, command) {
            self.record(INSIDER, decision.events);
        }
    }

    /// The insider's signed vote on (kind, subject), if the subject exists.
    fn insider_signature(
        &self,
        kind: crate::vote_statement::Kind,
        subject: &str,
        approve: bool,
    ) -> Option<SignedVote> {
        sign_vote(
            &self.state,
            &crate::vote_statement::key_from_label(INSIDER),
            (kind, subject),
            (approve, "mine"),
            self.at,
        )
        .ok()
    }

    /// Submits app `app` with evidence `evidence_id` and the declared inputs, noted with the
    /// class the genesis registry and rules give it.
    fn submit_noted(
        &mut self,
        evidence_id: Uuid,
        (app, admin, users): (usize, bool, u64),
        deployments: &mut Vec<(Uuid, BlastRadiusClass)>,
    ) {
        let deployment_id = self.id();
        let request = SubmitDeployment {
            app_name: APPS[app].into(),
            requires_admin: admin,
            target_user_count: users,
            ..submission(evidence_id)
        };
        let genesis = Given::genesis().state;
        let input = ClassifyInput {
            app_name: request.app_name.clone(),
            requires_admin: admin,
            target_user_count: users,
            cmdb: BTreeMap::new(),
        };
        let policy = genesis.blast_policy.as_ref().expect("genesis policy");
        let reference = registry::classify_submission(&genesis, policy, &input, None).class;
        self.attempt(&Command::Submit {
            deployment_id,
            request,
        });
        deployments.push((deployment_id, reference));
    }

    /// Plays `step`; a submission is noted with the class the genesis registry and rules give
    /// its app (what the insider might try to lower).
    fn play(&mut self, step: &Move, deployments: &mut Vec<(Uuid, BlastRadiusClass)>) {
        use crate::vote_statement::Kind;
        let nth = |k: usize| {
            deployments
                .get(k % deployments.len().max(1))
                .map(|(id, _)| *id)
        };
        match step.clone() {
            Move::Submit { app, admin, users } => {
                let evidence_id = self.id();
                self.attempt(&record_evidence_signed_by_label(
                    evidence_id,
                    EvidenceDocument {
                        requires_admin: Some(admin),
                        ..document(ARTIFACT_SHA256)
                    },
                ));
                self.submit_noted(evidence_id, (app, admin, users), deployments);
            }
            Move::Vote { k } => {
                let Some(id) = nth(k) else { return };
                let signature = self.insider_signature(Kind::Deployment, &id.to_string(), true);
                self.attempt(&Command::Vote {
                    deployment_id: id,
                    approve: true,
                    rationale: "mine".into(),
                    signature,
                });
            }
            Move::Exception { k, control } => {
                let Some(id) = nth(k) else { return };
                let exception_id = self.id();
                self.attempt(&Command::ProposeException {
                    exception_id,
                    control: CONTROLS[control].into(),
                    scope: format!("deployment:{id}"),
                    reason: "mine".into(),
                    expires_at: Timestamp::from_unix_micros(self.at.unix_micros() + 86_400_000_000),
                });
                let signature =
                    self.insider_signature(Kind::Exception, &exception_id.to_string(), true);
                self.attempt(&Command::VoteException {
                    exception_id,
                    approve: true,
                    rationale: "mine".into(),
                    signature,
                });
                // And the old way, naming two others.
                let exception_id = self.id();
                self.attempt(&Command::GrantException {
                    exception_id,
                    control: CONTROLS[control].into(),
                    scope: format!("deployment:{id}"),
                    reason: "mine".into(),
                    approvers: vec![INSIDER.into(), "chen".into()],
                    expires_at: Timestamp::from_unix_micros(self.at.unix_micros() + 86_400_000_000),
                });
            }
            Move::Breakglass { k } | Move::Release { k } => {
                let Some(id) = nth(k) else { return };
                let presented = PresentedRelease {
                    deployment_id: id,
                    artifact_sha256: ARTIFACT_SHA256.into(),
                    artifact_size: 10,
                    sbom_sha256: None,
                };
                self.attempt(&if matches!(step, Move::Release { .. }) {
                    Command::Release(presented)
                } else {
                    Command::Breakglass {
                        presented,
                        justification: "mine".into(),
                        approvers: vec![],
                    }
                });
            }
            Move::StuffTheCab => {
                let proposal_id = self.id();
                self.attempt(&Command::ProposeChange {
                    proposal_id,
                    change: ProposedChange::AddMember {
                        member: "mallory".into(),
                        ssh_key: public_line("mallory"),
                    },
                });
                let signature =
                    self.insider_signature(Kind::Change, &proposal_id.to_string(), true);
                self.attempt(&Command::VoteChange {
                    proposal_id,
                    approve: true,
                    rationale: "mine".into(),
                    signature,
                });
            }
            Move::SeatDirectly => self.attempt(&Command::AddCabMember {
                member: "mallory".into(),
                ssh_key: Some(public_line("mallory")),
            }),
            Move::LooserModel => {
                let mut model = crate::genesis::risk_model_v1_1();
                model.version = format!("9.{}", self.id().as_u128());
                model.review_date = "2027-01-01".into();
                for class in BlastRadiusClass::ALL {
                    if class != BlastRadiusClass::CriticalInfrastructure {
                        model.thresholds.insert(class, 100);
                    }
                }
                let version = model.version.clone();
                self.attempt(&Command::ProposeRiskModel(model));
                let signature = self.insider_signature(Kind::RiskModel, &version, true);
                self.attempt(&Command::VoteRiskModel {
                    version: version.clone(),
                    approve: true,
                    rationale: "mine".into(),
                    signature,
                });
                self.attempt(&Command::ActivateRiskModel { version });
            }
            Move::LowerTheRegistry => {
                let proposal_id = self.id();
                self.attempt(&Command::ProposeRegistryChange {
                    proposal_id,
                    entry: AppEntry {
                        app_id: "windows-update".into(),
                        display_names: vec!["Windows Update".into()],
                        service_tier: "Tier3".into(),
                        criticality: BlastRadiusClass::NonCritical,
                        expected_reach: 1,
                    },
                });
                let signature =
                    self.insider_signature(Kind::RegistryChange, &proposal_id.to_string(), true);
                self.attempt(&Command::VoteRegistryChange {
                    proposal_id,
                    approve: true,
                    rationale: "mine".into(),
                    signature,
                });
            }
            Move::OwnProducer { app } => {
                let producer = format!("{INSIDER}-ci");
                self.attempt(&set_producer_by_label(&producer));
                let evidence_id = self.id();
                self.attempt(&record_evidence_signed_by_label(
                    evidence_id,
                    EvidenceDocument {
                        generated_by: producer,
                        requires_admin: Some(false),
                        ..document(ARTIFACT_SHA256)
                    },
                ));
                self.submit_noted(evidence_id, (app, false, 1), deployments);
            }
            Move::Raise { k } => {
                let Some(id) = nth(k) else { return };
                self.attempt(&Command::RaiseClassification {
                    deployment_id: id,
                    to: BlastRadiusClass::BusinessCritical,
                    reason: "mine".into(),
                });
            }
        }
    }
}

/// Any sequence of the insider's moves leaves every deployment that the genesis registry and
/// rules put above NON_CRITICAL unapproved and unreleased (the other members never act here).
#[test]
fn one_principal_alone_never_approves_or_releases_above_non_critical() {
    let config = ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    // A fixed seed: the same cases on every run, so CI never meets a case a developer did not.
    let rng = proptest::test_runner::TestRng::deterministic_rng(config.rng_algorithm);
    let mut runner = proptest::test_runner::TestRunner::new_with_rng(config, rng);
    runner
        .run(&proptest::collection::vec(a_move(), 1..40), |moves| {
            let mut given = Given::genesis();
            let mut deployments = Vec::new();
            for step in &moves {
                given.play(step, &mut deployments);
                given.at = Timestamp::from_unix_micros(given.at.unix_micros() + 60_000_000);
            }
            for (id, reference) in &deployments {
                let Some(d) = given.state.deployments.get(id) else {
                    continue;
                };
                prop_assert!(
                    *reference == BlastRadiusClass::NonCritical
                        || !matches!(
                            d.status,
                            DeploymentStatus::Approved
                                | DeploymentStatus::AutoApproved
                                | DeploymentStatus::Released
                                | DeploymentStatus::BreakglassReleased
                        ),
                    "{id}: {} (by genesis {}) {:?} after {moves:?}",
                    d.class.as_str(),
                    reference.as_str(),
                    d.status
                );
            }
            Ok(())
        })
        .unwrap();
}
