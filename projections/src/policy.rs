//! The governance policy: pure decisions over [`GovernanceState`].
//!
//! Every function here is a function of (state, actor, time, command): no IO, no clock, no
//! randomness (new ids arrive inside commands). The service calls [`decide`] and appends what it
//! returns; the auditor's replay calls the same code to re-derive what was recorded.
//!
//! Principle for every control: **tightening is immediate, loosening needs the CAB.**

use crate::state::{DeploymentStatus, EvidenceRecord, GovernanceState, SbomSummary};
use events::payloads::*;
use events::{canonical, Digest, Timestamp};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Risk factor names, in the order they are recorded.
pub const FACTORS: [&str; 5] = [
    "privilege",
    "reach",
    "class",
    "evidence_gaps",
    "app_history",
];
/// Quorum for approving a risk model version.
pub const MODEL_APPROVAL_QUORUM: usize = 3;
/// CAB approvers a new blast-radius policy needs (any rule change can lower a classification).
pub const POLICY_APPROVAL_QUORUM: usize = 3;
/// Longest approval validity a policy may set.
pub const APPROVAL_VALIDITY_HOURS_MAX: u32 = 90 * 24;
/// Longest an exception may run.
pub const EXCEPTION_DAYS_MAX: i64 = 90;
/// A break-glass release must be reviewed within this.
pub const BREAKGLASS_REVIEW_MICROS: i64 = 72 * 3600 * 1_000_000;
/// Release-gate checks that can never be waived.
pub const UNWAIVABLE_CONTROLS: [&str; 2] = ["artifact_hash", "evidence_immutability"];
/// Release-gate checks, in order.
pub const RELEASE_CHECKS: [&str; 6] = [
    "artifact_hash",
    "evidence_immutability",
    "sbom_hash",
    "sbom_signature",
    "blast_radius",
    "approval",
];
/// Role names a token may carry.
pub const ROLES: [&str; 7] = [
    "admin",
    "auditor",
    "cab",
    "deployer",
    "incident-reporter",
    "operator",
    "submitter",
];
/// Longest free-text field (rationale, reason, justification).
pub const TEXT_BYTES_MAX: usize = 4096;
/// Longest name (app, version, member, key id, control, scope).
pub const NAME_BYTES_MAX: usize = 256;

