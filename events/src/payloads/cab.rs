//! The CAB's payloads: members and their SSH keys, signed votes, proposals to change the CAB
//! and its policy, and the application registry.

use super::{BlastRadiusClass, BlastRadiusPolicySet};
use crate::catalogue::{self, EventPayload};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A principal joined the CAB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CabMemberAdded {
    /// The member's principal name.
    pub member: String,
    /// The key their votes are signed with (absent only on logs that never required signed
    /// votes; such a member registers one before voting on a log that does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<MemberKey>,
}
impl EventPayload for CabMemberAdded {
    const NAME: &'static str = "cab.member_added";
    // v2 added `ssh_key`; a v1 payload is a v2 payload without it.
    const VERSION: u32 = 2;

    fn upcast(from: u32, data: serde_json::Value) -> Result<serde_json::Value, String> {
        catalogue::upcast_by_added_optional_members::<Self>(from, data)
    }
}

/// An OpenSSH Ed25519 public key: a CAB member's, or an evidence producer's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberKey {
    /// The key as an `authorized_keys` line without its comment (`ssh-ed25519 AAAA...`).
    pub public_key: String,
    /// Its fingerprint (`SHA256:` and unpadded base64, as `ssh-keygen -l` prints it).
    pub fingerprint: String,
}

/// A principal left the CAB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CabMemberRemoved {
    /// The member's principal name.
    pub member: String,
}
impl EventPayload for CabMemberRemoved {
    const NAME: &'static str = "cab.member_removed";
    const VERSION: u32 = 1;
}

/// An application in the registry: the facts that classify it, which the submitter cannot change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AppEntry {
    /// Stable id, e.g. `windows-update`.
    pub app_id: String,
    /// The names a submission may use for it (matched case-insensitively, whitespace collapsed,
    /// and by look: a confusable spelling matches too).
    pub display_names: Vec<String>,
    /// CMDB service tier: `Tier0` to `Tier3`.
    pub service_tier: String,
    /// Business criticality: the least class it is ever given.
    pub criticality: BlastRadiusClass,
    /// Machines or users it normally reaches (the reach used is the larger of this and the
    /// submission's).
    pub expected_reach: u64,
}

/// An application's registry entry is in force from this entry on (written at genesis, and when
/// a registry change reaches its quorum).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRegistered {
    /// The entry.
    pub entry: AppEntry,
    /// The distinct CAB members whose signed votes approved it (empty at genesis).
    pub approvers: Vec<String>,
    /// The proposal that set it (absent at genesis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal_id: Option<Uuid>,
}
impl EventPayload for AppRegistered {
    const NAME: &'static str = "app_registry.entry_set";
    const VERSION: u32 = 1;
}

/// A change to the CAB or its policy that the CAB approves with signed votes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum ProposedChange {
    /// A new member, with the key they will sign with.
    AddMember {
        /// Their principal name.
        member: String,
        /// Their OpenSSH Ed25519 public key line.
        ssh_key: String,
    },
    /// A member leaves.
    RemoveMember {
        /// Their principal name.
        member: String,
    },
    /// A new blast-radius policy (its `approvers` are set from the votes).
    BlastRadiusPolicy(BlastRadiusPolicySet),
    /// An evidence producer (a CI system) signs evidence with this key from now on.
    SetEvidenceProducer {
        /// The producer's name (what its evidence names as `generated_by`).
        producer: String,
        /// Its OpenSSH Ed25519 public key line.
        ssh_key: String,
    },
}

/// A CAB member proposed a change to the CAB or its policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeProposed {
    /// Proposal id.
    pub proposal_id: Uuid,
    /// The change.
    pub change: ProposedChange,
    /// Votes after this are refused (entry time spelling).
    pub proposal_expires_at: String,
}
impl EventPayload for ChangeProposed {
    const NAME: &'static str = "cab.change_proposed";
    const VERSION: u32 = 1;
}

/// A CAB member proposed a registry entry (new, or replacing the one with its id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryChangeProposed {
    /// Proposal id.
    pub proposal_id: Uuid,
    /// The entry proposed.
    pub entry: AppEntry,
    /// Votes after this are refused (entry time spelling).
    pub proposal_expires_at: String,
}
impl EventPayload for RegistryChangeProposed {
    const NAME: &'static str = "app_registry.change_proposed";
    const VERSION: u32 = 1;
}

/// What a vote is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VoteTarget {
    /// A deployment.
    Deployment {
        /// Its id.
        deployment_id: Uuid,
    },
    /// A proposed risk model version.
    RiskModel {
        /// Its version.
        version: String,
    },
    /// Progression to a maturity level (after a READY_TO_PROGRESS evaluation).
    MaturityProgression {
        /// The level to progress to.
        to_level: u32,
    },
    /// A proposed exception.
    Exception {
        /// Its id.
        exception_id: Uuid,
    },
    /// The review of a break-glass release (`approve`: the emergency was justified).
    BreakglassReview {
        /// The deployment released by break-glass.
        deployment_id: Uuid,
    },
    /// A proposed change to the CAB or its policy.
    Change {
        /// The proposal.
        proposal_id: Uuid,
    },
    /// A proposed application registry change.
    RegistryChange {
        /// The proposal.
        proposal_id: Uuid,
    },
}

