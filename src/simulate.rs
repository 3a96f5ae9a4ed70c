//! `trustledger simulate`: a realistic, deterministic history generated through the same
//! commands and rules the service runs (never by writing entries directly).
//!
//! A discrete-event simulation over a simulated clock: deployments arrive through the week; CAB
//! members review them after realistic delays (occasionally rejecting); approved deployments are
//! released with their real artifact bytes (a few swapped artifacts and tampered SBOMs, which the
//! gate blocks, then a clean retry); incidents follow releases with a likelihood that grows with
//! the deployment's true risk; maturity is evaluated weekly and progression goes to two CAB
//! members; in the week after the first progression a loosened risk model is proposed with a
//! backtest as its calibration evidence, approved and activated; and one week late in the run has
//! an incident spike that forces a regression. The same seed always gives the same log.

use crate::governance::{CommandError, Governance, Outcome, Principal, Role};
use ed25519_dalek::Signer as _;
use events::payloads::*;
use events::{Clock as _, ManualClock, Timestamp};
use projections::maturity::READY_TO_PROGRESS;
use projections::policy::{
    self, record_evidence_signed_by_label, set_producer_by_label, Command, IncidentReport,
    PresentedRelease, SignedVote, SubmitDeployment,
};
use projections::state::DeploymentStatus;
use projections::vote_statement;
use sha2::{Digest as _, Sha256};
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use uuid::Uuid;

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;

/// How to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationConfig {
    /// Weeks to simulate.
    pub weeks: u32,
    /// Deployments submitted per week.
    pub per_week: u32,
    /// Seed (the same seed gives the same log).
    pub seed: u64,
    /// Incident probability of a typical release, in basis points (the true risk scales it).
    pub incident_rate_bp: u32,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        // The seed's roadmap: 100 deployments a week for 16 weeks.
        Self {
            weeks: 16,
            per_week: 100,
            seed: 1,
            incident_rate_bp: 40,
        }
    }
}

/// One week's figures, for the closing table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeekRow {
    /// Week number, from 1.
    pub week: u32,
    /// Deployments released.
    pub released: u64,
    /// Of those, auto-approved.
    pub auto_approved: u64,
    /// Releases blocked by the gate.
    pub blocked: u64,
    /// Incidents by severity (P1..P4).
    pub incidents: [u64; 4],
    /// Incident rate of the level window at week end, with Wilson interval, as evaluated.
    pub rate: String,
    /// Maturity level at week end.
    pub level: u32,
}

/// What happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimulationReport {
    /// Week by week.
    pub weeks: Vec<WeekRow>,
    /// Entries in the log.
    pub entries: u64,
    /// Releases blocked per reason code.
    pub blocked_by_reason: BTreeMap<String, u64>,
    /// Level changes: (week, from, to, reason).
    pub level_changes: Vec<(u32, u32, u32, String)>,
    /// The model versions activated: (week, version).
    pub models: Vec<(u32, String)>,
}

struct App {
    name: &'static str,
    admin: bool,
    users: (u64, u64),
    /// Relative true risk (100 = typical).
    risk: u64,
}

