//! The test world shared by the governance and maturity tests: genesis, an admin, a submitter,
//! a deploy agent, five CAB members and a trusted SBOM key, all created through commands.
#![allow(dead_code)]

use ed25519_dalek::Signer as _;
use events::payloads::*;
use events::Clock as _;
use events::{Durability, Log, LogConfig, ManualClock, Timestamp};
use projections::policy::{
    self, Command, IncidentReport, PresentedRelease, Rejection, SignedVote, SubmitDeployment,
};
use projections::state::DeploymentStatus;
pub use projections::vote_statement::{key_from_label, Kind};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use trustledger::governance::{
    digest_stream, CommandError, Governance, IdSource, Outcome, Principal, Role, CLI_ADMIN,
};
use uuid::Uuid;

pub const DAY: i64 = 86_400_000_000;
/// The CI system whose key signs the world's evidence (derived from its name, `key_from_label`).
pub const PRODUCER: &str = "ci-bot";
pub use projections::policy::{record_evidence_signed_by_label, set_producer_by_label};

/// `member`'s public key line: their key is derived from their name (`key_from_label`).
pub fn key_line(member: &str) -> String {
    key_from_label(member).public_key().to_openssh().unwrap()
}

pub struct World {
    /// The sled store's directory (none for a log kept elsewhere).
    pub _dir: Option<tempfile::TempDir>,
    pub gov: Governance,
    pub clock: ManualClock,
    pub admin: Principal,
    pub dev: Principal,
    pub agent: Principal,
    pub cab: Vec<Principal>,
    pub sbom_key: ed25519_dalek::SigningKey,
}

pub fn hex_sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub const ARTIFACT: &[u8] = b"MZ... the real installer bytes";
pub const SBOM: &[u8] = br#"{"bomFormat":"CycloneDX","components":[]}"#;

/// Given: genesis, an admin, a submitter, a deploy agent, five CAB members and a trusted SBOM key.
pub fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let location = events::StoreLocation::Directory(dir.path().to_owned());
    world_at(&location, Some(dir))
}

/// The clock every world runs on, and a log config on it.
pub fn world_clock() -> (ManualClock, LogConfig) {
    let clock = ManualClock::new(Timestamp::parse("2026-02-10T09:00:00.000000Z").unwrap());
    let config = LogConfig {
        durability: Durability::FlushOnlyMayLoseOnPowerFailure,
        clock: Arc::new(clock.clone()),
        ..LogConfig::default()
    };
    (clock, config)
}

/// [`world`] with its log at `location`.
pub fn world_at(location: &events::StoreLocation, dir: Option<tempfile::TempDir>) -> World {
    let (clock, config) = world_clock();
    let log = Log::open_at(location, config).unwrap();
    let gov = Governance::open(log, Arc::new(clock.clone()), IdSource::Seeded(7)).unwrap();
    let admin = Principal::new("ada", &[Role::Admin]);
    let cab: Vec<Principal> = ["carol", "chen", "cyril", "cora", "cass"]
        .iter()
        .map(|n| Principal::new(*n, &[Role::Cab]))
        .collect();
    // Every principal acts with a token granted in the log, as through the API: the audit
    // finds an actor who held none.
    let cli = Principal::new(CLI_ADMIN, &[Role::Admin]);
    for (principal, roles) in [
        ("ada", &["admin"][..]),
        ("dev", &["submitter"]),
        ("agent", &["deployer"]),
        ("carol", &["cab", "submitter"]),
        ("chen", &["cab"]),
        ("cyril", &["cab"]),
        ("cora", &["cab"]),
        ("cass", &["cab"]),
        ("irene", &["incident-reporter"]),
        ("ops", &["operator"]),
    ] {
        let grant = events::catalogue::access::AccessGranted {
            principal: principal.into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            token_sha256: trustledger::governance::new_token().1,
        };
        gov.execute(&cli, &Command::GrantAccess(grant)).unwrap();
    }
    for member in &cab {
        gov.execute(
            &admin,
            &Command::AddCabMember {
                member: member.name.clone(),
                ssh_key: Some(key_line(&member.name)),
            },
        )
        .unwrap();
    }
    let sbom_key = ed25519_dalek::SigningKey::from_bytes(&[11; 32]);
    gov.execute(
        &admin,
        &Command::TrustSigningKey(SigningKeyTrusted {
            key_id: "build-2026".into(),
            public_key_hex: hex::encode(sbom_key.verifying_key().as_bytes()),
            owner: "build system".into(),
        }),
    )
    .unwrap();
    gov.execute(&admin, &set_producer_by_label(PRODUCER))
        .unwrap();
    World {
        _dir: dir,
        gov,
        clock,
        admin,
        dev: Principal::new("dev", &[Role::Submitter]),
        agent: Principal::new("agent", &[Role::Deployer]),
        cab,
        sbom_key,
    }
}

