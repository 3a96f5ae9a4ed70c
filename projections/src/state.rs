//! The governance state: a pure fold of log entries, holding what the policy decides from.

pub use crate::proposal::{ChangeProposal, ExceptionProposal, Proposal, RegistryProposal};
use crate::settling::{Settles, SettlingMap, SpillStore};
use events::payloads::*;
use events::{Entry, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use uuid::Uuid;

/// A risk model version and its governance so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// The proposal (kept in snapshots as its JSON text: the payload omits absent members,
    /// which a non-self-describing encoding cannot read back).
    #[serde(with = "json_text")]
    pub proposal: RiskModelProposed,
    /// Who proposed it.
    pub proposed_by: String,
    /// Votes by CAB member: approve?
    pub votes: BTreeMap<String, bool>,
    /// Approvers once a quorum approved it.
    pub approved_by: Option<Vec<String>>,
}

/// A payload kept in a snapshot as its JSON text, for payloads whose JSON omits absent members
/// (`skip_serializing_if`), which postcard cannot read back field by field.
mod json_text {
    use serde::{Deserialize as _, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(value).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, T: serde::de::DeserializeOwned, D: Deserializer<'de>>(
        d: D,
    ) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(serde::de::Error::custom)
    }
}

/// A trusted (or formerly trusted) SBOM signing key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Ed25519 public key, hex.
    pub public_key_hex: String,
    /// Trusted from.
    pub trusted_at: Timestamp,
    /// Revoked from, if revoked.
    pub revoked_at: Option<Timestamp>,
}

impl KeyRecord {
    /// Whether the key is trusted at `at`.
    pub fn trusted_at(&self, at: Timestamp) -> bool {
        self.trusted_at <= at && self.revoked_at.is_none_or(|r| at < r)
    }
}

/// What decisions read of a recorded evidence package. The document itself stays in the log, at
/// `seq` (the API reads it back from there): like deployments, every package the service ever saw
/// is held in memory, and the whole document took about 1 KB each, most of it hex.
///
/// The evidence-immutability check needs the document's canonical hash; it is computed here, when
/// the entry is folded in, rather than at each release. The document cannot change in between:
/// it is the payload of a chained entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRecord {
    /// Seq of the `evidence.recorded` entry.
    pub seq: u64,
    /// Who recorded it.
    pub recorded_by: String,
    /// The evidence hash as recorded.
    pub evidence_hash: HexText,
    /// SHA-256 of the document's canonical JSON, recomputed (`None`: it has no canonical form).
    pub recomputed_hash: Option<[u8; 32]>,
    /// The first artifact listed (the one a release presents).
    pub first_artifact: Option<ArtifactSummary>,
    /// The SBOM, if any.
    pub sbom: Option<SbomSummary>,
    /// Passed tests.
    pub tests_passed: u64,
    /// Failed tests.
    pub tests_failed: u64,
    /// Critical findings of security scans.
    pub scan_critical_findings: u64,
    /// Who generated the evidence.
    pub generated_by: String,
    /// Whether the artifact installs with admin rights, as the (signed) evidence states it.
    pub requires_admin: Option<bool>,
}

impl EvidenceRecord {
    /// `canonical_hash`: the document's canonical hash, if the caller knows it already.
    fn of(
        seq: u64,
        recorded_by: String,
        p: &EvidenceRecorded,
        canonical_hash: Option<[u8; 32]>,
    ) -> Self {
        let document = &p.document;
        let recomputed_hash = canonical_hash.or_else(|| {
            crate::policy::canonical_sha256("evidence", document)
                .ok()
                .and_then(|hex_digest| events::Digest::from_hex(&hex_digest))
                .map(|d| d.0)
        });
        Self {
            seq,
            recorded_by,
            evidence_hash: HexText::new(&p.evidence_hash),
            recomputed_hash,
            first_artifact: document.artifacts.first().map(|a| ArtifactSummary {
                sha256: HexText::new(&a.sha256),
                size: a.size,
            }),
            sbom: document.sbom.as_ref().map(|sbom| SbomSummary {
                sha256: HexText::new(&sbom.sha256),
                signature: sbom.signature.as_ref().map(|sig| SignatureSummary {
                    key_id: sig.key_id.clone(),
                    signature: HexText::new(&sig.signature_hex),
                }),
            }),
            tests_passed: document.tests_passed,
            tests_failed: document.tests_failed,
            scan_critical_findings: document.scan_critical_findings,
            generated_by: document.generated_by.clone(),
            requires_admin: document.requires_admin,
        }
    }

    /// Whether the recorded hash is the document's canonical hash.
    pub fn hash_matches_document(&self) -> bool {
        self.recomputed_hash
            .is_some_and(|recomputed| self.evidence_hash.digest() == Some(recomputed))
    }
}

/// An artifact as its evidence lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactSummary {
    /// SHA-256, as listed.
    pub sha256: HexText,
    /// Size in bytes.
    pub size: u64,
}

/// An SBOM as its evidence names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SbomSummary {
    /// SHA-256, as listed.
    pub sha256: HexText,
    /// The signature, if signed.
    pub signature: Option<SignatureSummary>,
}