/// Why a command was refused. Nothing is written for a refused command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// A field is invalid.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Something named does not exist.
    #[error("unknown {kind} {id}")]
    Unknown {
        /// What kind of thing.
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// The command conflicts with what was recorded (duplicate vote, retried id with other content).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A separation-of-duties or membership rule forbids this actor.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The target is not in a state that allows the command.
    #[error("not allowed now: {0}")]
    NotAllowed(String),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Rejection {
    Rejection::Invalid {
        field,
        reason: reason.into(),
    }
}

fn check_text(
    field: &'static str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<(), Rejection> {
    if required && value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.len() > max {
        return Err(invalid(
            field,
            format!("is {} bytes, over the limit of {max}", value.len()),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

fn check_hex64(field: &'static str, value: &str) -> Result<(), Rejection> {
    if Digest::from_hex(value).is_none() {
        return Err(invalid(
            field,
            "must be 64 lowercase hex digits (a SHA-256)",
        ));
    }
    Ok(())
}

/// What `classify` needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassifyInput {
    /// Application name.
    pub app_name: String,
    /// Installs with admin rights.
    pub requires_admin: bool,
    /// Target users or machines.
    pub target_user_count: u64,
    /// CMDB data (`service_tier`, ...).
    pub cmdb: BTreeMap<String, String>,
}

/// Lowercase alphanumeric words of a text.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether `phrase` occurs in `haystack` as whole words.
fn contains_phrase(haystack: &[String], phrase: &str) -> bool {
    let needle = words(phrase);
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w == needle.as_slice())
}

/// Classifies by the first matching rule (rules are data; see the genesis policy).
pub fn classify(policy: &BlastRadiusPolicySet, input: &ClassifyInput) -> Classification {
    let app_words = words(&input.app_name);
    let tier = input
        .cmdb
        .get("service_tier")
        .map(|t| t.trim().to_lowercase());
    for rule in &policy.rules {
        let tier_ok = rule.cmdb_tiers.is_empty()
            || tier
                .as_ref()
                .is_some_and(|t| rule.cmdb_tiers.iter().any(|r| r.to_lowercase() == *t));
        let keyword_ok = rule.keywords.is_empty()
            || rule.keywords.iter().any(|k| contains_phrase(&app_words, k));
        let admin_ok = rule
            .requires_admin
            .is_none_or(|a| a == input.requires_admin);
        let users_ok = rule
            .min_target_users
            .is_none_or(|m| input.target_user_count >= m);
        if tier_ok && keyword_ok && admin_ok && users_ok {
            return Classification {
                class: rule.class,
                rule: rule.id.clone(),
                policy_version: policy.version,
            };
        }
    }
    Classification {
        class: BlastRadiusClass::NonCritical,
        rule: "default".into(),
        policy_version: policy.version,
    }
}

/// Formats hundredths as a decimal string (`4275` → `42.75`).
pub fn centi_to_decimal(centi: u32) -> String {
    format!("{}.{:02}", centi / 100, centi % 100)
}

fn reach_value(users: u64) -> (u32, String) {
    let value = match users {
        0..=10 => 10,
        11..=100 => 30,
        101..=1000 => 60,
        1001..=10_000 => 85,
        _ => 100,
    };
    (value, format!("{users} target users"))
}

fn class_value(class: BlastRadiusClass) -> u32 {
    match class {
        BlastRadiusClass::NonCritical => 10,
        BlastRadiusClass::ProductivityTools => 40,
        BlastRadiusClass::BusinessCritical => 70,
        BlastRadiusClass::CriticalInfrastructure => 100,
    }
}

/// Derives every factor from facts (never from the submitter's claims about risk).
pub fn derive_factors(
    state: &GovernanceState,
    weights_bp: &BTreeMap<String, u32>,
    input: &ClassifyInput,
    class: BlastRadiusClass,
    evidence: &EvidenceRecord,
    at: Timestamp,
) -> Vec<RiskFactor> {
    let mut gaps = 0u32;
    let mut gap_notes = Vec::new();
    match &evidence.sbom {
        None => {
            gaps += 60;
            gap_notes.push("no SBOM");
        }
        Some(sbom) => match &sbom.signature {
            None => {
                gaps += 30;
                gap_notes.push("SBOM unsigned");
            }
            Some(sig)
                if !state
                    .signing_keys
                    .get(&sig.key_id)
                    .is_some_and(|k| k.trusted_at(at)) =>
            {
                gaps += 30;
                gap_notes.push("SBOM signed by an untrusted key");
            }
            Some(_) => {}
        },
    }
    if evidence.tests_passed == 0 {
        gaps += 20;
        gap_notes.push("no passing tests");
    }
    if evidence.tests_failed > 0 {
        gaps += 20;
        gap_notes.push("failing tests");
    }
    if evidence.scan_critical_findings > 0 {
        gaps += 40;
        gap_notes.push("critical scan findings");
    }
    let history = state
        .app_history
        .get(&input.app_name.to_lowercase())
        .copied()
        .unwrap_or_default();
    let history_value = if history.released == 0 {
        0
    } else {
        u32::try_from(
            (history.with_incident * 100)
                .div_ceil(history.released)
                .min(100),
        )
        .unwrap_or(100)
    };
    let reach = reach_value(input.target_user_count);
    let values: [(u32, String); 5] = [
        (
            if input.requires_admin { 100 } else { 0 },
            format!("requires_admin={}", input.requires_admin),
        ),
        reach,
        (class_value(class), class.as_str().to_owned()),
        (
            gaps.min(100),
            if gap_notes.is_empty() {
                "none".to_owned()
            } else {
                gap_notes.join(", ")
            },
        ),
        (
            history_value,
            format!(
                "{} of {} past releases had incidents",
                history.with_incident, history.released
            ),
        ),
    ];
    FACTORS
        .iter()
        .zip(values)
        .map(|(name, (value, basis))| RiskFactor {
            name: (*name).to_owned(),
            value,
            weight_bp: weights_bp.get(*name).copied().unwrap_or(0),
            basis,
        })
        .collect()
}

/// The score in hundredths: Σ value × weight_bp / 100 (0–10000 for 0.00–100.00).
pub fn score_centi(factors: &[RiskFactor]) -> u32 {
    let total: u64 = factors
        .iter()
        .map(|f| u64::from(f.value) * u64::from(f.weight_bp))
        .sum();
    u32::try_from(total / 100).unwrap_or(u32::MAX)
}

/// The gate: effective threshold = min(model's, level's) for the class, CRITICAL always 0;
/// auto-approve only when the threshold is above 0 and the score is at or below it.
pub fn gate(
    state: &GovernanceState,
    deployment_id: Uuid,
    class: BlastRadiusClass,
    score: u32,
    model: &RiskModelProposed,
) -> (bool, GateDecision) {
    let model_threshold = model.thresholds.get(&class).copied().unwrap_or(0);
    let level_threshold = state
        .current_level()
        .and_then(|l| l.thresholds.get(&class).copied())
        .unwrap_or(0);
    let threshold = if class == BlastRadiusClass::CriticalInfrastructure {
        0
    } else {
        model_threshold.min(level_threshold)
    };
    let auto = threshold > 0 && score <= threshold * 100;
    let decision = GateDecision {
        deployment_id,
        score_centi: score,
        threshold,
        model_threshold,
        level_threshold,
        model_version: model.version.clone(),
        maturity_level: state.level,
        class,
        quorum: if auto { 0 } else { state.quorum(class) },
    };
    (auto, decision)
}

/// A submission request (also the API's request body: unknown fields are refused, so a
/// submitter cannot declare a risk score).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitDeployment {
    /// Idempotency key.
    pub correlation_id: String,
    /// Application name.
    pub app_name: String,
    /// Application version.
    pub app_version: String,
    /// Admin rights.
    pub requires_admin: bool,
    /// Target users.
    pub target_user_count: u64,
    /// CMDB data.
    #[serde(default)]
    pub cmdb: BTreeMap<String, String>,
    /// Evidence package.
    pub evidence_id: Uuid,
}

/// What the release gate was shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedRelease {
    /// Deployment id.
    pub deployment_id: Uuid,
    /// SHA-256 of the artifact bytes streamed.
    pub artifact_sha256: String,
    /// Their size.
    pub artifact_size: u64,
    /// SHA-256 of the SBOM bytes streamed, if any were.
    pub sbom_sha256: Option<String>,
}

/// Every command the policy decides.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Propose a risk model version.
    ProposeRiskModel(RiskModelProposed),
    /// A CAB member's vote on a proposed model.
    VoteRiskModel {
        /// Version.
        version: String,
        /// Approve?
        approve: bool,
        /// Rationale.
        rationale: String,
    },
    /// Put a model version in force.
    ActivateRiskModel {
        /// Version.
        version: String,
    },
    /// Put a new blast-radius policy in force (a CAB member, naming 3 distinct CAB approvers).
    SetBlastRadiusPolicy(BlastRadiusPolicySet),
    /// Grant a bearer token (given as its SHA-256) to a principal with roles.
    GrantAccess(events::catalogue::access::AccessGranted),
    /// Revoke a bearer token.
    RevokeAccess(events::catalogue::access::AccessRevoked),
    /// Add a CAB member.
    AddCabMember {
        /// Principal name.
        member: String,
    },
    /// Remove a CAB member.
    RemoveCabMember {
        /// Principal name.
        member: String,
    },
    /// Trust an SBOM signing key.
    TrustSigningKey(SigningKeyTrusted),
    /// Revoke an SBOM signing key.
    RevokeSigningKey(SigningKeyRevoked),
    /// Record an evidence package.
    RecordEvidence {
        /// New id.
        evidence_id: Uuid,
        /// The document.
        document: EvidenceDocument,
    },
    /// Submit a deployment.
    Submit {
        /// New id (used only if this is not a retry).
        deployment_id: Uuid,
        /// The request.
        request: SubmitDeployment,
    },
    /// A CAB member's vote on a deployment.
    Vote {
        /// Deployment.
        deployment_id: Uuid,
        /// Approve?
        approve: bool,
        /// Rationale.
        rationale: String,
    },
    /// A CAB member raises a deployment's class.
    RaiseClassification {
        /// Deployment.
        deployment_id: Uuid,
        /// New class (must be higher).
        to: BlastRadiusClass,
        /// Why.
        reason: String,
    },
    /// Present an SBOM (its streamed digest) for a deployment's next release attempt.
    PresentSbom(SbomPresented),
    /// The release gate.
    Release(PresentedRelease),
    /// Grant an exception.
    GrantException {
        /// New id.
        exception_id: Uuid,
        /// Waived control.
        control: String,
        /// Scope.
        scope: String,
        /// Reason.
        reason: String,
        /// CAB approvers (the actor must be one).
        approvers: Vec<String>,
        /// Expiry.
        expires_at: Timestamp,
    },
    /// Revoke an exception.
    RevokeException {
        /// Exception.
        exception_id: Uuid,
        /// Why.
        reason: String,
    },
    /// Emergency release.
    Breakglass {
        /// What was presented.
        presented: PresentedRelease,
        /// Why it cannot wait.
        justification: String,
        /// Two or more CAB approvers (the actor must be one).
        approvers: Vec<String>,
    },
    /// Report an incident caused by a released deployment.
    ReportIncident(IncidentReport),
    /// Correct an incident.
    UpdateIncident(IncidentUpdated),
    /// Evaluate the maturity level now.
    EvaluateMaturity {
        /// Require the Wilson upper bound, not the point estimate, to meet the rate cap.
        strict: bool,
    },
    /// A CAB member approves (or declines) progressing to a level.
    VoteProgression {
        /// The level.
        to_level: u32,
        /// Approve?
        approve: bool,
        /// Rationale.
        rationale: String,
    },
    /// Post-review of a break-glass release.
    ReviewBreakglass {
        /// Deployment.
        deployment_id: Uuid,
        /// Justified?
        justified: bool,
        /// Findings.
        findings: String,
    },
}

/// What an incident reporter states (the deployment context is looked up, never taken from here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentReport {
    /// New incident id (a retry with the same id and content is a no-op).
    pub incident_id: Uuid,
    /// The deployment that caused it.
    pub deployment_id: Uuid,
    /// Severity.
    pub severity: Severity,
    /// When it happened.
    pub incident_date: Timestamp,
    /// Users affected.
    pub affected_user_count: u64,
    /// Downtime.
    pub downtime_minutes: u64,
    /// Business impact in USD as a decimal string (`12500.00`).
    pub business_impact_usd: String,
    /// Preventable by the controls?
    pub preventable: bool,
    /// Notes.
    pub preventability_notes: String,
    /// Proposed control improvements.
    pub control_improvements: Vec<String>,
}

/// CAB approvals needed to progress a maturity level.
pub const PROGRESSION_QUORUM: usize = 2;

fn check_money(field: &'static str, value: &str) -> Result<(), Rejection> {
    let (whole, cents) = value.split_once('.').unwrap_or((value, "00"));
    let ok = !whole.is_empty()
        && whole.len() <= 15
        && whole.bytes().all(|b| b.is_ascii_digit())
        && (whole == "0" || !whole.starts_with('0'))
        && cents.len() == 2
        && cents.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return Err(invalid(
            field,
            "must be a non-negative decimal string with two decimals, e.g. 12500.00",
        ));
    }
    Ok(())
}

fn regression_event(state: &GovernanceState, reason: String) -> Option<(String, Payload)> {
    (state.level > 0).then(|| {
        (
            "maturity/level".to_owned(),
            Payload::MaturityLevelChanged(MaturityLevelChanged {
                from: state.level,
                to: state.level - 1,
                reason,
            }),
        )
    })
}

