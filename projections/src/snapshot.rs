//! Verifiable snapshots and fingerprints of the governance state.
//!
//! - The **fingerprint** of a state is SHA-256 over its canonical binary encoding (postcard of
//!   the state, whose maps are all `BTreeMap`s, so equal states give equal bytes). Two parties
//!   who fold the same log to the same seq get the same fingerprint; an auditor compares theirs
//!   with the one the service reports.
//! - A **snapshot** is that encoding sealed as
//!   `MAGIC ‖ projection version (u32 BE) ‖ covered seq (u64 BE) ‖ BLAKE3(encoding) ‖ encoding`.
//!   A snapshot with another magic, another projection version or a failing checksum is
//!   refused, and the caller rebuilds from the log: snapshots are a cache, never a source of truth.

use crate::state::GovernanceState;
use events::Digest;

/// Bumped whenever `GovernanceState`'s shape or fold semantics change: older snapshots are then
/// discarded and rebuilt.
pub const PROJECTION_VERSION: u32 = 3;
const MAGIC: &[u8; 8] = b"TLSNAP\x00\x01";
const HEADER_BYTES: usize = 8 + 4 + 8 + 32;

/// Why a snapshot was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Not a snapshot (magic or length).
    #[error("not a trustledger snapshot")]
    NotASnapshot,
    /// Made by another projection version.
    #[error("snapshot of projection version {found}, this build folds version {expected}")]
    OtherVersion {
        /// Its version.
        found: u32,
        /// Ours.
        expected: u32,
    },
    /// The checksum does not match the contents.
    #[error("snapshot checksum does not match its contents")]
    Corrupt,
    /// The contents do not decode.
    #[error("snapshot contents do not decode: {0}")]
    Decode(String),
}

/// The canonical binary encoding of a state.
///
/// # Panics
/// Never: every type in the state serialises.
pub fn encode(state: &GovernanceState) -> Vec<u8> {
    postcard::to_allocvec(state).expect("the governance state serialises")
}

/// The state's fingerprint.
pub fn fingerprint(state: &GovernanceState) -> Digest {
    Digest::of(&encode(state))
}

/// Seals `state`, which covers the log up to and including `seq`.
pub fn seal(state: &GovernanceState, seq: u64) -> Vec<u8> {
    let body = encode(state);
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&PROJECTION_VERSION.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(blake3::hash(&body).as_bytes());
    out.extend_from_slice(&body);
    out
}

/// Opens a sealed snapshot: the seq it covers and the state.
///
/// # Errors
/// [`SnapshotError`] when anything about it is off.
pub fn unseal(bytes: &[u8]) -> Result<(u64, GovernanceState), SnapshotError> {
    if bytes.len() < HEADER_BYTES || &bytes[..8] != MAGIC {
        return Err(SnapshotError::NotASnapshot);
    }
    let version = u32::from_be_bytes(bytes[8..12].try_into().expect("length checked"));
    if version != PROJECTION_VERSION {
        return Err(SnapshotError::OtherVersion {
            found: version,
            expected: PROJECTION_VERSION,
        });
    }
    let seq = u64::from_be_bytes(bytes[12..20].try_into().expect("length checked"));
    let body = &bytes[HEADER_BYTES..];
    if blake3::hash(body).as_bytes() != &bytes[20..52] {
        return Err(SnapshotError::Corrupt);
    }
    let state: GovernanceState =
        postcard::from_bytes(body).map_err(|e| SnapshotError::Decode(e.to_string()))?;
    // Pair assertion: the state says it covers the same seq as the header.
    if state.last_seq != Some(seq) {
        return Err(SnapshotError::Decode(format!(
            "header covers seq {seq}, state covers {:?}",
            state.last_seq
        )));
    }
    Ok((seq, state))
}