/// A CAB member's vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CabVoteCast {
    /// What it is about.
    pub target: VoteTarget,
    /// `true` approves, `false` rejects.
    pub approve: bool,
    /// The member's rationale.
    pub rationale: String,
    /// The member's SSH signature over the vote's statement (absent only on logs that never
    /// required signed votes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<VoteSignature>,
    /// The member's passkey (WebAuthn) assertion over the vote's statement, instead of an SSH
    /// signature (a vote carries at most one of the two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey_signature: Option<PasskeyVoteSignature>,
}
impl EventPayload for CabVoteCast {
    const NAME: &'static str = "cab.vote_cast";
    // v2 added `signature`, v3 `passkey_signature`; an older payload is a v3 payload without them.
    const VERSION: u32 = 3;

    fn upcast(from: u32, data: serde_json::Value) -> Result<serde_json::Value, String> {
        catalogue::upcast_by_added_optional_members::<Self>(from, data)
    }
}

/// What a member signed: the parts of a vote's statement the vote itself does not hold, and the
/// signature (see `projections::vote_statement` for the statement's exact bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteSignature {
    /// What the member approved or rejected, as they saw it (lowercase hex SHA-256): the
    /// deployment's evidence hash, the risk model's digest, or the maturity evaluation's digest.
    pub digest: String,
    /// When the member signed (entry time spelling).
    pub signed_at: String,
    /// The key's fingerprint (`SHA256:` and unpadded base64, as `ssh-keygen -l` prints it).
    pub key_fingerprint: String,
    /// The armored SSHSIG (`-----BEGIN SSH SIGNATURE-----` ...), namespace `trustledger-vote`.
    pub sshsig: String,
}

/// What a member's passkey returned for a vote (`navigator.credentials.get`), each field the
/// exact bytes in unpadded base64url: the challenge it signed is the SHA-256 of the vote's
/// statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasskeyAssertion {
    /// The credential's id.
    pub credential_id: String,
    /// The authenticator data (RP ID hash, flags, signature counter).
    pub authenticator_data: String,
    /// The client data JSON (type, challenge, origin).
    pub client_data_json: String,
    /// The ECDSA P-256 signature (ASN.1 DER) over the authenticator data followed by the
    /// SHA-256 of the client data JSON.
    pub signature: String,
}

/// A vote signed with a passkey: the parts of the statement the vote does not hold, the key,
/// and the assertion (see `docs/signed-votes.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasskeyVoteSignature {
    /// What the member approved or rejected, as they saw it (lowercase hex SHA-256).
    pub digest: String,
    /// When the member signed (entry time spelling).
    pub signed_at: String,
    /// The passkey's fingerprint (`SHA256:` and unpadded base64 of its COSE public key).
    pub key_fingerprint: String,
    /// What the authenticator returned.
    pub assertion: PasskeyAssertion,
}

/// A passkey (a WebAuthn credential with an ECDSA P-256 key) a CAB member signs votes with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasskeyKey {
    /// The credential's id (unpadded base64url).
    pub credential_id: String,
    /// The COSE public key as the authenticator gave it (unpadded base64url).
    pub public_key: String,
    /// `SHA256:` and unpadded base64 of the COSE public key's bytes.
    pub fingerprint: String,
    /// The relying party id the credential is scoped to (a host name).
    pub rp_id: String,
    /// The web origin it was created at, which every assertion must name.
    pub web_origin: String,
}

/// A CAB member registered a passkey as one of their vote keys, from this entry on (beside
/// their SSH key and any other passkeys). The registration is kept whole so that an auditor
/// can check it: the challenge the authenticator signed is the SHA-256 of the registration
/// statement (`docs/signed-votes.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CabMemberPasskeyRegistered {
    /// The member.
    pub member: String,
    /// The key.
    pub passkey: PasskeyKey,
    /// When the member asked to register it (entry time spelling).
    pub requested_at: String,
    /// The registration's client data JSON (unpadded base64url).
    pub client_data_json: String,
    /// The attestation object (CBOR; unpadded base64url).
    pub attestation_object: String,
}
impl EventPayload for CabMemberPasskeyRegistered {
    const NAME: &'static str = "cab.member_passkey_registered";
    const VERSION: u32 = 1;
}

/// A CAB member's OpenSSH Ed25519 key is in force from this entry on, replacing any earlier one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CabMemberKeyRegistered {
    /// The member.
    pub member: String,
    /// The key.
    pub ssh_key: MemberKey,
}
impl EventPayload for CabMemberKeyRegistered {
    const NAME: &'static str = "cab.member_key_registered";
    const VERSION: u32 = 1;
}

/// A CAB member's key is revoked from this entry on, and can never be registered again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CabMemberKeyRevoked {
    /// The member.
    pub member: String,
    /// The key's fingerprint.
    pub fingerprint: String,
    /// Why.
    pub reason: String,
}
impl EventPayload for CabMemberKeyRevoked {
    const NAME: &'static str = "cab.member_key_revoked";
    const VERSION: u32 = 1;
}

/// From this entry on, every CAB vote must carry its member's SSH signature. Never undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedVotesRequired {
    /// The SSHSIG namespace votes are signed in (`trustledger-vote`).
    pub namespace: String,
}
impl EventPayload for SignedVotesRequired {
    const NAME: &'static str = "cab.signed_votes_required";
    const VERSION: u32 = 1;
}