/// An SBOM signature as its evidence gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureSummary {
    /// Key id of the signing key.
    pub key_id: String,
    /// The signature, as given.
    pub signature: HexText,
}

/// A payload's hex text, kept as the bytes it spells when it is lowercase hex (half the memory,
/// no second allocation for the `String`'s slack) and as text otherwise. Either way it gives back
/// exactly the text it was made from: a forged log's odd hex must be re-derived exactly as the
/// service decided on it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HexText {
    /// Lowercase hex of these bytes.
    Bytes(Box<[u8]>),
    /// Anything else, verbatim.
    Text(Box<str>),
}

impl HexText {
    /// Keeps `text`.
    pub fn new(text: &str) -> Self {
        let digits = text.as_bytes();
        if digits.len().is_multiple_of(2) {
            let bytes: Option<Box<[u8]>> = digits
                .chunks_exact(2)
                .map(|pair| {
                    Some(events::lower_hex_digit(pair[0])? << 4 | events::lower_hex_digit(pair[1])?)
                })
                .collect();
            if let Some(bytes) = bytes {
                return Self::Bytes(bytes);
            }
        }
        Self::Text(text.into())
    }

    /// The SHA-256 it spells, exactly when [`events::Digest::from_hex`] would parse the text.
    pub fn digest(&self) -> Option<[u8; 32]> {
        match self {
            Self::Bytes(bytes) => <[u8; 32]>::try_from(&bytes[..]).ok(),
            Self::Text(_) => None,
        }
    }

    /// Whether it is exactly `text`.
    pub fn is(&self, text: &str) -> bool {
        match self {
            Self::Bytes(bytes) => {
                text.len() == 2 * bytes.len()
                    && hex::decode(text).is_ok_and(|decoded| decoded[..] == bytes[..])
                    && !text.bytes().any(|b| b.is_ascii_uppercase())
            }
            Self::Text(own) => &**own == text,
        }
    }
}

impl std::fmt::Display for HexText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bytes(bytes) => f.write_str(&hex::encode(bytes)),
            Self::Text(text) => f.write_str(text),
        }
    }
}

impl std::fmt::Debug for HexText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

/// Where a deployment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DeploymentStatus {
    /// Waiting for CAB votes.
    PendingCab,
    /// Approved by the gate.
    AutoApproved,
    /// Approved by a CAB quorum.
    Approved,
    /// Rejected by a CAB member.
    Rejected,
    /// Released through the gate.
    Released,
    /// Released by break-glass.
    BreakglassReleased,
}

impl DeploymentStatus {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingCab => "PENDING_CAB",
            Self::AutoApproved => "AUTO_APPROVED",
            Self::Approved => "APPROVED",
            Self::Rejected => "REJECTED",
            Self::Released => "RELEASED",
            Self::BreakglassReleased => "BREAKGLASS_RELEASED",
        }
    }
}

/// What the policy, the statistics and the audit read of a deployment's submission. The rest of
/// it (version, factors, CMDB attributes…) stays in the log, at `history[0]`: every deployment
/// the service ever saw is held in memory, so each byte here is paid per deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionSummary {
    /// SHA-256 of the canonical request (a retry must match it).
    pub request_sha256: [u8; 32],
    /// The app.
    pub app_name: String,
    /// The evidence package it was submitted with.
    pub evidence_id: Uuid,
    /// That package's hash as submitted.
    pub evidence_hash: [u8; 32],
    /// Risk score ×100.
    pub score_centi: u32,
    /// The model version that scored it.
    pub model_version: String,
}

/// Decodes a 64-digit hex SHA-256 (payloads are validated before they are written, so a bad
/// one only comes from a forged log: it maps to all-ones, which matches no real hash).
fn sha256_bytes(hex_digest: &str) -> [u8; 32] {
    events::Digest::from_hex(hex_digest).map_or([0xff; 32], |d| d.0)
}

impl SubmissionSummary {
    fn of(p: &DeploymentSubmitted) -> Self {
        Self {
            request_sha256: sha256_bytes(&p.request_sha256),
            app_name: p.app_name.clone(),
            evidence_id: p.evidence_id,
            evidence_hash: sha256_bytes(&p.evidence_hash),
            score_centi: p.score_centi,
            model_version: p.model_version.clone(),
        }
    }

    /// Whether `hex_digest` is the submitted evidence hash.
    pub fn evidence_hash_is(&self, hex_digest: &str) -> bool {
        events::Digest::from_hex(hex_digest).is_some_and(|d| d.0 == self.evidence_hash)
    }

    /// Whether `hex_digest` is the submitted request's hash.
    pub fn request_sha256_is(&self, hex_digest: &str) -> bool {
        events::Digest::from_hex(hex_digest).is_some_and(|d| d.0 == self.request_sha256)
    }
}