impl World {
    pub fn evidence(&self, signed: bool) -> Uuid {
        let signature = signed.then(|| SbomSignature {
            key_id: "build-2026".into(),
            signature_hex: hex::encode(
                self.sbom_key
                    .sign(&sbom_signing_message(&hex_sha(SBOM)))
                    .to_bytes(),
            ),
        });
        let id = self.gov.new_id();
        let document = EvidenceDocument {
            artifacts: vec![Artifact {
                name: "app.msi".into(),
                sha256: hex_sha(ARTIFACT),
                size: ARTIFACT.len() as u64,
            }],
            sbom: Some(Sbom {
                format: "CycloneDX-1.5".into(),
                sha256: hex_sha(SBOM),
                signature,
            }),
            tests_passed: 120,
            tests_failed: 0,
            scan_critical_findings: 0,
            generated_by: PRODUCER.into(),
            packaged_by: "packager".into(),
            requires_admin: Some(false),
        };
        self.gov
            .execute(&self.dev, &record_evidence_signed_by_label(id, document))
            .unwrap();
        id
    }

    pub fn request(
        &self,
        app: &str,
        admin: bool,
        users: u64,
        evidence_id: Uuid,
    ) -> SubmitDeployment {
        SubmitDeployment {
            correlation_id: format!("corr-{app}-{users}-{evidence_id}"),
            app_name: app.into(),
            app_version: "1.0".into(),
            requires_admin: admin,
            target_user_count: users,
            cmdb: BTreeMap::new(),
            evidence_id,
        }
    }

    pub fn submit(&self, app: &str, admin: bool, users: u64) -> Uuid {
        let evidence = self.evidence(true);
        let request = self.request(app, admin, users, evidence);
        let id = self.gov.new_id();
        self.gov
            .execute(
                &self.dev,
                &Command::Submit {
                    deployment_id: id,
                    request,
                },
            )
            .unwrap();
        id
    }

    pub fn vote(&self, member: usize, id: Uuid, approve: bool) -> Result<Outcome, CommandError> {
        let subject = id.to_string();
        // An unknown deployment has no statement to sign: the vote goes unsigned, to be refused.
        let signature = self.try_sign(
            &self.cab[member].name,
            (Kind::Deployment, &subject),
            approve,
            "reviewed",
        );
        self.gov.execute(
            &self.cab[member],
            &Command::Vote {
                deployment_id: id,
                approve,
                rationale: "reviewed".into(),
                signature,
            },
        )
    }

    /// Member `proposer` proposes an exception; then each of `approvers` approves it with a
    /// signed vote. Returns its id, or the first refusal.
    pub fn exception(
        &self,
        proposer: usize,
        approvers: &[usize],
        (control, scope): (&str, &str),
        expires_at: Timestamp,
    ) -> Result<Uuid, CommandError> {
        let exception_id = self.gov.new_id();
        self.gov.execute(
            &self.cab[proposer],
            &Command::ProposeException {
                exception_id,
                control: control.into(),
                scope: scope.into(),
                reason: "vendor ships unsigned SBOMs until Q2".into(),
                expires_at,
            },
        )?;
        for &member in approvers {
            self.vote_exception(member, exception_id, true)?;
        }
        Ok(exception_id)
    }

    /// Member `proposer` proposes a change to the CAB or its policy; then each of `approvers`
    /// approves it with a signed vote. Returns its id, or the first refusal.
    pub fn change(
        &self,
        proposer: usize,
        approvers: &[usize],
        change: ProposedChange,
    ) -> Result<Uuid, CommandError> {
        let proposal_id = self.gov.new_id();
        self.gov.execute(
            &self.cab[proposer],
            &Command::ProposeChange {
                proposal_id,
                change,
            },
        )?;
        for &member in approvers {
            self.vote_change(member, proposal_id, true)?;
        }
        Ok(proposal_id)
    }

