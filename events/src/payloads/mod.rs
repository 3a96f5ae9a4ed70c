//! The governance event catalogue: one typed payload per `trustledger.*` type.
//!
//! Every payload is integer- and string-only (no floats): scores are hundredths in `*_centi`
//! integers and decimal strings, rates are basis points, money is a decimal string. Each type is
//! at schema version 1 unless noted; [`Payload`] lets readers handle any of them by type.

use crate::catalogue::{self, DecodeError, EventPayload};

mod cab;
mod evidence;
use crate::entry::{Entry, EventDraft};
pub use cab::*;
pub use evidence::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The four blast-radius classes, least to most critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum BlastRadiusClass {
    /// Utilities, optional apps.
    NonCritical,
    /// Office, collaboration.
    ProductivityTools,
    /// ERP, financial, customer-facing.
    BusinessCritical,
    /// Security, OS, identity.
    CriticalInfrastructure,
}

impl BlastRadiusClass {
    /// All classes, least critical first.
    pub const ALL: [BlastRadiusClass; 4] = [
        Self::NonCritical,
        Self::ProductivityTools,
        Self::BusinessCritical,
        Self::CriticalInfrastructure,
    ];

    /// The wire name, e.g. `CRITICAL_INFRASTRUCTURE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NonCritical => "NON_CRITICAL",
            Self::ProductivityTools => "PRODUCTIVITY_TOOLS",
            Self::BusinessCritical => "BUSINESS_CRITICAL",
            Self::CriticalInfrastructure => "CRITICAL_INFRASTRUCTURE",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// A risk model version's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RiskModelProposed {
    /// Version label, e.g. `1.1`.
    pub version: String,
    /// Mode, e.g. `GREENFIELD_CONSERVATIVE`.
    pub mode: String,
    /// Auto-approve threshold per class, 0–100 (scores at or below it may auto-approve).
    pub thresholds: BTreeMap<BlastRadiusClass, u32>,
    /// Factor weights in basis points, summing to exactly 10000.
    pub weights_bp: BTreeMap<String, u32>,
    /// First day the model may be in force (`YYYY-MM-DD`).
    pub effective_date: String,
    /// Day by which the CAB reviews it (`YYYY-MM-DD`).
    pub review_date: String,
    /// Calibration evidence: free text and, ideally, the SHA-256 of a backtest report.
    pub calibration_evidence: String,
    /// The backtest report the proposer cites: required (on a log that requires signed votes)
    /// for a model that raises a threshold or lowers a weight of the model in force; the service
    /// re-runs the backtest and refuses a digest that does not match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backtest: Option<BacktestCitation>,
}
impl EventPayload for RiskModelProposed {
    const NAME: &'static str = "risk_model.proposed";
    // v2 added `backtest`; v1 is v2 without it.
    const VERSION: u32 = 2;

    fn upcast(from: u32, data: serde_json::Value) -> Result<serde_json::Value, String> {
        catalogue::upcast_by_added_optional_members::<Self>(from, data)
    }
}

/// A backtest report a model proposal cites: the candidate tried on the log's first `log_size`
/// entries (`trustledger backtest` prints both numbers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BacktestCitation {
    /// How many entries, from seq 0, the backtest folded.
    pub log_size: u64,
    /// Lowercase hex SHA-256 of the report's RFC 8785 canonical JSON.
    pub report_sha256: String,
}

/// A CAB quorum approved a proposed model version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskModelApproved {
    /// The version.
    pub version: String,
    /// The distinct CAB members whose votes made the quorum.
    pub approvers: Vec<String>,
}
impl EventPayload for RiskModelApproved {
    const NAME: &'static str = "risk_model.approved";
    const VERSION: u32 = 1;
}

/// A model version became the one in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskModelActivated {
    /// The version now active.
    pub version: String,
    /// The version it replaced, if any.
    pub previous_version: Option<String>,
    /// Why no CAB approval was needed (`ALL_THRESHOLDS_ZERO`), or `CAB_APPROVED`.
    pub basis: String,
}
impl EventPayload for RiskModelActivated {
    const NAME: &'static str = "risk_model.activated";
    const VERSION: u32 = 1;
}