/// A deployment and its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// What later decisions read of the submission (the entry itself is at `history[0]`).
    pub submitted: SubmissionSummary,
    /// Who submitted it.
    pub submitter: String,
    /// When.
    pub submitted_at: Timestamp,
    /// Current status.
    pub status: DeploymentStatus,
    /// Current class (the submitted one, or higher if raised).
    pub class: BlastRadiusClass,
    /// The gate's decision (the latest, after a raise).
    pub gate: Option<GateDecision>,
    /// Whether the gate auto-approved it.
    pub auto_approved: bool,
    /// Votes by member: (approve, rationale).
    pub votes: Votes,
    /// Approval: approvers and expiry.
    pub approval: Option<(Vec<String>, Timestamp)>,
    /// The number of blocked release attempts.
    pub blocked_releases: u32,
    /// When released (gate or break-glass).
    pub released_at: Option<Timestamp>,
    /// Seq of the release entry.
    pub released_seq: Option<u64>,
    /// Break-glass: review due and whether reviewed.
    pub breakglass: Option<(Timestamp, Option<bool>)>,
    /// The seq of every entry about it, the submission first.
    pub history: Vec<u64>,
    /// When the CAB decided (approved or rejected).
    pub decided_at: Option<Timestamp>,
    /// Incidents linked to it.
    pub incidents: Vec<Uuid>,
}

/// What every maturity evaluation reads of every deployment: kept in memory for settled ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentHeader {
    /// Current status.
    pub status: DeploymentStatus,
    /// Seq of the release entry.
    pub released_seq: Option<u64>,
    /// When released.
    pub released_at: Option<Timestamp>,
    /// Whether any incident is linked to it.
    pub with_incident: bool,
}

impl DeploymentRecord {
    /// Whether only rare entries (a late incident) still change it: released through the gate,
    /// rejected, or released by break-glass and reviewed.
    pub fn is_settled(&self) -> bool {
        match self.status {
            DeploymentStatus::Released | DeploymentStatus::Rejected => true,
            DeploymentStatus::BreakglassReleased => matches!(self.breakglass, Some((_, Some(_)))),
            DeploymentStatus::PendingCab
            | DeploymentStatus::AutoApproved
            | DeploymentStatus::Approved => false,
        }
    }
}

impl Settles for DeploymentRecord {
    type Header = DeploymentHeader;
    fn header(&self) -> DeploymentHeader {
        DeploymentHeader {
            status: self.status,
            released_seq: self.released_seq,
            released_at: self.released_at,
            with_incident: !self.incidents.is_empty(),
        }
    }
}

impl Settles for EvidenceRecord {
    type Header = ();
    fn header(&self) {}
}

/// A deployment's votes by member: (approve, rationale), in member order.
///
/// A sorted vector rather than a `BTreeMap`: nearly every deployment has one to three votes, and a
/// map allocates a node for eleven (over 600 bytes here) even for one. It serialises exactly as
/// the map did (postcard writes a map as its length and pairs), so snapshots and fingerprints are
/// unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Votes(Vec<(String, (bool, String))>);

impl Votes {
    /// Records `member`'s vote, replacing an earlier one.
    pub fn insert(&mut self, member: String, vote: (bool, String)) {
        match self.0.binary_search_by(|(m, _)| m.as_str().cmp(&member)) {
            Ok(at) => self.0[at].1 = vote,
            Err(at) => self.0.insert(at, (member, vote)),
        }
    }

    /// Whether `member` voted.
    pub fn contains_key(&self, member: &str) -> bool {
        self.0
            .binary_search_by(|(m, _)| m.as_str().cmp(member))
            .is_ok()
    }

    /// Votes in member order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &(bool, String))> {
        self.0.iter().map(|(m, v)| (m, v))
    }

    /// The votes without their members, in member order.
    pub fn values(&self) -> impl Iterator<Item = &(bool, String)> {
        self.0.iter().map(|(_, v)| v)
    }

    /// How many members voted.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nobody voted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Votes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Votes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, (bool, String)>::deserialize(deserializer)?;
        Ok(Self(map.into_iter().collect()))
    }
}

/// An incident as reported and corrected since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentRecord {
    /// The report, with corrections applied.
    pub current: IncidentReported,
    /// The report as first made.
    pub original: IncidentReported,
    /// Who reported it.
    pub reporter: String,
    /// When it was reported.
    pub reported_at: Timestamp,
    /// When it happened.
    pub incident_date: Timestamp,
    /// Corrections: (seq, notes).
    pub updates: Vec<(u64, Option<String>)>,
    /// Seq of the report.
    pub reported_seq: u64,
}

/// The last maturity evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationRecord {
    /// Its seq.
    pub seq: u64,
    /// When.
    pub at: Timestamp,
    /// What it found.
    pub evaluation: MaturityEvaluated,
}

/// An exception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionRecord {
    /// The grant.
    pub granted: ExceptionGranted,
    /// When granted.
    pub granted_at: Timestamp,
    /// Expiry.
    pub expires_at: Timestamp,
    /// When revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

impl ExceptionRecord {
    /// Whether it waives anything at `at`.
    pub fn in_force_at(&self, at: Timestamp) -> bool {
        self.granted_at <= at && at < self.expires_at && self.revoked_at.is_none_or(|r| at < r)
    }
}