    /// Member `member`'s signed vote on a proposed change.
    pub fn vote_change(
        &self,
        member: usize,
        proposal_id: Uuid,
        approve: bool,
    ) -> Result<Outcome, CommandError> {
        let subject = proposal_id.to_string();
        let name = &self.cab[member].name;
        let signature = self.try_sign(name, (Kind::Change, &subject), approve, "agreed");
        self.gov.execute(
            &self.cab[member],
            &Command::VoteChange {
                proposal_id,
                approve,
                rationale: "agreed".into(),
                signature,
            },
        )
    }

    /// Member `member`'s signed vote on a proposed exception.
    pub fn vote_exception(
        &self,
        member: usize,
        exception_id: Uuid,
        approve: bool,
    ) -> Result<Outcome, CommandError> {
        let subject = exception_id.to_string();
        let name = &self.cab[member].name;
        let signature = self.try_sign(name, (Kind::Exception, &subject), approve, "agreed");
        self.gov.execute(
            &self.cab[member],
            &Command::VoteException {
                exception_id,
                approve,
                rationale: "agreed".into(),
                signature,
            },
        )
    }

    /// Member `member` breaks the glass for `id`, presenting the right artifact and SBOM.
    pub fn breakglass(&self, member: usize, id: Uuid) -> Result<Outcome, CommandError> {
        self.gov.execute(
            &self.cab[member],
            &Command::Breakglass {
                presented: PresentedRelease {
                    deployment_id: id,
                    artifact_sha256: hex_sha(ARTIFACT),
                    artifact_size: ARTIFACT.len() as u64,
                    sbom_sha256: Some(hex_sha(SBOM)),
                },
                justification: "zero-day actively exploited".into(),
                approvers: Vec::new(),
            },
        )
    }

    /// Member `member`'s signed review of the break-glass release of `id`.
    pub fn review(
        &self,
        member: usize,
        id: Uuid,
        justified: bool,
    ) -> Result<Outcome, CommandError> {
        let subject = id.to_string();
        let name = &self.cab[member].name;
        let findings = "CVE confirmed";
        let signature = self.try_sign(
            name,
            (Kind::BreakglassReview, &subject),
            justified,
            findings,
        );
        self.gov.execute(
            &self.cab[member],
            &Command::VoteBreakglassReview {
                deployment_id: id,
                justified,
                findings: findings.into(),
                signature,
            },
        )
    }

    /// `member`'s signature (with their key, derived from their name) on a vote, now.
    pub fn sign(
        &self,
        member: &str,
        target: (Kind, &str),
        approve: bool,
        rationale: &str,
    ) -> SignedVote {
        self.try_sign(member, target, approve, rationale)
            .expect("a known subject")
    }

    /// [`World::sign`], or `None` for an unknown subject.
    /// Cites, in `model`, its backtest over the log as it is now (what a looser model needs).
    pub fn cite_backtest(&self, model: &mut RiskModelProposed) {
        model.backtest = Some(replay::backtest::cite(self.gov.log(), model).unwrap().0);
    }

    pub fn try_sign(
        &self,
        member: &str,
        target: (Kind, &str),
        approve: bool,
        rationale: &str,
    ) -> Option<SignedVote> {
        let at = self.gov.current_time();
        self.gov
            .with_state(|s| {
                policy::sign_vote(s, &key_from_label(member), target, (approve, rationale), at)
            })
            .ok()
    }

    pub fn release(
        &self,
        id: Uuid,
        artifact: &[u8],
        sbom: Option<&[u8]>,
    ) -> Result<Outcome, CommandError> {
        let (artifact_sha256, artifact_size) =
            digest_stream(artifact, trustledger::governance::ARTIFACT_BYTES_MAX).unwrap();
        let presented = PresentedRelease {
            deployment_id: id,
            artifact_sha256,
            artifact_size,
            sbom_sha256: sbom.map(hex_sha),
        };
        self.gov.execute(&self.agent, &Command::Release(presented))
    }

    pub fn last_payload(&self) -> Payload {
        let log = self.gov.log();
        let entry = log.get(log.head().size - 1).unwrap().unwrap();
        Payload::decode(&entry).unwrap().unwrap()
    }