const APPS: &[App] = &[
    App {
        name: "Windows Update",
        admin: true,
        users: (5_000, 20_000),
        risk: 220,
    },
    App {
        name: "Antivirus Definitions",
        admin: true,
        users: (5_000, 20_000),
        risk: 180,
    },
    App {
        name: "Cisco AnyConnect VPN",
        admin: true,
        users: (1_000, 8_000),
        risk: 200,
    },
    App {
        name: "PKI Enrollment Agent",
        admin: true,
        users: (200, 2_000),
        risk: 160,
    },
    App {
        name: "SAP GUI",
        admin: false,
        users: (300, 3_000),
        risk: 150,
    },
    App {
        name: "Salesforce Desktop",
        admin: false,
        users: (200, 2_500),
        risk: 120,
    },
    App {
        name: "Trading Platform",
        admin: true,
        users: (50, 400),
        risk: 250,
    },
    App {
        name: "Payroll Client",
        admin: false,
        users: (20, 200),
        risk: 130,
    },
    App {
        name: "MS Office",
        admin: true,
        users: (2_000, 15_000),
        risk: 110,
    },
    App {
        name: "Slack",
        admin: false,
        users: (500, 4_000),
        risk: 70,
    },
    App {
        name: "Zoom",
        admin: false,
        users: (500, 4_000),
        risk: 70,
    },
    App {
        name: "Microsoft Teams",
        admin: false,
        users: (1_000, 6_000),
        risk: 80,
    },
    App {
        name: "Google Chrome",
        admin: false,
        users: (1_000, 4_900),
        risk: 60,
    },
    App {
        name: "PDF Reader",
        admin: false,
        users: (10, 900),
        risk: 40,
    },
    App {
        name: "Screen Recorder",
        admin: false,
        users: (5, 150),
        risk: 30,
    },
    App {
        name: "7-Zip",
        admin: false,
        users: (10, 600),
        risk: 25,
    },
    App {
        name: "Notepad++",
        admin: false,
        users: (5, 300),
        risk: 20,
    },
    App {
        name: "VLC Player",
        admin: false,
        users: (10, 500),
        risk: 25,
    },
];

/// The simulated CI system that produces and signs evidence.
const PRODUCER: &str = "ci-bot";
const CAB: [&str; 5] = ["cab-alice", "cab-bob", "cab-chen", "cab-dana", "cab-eve"];

/// A deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance_bp(&mut self, bp: u64) -> bool {
        self.below(10_000) < bp
    }
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + i64::try_from(self.below(u64::try_from(hi - lo).unwrap_or(1).max(1))).unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Submit {
        app: usize,
    },
    Vote {
        deployment: Uuid,
        member: usize,
        approve: bool,
    },
    Release {
        deployment: Uuid,
    },
    Incident {
        deployment: Uuid,
        severity: Severity,
    },
    WeekEnd {
        week: u32,
    },
    Progress {
        to_level: u32,
        member: usize,
    },
}

struct Sim<'a> {
    gov: &'a Governance,
    clock: &'a ManualClock,
    rng: Rng,
    queue: BinaryHeap<Reverse<(i64, u64, Action)>>,
    order: u64,
    config: SimulationConfig,
    sbom_key: ed25519_dalek::SigningKey,
    admin: Principal,
    agent: Principal,
    reporter: Principal,
    /// Per deployment: app index, blocked attempts so far, tamper kind for the first attempt.
    /// Per deployment: app index, release attempts, tampering, submission number.
    deployments: BTreeMap<Uuid, (usize, u32, u8, u64)>,
    report: SimulationReport,
    current_week: u32,
    spike_week: u32,
    model_proposed: bool,
}

fn hex_sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn artifact_bytes(app: &str, version: u64) -> Vec<u8> {
    format!("MZ installer for {app} {version}").into_bytes()
}

fn sbom_bytes(app: &str, version: u64) -> Vec<u8> {
    format!("{{\"bomFormat\":\"CycloneDX\",\"component\":\"{app}\",\"version\":{version}}}")
        .into_bytes()
}