/// Releases and incident-linked releases of one app (the "past incident rate" factor).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppHistory {
    /// Released deployments.
    pub released: u64,
    /// Released deployments with at least one linked incident.
    pub with_incident: u64,
}

/// Everything the governance policy reads, folded from the log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GovernanceState {
    /// Seq of the last entry applied.
    pub last_seq: Option<u64>,
    /// Time of the last entry applied.
    pub last_time: Option<Timestamp>,
    /// Model versions.
    pub models: BTreeMap<String, ModelRecord>,
    /// The version in force.
    pub active_model: Option<String>,
    /// The blast-radius policy in force.
    pub blast_policy: Option<BlastRadiusPolicySet>,
    /// Maturity levels in force.
    pub levels: Vec<MaturityLevel>,
    /// Current maturity level.
    pub level: u32,
    /// CAB members.
    pub cab_members: BTreeSet<String>,
    /// SBOM signing keys.
    pub signing_keys: BTreeMap<String, KeyRecord>,
    /// Evidence packages. (Encoded as their own section of a snapshot: see `snapshot`.)
    ///
    /// Both maps box their records in memory: a B-tree node has room for eleven values and is
    /// about 60% full under random ids, so inline records of a few hundred bytes left a third of
    /// the map empty (about 50 MB at a million entries). With a spill store attached
    /// ([`GovernanceState::spill_settled_to`]), settled deployments and their evidence leave
    /// memory altogether.
    #[serde(skip)]
    pub evidence: SettlingMap<EvidenceRecord>,
    /// Deployments. (Encoded as their own section of a snapshot: see `snapshot`.)
    #[serde(skip)]
    pub deployments: SettlingMap<DeploymentRecord>,
    /// Deployment by submission correlation id.
    pub by_correlation: BTreeMap<String, Uuid>,
    /// Exceptions.
    pub exceptions: BTreeMap<Uuid, ExceptionRecord>,
    /// Per app (lowercased name) release history.
    pub app_history: BTreeMap<String, AppHistory>,
    /// Entries of a known type whose payload did not decode: (seq, error).
    pub undecodable: Vec<(u64, String)>,
    /// Incidents.
    pub incidents: BTreeMap<Uuid, IncidentRecord>,
    /// Since when the current maturity level is in force (genesis time for level 0).
    pub level_since: Option<Timestamp>,
    /// Seq of the entry that set the current level (`None`: level 0 since genesis).
    pub level_since_seq: Option<u64>,
    /// The latest maturity evaluation.
    pub last_evaluation: Option<EvaluationRecord>,
    /// CAB approvals of progression, per target level, since the last level change.
    pub progression_votes: BTreeMap<u32, BTreeSet<String>>,
    /// Bearer tokens by SHA-256 (hex): the principal and roles, while not revoked.
    pub access: BTreeMap<String, AccessRecord>,
    /// The SBOM digest presented for each deployment's next release attempt, until it is made.
    pub presented_sboms: BTreeMap<Uuid, String>,
    /// Break-glass releases not yet reviewed: deployment → (who broke the glass, its approvers).
    pub unreviewed_breakglass: BTreeMap<Uuid, (String, Vec<String>)>,
    /// The log's origin (every entry's `source`), which signed votes name.
    pub origin: String,
    /// Each CAB member's SSH key in force.
    pub member_keys: BTreeMap<String, MemberKey>,
    /// Each CAB member's passkeys in force, by credential id.
    pub member_passkeys: BTreeMap<String, BTreeMap<String, PasskeyKey>>,
    /// Fingerprints of member keys revoked (never registered again).
    pub revoked_member_keys: BTreeSet<String>,
    /// Whether every vote must be signed by its member's key in force.
    pub signed_votes_required: bool,
    /// Exception proposals, open or decided.
    pub exception_proposals: BTreeMap<Uuid, ExceptionProposal>,
    /// Review votes on break-glass releases not yet reviewed: member → justified?
    pub breakglass_review_votes: BTreeMap<Uuid, BTreeMap<String, bool>>,
    /// The application registry: entries by app id (empty on logs begun before it).
    pub app_registry: BTreeMap<String, AppEntry>,
    /// Registry app id by name key (`policy::names::app_key` of each display name).
    pub app_names: BTreeMap<String, String>,
    /// Registry change proposals, open or decided.
    pub registry_proposals: BTreeMap<Uuid, RegistryProposal>,
    /// Proposed changes to the CAB or its policy, open or decided.
    pub change_proposals: BTreeMap<Uuid, ChangeProposal>,
    /// Whether any CAB vote has been recorded: from then on the CAB's membership changes only
    /// by its own signed votes.
    pub cab_has_voted: bool,
    /// Each evidence producer's key in force.
    pub evidence_producers: BTreeMap<String, MemberKey>,
    /// Fingerprints of producer keys revoked (never registered again).
    pub revoked_producer_keys: BTreeSet<String>,
    /// Whether every evidence package must be signed by a producer's key in force.
    pub signed_evidence_required: bool,
}