/// One class's gate parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ClassSpec {
    /// The class.
    pub class: BlastRadiusClass,
    /// Distinct CAB approvals needed.
    pub quorum: u32,
    /// What belongs in it.
    pub description: String,
    /// Whether a release of this class must present an SBOM that its evidence lists (absent in
    /// policies recorded before v2: not required).
    #[serde(default)]
    pub sbom_required: bool,
}

/// A classification rule: all present conditions must hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ClassificationRule {
    /// Stable rule id recorded with every classification it makes.
    pub id: String,
    /// The class it assigns.
    pub class: BlastRadiusClass,
    /// CMDB service tiers that match (any).
    #[serde(default)]
    pub cmdb_tiers: Vec<String>,
    /// Keywords or phrases matched as whole words, case-insensitively (any).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Required admin-rights flag, if the rule cares.
    #[serde(default)]
    pub requires_admin: Option<bool>,
    /// Minimum target user count, if the rule cares.
    #[serde(default)]
    pub min_target_users: Option<u64>,
}

/// The blast-radius policy in force: classes and ordered rules (first match wins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BlastRadiusPolicySet {
    /// Policy version, increasing.
    pub version: u32,
    /// Every class with its quorum.
    pub classes: Vec<ClassSpec>,
    /// Rules in order; a deployment no rule matches is NON_CRITICAL by rule `default`.
    pub rules: Vec<ClassificationRule>,
    /// How long a CAB approval stays valid if the deployment is not released.
    pub approval_validity_hours: u32,
    /// The CAB members who approved this version (empty for the genesis policy).
    pub approvers: Vec<String>,
}
impl EventPayload for BlastRadiusPolicySet {
    const NAME: &'static str = "blast_radius.policy_set";
    // v2 added each class's `sbom_required`; a v1 class is a v2 class that does not require one.
    const VERSION: u32 = 2;

    fn upcast(from: u32, data: serde_json::Value) -> Result<serde_json::Value, String> {
        catalogue::upcast_by_added_optional_members::<Self>(from, data)
    }
}

/// One trust-maturity level (the seed's table as data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaturityLevel {
    /// 0–4.
    pub level: u32,
    /// Baseline, Cautious, ...
    pub mode: String,
    /// Weeks at the previous level before this one may be reached.
    pub min_weeks: u32,
    /// Highest incident rate allowed to reach and stay at this level, in basis points.
    pub max_incident_rate_bp: Option<u32>,
    /// Highest P1 count in the window.
    pub max_p1: Option<u32>,
    /// Highest P2 count in the window.
    pub max_p2: Option<u32>,
    /// Consecutive weeks without incidents required (level 4's "8+ weeks zero").
    pub zero_incident_weeks: u32,
    /// Auto-approve thresholds this level allows per class.
    pub thresholds: BTreeMap<BlastRadiusClass, u32>,
}

/// The maturity levels in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaturityLevelsDefined {
    /// Levels 0..n in order.
    pub levels: Vec<MaturityLevel>,
}
impl EventPayload for MaturityLevelsDefined {
    const NAME: &'static str = "maturity.levels_defined";
    const VERSION: u32 = 1;
}

/// The maturity level in force changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaturityLevelChanged {
    /// Previous level.
    pub from: u32,
    /// New level.
    pub to: u32,
    /// `PROGRESSION_APPROVED` or `REGRESSION`.
    pub reason: String,
}
impl EventPayload for MaturityLevelChanged {
    const NAME: &'static str = "maturity.level_changed";
    const VERSION: u32 = 1;
}

/// An SBOM signing key is trusted from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SigningKeyTrusted {
    /// Key id used in evidence (`key_id` of an SBOM signature).
    pub key_id: String,
    /// Ed25519 public key, lowercase hex (64 digits).
    pub public_key_hex: String,
    /// Who holds it.
    pub owner: String,
}
impl EventPayload for SigningKeyTrusted {
    const NAME: &'static str = "signing_key.trusted";
    const VERSION: u32 = 1;
}