impl Sim<'_> {
    fn schedule(&mut self, at: i64, action: Action) {
        self.order += 1;
        self.queue.push(Reverse((at, self.order, action)));
    }

    fn cab(&self, i: usize) -> Principal {
        Principal::new(CAB[i % CAB.len()], &[Role::Cab])
    }

    /// Member `i`'s key: derived from their name, so that a simulation signs reproducibly.
    fn cab_key(i: usize) -> ssh_key::PrivateKey {
        vote_statement::key_from_label(CAB[i % CAB.len()])
    }

    /// Member `i`'s signature on a vote, against the state as it is now.
    fn sign(
        &self,
        i: usize,
        target: (vote_statement::Kind, &str),
        approve: bool,
        rationale: &str,
    ) -> Result<SignedVote, CommandError> {
        let at = self.clock.now();
        Ok(self.gov.with_state(|s| {
            policy::sign_vote(s, &Self::cab_key(i), target, (approve, rationale), at)
        })?)
    }

    /// The organisation's own applications that the genesis registry does not list: one member
    /// proposes each entry, three others approve it with signed votes.
    fn register_local_apps(&self) -> Result<(), CommandError> {
        use BlastRadiusClass::*;
        for (app_id, name, tier, criticality, expected_reach) in [
            (
                "payroll-client",
                "Payroll Client",
                "Tier2",
                BusinessCritical,
                200,
            ),
            (
                "teams",
                "Microsoft Teams",
                "Tier3",
                ProductivityTools,
                1_000,
            ),
            ("chrome", "Google Chrome", "Tier3", ProductivityTools, 1_000),
            ("7-zip", "7-Zip", "Tier3", NonCritical, 100),
            ("notepad-plus-plus", "Notepad++", "Tier3", NonCritical, 50),
            ("vlc", "VLC Player", "Tier3", NonCritical, 100),
        ] {
            let proposal_id = self.gov.new_id();
            let entry = AppEntry {
                app_id: app_id.into(),
                display_names: vec![name.into()],
                service_tier: tier.into(),
                criticality,
                expected_reach,
            };
            self.execute(
                &self.cab(0),
                &Command::ProposeRegistryChange { proposal_id, entry },
            )?;
            let subject = proposal_id.to_string();
            for member in [1, 2, 3] {
                let rationale = "in the CMDB; owner confirmed";
                let target = (vote_statement::Kind::RegistryChange, subject.as_str());
                let signature = self.sign(member, target, true, rationale)?;
                self.execute(
                    &self.cab(member),
                    &Command::VoteRegistryChange {
                        proposal_id,
                        approve: true,
                        rationale: rationale.into(),
                        signature: Some(signature),
                    },
                )?;
            }
        }
        Ok(())
    }

    fn row(&mut self) -> &mut WeekRow {
        let week = self.current_week;
        &mut self.report.weeks[usize::try_from(week.saturating_sub(1)).unwrap_or(0)]
    }

    fn execute(&self, who: &Principal, command: &Command) -> Result<Outcome, CommandError> {
        self.gov.execute(who, command)
    }

    fn submit(&mut self, app_index: usize) -> Result<(), CommandError> {
        let app = &APPS[app_index];
        let n = self.order;
        let developer =
            Principal::new(format!("dev-{}", self.rng.below(8) + 1), &[Role::Submitter]);
        let (artifact, sbom) = (artifact_bytes(app.name, n), sbom_bytes(app.name, n));
        let sbom_doc = match self.rng.below(100) {
            0..=3 => None,
            4..=5 => Some(Sbom {
                format: "CycloneDX-1.5".into(),
                sha256: hex_sha(&sbom),
                signature: None,
            }),
            _ => Some(Sbom {
                format: "CycloneDX-1.5".into(),
                sha256: hex_sha(&sbom),
                signature: Some(SbomSignature {
                    key_id: "build-2026".into(),
                    signature_hex: hex::encode(
                        self.sbom_key
                            .sign(&sbom_signing_message(&hex_sha(&sbom)))
                            .to_bytes(),
                    ),
                }),
            }),
        };
        let document = EvidenceDocument {
            artifacts: vec![Artifact {
                name: format!("{}.msi", app.name.replace(' ', "-")),
                sha256: hex_sha(&artifact),
                size: artifact.len() as u64,
            }],
            sbom: sbom_doc,
            tests_passed: 50 + self.rng.below(400),
            tests_failed: u64::from(self.rng.chance_bp(300)),
            scan_critical_findings: u64::from(self.rng.chance_bp(200)),
            generated_by: PRODUCER.into(),
            packaged_by: "packager".into(),
            requires_admin: Some(app.admin),
        };
        let evidence_id = self.gov.new_id();
        // The CI system signs with a key derived from its name, like the CAB's.
        self.execute(
            &developer,
            &record_evidence_signed_by_label(evidence_id, document),
        )?;
        let deployment_id = self.gov.new_id();
        let users = app.users.0 + self.rng.below(app.users.1 - app.users.0);
        let request = SubmitDeployment {
            correlation_id: format!("sim-{n}"),
            app_name: app.name.into(),
            app_version: format!("{}.{}", 1 + n / 1000, n % 1000),
            requires_admin: app.admin,
            target_user_count: users,
            cmdb: BTreeMap::new(),
            evidence_id,
        };
        self.execute(
            &developer,
            &Command::Submit {
                deployment_id,
                request,
            },
        )?;
        // 1% swapped artifacts, 1% tampered SBOMs on the first release attempt.
        let tamper = match self.rng.below(100) {
            0 => 1,
            1 => 2,
            _ => 0,
        };
        self.deployments
            .insert(deployment_id, (app_index, 0, tamper, n));
        let now = self.clock.now().unix_micros();
        let (status, quorum) = self.gov.with_state(|s| {
            let d = s.deployments.get(&deployment_id).expect("just submitted");
            (d.status, s.quorum(d.class))
        });
        if status == DeploymentStatus::AutoApproved {
            let at = now + self.rng.between(HOUR, 6 * HOUR);
            self.schedule(
                at,
                Action::Release {
                    deployment: deployment_id,
                },
            );
            return Ok(());
        }
        let first = usize::try_from(self.rng.below(CAB.len() as u64)).unwrap_or(0);
        let mut last_vote = now;
        for k in 0..usize::try_from(quorum).unwrap_or(1) {
            let at = now + self.rng.between(HOUR, 48 * HOUR);
            last_vote = last_vote.max(at);
            let approve = !self.rng.chance_bp(300);
            self.schedule(
                at,
                Action::Vote {
                    deployment: deployment_id,
                    member: first + k,
                    approve,
                },
            );
        }
        let release_at = last_vote + self.rng.between(HOUR, 24 * HOUR);
        self.schedule(
            release_at,
            Action::Release {
                deployment: deployment_id,
            },
        );
        Ok(())
    }

    fn release(&mut self, deployment: Uuid) -> Result<(), CommandError> {
        let status = self
            .gov
            .with_state(|s| s.deployments.get(&deployment).map(|d| d.status))
            .expect("submitted");
        if !matches!(
            status,
            DeploymentStatus::Approved | DeploymentStatus::AutoApproved
        ) {
            return Ok(()); // rejected, or still short of quorum: nothing to release
        }
        let (app_index, attempts, tamper, version) = self.deployments[&deployment];
        let name = APPS[app_index].name;
        let mut artifact = artifact_bytes(name, version);
        let mut sbom = sbom_bytes(name, version);
        if attempts == 0 && tamper == 1 {
            artifact.extend_from_slice(b" + injected payload");
        }
        if attempts == 0 && tamper == 2 {
            sbom.extend_from_slice(b" ");
        }
        let presented = PresentedRelease {
            deployment_id: deployment,
            artifact_sha256: hex_sha(&artifact),
            artifact_size: artifact.len() as u64,
            sbom_sha256: Some(hex_sha(&sbom)),
        };
        self.execute(&self.agent.clone(), &Command::Release(presented))?;
        let d = self
            .gov
            .with_state(|s| s.deployments.get(&deployment).map(Cow::into_owned))
            .expect("submitted");
        if d.status == DeploymentStatus::Released {
            self.row().released += 1;
            if d.auto_approved {
                self.row().auto_approved += 1;
            }
            let risk = APPS[app_index].risk;
            let mut p = u64::from(self.config.incident_rate_bp) * risk / 100;
            if self.current_week == self.spike_week {
                p *= 12;
            }
            if self.rng.chance_bp(p) {
                let severity = match self.rng.below(100) {
                    0..=4 => Severity::P1,
                    5..=19 => Severity::P2,
                    20..=59 => Severity::P3,
                    _ => Severity::P4,
                };
                let at = self.clock.now().unix_micros() + self.rng.between(HOUR, 5 * DAY);
                self.schedule(
                    at,
                    Action::Incident {
                        deployment,
                        severity,
                    },
                );
            }
        } else {
            self.row().blocked += 1;
            let mut reasons = Vec::new();
            if let Some(events::payloads::Payload::DeploymentReleaseBlocked(
                DeploymentReleaseBlocked(v),
            )) = self.last_payload()
            {
                for check in v.checks.iter().filter(|c| c.outcome == CheckOutcome::Fail) {
                    let code = check.reason_code.clone().unwrap_or_default();
                    *self
                        .report
                        .blocked_by_reason
                        .entry(code.clone())
                        .or_default() += 1;
                    reasons.push(code);
                }
            }
            self.deployments
                .insert(deployment, (app_index, attempts + 1, tamper, version));
            let at = self.clock.now().unix_micros() + self.rng.between(HOUR, 8 * HOUR);
            let transient = reasons
                .iter()
                .all(|r| r == "ARTIFACT_HASH_MISMATCH" || r == "SBOM_HASH_MISMATCH");
            if transient && attempts < 2 {
                // The deploy agent fetches the right bytes and tries again.
                self.schedule(at, Action::Release { deployment });
            } else if reasons == ["SBOM_SIGNATURE_INVALID"]
                && attempts == 0
                && self.rng.chance_bp(5_000)
            {
                // The vendor ships unsigned SBOMs: one CAB member proposes a short exception for
                // this deployment, and two others grant it with their signed votes.
                let exception_id = self.gov.new_id();
                let proposal = Command::ProposeException {
                    exception_id,
                    control: "sbom_signature".into(),
                    scope: format!("deployment:{deployment}"),
                    reason: "vendor SBOM is unsigned; signed SBOM promised for the next release"
                        .into(),
                    expires_at: Timestamp::from_unix_micros(
                        self.clock.now().unix_micros() + 7 * DAY,
                    ),
                };
                self.execute(&self.cab(0), &proposal)?;
                let subject = exception_id.to_string();
                for member in [1, 2] {
                    let rationale = "vendor confirmed; integrity checks still apply";
                    let target = (vote_statement::Kind::Exception, subject.as_str());
                    let signature = self.sign(member, target, true, rationale)?;
                    let vote = Command::VoteException {
                        exception_id,
                        approve: true,
                        rationale: rationale.into(),
                        signature: Some(signature),
                    };
                    self.execute(&self.cab(member), &vote)?;
                }
                self.schedule(at, Action::Release { deployment });
            }
            // Otherwise the deployment is abandoned: a failed integrity control is not retried blindly.
        }
        Ok(())
    }

    fn last_payload(&self) -> Option<Payload> {
        let log = self.gov.log();
        let entry = log.get(log.head().size.checked_sub(1)?).ok()??;
        Payload::decode(&entry).ok()?
    }

    fn incident(&mut self, deployment: Uuid, severity: Severity) -> Result<(), CommandError> {
        let report = IncidentReport {
            incident_id: self.gov.new_id(),
            deployment_id: deployment,
            severity,
            incident_date: self.clock.now(),
            affected_user_count: 1 + self.rng.below(2_000),
            downtime_minutes: self.rng.below(600),
            business_impact_usd: format!("{}.{:02}", self.rng.below(250_000), self.rng.below(100)),
            preventable: self.rng.chance_bp(4_000),
            preventability_notes: "found in the weekly incident review".into(),
            control_improvements: vec!["canary ring before broad rollout".into()],
        };
        self.execute(&self.reporter.clone(), &Command::ReportIncident(report))?;
        let index = match severity {
            Severity::P1 => 0,
            Severity::P2 => 1,
            Severity::P3 => 2,
            Severity::P4 => 3,
        };
        self.row().incidents[index] += 1;
        Ok(())
    }

    fn week_end(&mut self) -> Result<(), CommandError> {
        let ops = Principal::new("ops", &[Role::Operator]);
        self.execute(&ops, &Command::EvaluateMaturity { strict: false })?;
        let evaluation = self
            .gov
            .with_state(|s| s.last_evaluation.clone())
            .expect("just evaluated")
            .evaluation;
        let stats = &evaluation.stats;
        let pct = |bp: u32| format!("{}.{:02}%", bp / 100, bp % 100);
        self.row().rate = format!(
            "{} [{}–{}] of {}",
            pct(stats.rate_bp),
            pct(stats.wilson_low_bp),
            pct(stats.wilson_high_bp),
            stats.released
        );
        if evaluation.outcome == READY_TO_PROGRESS {
            let to_level = evaluation.level + 1;
            let now = self.clock.now().unix_micros();
            for (k, delay) in [(1usize, DAY), (3, DAY + 4 * HOUR)] {
                self.schedule(
                    now + delay,
                    Action::Progress {
                        to_level,
                        member: k,
                    },
                );
            }
        }
        // After the first progression: propose a loosened model, backed by a backtest.
        if !self.model_proposed && self.gov.with_state(|s| s.level) >= 1 {
            self.model_proposed = true;
            self.propose_model()?;
        }
        Ok(())
    }

    fn propose_model(&mut self) -> Result<(), CommandError> {
        let mut model = projections::genesis::risk_model_v1_1();
        model.version = "1.2".into();
        model.mode = "CAUTIOUS".into();
        for (class, t) in [
            (BlastRadiusClass::NonCritical, 30),
            (BlastRadiusClass::ProductivityTools, 20),
            (BlastRadiusClass::BusinessCritical, 5),
        ] {
            model.thresholds.insert(class, t);
        }
        let today = self.clock.now().to_string();
        model.effective_date = today[..10].to_owned();
        // Reviewed quarterly: past its review date a model auto-approves nothing.
        model.review_date = Timestamp::from_unix_micros(self.clock.now().unix_micros() + 90 * DAY)
            .to_string()[..10]
            .to_owned();
        // A looser model cites its backtest over the log so far, which the service re-runs.
        let (citation, backtest) =
            replay::backtest::cite(self.gov.log(), &model).map_err(CommandError::Unavailable)?;
        let total = backtest.total();
        model.calibration_evidence = format!(
            "backtest over {} deployments: {} would have been auto-approved, {} incidents among them",
            total.deployments,
            total.auto_candidate,
            total.incidents_let_through.values().sum::<u64>()
        );
        model.backtest = Some(citation);
        self.execute(&self.admin.clone(), &Command::ProposeRiskModel(model))?;
        for k in [0usize, 2, 4] {
            let rationale = "backtest reviewed";
            let signature =
                self.sign(k, (vote_statement::Kind::RiskModel, "1.2"), true, rationale)?;
            self.execute(
                &self.cab(k),
                &Command::VoteRiskModel {
                    version: "1.2".into(),
                    approve: true,
                    rationale: rationale.into(),
                    signature: Some(signature),
                },
            )?;
        }
        self.execute(
            &self.admin.clone(),
            &Command::ActivateRiskModel {
                version: "1.2".into(),
            },
        )?;
        self.report.models.push((self.current_week, "1.2".into()));
        Ok(())
    }
}