/// A bearer token's grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    /// The principal.
    pub principal: String,
    /// Its roles.
    pub roles: Vec<String>,
    /// Revoked?
    pub revoked: bool,
}

fn parse_time(text: &str) -> Option<Timestamp> {
    Timestamp::parse(text).ok()
}

impl GovernanceState {
    /// An empty state (before genesis).
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one entry in. Pure: the same entries always give the same state.
    pub fn apply(&mut self, entry: &Entry) {
        self.apply_decoded(entry, Payload::decode(entry));
    }

    /// [`GovernanceState::apply`] for an entry whose payload the caller already decoded (the
    /// auditor decodes each payload once, on a worker thread, and compares it before folding).
    pub fn apply_decoded(
        &mut self,
        entry: &Entry,
        decoded: Result<Option<Payload>, events::catalogue::DecodeError>,
    ) {
        self.fold(entry, decoded, None);
        self.settle_touched();
    }

    /// [`GovernanceState::apply`] for an `evidence.recorded` entry that the caller has just
    /// derived, exactly, from its document with [`crate::policy::decide`] (the auditor): its
    /// recorded hash is then the document's canonical hash, which the fold need not compute a
    /// second time. Calling it for any other entry folds a wrong state.
    pub fn apply_derived_evidence(&mut self, entry: &Entry, recorded: EvidenceRecorded) {
        let hash = events::Digest::from_hex(&recorded.evidence_hash).map(|d| d.0);
        self.fold(entry, Ok(Some(Payload::EvidenceRecorded(recorded))), hash);
        self.settle_touched();
    }

    /// Hands deployments that have settled, and their evidence, to `store` from now on (those
    /// already settled too). Changes where records are kept, never what they are.
    pub fn spill_settled_to(&mut self, store: Arc<dyn SpillStore>) {
        self.deployments.spill_to(Arc::clone(&store));
        self.evidence.spill_to(store);
        let settled: Vec<(Uuid, Uuid)> = self
            .deployments
            .iter()
            .filter(|(_, d)| d.is_settled())
            .map(|(id, d)| (id, d.submitted.evidence_id))
            .collect();
        for (id, evidence_id) in settled {
            self.deployments.settle(&id);
            self.evidence.settle(&evidence_id);
        }
    }

    /// Settles the deployments the last entry changed that are now settled, and their evidence
    /// (read at submission, votes and release, and not again after).
    fn settle_touched(&mut self) {
        for id in self.deployments.take_touched() {
            let Some(evidence_id) = self
                .deployments
                .get(&id)
                .filter(|d| d.is_settled())
                .map(|d| d.submitted.evidence_id)
            else {
                continue;
            };
            self.deployments.settle(&id);
            self.evidence.settle(&evidence_id);
        }
        self.evidence.take_touched();
    }