fn decide_incident(
    state: &GovernanceState,
    at: Timestamp,
    r: &IncidentReport,
) -> Result<Decision, Rejection> {
    check_money("business_impact_usd", &r.business_impact_usd)?;
    check_text(
        "preventability_notes",
        &r.preventability_notes,
        TEXT_BYTES_MAX,
        false,
    )?;
    if r.control_improvements.len() > 32 {
        return Err(invalid("control_improvements", "at most 32 items"));
    }
    for item in &r.control_improvements {
        check_text("control_improvements", item, TEXT_BYTES_MAX, true)?;
    }
    for (field, value) in [
        ("affected_user_count", r.affected_user_count),
        ("downtime_minutes", r.downtime_minutes),
    ] {
        if value > canonical::INTEGER_MAGNITUDE_MAX {
            return Err(invalid(field, "is too large"));
        }
    }
    let d = deployment(state, &r.deployment_id)?;
    let Some(released_at) = d.released_at else {
        return Err(Rejection::NotAllowed(format!(
            "deployment {} was never released, so it caused no incident",
            r.deployment_id
        )));
    };
    if r.incident_date > at {
        return Err(invalid(
            "incident_date",
            format!("{} is after the log's time {at}", r.incident_date),
        ));
    }
    if r.incident_date < released_at {
        return Err(invalid(
            "incident_date",
            format!(
                "{} is before the deployment was released ({released_at})",
                r.incident_date
            ),
        ));
    }
    let context = IncidentContext {
        auto_approved: d.auto_approved,
        score_centi: d.submitted.score_centi,
        class: d.class,
        evidence_id: d.submitted.evidence_id,
        cab_approvers: d
            .approval
            .as_ref()
            .map(|(a, _)| a.clone())
            .unwrap_or_default(),
        model_version: d.submitted.model_version.clone(),
        maturity_level: d.gate.as_ref().map_or(0, |g| g.maturity_level),
        breakglass: d.breakglass.is_some(),
    };
    let reported = IncidentReported {
        incident_id: r.incident_id,
        deployment_id: r.deployment_id,
        severity: r.severity,
        incident_date: r.incident_date.to_string(),
        affected_user_count: r.affected_user_count,
        downtime_minutes: r.downtime_minutes,
        business_impact_usd: r.business_impact_usd.clone(),
        preventable: r.preventable,
        preventability_notes: r.preventability_notes.clone(),
        control_improvements: r.control_improvements.clone(),
        context,
    };
    if let Some(existing) = state.incidents.get(&r.incident_id) {
        if existing.original == reported {
            return Ok(Decision::default());
        }
        return Err(Rejection::Conflict(format!(
            "incident {} was already reported with different content",
            r.incident_id
        )));
    }
    let mut events = vec![(
        format!("incident/{}", r.incident_id),
        Payload::IncidentReported(reported),
    )];
    // Tightening is immediate: a P1 above level 0 takes the level back one step at once.
    if r.severity == Severity::P1 {
        events.extend(regression_event(
            state,
            format!("REGRESSION: P1 incident {}", r.incident_id),
        ));
    }
    Ok(Decision {
        events,
        replay_of: None,
    })
}

fn decide_progression(
    state: &GovernanceState,
    actor: &str,
    to_level: u32,
    approve: bool,
    rationale: &str,
) -> Result<Decision, Rejection> {
    check_text("rationale", rationale, TEXT_BYTES_MAX, true)?;
    require_member(state, actor)?;
    if to_level != state.level + 1 {
        return Err(Rejection::NotAllowed(format!(
            "the level is {}; only progression to {} can be approved",
            state.level,
            state.level + 1
        )));
    }
    let evaluation = state
        .last_evaluation
        .as_ref()
        .filter(|e| {
            e.evaluation.level == state.level && state.level_since.is_none_or(|since| e.at >= since)
        })
        .ok_or_else(|| Rejection::NotAllowed("no evaluation at the current level yet".into()))?;
    if evaluation.evaluation.outcome != crate::maturity::READY_TO_PROGRESS
        || evaluation.evaluation.target_level != Some(to_level)
    {
        return Err(Rejection::NotAllowed(format!(
            "the latest evaluation (seq {}) is {}, not READY_TO_PROGRESS",
            evaluation.seq, evaluation.evaluation.outcome
        )));
    }
    let voted = state
        .progression_votes
        .get(&to_level)
        .cloned()
        .unwrap_or_default();
    if voted.contains(actor) {
        return Err(Rejection::Conflict(format!(
            "{actor} already approved progression to {to_level}"
        )));
    }
    let subject = "maturity/level".to_owned();
    let mut events = vec![(
        subject.clone(),
        Payload::CabVoteCast(CabVoteCast {
            target: VoteTarget::MaturityProgression { to_level },
            approve,
            rationale: rationale.to_owned(),
        }),
    )];
    let approvers: Vec<String> = voted
        .iter()
        .filter(|m| state.cab_members.contains(*m))
        .cloned()
        .chain(approve.then(|| actor.to_owned()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if approve && approvers.len() >= PROGRESSION_QUORUM {
        events.push((
            subject.clone(),
            Payload::MaturityProgressionApproved(MaturityProgressionApproved {
                from: state.level,
                to: to_level,
                approvers,
                evaluation_seq: evaluation.seq,
            }),
        ));
        events.push((
            subject,
            Payload::MaturityLevelChanged(MaturityLevelChanged {
                from: state.level,
                to: to_level,
                reason: "PROGRESSION_APPROVED".into(),
            }),
        ));
    }
    Ok(Decision {
        events,
        replay_of: None,
    })
}

/// What to append: (subject, payload) in order, as one atomic batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// The events.
    pub events: Vec<(String, Payload)>,
    /// For an idempotent retry: the deployment it refers to (nothing to append).
    pub replay_of: Option<Uuid>,
}

impl Decision {
    fn one(subject: String, payload: Payload) -> Self {
        Self {
            events: vec![(subject, payload)],
            replay_of: None,
        }
    }
}

/// Subject of a deployment's stream.
pub fn deployment_subject(id: &Uuid) -> String {
    format!("deployment/{id}")
}

/// SHA-256 of a value's canonical JSON.
///
/// # Errors
/// [`Rejection::Invalid`] naming `field` when the value has no canonical form (an integer beyond
/// ±(2^53−1), which a client can send in any count field).
pub fn canonical_sha256<T: serde::Serialize>(
    field: &'static str,
    value: &T,
) -> Result<String, Rejection> {
    let json = serde_json::to_value(value).map_err(|e| invalid(field, e.to_string()))?;
    let bytes = canonical::to_canonical_vec(&json).map_err(|e| invalid(field, e.to_string()))?;
    Ok(Digest::of(&bytes).to_hex())
}

fn check_model(p: &RiskModelProposed) -> Result<(), Rejection> {
    check_text("version", &p.version, 32, true)?;
    if !p
        .version
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(invalid("version", "use letters, digits, '.' and '-'"));
    }
    check_text("mode", &p.mode, 64, true)?;
    check_text(
        "calibration_evidence",
        &p.calibration_evidence,
        TEXT_BYTES_MAX,
        false,
    )?;
    for class in BlastRadiusClass::ALL {
        match p.thresholds.get(&class) {
            None => return Err(invalid("thresholds", format!("missing {}", class.as_str()))),
            Some(t) if *t > 100 => {
                return Err(invalid(
                    "thresholds",
                    format!("{} is {t}, outside 0–100", class.as_str()),
                ))
            }
            _ => {}
        }
    }
    if p.thresholds.get(&BlastRadiusClass::CriticalInfrastructure) != Some(&0) {
        return Err(invalid(
            "thresholds",
            "CRITICAL_INFRASTRUCTURE must be 0 in every model: it is never auto-approved",
        ));
    }
    let unknown: Vec<_> = p
        .weights_bp
        .keys()
        .filter(|k| !FACTORS.contains(&k.as_str()))
        .collect();
    if !unknown.is_empty() {
        return Err(invalid(
            "weights_bp",
            format!("unknown factors {unknown:?}; known: {FACTORS:?}"),
        ));
    }
    let sum: u64 = p.weights_bp.values().map(|v| u64::from(*v)).sum();
    if sum != 10_000 {
        return Err(invalid(
            "weights_bp",
            format!("weights sum to {sum} basis points, not exactly 10000"),
        ));
    }
    for (field, date) in [
        ("effective_date", &p.effective_date),
        ("review_date", &p.review_date),
    ] {
        if Timestamp::parse(&format!("{date}T00:00:00.000000Z")).is_err() {
            return Err(invalid(field, "must be a date YYYY-MM-DD"));
        }
    }
    if p.review_date <= p.effective_date {
        return Err(invalid("review_date", "must be after effective_date"));
    }
    Ok(())
}