/// An SBOM signing key is no longer trusted from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyRevoked {
    /// The key id.
    pub key_id: String,
    /// Why.
    pub reason: String,
}
impl EventPayload for SigningKeyRevoked {
    const NAME: &'static str = "signing_key.revoked";
    const VERSION: u32 = 1;
}

/// One derived risk factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RiskFactor {
    /// Factor name (a key of the model's weights).
    pub name: String,
    /// Value 0–100, derived from facts.
    pub value: u32,
    /// Weight in basis points.
    pub weight_bp: u32,
    /// What the value was derived from.
    pub basis: String,
}

/// The classification a deployment received and the rule that chose it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Classification {
    /// The class.
    pub class: BlastRadiusClass,
    /// The rule id (`default` if none matched), or `registry:<app id>` when the application
    /// registry set the class.
    pub rule: String,
    /// Policy version used.
    pub policy_version: u32,
    /// On a log with an application registry: the registered app the name matched, or `None`
    /// for an unregistered app (classified by the rules, never auto-approved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_app: Option<String>,
    /// On a log with an application registry: where each input came from, e.g.
    /// `class: registry (CRITICAL_INFRASTRUCTURE); rules on the submitter's inputs: NON_CRITICAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<String>,
}

/// A deployment was submitted, classified and scored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSubmitted {
    /// Deployment id.
    pub deployment_id: Uuid,
    /// The submitter's correlation id (idempotency key).
    pub correlation_id: String,
    /// SHA-256 of the canonical submission request (a retry must match it).
    pub request_sha256: String,
    /// Application name.
    pub app_name: String,
    /// Application version.
    pub app_version: String,
    /// Whether it installs with admin rights.
    pub requires_admin: bool,
    /// Machines or users targeted.
    pub target_user_count: u64,
    /// CMDB data as given (string map).
    pub cmdb: BTreeMap<String, String>,
    /// The evidence package.
    pub evidence_id: Uuid,
    /// The evidence hash at submission.
    pub evidence_hash: String,
    /// Classification and rule.
    pub classification: Classification,
    /// Every factor.
    pub factors: Vec<RiskFactor>,
    /// Score in hundredths (0–10000).
    pub score_centi: u32,
    /// Score as a decimal string, e.g. `42.75`.
    pub score: String,
    /// Model version that produced the score.
    pub model_version: String,
}
impl EventPayload for DeploymentSubmitted {
    const NAME: &'static str = "deployment.submitted";
    // v2 added the classification's `registered_app` and `sources`; v1 is v2 without them.
    const VERSION: u32 = 2;

    fn upcast(from: u32, data: serde_json::Value) -> Result<serde_json::Value, String> {
        catalogue::upcast_by_added_optional_members::<Self>(from, data)
    }
}

/// The gate decision for a submitted deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GateDecision {
    /// Deployment id.
    pub deployment_id: Uuid,
    /// Score in hundredths.
    pub score_centi: u32,
    /// Effective threshold (min of model and level; 0 for CRITICAL_INFRASTRUCTURE).
    pub threshold: u32,
    /// The model's threshold for the class.
    pub model_threshold: u32,
    /// The maturity level's threshold for the class.
    pub level_threshold: u32,
    /// Model version in force.
    pub model_version: String,
    /// Maturity level in force.
    pub maturity_level: u32,
    /// The class.
    pub class: BlastRadiusClass,
    /// CAB approvals needed (0 when auto-approved).
    pub quorum: u32,
}

/// Auto-approved by the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeploymentAutoApproved(pub GateDecision);
impl EventPayload for DeploymentAutoApproved {
    const NAME: &'static str = "deployment.auto_approved";
    const VERSION: u32 = 1;
}

/// Sent to the CAB by the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeploymentRoutedToCab(pub GateDecision);
impl EventPayload for DeploymentRoutedToCab {
    const NAME: &'static str = "deployment.routed_to_cab";
    const VERSION: u32 = 1;
}

/// A CAB member raised a deployment's class (never lowered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassificationRaised {
    /// Deployment id.
    pub deployment_id: Uuid,
    /// Old class.
    pub from: BlastRadiusClass,
    /// New class.
    pub to: BlastRadiusClass,
    /// Why.
    pub reason: String,
}
impl EventPayload for ClassificationRaised {
    const NAME: &'static str = "deployment.classification_raised";
    const VERSION: u32 = 1;
}

