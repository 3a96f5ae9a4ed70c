//! Evidence packages and who may sign them: artifacts, SBOMs and their signing keys, the
//! evidence producers (CI systems) registered with an SSH key, and signed evidence.

use super::MemberKey;
use crate::catalogue::{self, EventPayload};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An artifact named by an evidence package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Artifact {
    /// File name.
    pub name: String,
    /// Lowercase hex SHA-256 of its bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// An SBOM named by an evidence package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Sbom {
    /// Format, e.g. `CycloneDX-1.5`.
    pub format: String,
    /// Lowercase hex SHA-256 of its bytes.
    pub sha256: String,
    /// Optional Ed25519 signature (see [`sbom_signing_message`]).
    pub signature: Option<SbomSignature>,
}

/// An SBOM signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SbomSignature {
    /// Key id of a trusted signing key.
    pub key_id: String,
    /// Lowercase hex of the 64-byte Ed25519 signature.
    pub signature_hex: String,
}

/// What an SBOM signature signs: a domain-separated statement of the SBOM's SHA-256, so that the
/// release gate verifies it from the digest it computes while streaming the SBOM.
pub fn sbom_signing_message(sbom_sha256_hex: &str) -> Vec<u8> {
    format!("trustledger-sbom-v1\n{sbom_sha256_hex}\n").into_bytes()
}

/// The evidence document (its SHA-256 over the canonical JSON is the `evidence_hash`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EvidenceDocument {
    /// The artifacts (at least one).
    pub artifacts: Vec<Artifact>,
    /// The SBOM, if any.
    pub sbom: Option<Sbom>,
    /// Test summary: passed and failed counts.
    pub tests_passed: u64,
    /// Failed tests.
    pub tests_failed: u64,
    /// Critical findings of security scans.
    pub scan_critical_findings: u64,
    /// Who generated the evidence: in signed evidence, the registered producer whose key signed
    /// it.
    pub generated_by: String,
    /// Who packaged the artifact.
    pub packaged_by: String,
    /// Whether the artifact installs with admin rights (its install scope), as the producer
    /// found it. Required in signed evidence, where it is a classification input; absent in
    /// evidence recorded before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_admin: Option<bool>,
}

/// An evidence package was recorded (immutable from now on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRecorded {
    /// Evidence id.
    pub evidence_id: Uuid,
    /// The document.
    pub document: EvidenceDocument,
    /// SHA-256 of the document's canonical JSON.
    pub evidence_hash: String,
    /// The producer's armored SSH signature (namespace `trustledger-evidence`) over the
    /// document's canonical JSON; absent on logs that never required signed evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}
impl EventPayload for EvidenceRecorded {
    const NAME: &'static str = "evidence.recorded";
    // v2 added `signature` and the document's `requires_admin`; v1 is v2 without them.
    const VERSION: u32 = 2;

    fn upcast(from: u32, data: serde_json::Value) -> Result<serde_json::Value, String> {
        catalogue::upcast_by_added_optional_members::<Self>(from, data)
    }
}

/// An evidence producer (a CI system) signs evidence with this key from now on, replacing any key
/// it had. Set directly by an admin only before the CAB's first vote; after, by a CAB change
/// proposal that three other members approve with signed votes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceProducerSet {
    /// The producer's name: what signed evidence names as `generated_by`.
    pub producer: String,
    /// Its OpenSSH Ed25519 public key.
    pub ssh_key: MemberKey,
    /// The distinct CAB members whose signed votes approved it (empty when an admin set it).
    pub approvers: Vec<String>,
    /// The proposal that set it (absent when an admin set it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal_id: Option<Uuid>,
}
impl EventPayload for EvidenceProducerSet {
    const NAME: &'static str = "evidence.producer_set";
    const VERSION: u32 = 1;
}

/// An evidence producer's key is no longer trusted from now on (its evidence recorded before
/// stays as it was; its key is never registered again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceProducerRevoked {
    /// The producer.
    pub producer: String,
    /// Why.
    pub reason: String,
}
impl EventPayload for EvidenceProducerRevoked {
    const NAME: &'static str = "evidence.producer_revoked";
    const VERSION: u32 = 1;
}

/// From now on every evidence package must be signed by a registered producer's key in force,
/// in the SSH signature namespace named here (written at genesis on every new log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedEvidenceRequired {
    /// The SSH signature namespace: `trustledger-evidence`.
    pub namespace: String,
}
impl EventPayload for SignedEvidenceRequired {
    const NAME: &'static str = "evidence.signatures_required";
    const VERSION: u32 = 1;
}