fn deployment<'a>(
    state: &'a GovernanceState,
    id: &Uuid,
) -> Result<std::borrow::Cow<'a, crate::state::DeploymentRecord>, Rejection> {
    state.deployments.get(id).ok_or_else(|| Rejection::Unknown {
        kind: "deployment",
        id: id.to_string(),
    })
}

fn require_member(state: &GovernanceState, actor: &str) -> Result<(), Rejection> {
    if !state.cab_members.contains(actor) {
        return Err(Rejection::Forbidden(format!("{actor} is not a CAB member")));
    }
    Ok(())
}

fn distinct_members(
    state: &GovernanceState,
    actor: &str,
    approvers: &[String],
    at_least: usize,
) -> Result<Vec<String>, Rejection> {
    let set: BTreeSet<String> = approvers.iter().cloned().collect();
    if set.len() != approvers.len() {
        return Err(invalid("approvers", "an approver is named twice"));
    }
    if set.len() < at_least {
        return Err(invalid(
            "approvers",
            format!(
                "{} distinct CAB approvers needed, {} given",
                at_least,
                set.len()
            ),
        ));
    }
    if !set.contains(actor) {
        return Err(Rejection::Forbidden(format!(
            "{actor} must be one of the approvers"
        )));
    }
    if let Some(outsider) = set.iter().find(|a| !state.cab_members.contains(*a)) {
        return Err(Rejection::Forbidden(format!(
            "{outsider} is not a CAB member"
        )));
    }
    Ok(set.into_iter().collect())
}

/// Runs the release checks for `presented` at time `at`.
pub fn release_checks(
    state: &GovernanceState,
    presented: &PresentedRelease,
    at: Timestamp,
    require_approval: bool,
) -> Result<Vec<GateCheck>, Rejection> {
    let d = deployment(state, &presented.deployment_id)?;
    let app = d.submitted.app_name.to_lowercase();
    let scope_deployment = format!("deployment:{}", presented.deployment_id);
    let waived = |control: &str| {
        state.exceptions.values().find(|e| {
            e.granted.control == control
                && (e.granted.scope.to_lowercase() == app || e.granted.scope == scope_deployment)
                && e.in_force_at(at)
        })
    };
    let evidence = state.evidence.get(&d.submitted.evidence_id);
    let evidence = evidence.as_deref();
    let mut checks = Vec::new();
    // `result`: Some(pass) for a check that ran, None for one that does not apply.
    let mut record = |check: &str, result: Option<bool>, code: &str, detail: String| {
        let pass = result.unwrap_or(true);
        let exception = if pass || UNWAIVABLE_CONTROLS.contains(&check) {
            None
        } else {
            waived(check)
        };
        checks.push(GateCheck {
            check: check.to_owned(),
            outcome: match result {
                None => "SKIPPED",
                Some(true) => "PASS",
                Some(false) if exception.is_some() => "WAIVED",
                Some(false) => "FAIL",
            }
            .to_owned(),
            reason_code: (!pass).then(|| code.to_owned()),
            detail: match exception {
                Some(e) => format!(
                    "{detail}; waived by exception {} until {}",
                    e.granted.exception_id, e.granted.expires_at
                ),
                None => detail,
            },
        });
    };
    let expected_artifact = evidence.and_then(|e| e.first_artifact.as_ref());
    let artifact_ok = expected_artifact.is_some_and(|a| {
        a.sha256.is(&presented.artifact_sha256) && a.size == presented.artifact_size
    });
    record(
        "artifact_hash",
        Some(artifact_ok),
        "ARTIFACT_HASH_MISMATCH",
        format!(
            "presented {} ({} bytes), evidence lists {}",
            presented.artifact_sha256,
            presented.artifact_size,
            expected_artifact.map_or("nothing".to_owned(), |a| format!(
                "{} ({} bytes)",
                a.sha256, a.size
            ))
        ),
    );
    // A stored document with no canonical form cannot match its recorded hash: tampered.
    let evidence_ok = evidence.is_some_and(|e| {
        e.hash_matches_document() && e.evidence_hash.digest() == Some(d.submitted.evidence_hash)
    });
    let recomputed = evidence
        .and_then(|e| e.recomputed_hash)
        .map(|digest| Digest(digest).to_hex());
    record(
        "evidence_immutability",
        Some(evidence_ok),
        "EVIDENCE_TAMPERED",
        format!(
            "evidence hash at submission {}, recomputed {}",
            events::Digest(d.submitted.evidence_hash),
            recomputed.unwrap_or_default()
        ),
    );
    let sbom = evidence.and_then(|e| e.sbom.as_ref());
    match sbom {
        None => {
            record("sbom_hash", None, "", "evidence lists no SBOM".into());
            record("sbom_signature", None, "", "evidence lists no SBOM".into());
        }
        Some(sbom) => {
            let hash_ok = presented
                .sbom_sha256
                .as_deref()
                .is_some_and(|presented| sbom.sha256.is(presented));
            record(
                "sbom_hash",
                Some(hash_ok),
                "SBOM_HASH_MISMATCH",
                format!(
                    "presented {}, evidence lists {}",
                    presented.sbom_sha256.as_deref().unwrap_or("no SBOM"),
                    sbom.sha256
                ),
            );
            let (sig_ok, detail) =
                verify_sbom_signature(state, sbom, presented.sbom_sha256.as_deref(), at);
            record(
                "sbom_signature",
                Some(sig_ok),
                "SBOM_SIGNATURE_INVALID",
                detail,
            );
        }
    }
    let policy_classes: Vec<BlastRadiusClass> = state
        .blast_policy
        .iter()
        .flat_map(|p| p.classes.iter().map(|c| c.class))
        .collect();
    record(
        "blast_radius",
        Some(policy_classes.contains(&d.class)),
        "BLAST_RADIUS_MISSING",
        format!("class {}", d.class.as_str()),
    );
    if require_approval {
        let (ok, code, detail) = match (d.status, &d.approval) {
            (DeploymentStatus::AutoApproved, _) => {
                (true, "", "auto-approved by the gate".to_owned())
            }
            (DeploymentStatus::Approved, Some((approvers, expires))) if at < *expires => (
                true,
                "",
                format!("approved by {approvers:?} until {expires}"),
            ),
            (DeploymentStatus::Approved, Some((_, expires))) => (
                false,
                "APPROVAL_EXPIRED",
                format!("approval expired at {expires}"),
            ),
            (status, _) => (false, "NOT_APPROVED", format!("status {}", status.as_str())),
        };
        record("approval", Some(ok), code, detail);
    }
    Ok(checks)
}

fn verify_sbom_signature(
    state: &GovernanceState,
    sbom: &SbomSummary,
    presented: Option<&str>,
    at: Timestamp,
) -> (bool, String) {
    let Some(sig) = &sbom.signature else {
        return (false, "the SBOM is unsigned".into());
    };
    let Some(key) = state.signing_keys.get(&sig.key_id) else {
        return (false, format!("key {} was never trusted", sig.key_id));
    };
    if !key.trusted_at(at) {
        return (
            false,
            format!(
                "key {} is not trusted at {at} (revoked {:?})",
                sig.key_id,
                key.revoked_at.map(|t| t.to_string())
            ),
        );
    }
    let Some(digest) = presented else {
        return (false, "no SBOM bytes were presented".into());
    };
    if sbom_signature_verifies(&key.public_key_hex, &sig.signature.to_string(), digest) {
        (true, format!("signed by trusted key {}", sig.key_id))
    } else {
        (
            false,
            format!("signature does not verify under key {}", sig.key_id),
        )
    }
}