/// The CAB quorum approved a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentApproved {
    /// Deployment id.
    pub deployment_id: Uuid,
    /// The distinct approvers.
    pub approvers: Vec<String>,
    /// The approval lapses if not released by then (RFC 3339, entry time spelling).
    pub expires_at: String,
}
impl EventPayload for DeploymentApproved {
    const NAME: &'static str = "deployment.approved";
    const VERSION: u32 = 1;
}

/// A CAB member rejected a deployment (any rejection rejects).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentRejected {
    /// Deployment id.
    pub deployment_id: Uuid,
    /// Who rejected.
    pub rejected_by: String,
    /// Their rationale.
    pub rationale: String,
}
impl EventPayload for DeploymentRejected {
    const NAME: &'static str = "deployment.rejected";
    const VERSION: u32 = 1;
}

/// A release-gate control, recorded by its name (`artifact_hash`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Control {
    /// The artifact presented is the one the evidence lists.
    ArtifactHash,
    /// The evidence is as it was when the deployment was submitted.
    EvidenceImmutability,
    /// The SBOM presented is the one the evidence lists.
    SbomHash,
    /// The SBOM is signed by a key trusted at the time.
    SbomSignature,
    /// The class's threshold or quorum is met.
    BlastRadius,
    /// The CAB approved (or the score was auto-approvable).
    Approval,
}

impl Control {
    /// Every control, in the order the gate checks them.
    pub const ALL: [Self; 6] = [
        Self::ArtifactHash,
        Self::EvidenceImmutability,
        Self::SbomHash,
        Self::SbomSignature,
        Self::BlastRadius,
        Self::Approval,
    ];

    /// Its recorded name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ArtifactHash => "artifact_hash",
            Self::EvidenceImmutability => "evidence_immutability",
            Self::SbomHash => "sbom_hash",
            Self::SbomSignature => "sbom_signature",
            Self::BlastRadius => "blast_radius",
            Self::Approval => "approval",
        }
    }

    /// The control with this recorded name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Whether an exception may waive it: never the artifact's or the evidence's integrity.
    pub fn is_waivable(self) -> bool {
        !matches!(self, Self::ArtifactHash | Self::EvidenceImmutability)
    }

    /// Whether it checks what is shipped (the artifact, the evidence, the SBOM and its
    /// signature) rather than who approved it: a break-glass release never bypasses these.
    pub fn is_integrity(self) -> bool {
        !matches!(self, Self::BlastRadius | Self::Approval)
    }
}

impl PartialEq<&str> for Control {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one release-gate check came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum CheckOutcome {
    /// It held.
    Pass,
    /// It failed: the release is blocked.
    Fail,
    /// It failed, and an exception in force waived it.
    Waived,
    /// It does not apply (e.g. no SBOM listed).
    Skipped,
}

impl CheckOutcome {
    /// Its recorded name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Waived => "WAIVED",
            Self::Skipped => "SKIPPED",
        }
    }
}

impl PartialEq<&str> for CheckOutcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One release-gate check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GateCheck {
    /// The control checked.
    pub check: Control,
    /// What it came to.
    pub outcome: CheckOutcome,
    /// Reason code when not PASS, e.g. `ARTIFACT_HASH_MISMATCH`.
    pub reason_code: Option<String>,
    /// What was compared or found.
    pub detail: String,
}

/// The release gate's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReleaseVerdict {
    /// Deployment id.
    pub deployment_id: Uuid,
    /// Every check, in order.
    pub checks: Vec<GateCheck>,
    /// SHA-256 of the artifact bytes presented.
    pub artifact_sha256: String,
    /// Size of the artifact bytes presented.
    pub artifact_size: u64,
    /// SHA-256 of the SBOM bytes presented, if any.
    pub sbom_sha256: Option<String>,
}

/// Released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeploymentReleased(pub ReleaseVerdict);
impl EventPayload for DeploymentReleased {
    const NAME: &'static str = "deployment.released";
    const VERSION: u32 = 1;
}

