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

pub use changes::CHANGE_QUORUM;
pub use inverse::command_of;
pub use producers::{record_evidence_signed_by_label, set_producer_by_label};
pub use release::release_checks;
pub use role::{holds_role_for, roles_for, system_roles, Role, CLI_ADMIN, SCHEDULER};
pub use signatures::{sbom_signature_verifies, SignatureMemo, SignatureQuestion};
pub(crate) use signatures::{ssh_answer_ahead, verifying_key};
pub use signed_votes::{sign_vote, vote_digest, SignedVote, VoteProof};

mod access;
mod breakglass;
mod cab;
mod changes;
mod deployments;
mod exceptions;
mod incidents;
mod inverse;
mod models;
pub mod names;
mod passkeys;
mod producers;
mod progression;
mod proposals;
pub mod registry;
mod release;
mod role;
mod signatures;
mod signed_votes;
#[cfg(test)]
mod tests;

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
/// Why a submission that the score would auto-approve goes to the CAB: its application is not
/// in the registry.
pub const UNREGISTERED_APPLICATION: &str = "UNREGISTERED_APPLICATION";
/// Approvers, other than its proposer, an exception needs.
pub const EXCEPTION_QUORUM: usize = 2;
/// How long a proposal takes votes.
pub const PROPOSAL_MICROS: i64 = 72 * 3600 * 1_000_000;
/// Longest an exception may run.
pub const EXCEPTION_DAYS_MAX: i64 = 90;
/// A break-glass release must be reviewed within this.
pub const BREAKGLASS_REVIEW_MICROS: i64 = 72 * 3600 * 1_000_000;
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

/// Whether `phrase` occurs in `haystack` (lowercase words) as whole words. Compared as
/// [`words`] would make them, without allocating: it runs for every keyword of every rule of
/// every classification.
fn contains_phrase(haystack: &[String], phrase: &str) -> bool {
    let needle = || {
        phrase
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
    };
    let len = needle().count();
    len > 0
        && haystack.windows(len).any(|window| {
            window
                .iter()
                .zip(needle())
                .all(|(word, wanted)| equals_lowercased(word, wanted))
        })
}