    /// Folds `entry`; `evidence_hash`, if given, is its evidence document's canonical hash.
    fn fold(
        &mut self,
        entry: &Entry,
        decoded: Result<Option<Payload>, events::catalogue::DecodeError>,
        evidence_hash: Option<[u8; 32]>,
    ) {
        self.last_seq = Some(entry.seq);
        self.last_time = Some(entry.time);
        self.level_since.get_or_insert(entry.time);
        if self.origin.is_empty() {
            // Every entry names the log's origin; the first one folded sets it.
            self.origin.clone_from(&entry.source);
        }
        let payload = match decoded {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                self.undecodable.push((entry.seq, e.to_string()));
                return;
            }
        };
        let at = entry.time;
        if matches!(payload, Payload::CabVoteCast(_)) {
            self.cab_has_voted = true;
        }
        self.mark_applied(&payload);
        // Cloned only where a record keeps it: most entries do not.
        let actor = || entry.actor.clone();
        let touch = |state: &mut Self, id: &Uuid| {
            if let Some(d) = state.deployments.get_mut(id) {
                d.history.push(entry.seq);
            }
        };
        match payload {
            Payload::RiskModelProposed(p) => {
                self.models.insert(
                    p.version.clone(),
                    ModelRecord {
                        proposal: p,
                        proposed_by: actor(),
                        votes: BTreeMap::new(),
                        approved_by: None,
                    },
                );
            }
            Payload::RiskModelApproved(p) => {
                if let Some(m) = self.models.get_mut(&p.version) {
                    m.approved_by = Some(p.approvers);
                }
            }
            Payload::RiskModelActivated(p) => self.active_model = Some(p.version),
            Payload::BlastRadiusPolicySet(p) => self.blast_policy = Some(p),
            Payload::MaturityLevelsDefined(p) => self.levels = p.levels,
            Payload::MaturityLevelChanged(p) => {
                self.level = p.to;
                self.level_since = Some(at);
                self.level_since_seq = Some(entry.seq);
                self.progression_votes.clear();
            }
            Payload::CabMemberAdded(p) => {
                if let Some(key) = p.ssh_key {
                    self.member_keys.insert(p.member.clone(), key);
                }
                self.cab_members.insert(p.member);
            }
            Payload::CabMemberRemoved(p) => {
                self.member_keys.remove(&p.member);
                self.member_passkeys.remove(&p.member);
                self.cab_members.remove(&p.member);
            }
            key @ (Payload::CabMemberKeyRegistered(_)
            | Payload::CabMemberPasskeyRegistered(_)
            | Payload::CabMemberKeyRevoked(_)) => self.apply_vote_key(key),
            Payload::SignedVotesRequired(_) => self.signed_votes_required = true,
            Payload::SignedEvidenceRequired(_) => self.signed_evidence_required = true,
            Payload::EvidenceProducerSet(p) => {
                self.evidence_producers.insert(p.producer, p.ssh_key);
            }
            Payload::EvidenceProducerRevoked(p) => {
                if let Some(key) = self.evidence_producers.remove(&p.producer) {
                    self.revoked_producer_keys.insert(key.fingerprint);
                }
            }
            Payload::SigningKeyTrusted(p) => {
                self.signing_keys.insert(
                    p.key_id,
                    KeyRecord {
                        public_key_hex: p.public_key_hex,
                        trusted_at: at,
                        revoked_at: None,
                    },
                );
            }
            Payload::SigningKeyRevoked(p) => {
                if let Some(k) = self.signing_keys.get_mut(&p.key_id) {
                    k.revoked_at.get_or_insert(at);
                }
            }
            Payload::EvidenceRecorded(p) => {
                self.evidence.insert(
                    p.evidence_id,
                    EvidenceRecord::of(entry.seq, actor(), &p, evidence_hash),
                );
            }
            Payload::DeploymentSubmitted(p) => {
                self.by_correlation
                    .insert(p.correlation_id.clone(), p.deployment_id);
                let id = p.deployment_id;
                let class = p.classification.class;
                self.deployments.insert(
                    id,
                    DeploymentRecord {
                        submitted: SubmissionSummary::of(&p),
                        submitter: actor(),
                        submitted_at: at,
                        status: DeploymentStatus::PendingCab,
                        class,
                        gate: None,
                        auto_approved: false,
                        votes: Votes::default(),
                        approval: None,
                        blocked_releases: 0,
                        released_at: None,
                        released_seq: None,
                        breakglass: None,
                        history: Vec::new(),
                        decided_at: None,
                        incidents: Vec::new(),
                    },
                );
                touch(self, &id);
            }
            Payload::DeploymentAutoApproved(DeploymentAutoApproved(g)) => {
                let id = g.deployment_id;
                if let Some(d) = self.deployments.get_mut(&id) {
                    d.status = DeploymentStatus::AutoApproved;
                    d.auto_approved = true;
                    d.gate = Some(g);
                }
                touch(self, &id);
            }
            Payload::DeploymentRoutedToCab(DeploymentRoutedToCab(g)) => {
                let id = g.deployment_id;
                if let Some(d) = self.deployments.get_mut(&id) {
                    d.status = DeploymentStatus::PendingCab;
                    d.auto_approved = false;
                    d.gate = Some(g);
                }
                touch(self, &id);
            }
            Payload::ClassificationRaised(p) => {
                if let Some(d) = self.deployments.get_mut(&p.deployment_id) {
                    d.class = p.to;
                }
                touch(self, &p.deployment_id);
            }
            Payload::CabVoteCast(p) => match p.target {
                VoteTarget::Deployment { deployment_id } => {
                    if let Some(d) = self.deployments.get_mut(&deployment_id) {
                        d.votes.insert(actor(), (p.approve, p.rationale));
                    }
                    touch(self, &deployment_id);
                }
                VoteTarget::RiskModel { version } => {
                    if let Some(m) = self.models.get_mut(&version) {
                        m.votes.insert(actor(), p.approve);
                    }
                }
                VoteTarget::BreakglassReview { deployment_id } => {
                    self.breakglass_review_votes
                        .entry(deployment_id)
                        .or_default()
                        .insert(actor(), p.approve);
                    touch(self, &deployment_id);
                }
                VoteTarget::Change { proposal_id } => {
                    if let Some(c) = self.change_proposals.get_mut(&proposal_id) {
                        c.votes.insert(actor(), p.approve);
                    }
                }
                VoteTarget::RegistryChange { proposal_id } => {
                    if let Some(r) = self.registry_proposals.get_mut(&proposal_id) {
                        r.votes.insert(actor(), p.approve);
                    }
                }
                VoteTarget::Exception { exception_id } => {
                    if let Some(e) = self.exception_proposals.get_mut(&exception_id) {
                        e.votes.insert(actor(), p.approve);
                    }
                }
                VoteTarget::MaturityProgression { to_level } => {
                    if p.approve {
                        self.progression_votes
                            .entry(to_level)
                            .or_default()
                            .insert(actor());
                    }
                }
            },
            Payload::DeploymentApproved(p) => {
                if let Some(d) = self.deployments.get_mut(&p.deployment_id) {
                    d.status = DeploymentStatus::Approved;
                    d.decided_at = Some(at);
                    d.approval = parse_time(&p.expires_at).map(|t| (p.approvers.clone(), t));
                }
                touch(self, &p.deployment_id);
            }
            Payload::DeploymentRejected(p) => {
                if let Some(d) = self.deployments.get_mut(&p.deployment_id) {
                    d.status = DeploymentStatus::Rejected;
                    d.decided_at = Some(at);
                }
                touch(self, &p.deployment_id);
            }
            Payload::SbomPresented(p) => {
                self.presented_sboms.insert(p.deployment_id, p.sbom_sha256);
            }
            Payload::DeploymentReleased(DeploymentReleased(v)) => {
                let id = v.deployment_id;
                self.presented_sboms.remove(&id);
                if let Some(d) = self.deployments.get_mut(&id) {
                    d.status = DeploymentStatus::Released;
                    d.released_at = Some(at);
                    d.released_seq = Some(entry.seq);
                    self.app_history
                        .entry(d.submitted.app_name.to_lowercase())
                        .or_default()
                        .released += 1;
                }
                touch(self, &id);
            }
            Payload::DeploymentReleaseBlocked(DeploymentReleaseBlocked(v)) => {
                self.presented_sboms.remove(&v.deployment_id);
                if let Some(d) = self.deployments.get_mut(&v.deployment_id) {
                    d.blocked_releases += 1;
                }
                touch(self, &v.deployment_id);
            }
            Payload::AppRegistered(p) => {
                if let Some(old) = self.app_registry.get(&p.entry.app_id) {
                    for name in &old.display_names {
                        self.app_names.remove(&crate::policy::names::app_key(name));
                    }
                }
                for name in &p.entry.display_names {
                    self.app_names
                        .insert(crate::policy::names::app_key(name), p.entry.app_id.clone());
                }
                if let Some(r) = p
                    .proposal_id
                    .and_then(|id| self.registry_proposals.get_mut(&id))
                {
                    r.applied = true;
                }
                self.app_registry.insert(p.entry.app_id.clone(), p.entry);
            }
            Payload::RegistryChangeProposed(p) => {
                if let Some(expires) = parse_time(&p.proposal_expires_at) {
                    let id = p.proposal_id;
                    self.registry_proposals
                        .insert(id, Proposal::new(p, actor(), expires));
                }
            }
            Payload::ChangeProposed(p) => {
                if let Some(expires) = parse_time(&p.proposal_expires_at) {
                    let id = p.proposal_id;
                    self.change_proposals
                        .insert(id, Proposal::new(p, actor(), expires));
                }
            }
            Payload::ExceptionProposed(p) => {
                if let Some(expires) = parse_time(&p.proposal_expires_at) {
                    let id = p.exception_id;
                    self.exception_proposals
                        .insert(id, Proposal::new(p, actor(), expires));
                }
            }
            Payload::ExceptionGranted(p) => {
                if let Some(expires_at) = parse_time(&p.expires_at) {
                    self.exceptions.insert(
                        p.exception_id,
                        ExceptionRecord {
                            granted: p,
                            granted_at: at,
                            expires_at,
                            revoked_at: None,
                        },
                    );
                }
            }
            Payload::ExceptionRevoked(p) => {
                if let Some(e) = self.exceptions.get_mut(&p.exception_id) {
                    e.revoked_at.get_or_insert(at);
                }
            }
            Payload::BreakglassReleased(p) => {
                self.presented_sboms.remove(&p.deployment_id);
                self.unreviewed_breakglass
                    .insert(p.deployment_id, (actor(), p.approvers.clone()));
                if let Some(d) = self.deployments.get_mut(&p.deployment_id) {
                    d.status = DeploymentStatus::BreakglassReleased;
                    d.released_at = Some(at);
                    d.released_seq = Some(entry.seq);
                    d.breakglass = parse_time(&p.review_due_at).map(|due| (due, None));
                    self.app_history
                        .entry(d.submitted.app_name.to_lowercase())
                        .or_default()
                        .released += 1;
                }
                touch(self, &p.deployment_id);
            }
            Payload::BreakglassReviewed(p) => {
                self.unreviewed_breakglass.remove(&p.deployment_id);
                self.breakglass_review_votes.remove(&p.deployment_id);
                if let Some(d) = self.deployments.get_mut(&p.deployment_id) {
                    if let Some((_, reviewed)) = &mut d.breakglass {
                        *reviewed = Some(p.justified);
                    }
                }
                touch(self, &p.deployment_id);
            }
            Payload::IncidentReported(p) => {
                if let Some(d) = self.deployments.get_mut(&p.deployment_id) {
                    if d.incidents.is_empty() {
                        self.app_history
                            .entry(d.submitted.app_name.to_lowercase())
                            .or_default()
                            .with_incident += 1;
                    }
                    d.incidents.push(p.incident_id);
                }
                touch(self, &p.deployment_id);
                if let Some(incident_date) = parse_time(&p.incident_date) {
                    self.incidents.insert(
                        p.incident_id,
                        IncidentRecord {
                            current: p.clone(),
                            original: p,
                            reporter: actor(),
                            reported_at: at,
                            incident_date,
                            updates: Vec::new(),
                            reported_seq: entry.seq,
                        },
                    );
                }
            }
            Payload::IncidentUpdated(u) => {
                if let Some(i) = self.incidents.get_mut(&u.incident_id) {
                    let c = &mut i.current;
                    if let Some(v) = u.severity {
                        c.severity = v;
                    }
                    if let Some(v) = u.affected_user_count {
                        c.affected_user_count = v;
                    }
                    if let Some(v) = u.downtime_minutes {
                        c.downtime_minutes = v;
                    }
                    if let Some(v) = u.business_impact_usd {
                        c.business_impact_usd = v;
                    }
                    if let Some(v) = u.preventable {
                        c.preventable = v;
                    }
                    i.updates.push((entry.seq, u.notes));
                }
            }
            Payload::MaturityEvaluated(e) => {
                self.last_evaluation = Some(EvaluationRecord {
                    seq: entry.seq,
                    at,
                    evaluation: e,
                });
            }
            Payload::AccessGranted(g) => {
                self.access.insert(
                    g.token_sha256,
                    AccessRecord {
                        principal: g.principal,
                        roles: g.roles,
                        revoked: false,
                    },
                );
            }
            Payload::AccessRevoked(r) => {
                if let Some(a) = self.access.get_mut(&r.token_sha256) {
                    a.revoked = true;
                }
            }
            Payload::MaturityProgressionApproved(_) => {}
        }
    }

    /// A copy with just what the gate reads (levels, current level, policy), cheap to make per
    /// decision when trying alternatives.
    pub fn clone_for_gate(&self) -> GovernanceState {
        GovernanceState {
            levels: self.levels.clone(),
            level: self.level,
            blast_policy: self.blast_policy.clone(),
            ..GovernanceState::default()
        }
    }

    /// The model version in force.
    pub fn active_model(&self) -> Option<&ModelRecord> {
        self.active_model.as_ref().and_then(|v| self.models.get(v))
    }

    /// The maturity level in force.
    pub fn current_level(&self) -> Option<&MaturityLevel> {
        self.levels.iter().find(|l| l.level == self.level)
    }

    /// The quorum a class needs under the policy in force.
    pub fn quorum(&self, class: BlastRadiusClass) -> u32 {
        self.blast_policy
            .as_ref()
            .and_then(|p| p.classes.iter().find(|c| c.class == class))
            .map_or(u32::MAX, |c| c.quorum)
    }

    /// Break-glass releases whose review is overdue at `at`.
    pub fn overdue_breakglass_reviews(&self, at: Timestamp) -> Vec<Uuid> {
        self.deployments
            .iter()
            .filter(|(_, d)| matches!(d.breakglass, Some((due, None)) if due < at))
            .map(|(id, _)| id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy compares and prints evidence hex as the text that was recorded, so a kept
    /// `HexText` must give back exactly that text, and its digest exactly what parsing the text
    /// gives: the odd cases only a forged log has included.
    #[test]
    fn hex_text_gives_back_exactly_the_text_it_was_made_from() {
        let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let texts = [
            digest.to_owned(),
            digest.to_uppercase(),
            format!("{}F", &digest[..63]),
            digest[..62].to_owned(),
            format!("{digest}00"),
            format!("{}g", &digest[..63]),
            "abc".to_owned(),
            String::new(),
            "not hex at all".to_owned(),
        ];
        for text in &texts {
            let kept = HexText::new(text);
            assert_eq!(kept.to_string(), *text);
            assert_eq!(
                kept.digest(),
                events::Digest::from_hex(text).map(|d| d.0),
                "{text}"
            );
            for other in &texts {
                assert_eq!(kept.is(other), text == other, "{text} is {other}");
            }
            let decoded: HexText =
                postcard::from_bytes(&postcard::to_allocvec(&kept).unwrap()).unwrap();
            assert_eq!(decoded, kept);
        }
        assert!(matches!(HexText::new(digest), HexText::Bytes(_)));
    }

    /// Snapshots written before `Votes` replaced the map must still decode, and fingerprints must
    /// not change: the encodings have to be the same bytes, whatever order the votes came in.
    #[test]
    fn votes_encode_exactly_as_the_map_they_replaced() {
        let cast = [
            ("cab-lee", true, "fine"),
            ("cab-chen", false, "too risky"),
            ("cab-ana", true, ""),
            ("cab-chen", true, "changed my mind"),
        ];
        for rotation in 0..cast.len() {
            let mut votes = Votes::default();
            let mut map = BTreeMap::new();
            for (member, approve, why) in cast.iter().cycle().skip(rotation).take(cast.len()) {
                votes.insert((*member).to_owned(), (*approve, (*why).to_owned()));
                map.insert((*member).to_owned(), (*approve, (*why).to_owned()));
            }
            let bytes = postcard::to_allocvec(&map).unwrap();
            assert_eq!(postcard::to_allocvec(&votes).unwrap(), bytes);
            assert_eq!(postcard::from_bytes::<Votes>(&bytes).unwrap(), votes);
            assert_eq!(votes.len(), 3);
            assert!(votes.contains_key("cab-ana") && !votes.contains_key("cab-zed"));
            assert!(votes.iter().map(|(m, _)| m).is_sorted());
        }
    }
}