/// An SBOM presented for a deployment's next release: the digest of the bytes the service
/// streamed, kept in the log so that a restart between the upload and the release loses
/// nothing. The next release attempt checks it (and uses it up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SbomPresented {
    /// Deployment id.
    pub deployment_id: Uuid,
    /// SHA-256 (lowercase hex) of the SBOM bytes streamed.
    pub sbom_sha256: String,
    /// Their size.
    pub size: u64,
}
impl EventPayload for SbomPresented {
    const NAME: &'static str = "deployment.sbom_presented";
    const VERSION: u32 = 1;
}

/// Blocked at release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeploymentReleaseBlocked(pub ReleaseVerdict);
impl EventPayload for DeploymentReleaseBlocked {
    const NAME: &'static str = "deployment.release_blocked";
    const VERSION: u32 = 1;
}

/// An exception: a named control waived for a scope until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExceptionGranted {
    /// Exception id.
    pub exception_id: Uuid,
    /// The waived control (a release-gate check name, e.g. `sbom_signature`).
    pub control: String,
    /// Scope: an app name, or `deployment:<id>`.
    pub scope: String,
    /// Why.
    pub reason: String,
    /// The distinct CAB members who approved it.
    pub approvers: Vec<String>,
    /// Mandatory expiry (entry time spelling), at most 90 days after the grant.
    pub expires_at: String,
}
impl EventPayload for ExceptionGranted {
    const NAME: &'static str = "exception.granted";
    const VERSION: u32 = 1;
}

/// A CAB member proposed an exception; it is granted when its quorum of other members approve
/// it, each with their own signed vote, before the proposal expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExceptionProposed {
    /// Exception id.
    pub exception_id: Uuid,
    /// The control to waive (a release-gate check name, e.g. `sbom_signature`).
    pub control: String,
    /// Scope: an app name, or `deployment:<id>`.
    pub scope: String,
    /// Why.
    pub reason: String,
    /// When the exception, once granted, expires (entry time spelling).
    pub expires_at: String,
    /// Votes after this are refused (entry time spelling).
    pub proposal_expires_at: String,
}
impl EventPayload for ExceptionProposed {
    const NAME: &'static str = "exception.proposed";
    const VERSION: u32 = 1;
}

/// An exception ended early.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionRevoked {
    /// Exception id.
    pub exception_id: Uuid,
    /// Why.
    pub reason: String,
}
impl EventPayload for ExceptionRevoked {
    const NAME: &'static str = "exception.revoked";
    const VERSION: u32 = 1;
}

/// An emergency release without CAB quorum; integrity checks still applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakglassReleased {
    /// Deployment id.
    pub deployment_id: Uuid,
    /// Why it could not wait.
    pub justification: String,
    /// The two (or more) distinct approvers.
    pub approvers: Vec<String>,
    /// SHA-256 of the artifact bytes presented.
    pub artifact_sha256: String,
    /// Their size.
    pub artifact_size: u64,
    /// SHA-256 of the SBOM bytes presented, if any.
    pub sbom_sha256: Option<String>,
    /// The checks that ran.
    pub checks: Vec<GateCheck>,
    /// The mandatory post-review is due by then (72 hours).
    pub review_due_at: String,
}
impl EventPayload for BreakglassReleased {
    const NAME: &'static str = "breakglass.released";
    const VERSION: u32 = 1;
}

/// The post-review of a break-glass release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakglassReviewed {
    /// Deployment id.
    pub deployment_id: Uuid,
    /// Was the emergency justified?
    pub justified: bool,
    /// Findings.
    pub findings: String,
}
impl EventPayload for BreakglassReviewed {
    const NAME: &'static str = "breakglass.reviewed";
    const VERSION: u32 = 1;
}

/// Incident severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Severity {
    /// Critical outage.
    P1,
    /// Major.
    P2,
    /// Minor.
    P3,
    /// Cosmetic.
    P4,
}

impl Severity {
    /// Parses `P1`..`P4`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "P1" => Some(Self::P1),
            "P2" => Some(Self::P2),
            "P3" => Some(Self::P3),
            "P4" => Some(Self::P4),
            _ => None,
        }
    }
}