/// Whether `lowercase` is `text.to_lowercase()`, without allocating.
fn equals_lowercased(lowercase: &str, text: &str) -> bool {
    lowercase
        .chars()
        .eq(text.chars().flat_map(char::to_lowercase))
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
                .is_some_and(|t| rule.cmdb_tiers.iter().any(|r| equals_lowercased(t, r)));
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
                registered_app: None,
                sources: None,
            };
        }
    }
    Classification {
        class: BlastRadiusClass::NonCritical,
        rule: "default".into(),
        policy_version: policy.version,
        registered_app: None,
        sources: None,
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
    (deployment_id, at): (Uuid, Timestamp),
    class: BlastRadiusClass,
    score: u32,
    model: &RiskModelProposed,
) -> (bool, GateDecision) {
    // Past its review date a model auto-approves nothing until a CAB-approved version renews
    // it (on logs begun with signed votes; older logs keep the rules they were written under).
    let lapsed = state.signed_votes_required && model_lapsed(model, at);
    let model_threshold = if lapsed {
        0
    } else {
        model.thresholds.get(&class).copied().unwrap_or(0)
    };
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

/// Whether `at` is past the end of `model`'s review date (an unreadable date is past).
pub fn model_lapsed(model: &RiskModelProposed, at: Timestamp) -> bool {
    Timestamp::parse(&format!("{}T00:00:00.000000Z", model.review_date)).map_or(true, |day| {
        at.unix_micros() >= day.unix_micros() + 86_400_000_000
    })
}

/// A submission request (also the API's request body: unknown fields are refused, so a
/// submitter cannot declare a risk score).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
        /// The member's signature over the vote's statement.
        signature: Option<SignedVote>,
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
        /// The member's OpenSSH Ed25519 public key (required when votes must be signed).
        ssh_key: Option<String>,
    },
    /// A member registers the key their votes are signed with from now on.
    RegisterMemberKey {
        /// The member (only they may).
        member: String,
        /// The OpenSSH Ed25519 public key line.
        ssh_key: String,
    },
    /// A member registers a passkey (WebAuthn) as one of their vote keys.
    RegisterPasskey {
        /// The member (only they may).
        member: String,
        /// When they asked (entry time spelling): the registration statement names it.
        requested_at: String,
        /// The relying party id the service serves its pages as.
        rp_id: String,
        /// The credential's id (unpadded base64url).
        credential_id: String,
        /// The client data JSON (unpadded base64url).
        client_data_json: String,
        /// The attestation object (unpadded base64url).
        attestation_object: String,
    },
    /// Revoke a member's key in force, SSH key or passkey (the member or an admin).
    RevokeMemberKey {
        /// The member.
        member: String,
        /// The key's fingerprint.
        fingerprint: String,
        /// Why.
        reason: String,
    },
    /// Require every vote from now on to be signed (never undone).
    RequireSignedVotes,
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
        /// Its producer's armored SSH signature over the document's canonical JSON.
        signature: Option<String>,
    },
    /// Set the key an evidence producer signs with (an admin, before the CAB's first vote).
    SetEvidenceProducer {
        /// The producer's name.
        producer: String,
        /// Its OpenSSH Ed25519 public key line.
        ssh_key: String,
    },
    /// Stop trusting an evidence producer's key.
    RevokeEvidenceProducer {
        /// The producer.
        producer: String,
        /// Why.
        reason: String,
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
        /// The member's signature over the vote's statement.
        signature: Option<SignedVote>,
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
    /// Propose an exception (a CAB member), to be granted by others' signed votes.
    ProposeException {
        /// New id.
        exception_id: Uuid,
        /// The control to waive.
        control: String,
        /// Scope: an app name, or `deployment:<id>`.
        scope: String,
        /// Reason.
        reason: String,
        /// When the exception, once granted, expires.
        expires_at: Timestamp,
    },
    /// A CAB member's vote on a proposed exception.
    VoteException {
        /// The proposal.
        exception_id: Uuid,
        /// Approve?
        approve: bool,
        /// Rationale.
        rationale: String,
        /// The member's signature over the vote's statement.
        signature: Option<SignedVote>,
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
        /// Only on a log begun before signed votes: two or more CAB approvers (the actor must
        /// be one). Empty on every other log.
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
        /// The member's signature over the vote's statement.
        signature: Option<SignedVote>,
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
    /// Propose a change to the CAB's membership or its blast-radius policy.
    ProposeChange {
        /// New id.
        proposal_id: Uuid,
        /// The change.
        change: ProposedChange,
    },
    /// A CAB member's vote on a proposed change.
    VoteChange {
        /// The proposal.
        proposal_id: Uuid,
        /// Approve?
        approve: bool,
        /// Rationale.
        rationale: String,
        /// The member's signature over the vote's statement.
        signature: Option<SignedVote>,
    },
    /// Propose an application registry entry (new, or replacing the one with its id).
    ProposeRegistryChange {
        /// New id.
        proposal_id: Uuid,
        /// The entry.
        entry: AppEntry,
    },
    /// A CAB member's vote on a registry change.
    VoteRegistryChange {
        /// The proposal.
        proposal_id: Uuid,
        /// Approve?
        approve: bool,
        /// Rationale.
        rationale: String,
        /// The member's signature over the vote's statement.
        signature: Option<SignedVote>,
    },
    /// A CAB member's signed review vote on a break-glass release.
    VoteBreakglassReview {
        /// Deployment.
        deployment_id: Uuid,
        /// Was the emergency justified?
        justified: bool,
        /// Findings (the vote's rationale).
        findings: String,
        /// The member's signature over the vote's statement.
        signature: Option<SignedVote>,
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
        Command::ProposeRiskModel { .. }
        | Command::VoteRiskModel { .. }
        | Command::ActivateRiskModel { .. }
        | Command::SetBlastRadiusPolicy { .. } => models::decide(state, actor, at, command),
        Command::GrantAccess { .. }
        | Command::RevokeAccess { .. }
        | Command::TrustSigningKey { .. }
        | Command::RevokeSigningKey { .. } => access::decide(state, command),
        Command::RegisterMemberKey { .. }
        | Command::RevokeMemberKey { .. }
        | Command::RequireSignedVotes => signed_votes::decide(state, actor, command),
        Command::RegisterPasskey { .. } => passkeys::decide(state, actor, at, command),
        Command::AddCabMember { .. }
        | Command::RemoveCabMember { .. }
        | Command::Vote { .. }
        | Command::RaiseClassification { .. } => cab::decide(state, actor, at, command),
        Command::RecordEvidence { .. } | Command::Submit { .. } => {
            deployments::decide(state, actor, at, command)
        }
        Command::PresentSbom { .. } | Command::Release { .. } => {
            release::decide(state, at, command)
        }
        Command::SetEvidenceProducer { .. } | Command::RevokeEvidenceProducer { .. } => {
            producers::decide(state, command)
        }
        Command::Breakglass { .. }
        | Command::ReviewBreakglass { .. }
        | Command::VoteBreakglassReview { .. } => breakglass::decide(state, actor, at, command),
        Command::ProposeChange { .. } | Command::VoteChange { .. } => {
            changes::decide(state, actor, at, command)
        }
        Command::ProposeRegistryChange { .. } | Command::VoteRegistryChange { .. } => {
            registry::decide(state, actor, at, command)
        }
        Command::GrantException { .. }
        | Command::ProposeException { .. }
        | Command::VoteException { .. }
        | Command::RevokeException { .. } => exceptions::decide(state, actor, at, command),
        Command::ReportIncident { .. } | Command::UpdateIncident { .. } => {
            incidents::decide(state, at, command)
        }
        Command::EvaluateMaturity { .. } | Command::VoteProgression { .. } => {
            progression::decide(state, actor, at, command)
        }
    }
}