/// Whether `signature_hex` is a valid Ed25519 signature (strict verification) under
/// `public_key_hex` of the statement [`sbom_signing_message`] makes of `sbom_sha256_hex`. A pure
/// function of its three arguments; malformed hex is simply not a valid signature.
pub fn sbom_signature_verifies(
    public_key_hex: &str,
    signature_hex: &str,
    sbom_sha256_hex: &str,
) -> bool {
    let question = SignatureQuestion {
        public_key_hex: public_key_hex.to_owned(),
        signature_hex: signature_hex.to_owned(),
        sbom_sha256_hex: sbom_sha256_hex.to_owned(),
    };
    if let Some(answer) =
        SIGNATURE_MEMO.with(|memo| memo.borrow().as_ref().and_then(|memo| memo.take(&question)))
    {
        return answer;
    }
    question.answer()
}

/// One Ed25519 verification [`sbom_signature_verifies`] may be asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignatureQuestion {
    /// The signing key.
    pub public_key_hex: String,
    /// The signature.
    pub signature_hex: String,
    /// The SBOM digest the signed statement names.
    pub sbom_sha256_hex: String,
}

impl SignatureQuestion {
    /// Verifies, the expensive way (tens of microseconds).
    pub fn answer(&self) -> bool {
        let parsed = (|| {
            let public: [u8; 32] = hex::decode(&self.public_key_hex).ok()?.try_into().ok()?;
            let signature: [u8; 64] = hex::decode(&self.signature_hex).ok()?.try_into().ok()?;
            Some((
                verifying_key(public)?,
                ed25519_dalek::Signature::from_bytes(&signature),
            ))
        })();
        parsed.is_some_and(|(public, signature)| {
            public
                .verify_strict(&sbom_signing_message(&self.sbom_sha256_hex), &signature)
                .is_ok()
        })
    }
}

/// The decompressed key for `public`, or `None` if it is not a curve point. Kept per thread:
/// decompression is a field square root, a fifth of a verification, and a log's evidence is
/// signed by a handful of keys.
fn verifying_key(public: [u8; 32]) -> Option<ed25519_dalek::VerifyingKey> {
    /// Bounds the cache against a forged log naming a new key on every entry.
    const KEYS_KEPT: usize = 64;
    thread_local! {
        static KEYS: std::cell::RefCell<std::collections::HashMap<[u8; 32], ed25519_dalek::VerifyingKey>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    KEYS.with(|keys| {
        if let Some(key) = keys.borrow().get(&public) {
            return Some(*key);
        }
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public).ok()?;
        let mut keys = keys.borrow_mut();
        if keys.len() >= KEYS_KEPT {
            keys.clear();
        }
        keys.insert(public, key);
        Some(key)
    })
}

/// Answers to [`SignatureQuestion`]s worked out ahead of time, on other threads, by a caller that
/// knows which ones the policy is about to ask (the auditor, which reads evidence before the
/// releases that use it). It only ever holds what [`SignatureQuestion::answer`] returned, so
/// consulting it changes no decision, only when the work is done.
#[derive(Debug, Default)]
pub struct SignatureMemo(std::sync::Mutex<std::collections::HashMap<SignatureQuestion, bool>>);

impl SignatureMemo {
    /// Works out `question` now and keeps the answer for the policy.
    pub fn answer_ahead(&self, question: SignatureQuestion) {
        let answer = question.answer();
        if let Ok(mut answers) = self.0.lock() {
            answers.insert(question, answer);
        }
    }

    /// The kept answer, removed: each is asked for about once, so the memo stays small.
    fn take(&self, question: &SignatureQuestion) -> Option<bool> {
        self.0.lock().ok()?.remove(question)
    }

    /// Runs `f` with the policy on this thread consulting this memo.
    pub fn consulted_during<R>(self: &std::sync::Arc<Self>, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<std::sync::Arc<SignatureMemo>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                SIGNATURE_MEMO.with(|memo| *memo.borrow_mut() = self.0.take());
            }
        }
        let _restore = Restore(SIGNATURE_MEMO.with(|memo| memo.replace(Some(self.clone()))));
        f()
    }
}