    /// The submission entry's payload (the state keeps only a summary of it).
    pub fn submitted(&self, id: Uuid) -> DeploymentSubmitted {
        let seq = self
            .gov
            .with_state(|s| s.deployments.get(&id).unwrap().history[0]);
        match Payload::decode(&self.gov.log().get(seq).unwrap().unwrap()) {
            Ok(Some(Payload::DeploymentSubmitted(p))) => p,
            other => panic!("history[0] of {id} is not its submission: {other:?}"),
        }
    }

    pub fn status(&self, id: Uuid) -> DeploymentStatus {
        self.gov
            .with_state(|s| s.deployments.get(&id).unwrap().status)
    }

    pub fn size(&self) -> u64 {
        self.gov.log().head().size
    }
}

pub fn rejected<T: std::fmt::Debug>(result: Result<T, CommandError>) -> Rejection {
    match result {
        Err(CommandError::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

pub fn check<'a>(verdict: &'a ReleaseVerdict, name: &str) -> &'a GateCheck {
    verdict.checks.iter().find(|c| c.check == name).unwrap()
}

pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub const APPS: [(&str, bool); 6] = [
    ("PDF reader", false),
    ("Slack", false),
    ("SAP GUI", false),
    ("Antivirus", true),
    ("Zoom", false),
    ("Screen recorder", false),
];

/// A random history of `steps` commands (some refused, as in life) through the real service.
pub fn random_history(seed: u64, steps: u32) -> World {
    continue_history(world(), seed, steps)
}

/// `steps` more random commands on `w`.
pub fn continue_history(w: World, seed: u64, steps: u32) -> World {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let reporter = Principal::new("irene", &[Role::IncidentReporter]);
    let operator = Principal::new("ops", &[Role::Operator]);
    for _ in 0..steps {
        w.clock
            .advance_micros(i64::try_from(rng.below(12 * 3_600_000_000)).unwrap());
        let deployments: Vec<_> = w
            .gov
            .with_state(|s| s.deployments.iter().map(|(id, d)| (id, d.status)).collect());
        let pick = |rng: &mut Rng, status: DeploymentStatus| {
            let matching: Vec<_> = deployments
                .iter()
                .filter(|(_, s)| *s == status)
                .map(|(id, _)| *id)
                .collect();
            (!matching.is_empty())
                .then(|| matching[usize::try_from(rng.below(matching.len() as u64)).unwrap()])
        };
        match rng.below(10) {
            0..=2 => {
                let (app, admin) = APPS[usize::try_from(rng.below(APPS.len() as u64)).unwrap()];
                w.submit(app, admin, 1 + rng.below(20_000));
            }
            3..=5 => {
                if let Some(id) = pick(&mut rng, DeploymentStatus::PendingCab) {
                    let _ = w.vote(
                        usize::try_from(rng.below(5)).unwrap(),
                        id,
                        rng.below(10) != 0,
                    );
                }
            }
            6 | 7 => {
                if let Some(id) = pick(&mut rng, DeploymentStatus::Approved) {
                    let artifact: &[u8] = if rng.below(20) == 0 {
                        b"swapped"
                    } else {
                        ARTIFACT
                    };
                    w.release(id, artifact, Some(SBOM)).unwrap();
                }
            }
            8 => {
                if let Some(id) = pick(&mut rng, DeploymentStatus::Released) {
                    let severity = [Severity::P1, Severity::P2, Severity::P3, Severity::P4]
                        [usize::try_from(rng.below(4)).unwrap()];
                    let report = IncidentReport {
                        incident_id: w.gov.new_id(),
                        deployment_id: id,
                        severity,
                        incident_date: w.clock.now(),
                        affected_user_count: rng.below(500),
                        downtime_minutes: rng.below(300),
                        business_impact_usd: format!(
                            "{}.{:02}",
                            rng.below(100_000),
                            rng.below(100)
                        ),
                        preventable: rng.below(2) == 0,
                        preventability_notes: String::new(),
                        control_improvements: vec![],
                    };
                    w.gov
                        .execute(&reporter, &Command::ReportIncident(report))
                        .unwrap();
                }
            }
            _ => {
                w.gov
                    .execute(
                        &operator,
                        &Command::EvaluateMaturity {
                            strict: rng.below(2) == 0,
                        },
                    )
                    .unwrap();
            }
        }
    }
    w
}