/// Runs a simulation on `gov`, whose log's clock must be `clock`. `progress` is told each week.
///
/// # Errors
/// If a command fails for a reason other than a rule refusing it (which is part of the story).
pub fn run(
    gov: &Governance,
    clock: &ManualClock,
    config: &SimulationConfig,
    mut progress: impl FnMut(u32),
) -> Result<SimulationReport, CommandError> {
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&config.seed.to_be_bytes());
    let mut sim = Sim {
        gov,
        clock,
        rng: Rng(config.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
        queue: BinaryHeap::new(),
        order: 0,
        config: config.clone(),
        sbom_key: ed25519_dalek::SigningKey::from_bytes(&seed_bytes),
        admin: Principal::new("ada", &[Role::Admin]),
        agent: Principal::new("deploy-agent", &[Role::Deployer]),
        reporter: Principal::new("sre-oncall", &[Role::IncidentReporter]),
        deployments: BTreeMap::new(),
        report: SimulationReport {
            weeks: (1..=config.weeks)
                .map(|week| WeekRow {
                    week,
                    ..WeekRow::default()
                })
                .collect(),
            ..SimulationReport::default()
        },
        current_week: 1,
        spike_week: (config.weeks * 3 / 4).max(2),
        model_proposed: false,
    };
    // Everyone acts with a token granted in the log, as through the API (the audit finds an
    // actor who held none); the tokens are revoked when the simulation ends.
    let tokens = simulated_tokens(config.seed);
    for (principal, roles, token_sha256) in &tokens {
        let grant = events::catalogue::access::AccessGranted {
            principal: principal.clone(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            token_sha256: token_sha256.clone(),
        };
        sim.execute(&system_cli(), &Command::GrantAccess(grant))?;
    }
    for (i, member) in CAB.iter().enumerate() {
        let key = Sim::cab_key(i)
            .public_key()
            .to_openssh()
            .expect("an Ed25519 key encodes");
        sim.execute(
            &sim.admin.clone(),
            &Command::AddCabMember {
                member: (*member).into(),
                ssh_key: Some(key),
            },
        )?;
    }
    // Seated, like the first members, before the CAB first votes (on the local apps).
    sim.execute(&sim.admin.clone(), &set_producer_by_label(PRODUCER))?;
    sim.register_local_apps()?;
    let public = hex::encode(sim.sbom_key.verifying_key().as_bytes());
    sim.execute(
        &sim.admin.clone(),
        &Command::TrustSigningKey(SigningKeyTrusted {
            key_id: "build-2026".into(),
            public_key_hex: public,
            owner: "build pipeline".into(),
        }),
    )?;
    let start = clock.now().unix_micros();
    for week in 0..config.weeks {
        for k in 0..config.per_week {
            let at = start
                + i64::from(week) * WEEK
                + (i64::from(k) * WEEK) / i64::from(config.per_week.max(1));
            let weights: u64 = 1_000;
            let app = usize::try_from(sim.rng.below(weights) % APPS.len() as u64).unwrap_or(0);
            sim.schedule(at, Action::Submit { app });
        }
        sim.schedule(
            start + i64::from(week + 1) * WEEK - 1,
            Action::WeekEnd { week: week + 1 },
        );
    }
    let end = start + i64::from(config.weeks) * WEEK;
    while let Some(Reverse((at, _, action))) = sim.queue.pop() {
        if at >= end {
            continue; // after the simulated period
        }
        clock.set(Timestamp::from_unix_micros(
            at.max(clock.now().unix_micros()),
        ));
        sim.current_week = u32::try_from((at - start) / WEEK).unwrap_or(0) + 1;
        let result = match action {
            Action::Submit { app } => sim.submit(app),
            Action::Vote {
                deployment,
                member,
                approve,
            } => {
                let rationale = if approve {
                    "reviewed evidence and blast radius"
                } else {
                    "insufficient test evidence"
                };
                let status = gov
                    .with_state(|s| s.deployments.get(&deployment).map(|d| d.status))
                    .expect("submitted");
                if status == DeploymentStatus::PendingCab {
                    let subject = deployment.to_string();
                    let target = (vote_statement::Kind::Deployment, subject.as_str());
                    sim.sign(member, target, approve, rationale)
                        .and_then(|signature| {
                            sim.execute(
                                &sim.cab(member),
                                &Command::Vote {
                                    deployment_id: deployment,
                                    approve,
                                    rationale: rationale.into(),
                                    signature: Some(signature),
                                },
                            )
                        })
                        .map(|_| ())
                } else {
                    Ok(())
                }
            }
            Action::Release { deployment } => sim.release(deployment),
            Action::Incident {
                deployment,
                severity,
            } => sim.incident(deployment, severity),
            Action::WeekEnd { week } => {
                let r = sim.week_end();
                progress(week);
                r
            }
            Action::Progress { to_level, member } => {
                let rationale = "criteria met";
                let subject = to_level.to_string();
                let target = (vote_statement::Kind::MaturityProgression, subject.as_str());
                sim.sign(member, target, true, rationale)
                    .and_then(|signature| {
                        sim.execute(
                            &sim.cab(member),
                            &Command::VoteProgression {
                                to_level,
                                approve: true,
                                rationale: rationale.into(),
                                signature: Some(signature),
                            },
                        )
                    })
                    .map(|_| ())
            }
        };
        match result {
            // A rule refusing a command is part of the story (a late vote, a stale progression).
            Ok(()) | Err(CommandError::Rejected(_)) => {}
            Err(other) => return Err(other),
        }
        let level = gov.with_state(|s| s.level);
        let row = sim.row();
        if row.level != level {
            row.level = level;
        }
        // A spike that did not force a regression by the end of its week gets its P1.
        if sim.current_week == sim.spike_week + 1
            && level >= 1
            && !sim
                .report
                .level_changes
                .iter()
                .any(|c| c.3.starts_with("REGRESSION"))
        {
            let victim = gov.with_state(|s| {
                s.deployments
                    .iter()
                    .filter(|(_, d)| d.status == DeploymentStatus::Released)
                    .map(|(id, _)| id)
                    .last()
            });
            if let Some(victim) = victim {
                sim.incident(victim, Severity::P1)?;
            }
        }
        if let Some(Payload::MaturityLevelChanged(c)) = sim.last_payload() {
            if sim
                .report
                .level_changes
                .last()
                .is_none_or(|l| (l.1, l.2, &l.3) != (c.from, c.to, &c.reason))
            {
                sim.report
                    .level_changes
                    .push((sim.current_week, c.from, c.to, c.reason));
            }
        }
    }
    // Weeks without a level change carry the level forward.
    let mut level = 0;
    for row in &mut sim.report.weeks {
        if let Some(change) = sim
            .report
            .level_changes
            .iter()
            .rev()
            .find(|c| c.0 <= row.week)
        {
            level = change.2;
        }
        row.level = level;
    }
    for (principal, _, token_sha256) in tokens {
        let revoke = events::catalogue::access::AccessRevoked {
            principal,
            token_sha256,
            reason: "the simulation ended".into(),
        };
        sim.execute(&system_cli(), &Command::RevokeAccess(revoke))?;
    }
    sim.report.entries = gov.log().head().size;
    Ok(sim.report)
}

fn system_cli() -> Principal {
    Principal::new(crate::governance::CLI_ADMIN, &[Role::Admin])
}

/// The simulation's principals, their roles, and a token id for each: derived from the seed so
/// that a simulation is reproducible (its tokens are revoked when it ends, so a derivable token
/// never opens a served simulated log).
fn simulated_tokens(seed: u64) -> Vec<(String, Vec<&'static str>, String)> {
    let developers = (1..=8).map(|n| (format!("dev-{n}"), vec!["submitter"]));
    let members = CAB.iter().map(|m| ((*m).to_owned(), vec!["cab"]));
    [
        ("ada".to_owned(), vec!["admin"]),
        ("deploy-agent".to_owned(), vec!["deployer"]),
        ("sre-oncall".to_owned(), vec!["incident-reporter"]),
        ("ops".to_owned(), vec!["operator"]),
    ]
    .into_iter()
    .chain(developers)
    .chain(members)
    .map(|(principal, roles)| {
        let id = hex::encode(Sha256::digest(format!(
            "trustledger simulation {seed} token of {principal}"
        )));
        (principal, roles, id)
    })
    .collect()
}

impl std::fmt::Display for SimulationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:>4} {:>8} {:>6} {:>7} {:>4} {:>4} {:>4} {:>4}  {:<34} {:>5}",
            "week",
            "released",
            "auto",
            "blocked",
            "P1",
            "P2",
            "P3",
            "P4",
            "incident rate [Wilson 95%] of n",
            "level"
        )?;
        for r in &self.weeks {
            writeln!(
                f,
                "{:>4} {:>8} {:>6} {:>7} {:>4} {:>4} {:>4} {:>4}  {:<34} {:>5}",
                r.week,
                r.released,
                r.auto_approved,
                r.blocked,
                r.incidents[0],
                r.incidents[1],
                r.incidents[2],
                r.incidents[3],
                r.rate,
                r.level
            )?;
        }
        for (week, from, to, reason) in &self.level_changes {
            writeln!(f, "week {week}: level {from} -> {to} ({reason})")?;
        }
        for (week, version) in &self.models {
            writeln!(
                f,
                "week {week}: risk model {version} activated after a backtest and 3 CAB approvals"
            )?;
        }
        for (reason, n) in &self.blocked_by_reason {
            writeln!(f, "releases blocked with {reason}: {n}")?;
        }
        write!(f, "{} entries in the log", self.entries)
    }
}