thread_local! {
    /// The memo [`SignatureMemo::consulted_during`] installed on this thread, if any. A
    /// thread-local rather than a parameter: it changes no result, and the policy's functions
    /// stay the pure `(state, command) -> decision` the service and the audit share.
    static SIGNATURE_MEMO: std::cell::RefCell<Option<std::sync::Arc<SignatureMemo>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decides a command.
///
/// # Errors
/// [`Rejection`] when the command breaks a rule; nothing is to be written then.
pub fn decide(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    command: &Command,
) -> Result<Decision, Rejection> {
    match command {
        Command::ProposeRiskModel(p) => {
            check_model(p)?;
            if state.models.contains_key(&p.version) {
                return Err(Rejection::Conflict(format!(
                    "model version {} was already proposed",
                    p.version
                )));
            }
            Ok(Decision::one(
                format!("risk_model/{}", p.version),
                Payload::RiskModelProposed(p.clone()),
            ))
        }
        Command::VoteRiskModel {
            version,
            approve,
            rationale,
        } => {
            check_text("rationale", rationale, TEXT_BYTES_MAX, true)?;
            let model = state
                .models
                .get(version)
                .ok_or_else(|| Rejection::Unknown {
                    kind: "risk model",
                    id: version.clone(),
                })?;
            require_member(state, actor)?;
            if model.proposed_by == actor {
                return Err(Rejection::Forbidden(
                    "the proposer may not approve their own model".into(),
                ));
            }
            if model.votes.contains_key(actor) {
                return Err(Rejection::Conflict(format!(
                    "{actor} already voted on model {version}"
                )));
            }
            if model.approved_by.is_some() {
                return Err(Rejection::NotAllowed(format!(
                    "model {version} is already approved"
                )));
            }
            let subject = format!("risk_model/{version}");
            let mut events = vec![(
                subject.clone(),
                Payload::CabVoteCast(CabVoteCast {
                    target: VoteTarget::RiskModel {
                        version: version.clone(),
                    },
                    approve: *approve,
                    rationale: rationale.clone(),
                }),
            )];
            let approvers: Vec<String> = model
                .votes
                .iter()
                .filter(|(m, a)| **a && state.cab_members.contains(*m))
                .map(|(m, _)| m.clone())
                .chain(approve.then(|| actor.to_owned()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if *approve && approvers.len() >= MODEL_APPROVAL_QUORUM {
                events.push((
                    subject,
                    Payload::RiskModelApproved(RiskModelApproved {
                        version: version.clone(),
                        approvers,
                    }),
                ));
            }
            Ok(Decision {
                events,
                replay_of: None,
            })
        }
        Command::ActivateRiskModel { version } => {
            let model = state
                .models
                .get(version)
                .ok_or_else(|| Rejection::Unknown {
                    kind: "risk model",
                    id: version.clone(),
                })?;
            if state.active_model.as_deref() == Some(version.as_str()) {
                return Err(Rejection::Conflict(format!(
                    "model {version} is already active"
                )));
            }
            let all_zero = model.proposal.thresholds.values().all(|t| *t == 0);
            let basis = if model.approved_by.is_some() {
                "CAB_APPROVED"
            } else if all_zero {
                // Tightening is immediate: a model that auto-approves nothing needs no quorum.
                "ALL_THRESHOLDS_ZERO"
            } else {
                return Err(Rejection::NotAllowed(format!(
                    "model {version} has non-zero thresholds and needs the approval of {MODEL_APPROVAL_QUORUM} CAB members first"
                )));
            };
            if format!("{}T00:00:00.000000Z", model.proposal.effective_date) > at.to_string() {
                return Err(Rejection::NotAllowed(format!(
                    "model {version} is not effective before {}",
                    model.proposal.effective_date
                )));
            }
            Ok(Decision::one(
                format!("risk_model/{version}"),
                Payload::RiskModelActivated(RiskModelActivated {
                    version: version.clone(),
                    previous_version: state.active_model.clone(),
                    basis: basis.into(),
                }),
            ))
        }
        Command::SetBlastRadiusPolicy(p) => decide_blast_policy(state, actor, p),
        Command::GrantAccess(g) => {
            check_text("principal", &g.principal, NAME_BYTES_MAX, true)?;
            if g.principal.starts_with("system:") || g.principal.chars().any(char::is_whitespace) {
                return Err(invalid(
                    "principal",
                    "must not contain spaces or start with system:",
                ));
            }
            check_hex64("token_sha256", &g.token_sha256)?;
            if g.roles.is_empty() {
                return Err(invalid("roles", "at least one role"));
            }
            if let Some(bad) = g.roles.iter().find(|r| !ROLES.contains(&r.as_str())) {
                return Err(invalid(
                    "roles",
                    format!("unknown role {bad:?}; roles: {ROLES:?}"),
                ));
            }
            if state.access.contains_key(&g.token_sha256) {
                return Err(Rejection::Conflict("that token is already granted".into()));
            }
            let mut grant = g.clone();
            grant.roles.sort();
            grant.roles.dedup();
            Ok(Decision::one(
                format!("access/{}", g.principal),
                Payload::AccessGranted(grant),
            ))
        }
        Command::RevokeAccess(r) => {
            check_text("reason", &r.reason, TEXT_BYTES_MAX, true)?;
            match state.access.get(&r.token_sha256) {
                None => Err(Rejection::Unknown {
                    kind: "token",
                    id: r.token_sha256.clone(),
                }),
                Some(a) if a.revoked => {
                    Err(Rejection::Conflict("that token is already revoked".into()))
                }
                Some(a) if a.principal != r.principal => Err(invalid(
                    "principal",
                    format!("the token belongs to {}", a.principal),
                )),
                Some(_) => Ok(Decision::one(
                    format!("access/{}", r.principal),
                    Payload::AccessRevoked(r.clone()),
                )),
            }
        }
        Command::AddCabMember { member } => {
            check_text("member", member, NAME_BYTES_MAX, true)?;
            if state.cab_members.contains(member) {
                return Err(Rejection::Conflict(format!(
                    "{member} is already a CAB member"
                )));
            }
            Ok(Decision::one(
                "cab/members".into(),
                Payload::CabMemberAdded(CabMemberAdded {
                    member: member.clone(),
                }),
            ))
        }
        Command::RemoveCabMember { member } => {
            if !state.cab_members.contains(member) {
                return Err(Rejection::Unknown {
                    kind: "CAB member",
                    id: member.clone(),
                });
            }
            Ok(Decision::one(
                "cab/members".into(),
                Payload::CabMemberRemoved(CabMemberRemoved {
                    member: member.clone(),
                }),
            ))
        }
        Command::TrustSigningKey(k) => {
            check_text("key_id", &k.key_id, NAME_BYTES_MAX, true)?;
            check_text("owner", &k.owner, NAME_BYTES_MAX, true)?;
            let valid_key = hex::decode(&k.public_key_hex)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .is_some_and(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).is_ok());
            if !valid_key || k.public_key_hex.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(invalid(
                    "public_key_hex",
                    "must be a 32-byte Ed25519 public key in lowercase hex",
                ));
            }
            if state.signing_keys.contains_key(&k.key_id) {
                return Err(Rejection::Conflict(format!(
                    "key id {} was already used (key ids are never reused)",
                    k.key_id
                )));
            }
            Ok(Decision::one(
                format!("signing_key/{}", k.key_id),
                Payload::SigningKeyTrusted(k.clone()),
            ))
        }
        Command::RevokeSigningKey(k) => {
            check_text("reason", &k.reason, TEXT_BYTES_MAX, true)?;
            match state.signing_keys.get(&k.key_id) {
                None => Err(Rejection::Unknown {
                    kind: "signing key",
                    id: k.key_id.clone(),
                }),
                Some(r) if r.revoked_at.is_some() => Err(Rejection::Conflict(format!(
                    "key {} is already revoked",
                    k.key_id
                ))),
                Some(_) => Ok(Decision::one(
                    format!("signing_key/{}", k.key_id),
                    Payload::SigningKeyRevoked(k.clone()),
                )),
            }
        }
        Command::RecordEvidence {
            evidence_id,
            document,
        } => decide_evidence(state, *evidence_id, document),
        Command::Submit {
            deployment_id,
            request,
        } => decide_submit(state, actor, at, *deployment_id, request),
        Command::Vote {
            deployment_id,
            approve,
            rationale,
        } => decide_vote(state, actor, at, *deployment_id, *approve, rationale),
        Command::RaiseClassification {
            deployment_id,
            to,
            reason,
        } => {
            check_text("reason", reason, TEXT_BYTES_MAX, true)?;
            require_member(state, actor)?;
            let d = deployment(state, deployment_id)?;
            if *to <= d.class {
                return Err(Rejection::NotAllowed(format!(
                    "a classification can only be raised: {} is not above {}",
                    to.as_str(),
                    d.class.as_str()
                )));
            }
            if !matches!(
                d.status,
                DeploymentStatus::PendingCab | DeploymentStatus::AutoApproved
            ) {
                return Err(Rejection::NotAllowed(format!(
                    "deployment is {}",
                    d.status.as_str()
                )));
            }
            let model = state
                .active_model()
                .ok_or_else(|| Rejection::NotAllowed("no active risk model".into()))?;
            let subject = deployment_subject(deployment_id);
            let (_, mut decision) = gate(
                state,
                *deployment_id,
                *to,
                d.submitted.score_centi,
                &model.proposal,
            );
            // Raising never loosens: whatever the new threshold says, a raised deployment goes to the CAB.
            decision.quorum = state.quorum(*to);
            Ok(Decision {
                events: vec![
                    (
                        subject.clone(),
                        Payload::ClassificationRaised(ClassificationRaised {
                            deployment_id: *deployment_id,
                            from: d.class,
                            to: *to,
                            reason: reason.clone(),
                        }),
                    ),
                    (
                        subject,
                        Payload::DeploymentRoutedToCab(DeploymentRoutedToCab(decision)),
                    ),
                ],
                replay_of: None,
            })
        }
        Command::PresentSbom(sbom) => {
            let d = deployment(state, &sbom.deployment_id)?;
            if matches!(
                d.status,
                DeploymentStatus::Released | DeploymentStatus::BreakglassReleased
            ) {
                return Err(Rejection::Conflict(
                    "deployment was already released".into(),
                ));
            }
            check_hex64("sbom_sha256", &sbom.sbom_sha256)?;
            Ok(Decision::one(
                deployment_subject(&sbom.deployment_id),
                Payload::SbomPresented(sbom.clone()),
            ))
        }
        Command::Release(presented) => {
            let d = deployment(state, &presented.deployment_id)?;
            if matches!(
                d.status,
                DeploymentStatus::Released | DeploymentStatus::BreakglassReleased
            ) {
                return Err(Rejection::Conflict(
                    "deployment was already released".into(),
                ));
            }
            check_hex64("artifact_sha256", &presented.artifact_sha256)?;
            let checks = release_checks(state, presented, at, true)?;
            let verdict = ReleaseVerdict {
                deployment_id: presented.deployment_id,
                checks,
                artifact_sha256: presented.artifact_sha256.clone(),
                artifact_size: presented.artifact_size,
                sbom_sha256: presented.sbom_sha256.clone(),
            };
            let blocked = verdict.checks.iter().any(|c| c.outcome == "FAIL");
            let payload = if blocked {
                Payload::DeploymentReleaseBlocked(DeploymentReleaseBlocked(verdict))
            } else {
                Payload::DeploymentReleased(DeploymentReleased(verdict))
            };
            Ok(Decision::one(
                deployment_subject(&presented.deployment_id),
                payload,
            ))
        }
        Command::GrantException {
            exception_id,
            control,
            scope,
            reason,
            approvers,
            expires_at,
        } => {
            check_text("reason", reason, TEXT_BYTES_MAX, true)?;
            check_text("scope", scope, NAME_BYTES_MAX, true)?;
            if UNWAIVABLE_CONTROLS.contains(&control.as_str()) {
                return Err(invalid(
                    "control",
                    format!("{control} is never waivable (artifact and evidence integrity)"),
                ));
            }
            if !RELEASE_CHECKS.contains(&control.as_str()) {
                return Err(invalid("control", format!("unknown control {control:?}; waivable: sbom_hash, sbom_signature, blast_radius, approval")));
            }
            if *expires_at <= at {
                return Err(invalid("expires_at", "must be in the future"));
            }
            if expires_at.unix_micros() - at.unix_micros() > EXCEPTION_DAYS_MAX * 86_400_000_000 {
                return Err(invalid(
                    "expires_at",
                    format!("exceptions run at most {EXCEPTION_DAYS_MAX} days"),
                ));
            }
            let approvers = distinct_members(state, actor, approvers, 2)?;
            if state.exceptions.contains_key(exception_id) {
                return Err(Rejection::Conflict(format!(
                    "exception {exception_id} exists"
                )));
            }
            Ok(Decision::one(
                format!("exception/{exception_id}"),
                Payload::ExceptionGranted(ExceptionGranted {
                    exception_id: *exception_id,
                    control: control.clone(),
                    scope: scope.clone(),
                    reason: reason.clone(),
                    approvers,
                    expires_at: expires_at.to_string(),
                }),
            ))
        }
        Command::RevokeException {
            exception_id,
            reason,
        } => {
            check_text("reason", reason, TEXT_BYTES_MAX, true)?;
            match state.exceptions.get(exception_id) {
                None => Err(Rejection::Unknown {
                    kind: "exception",
                    id: exception_id.to_string(),
                }),
                Some(e) if !e.in_force_at(at) => Err(Rejection::NotAllowed(
                    "the exception is no longer in force".into(),
                )),
                Some(_) => Ok(Decision::one(
                    format!("exception/{exception_id}"),
                    Payload::ExceptionRevoked(ExceptionRevoked {
                        exception_id: *exception_id,
                        reason: reason.clone(),
                    }),
                )),
            }
        }
        Command::Breakglass {
            presented,
            justification,
            approvers,
        } => {
            check_text("justification", justification, TEXT_BYTES_MAX, true)?;
            check_hex64("artifact_sha256", &presented.artifact_sha256)?;
            let d = deployment(state, &presented.deployment_id)?;
            if matches!(
                d.status,
                DeploymentStatus::Released | DeploymentStatus::BreakglassReleased
            ) {
                return Err(Rejection::Conflict(
                    "deployment was already released".into(),
                ));
            }
            let approvers = distinct_members(state, actor, approvers, 2)?;
            if approvers.contains(&d.submitter) {
                return Err(Rejection::Forbidden(
                    "the submitter may not approve their own break-glass release".into(),
                ));
            }
            let checks = release_checks(state, presented, at, false)?;
            // Break-glass waives the approval, never integrity.
            if let Some(failed) = checks
                .iter()
                .find(|c| c.outcome == "FAIL" && UNWAIVABLE_CONTROLS.contains(&c.check.as_str()))
            {
                return Err(Rejection::NotAllowed(format!(
                    "break-glass cannot bypass {}: {}",
                    failed.check, failed.detail
                )));
            }
            Ok(Decision::one(
                deployment_subject(&presented.deployment_id),
                Payload::BreakglassReleased(BreakglassReleased {
                    deployment_id: presented.deployment_id,
                    justification: justification.clone(),
                    approvers,
                    artifact_sha256: presented.artifact_sha256.clone(),
                    artifact_size: presented.artifact_size,
                    sbom_sha256: presented.sbom_sha256.clone(),
                    checks,
                    review_due_at: Timestamp::from_unix_micros(
                        at.unix_micros() + BREAKGLASS_REVIEW_MICROS,
                    )
                    .to_string(),
                }),
            ))
        }
        Command::ReportIncident(report) => decide_incident(state, at, report),
        Command::UpdateIncident(update) => {
            let incident =
                state
                    .incidents
                    .get(&update.incident_id)
                    .ok_or_else(|| Rejection::Unknown {
                        kind: "incident",
                        id: update.incident_id.to_string(),
                    })?;
            if let Some(money) = &update.business_impact_usd {
                check_money("business_impact_usd", money)?;
            }
            if let Some(notes) = &update.notes {
                check_text("notes", notes, TEXT_BYTES_MAX, false)?;
            }
            let nothing = update.severity.is_none()
                && update.affected_user_count.is_none()
                && update.downtime_minutes.is_none()
                && update.business_impact_usd.is_none()
                && update.preventable.is_none()
                && update.notes.is_none();
            if nothing {
                return Err(invalid("update", "names no field to change"));
            }
            let mut events = vec![(
                format!("incident/{}", update.incident_id),
                Payload::IncidentUpdated(update.clone()),
            )];
            // Raising an incident to P1 is as serious as reporting one.
            if update.severity == Some(Severity::P1) && incident.current.severity != Severity::P1 {
                events.extend(regression_event(
                    state,
                    format!("REGRESSION: incident {} raised to P1", update.incident_id),
                ));
            }
            Ok(Decision {
                events,
                replay_of: None,
            })
        }
        Command::EvaluateMaturity { strict } => {
            let evaluation = crate::maturity::evaluate(state, at, *strict);
            let regression = evaluation.outcome == crate::maturity::REGRESSION_REQUIRED;
            let mut events = vec![(
                "maturity/level".to_owned(),
                Payload::MaturityEvaluated(evaluation),
            )];
            if regression {
                events.extend(regression_event(
                    state,
                    "REGRESSION: incident rate or P1 count above the level's cap".into(),
                ));
            }
            Ok(Decision {
                events,
                replay_of: None,
            })
        }
        Command::VoteProgression {
            to_level,
            approve,
            rationale,
        } => decide_progression(state, actor, *to_level, *approve, rationale),
        Command::ReviewBreakglass {
            deployment_id,
            justified,
            findings,
        } => {
            check_text("findings", findings, TEXT_BYTES_MAX, true)?;
            require_member(state, actor)?;
            let d = deployment(state, deployment_id)?;
            match d.breakglass {
                None => Err(Rejection::NotAllowed(
                    "deployment was not released by break-glass".into(),
                )),
                Some((_, Some(_))) => Err(Rejection::Conflict(
                    "break-glass release already reviewed".into(),
                )),
                Some(_) => Ok(Decision::one(
                    deployment_subject(deployment_id),
                    Payload::BreakglassReviewed(BreakglassReviewed {
                        deployment_id: *deployment_id,
                        justified: *justified,
                        findings: findings.clone(),
                    }),
                )),
            }
        }
    }
}

fn decide_blast_policy(
    state: &GovernanceState,
    actor: &str,
    p: &BlastRadiusPolicySet,
) -> Result<Decision, Rejection> {
    let current = state.blast_policy.as_ref().map_or(0, |c| c.version);
    if p.version != current + 1 {
        return Err(invalid(
            "version",
            format!("must be {} (the next version)", current + 1),
        ));
    }
    for class in BlastRadiusClass::ALL {
        let specs: Vec<_> = p.classes.iter().filter(|c| c.class == class).collect();
        match specs.as_slice() {
            [spec] if (1..=9).contains(&spec.quorum) => check_text(
                "classes.description",
                &spec.description,
                TEXT_BYTES_MAX,
                false,
            )?,
            [spec] => {
                return Err(invalid(
                    "classes",
                    format!("{} quorum {} is outside 1–9", class.as_str(), spec.quorum),
                ))
            }
            _ => {
                return Err(invalid(
                    "classes",
                    format!("{} must appear exactly once", class.as_str()),
                ))
            }
        }
    }
    if p.rules.len() > 256 {
        return Err(invalid("rules", "at most 256 rules"));
    }
    let mut ids = BTreeSet::new();
    for rule in &p.rules {
        check_text("rules.id", &rule.id, 64, true)?;
        if rule.id == "default" || !ids.insert(rule.id.as_str()) {
            return Err(invalid(
                "rules.id",
                format!("{:?} is reserved or used twice", rule.id),
            ));
        }
        if rule.keywords.iter().any(|k| words(k).is_empty()) {
            return Err(invalid(
                "rules.keywords",
                format!("rule {} has a keyword without letters or digits", rule.id),
            ));
        }
    }
    if !(1..=APPROVAL_VALIDITY_HOURS_MAX).contains(&p.approval_validity_hours) {
        return Err(invalid(
            "approval_validity_hours",
            format!("must be 1–{APPROVAL_VALIDITY_HOURS_MAX}"),
        ));
    }
    let approvers = distinct_members(state, actor, &p.approvers, POLICY_APPROVAL_QUORUM)?;
    let mut policy = p.clone();
    policy.approvers = approvers;
    Ok(Decision::one(
        "blast_radius/policy".into(),
        Payload::BlastRadiusPolicySet(policy),
    ))
}

fn decide_evidence(
    state: &GovernanceState,
    evidence_id: Uuid,
    document: &EvidenceDocument,
) -> Result<Decision, Rejection> {
    if document.artifacts.is_empty() {
        return Err(invalid("artifacts", "at least one artifact is required"));
    }
    for a in &document.artifacts {
        check_text("artifacts.name", &a.name, NAME_BYTES_MAX, true)?;
        check_hex64("artifacts.sha256", &a.sha256)?;
    }
    if let Some(sbom) = &document.sbom {
        check_text("sbom.format", &sbom.format, NAME_BYTES_MAX, true)?;
        check_hex64("sbom.sha256", &sbom.sha256)?;
        if let Some(sig) = &sbom.signature {
            check_text("sbom.signature.key_id", &sig.key_id, NAME_BYTES_MAX, true)?;
            if hex::decode(&sig.signature_hex).map(|b| b.len()) != Ok(64) {
                return Err(invalid(
                    "sbom.signature.signature_hex",
                    "must be 64 bytes in hex",
                ));
            }
        }
    }
    check_text("generated_by", &document.generated_by, NAME_BYTES_MAX, true)?;
    check_text("packaged_by", &document.packaged_by, NAME_BYTES_MAX, true)?;
    if document.generated_by == document.packaged_by {
        return Err(Rejection::Forbidden(
            "separation of duties: the evidence generator may not also package the artifact".into(),
        ));
    }
    if state.evidence.contains_key(&evidence_id) {
        return Err(Rejection::Conflict(format!(
            "evidence {evidence_id} exists (evidence is immutable)"
        )));
    }
    let evidence_hash = canonical_sha256("document", document)?;
    Ok(Decision::one(
        format!("evidence/{evidence_id}"),
        Payload::EvidenceRecorded(EvidenceRecorded {
            evidence_id,
            document: document.clone(),
            evidence_hash,
        }),
    ))
}

fn decide_submit(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    deployment_id: Uuid,
    request: &SubmitDeployment,
) -> Result<Decision, Rejection> {
    check_text("correlation_id", &request.correlation_id, 128, true)?;
    if request.target_user_count > canonical::INTEGER_MAGNITUDE_MAX {
        return Err(invalid("target_user_count", "is too large"));
    }
    let request_sha256 = canonical_sha256("request", request)?;
    if let Some(existing) = state.by_correlation.get(&request.correlation_id) {
        let d = deployment(state, existing)?;
        if d.submitted.request_sha256_is(&request_sha256) && d.submitter == actor {
            return Ok(Decision {
                events: Vec::new(),
                replay_of: Some(*existing),
            });
        }
        return Err(Rejection::Conflict(format!(
            "correlation id {} was already used for deployment {existing} with different content",
            request.correlation_id
        )));
    }
    check_text("app_name", &request.app_name, NAME_BYTES_MAX, true)?;
    check_text("app_version", &request.app_version, NAME_BYTES_MAX, true)?;
    if request.cmdb.len() > 64
        || request
            .cmdb
            .iter()
            .any(|(k, v)| k.len() > NAME_BYTES_MAX || v.len() > NAME_BYTES_MAX)
    {
        return Err(invalid("cmdb", "at most 64 entries of at most 256 bytes"));
    }
    if request.target_user_count > canonical::INTEGER_MAGNITUDE_MAX {
        return Err(invalid("target_user_count", "is too large"));
    }
    let evidence = state
        .evidence
        .get(&request.evidence_id)
        .ok_or_else(|| Rejection::Unknown {
            kind: "evidence",
            id: request.evidence_id.to_string(),
        })?;
    if state.deployments.contains_key(&deployment_id) {
        return Err(Rejection::Conflict(format!(
            "deployment {deployment_id} exists"
        )));
    }
    let policy = state
        .blast_policy
        .as_ref()
        .ok_or_else(|| Rejection::NotAllowed("no blast-radius policy in force".into()))?;
    let model = state
        .active_model()
        .ok_or_else(|| Rejection::NotAllowed("no active risk model".into()))?;
    let input = ClassifyInput {
        app_name: request.app_name.clone(),
        requires_admin: request.requires_admin,
        target_user_count: request.target_user_count,
        cmdb: request.cmdb.clone(),
    };
    let classification = classify(policy, &input);
    let factors = derive_factors(
        state,
        &model.proposal.weights_bp,
        &input,
        classification.class,
        &evidence,
        at,
    );
    let score = score_centi(&factors);
    let (auto, decision) = gate(
        state,
        deployment_id,
        classification.class,
        score,
        &model.proposal,
    );
    let subject = deployment_subject(&deployment_id);
    let submitted = DeploymentSubmitted {
        deployment_id,
        correlation_id: request.correlation_id.clone(),
        request_sha256,
        app_name: request.app_name.clone(),
        app_version: request.app_version.clone(),
        requires_admin: request.requires_admin,
        target_user_count: request.target_user_count,
        cmdb: request.cmdb.clone(),
        evidence_id: request.evidence_id,
        evidence_hash: evidence.evidence_hash.to_string(),
        classification,
        factors,
        score_centi: score,
        score: centi_to_decimal(score),
        model_version: model.proposal.version.clone(),
    };
    let gate_event = if auto {
        Payload::DeploymentAutoApproved(DeploymentAutoApproved(decision))
    } else {
        Payload::DeploymentRoutedToCab(DeploymentRoutedToCab(decision))
    };
    Ok(Decision {
        events: vec![
            (subject.clone(), Payload::DeploymentSubmitted(submitted)),
            (subject, gate_event),
        ],
        replay_of: None,
    })
}

fn decide_vote(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    deployment_id: Uuid,
    approve: bool,
    rationale: &str,
) -> Result<Decision, Rejection> {
    check_text("rationale", rationale, TEXT_BYTES_MAX, true)?;
    let d = deployment(state, &deployment_id)?;
    require_member(state, actor)?;
    if d.submitter == actor {
        return Err(Rejection::Forbidden(
            "separation of duties: the submitter may not vote on their own deployment".into(),
        ));
    }
    let generated_by_actor = state
        .evidence
        .get(&d.submitted.evidence_id)
        .is_some_and(|e| e.generated_by == actor);
    if generated_by_actor {
        return Err(Rejection::Forbidden(
            "separation of duties: the evidence generator may not vote on this deployment".into(),
        ));
    }
    if d.votes.contains_key(actor) {
        return Err(Rejection::Conflict(format!(
            "{actor} already voted on this deployment"
        )));
    }
    if d.status != DeploymentStatus::PendingCab {
        return Err(Rejection::NotAllowed(format!(
            "deployment is {}, not pending CAB",
            d.status.as_str()
        )));
    }
    let subject = deployment_subject(&deployment_id);
    let mut events = vec![(
        subject.clone(),
        Payload::CabVoteCast(CabVoteCast {
            target: VoteTarget::Deployment { deployment_id },
            approve,
            rationale: rationale.to_owned(),
        }),
    )];
    if !approve {
        events.push((
            subject,
            Payload::DeploymentRejected(DeploymentRejected {
                deployment_id,
                rejected_by: actor.to_owned(),
                rationale: rationale.to_owned(),
            }),
        ));
    } else {
        // A quorum counts distinct approvers who are members now.
        let approvers: Vec<String> = d
            .votes
            .iter()
            .filter(|(m, (a, _))| *a && state.cab_members.contains(*m))
            .map(|(m, _)| m.clone())
            .chain(std::iter::once(actor.to_owned()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if approvers.len() as u64 >= u64::from(state.quorum(d.class)) {
            let validity_hours = state
                .blast_policy
                .as_ref()
                .map_or(7 * 24, |p| p.approval_validity_hours);
            let expires_at = Timestamp::from_unix_micros(
                at.unix_micros() + i64::from(validity_hours) * 3_600_000_000,
            )
            .to_string();
            events.push((
                subject,
                Payload::DeploymentApproved(DeploymentApproved {
                    deployment_id,
                    approvers,
                    expires_at,
                }),
            ));
        }
    }
    Ok(Decision {
        events,
        replay_of: None,
    })
}