/// The deployment context of an incident, looked up from the log (never taken from the reporter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct IncidentContext {
    /// Was it auto-approved?
    pub auto_approved: bool,
    /// Risk score at approval, hundredths.
    pub score_centi: u32,
    /// The class.
    pub class: BlastRadiusClass,
    /// Evidence package.
    pub evidence_id: Uuid,
    /// CAB approvers (empty when auto-approved or break-glass).
    pub cab_approvers: Vec<String>,
    /// Model version that scored it.
    pub model_version: String,
    /// Maturity level when it was gated.
    pub maturity_level: u32,
    /// Released through break-glass?
    pub breakglass: bool,
}

/// An incident linked to a released deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct IncidentReported {
    /// Incident id.
    pub incident_id: Uuid,
    /// The deployment that caused it.
    pub deployment_id: Uuid,
    /// Severity.
    pub severity: Severity,
    /// When it happened (entry time spelling).
    pub incident_date: String,
    /// Users affected.
    pub affected_user_count: u64,
    /// Downtime.
    pub downtime_minutes: u64,
    /// Business impact in USD, a decimal string like `12500.00`.
    pub business_impact_usd: String,
    /// Could the controls have prevented it?
    pub preventable: bool,
    /// Notes on preventability.
    pub preventability_notes: String,
    /// Proposed control improvements.
    pub control_improvements: Vec<String>,
    /// The deployment's context, from the log.
    pub context: IncidentContext,
}
impl EventPayload for IncidentReported {
    const NAME: &'static str = "incident.reported";
    const VERSION: u32 = 1;
}

/// Corrections to an incident (only the fields present change).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentUpdated {
    /// Incident id.
    pub incident_id: Uuid,
    /// New severity.
    pub severity: Option<Severity>,
    /// New affected users.
    pub affected_user_count: Option<u64>,
    /// New downtime.
    pub downtime_minutes: Option<u64>,
    /// New business impact.
    pub business_impact_usd: Option<String>,
    /// New preventability.
    pub preventable: Option<bool>,
    /// Notes to append.
    pub notes: Option<String>,
}
impl EventPayload for IncidentUpdated {
    const NAME: &'static str = "incident.updated";
    const VERSION: u32 = 1;
}

/// One progression criterion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Criterion {
    /// Name, e.g. `min_weeks`.
    pub name: String,
    /// Required value, as text (`≥ 4`, `≤ 200 bp`).
    pub required: String,
    /// Actual value, as text.
    pub actual: String,
    /// Met?
    pub met: bool,
}

/// Statistics of a maturity evaluation window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WindowStats {
    /// Deployments released in the window.
    pub released: u64,
    /// Of those, how many have at least one linked incident.
    pub with_incident: u64,
    /// Incidents reported in the window.
    pub incidents: u64,
    /// P1 incidents in the window.
    pub p1: u64,
    /// P2 incidents in the window.
    pub p2: u64,
    /// Incident rate in basis points (rounded half up).
    pub rate_bp: u32,
    /// Wilson 95% interval, lower bound, basis points (rounded down).
    pub wilson_low_bp: u32,
    /// Wilson 95% interval, upper bound, basis points (rounded up).
    pub wilson_high_bp: u32,
    /// Whole weeks at the current level.
    pub weeks_at_level: u32,
    /// Consecutive whole weeks without incidents, ending now.
    pub zero_incident_weeks: u32,
}

/// A maturity evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MaturityEvaluated {
    /// Level at evaluation.
    pub level: u32,
    /// The level the criteria are for.
    pub target_level: Option<u32>,
    /// Window start (the last level change).
    pub window_start: String,
    /// Window end (the evaluation time).
    pub window_end: String,
    /// Strict mode: the Wilson upper bound must meet the rate cap.
    pub strict: bool,
    /// The statistics.
    pub stats: WindowStats,
    /// Every criterion.
    pub criteria: Vec<Criterion>,
    /// READY_TO_PROGRESS, BLOCKED or REGRESSION_REQUIRED.
    pub outcome: String,
}
impl EventPayload for MaturityEvaluated {
    const NAME: &'static str = "maturity.evaluated";
    const VERSION: u32 = 1;
}

/// The CAB approved progressing to a level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaturityProgressionApproved {
    /// From.
    pub from: u32,
    /// To.
    pub to: u32,
    /// Distinct CAB approvers.
    pub approvers: Vec<String>,
    /// Seq of the READY_TO_PROGRESS evaluation it rests on.
    pub evaluation_seq: u64,
}
impl EventPayload for MaturityProgressionApproved {
    const NAME: &'static str = "maturity.progression_approved";
    const VERSION: u32 = 1;
}

macro_rules! payloads {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        /// Any governance payload, for handling entries by type.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum Payload {
            $($variant($ty)),*
        }

        impl Payload {
            /// Decodes an entry of any catalogued type; `Ok(None)` for a type this crate does not know.
            ///
            /// # Errors
            /// [`DecodeError`] when a known type's payload does not match its schema.
            pub fn decode(entry: &Entry) -> Result<Option<Self>, DecodeError> {
                $(
                    if catalogue::is_event_type::<$ty>(&entry.event_type) {
                        return catalogue::decode::<$ty>(entry).map(|p| Some(Self::$variant(p)));
                    }
                )*
                Ok(None)
            }

            /// A draft carrying this payload.
            ///
            /// # Panics
            /// Never for these types: they all serialise to JSON objects.
            pub fn to_draft(&self, id: Uuid, subject: &str, actor: &str, correlation_id: &str) -> EventDraft {
                match self {
                    $(Self::$variant(p) => catalogue::draft(id, subject, actor, correlation_id, p)
                        .expect("catalogued payloads serialise to objects")),*
                }
            }

            /// The full `type` string.
            pub fn event_type(&self) -> String {
                match self {
                    $(Self::$variant(_) => catalogue::event_type::<$ty>()),*
                }
            }
        }
    };
}

payloads! {
    RiskModelProposed(RiskModelProposed),
    RiskModelApproved(RiskModelApproved),
    RiskModelActivated(RiskModelActivated),
    BlastRadiusPolicySet(BlastRadiusPolicySet),
    MaturityLevelsDefined(MaturityLevelsDefined),
    MaturityLevelChanged(MaturityLevelChanged),
    CabMemberAdded(CabMemberAdded),
    CabMemberRemoved(CabMemberRemoved),
    CabMemberKeyRegistered(CabMemberKeyRegistered),
    CabMemberKeyRevoked(CabMemberKeyRevoked),
    CabMemberPasskeyRegistered(CabMemberPasskeyRegistered),
    SignedVotesRequired(SignedVotesRequired),
    AppRegistered(AppRegistered),
    RegistryChangeProposed(RegistryChangeProposed),
    ChangeProposed(ChangeProposed),
    SigningKeyTrusted(SigningKeyTrusted),
    SigningKeyRevoked(SigningKeyRevoked),
    EvidenceRecorded(EvidenceRecorded),
    EvidenceProducerSet(EvidenceProducerSet),
    EvidenceProducerRevoked(EvidenceProducerRevoked),
    SignedEvidenceRequired(SignedEvidenceRequired),
    DeploymentSubmitted(DeploymentSubmitted),
    DeploymentAutoApproved(DeploymentAutoApproved),
    DeploymentRoutedToCab(DeploymentRoutedToCab),
    ClassificationRaised(ClassificationRaised),
    CabVoteCast(CabVoteCast),
    DeploymentApproved(DeploymentApproved),
    DeploymentRejected(DeploymentRejected),
    DeploymentReleased(DeploymentReleased),
    DeploymentReleaseBlocked(DeploymentReleaseBlocked),
    SbomPresented(SbomPresented),
    ExceptionProposed(ExceptionProposed),
    ExceptionGranted(ExceptionGranted),
    ExceptionRevoked(ExceptionRevoked),
    BreakglassReleased(BreakglassReleased),
    BreakglassReviewed(BreakglassReviewed),
    IncidentReported(IncidentReported),
    IncidentUpdated(IncidentUpdated),
    MaturityEvaluated(MaturityEvaluated),
    MaturityProgressionApproved(MaturityProgressionApproved),
    AccessGranted(catalogue::access::AccessGranted),
    AccessRevoked(catalogue::access::AccessRevoked),
}
