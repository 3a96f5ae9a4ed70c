//! Verifiable snapshots and fingerprints of the governance state.
//!
//! - The state's **canonical encoding** is three postcard sections, each prefixed by its length
//!   (u64 BE): the deployments, the evidence, then everything else. Its maps are all
//!   `BTreeMap`s, so equal states give equal bytes. The two large maps are sections of their own
//!   so that opening a snapshot decodes them on separate cores.
//! - The **fingerprint** of a state is SHA-256 over that encoding. Two parties who fold the same
//!   log to the same seq get the same fingerprint; an auditor compares theirs with the one the
//!   service reports.
//! - A **snapshot** is that encoding sealed as
//!   `MAGIC ‖ projection version (u32 BE) ‖ covered seq (u64 BE) ‖ SHA-256 of the entry at that
//!   seq (the log it was folded from) ‖ BLAKE3(encoding) ‖ encoding`.
//!   A snapshot with another magic, another projection version or a failing checksum is
//!   refused, and the caller rebuilds from the log: snapshots are a cache, never a source of truth.

use crate::state::GovernanceState;
use events::Digest;

/// Bumped whenever `GovernanceState`'s shape or fold semantics change: older snapshots are then
/// discarded and rebuilt.
pub const PROJECTION_VERSION: u32 = 12;
const MAGIC: &[u8; 8] = b"TLSNAP\x00\x01";
const HEADER_BYTES: usize = 8 + 4 + 8 + 32 + 32;

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
    let mut out = Vec::new();
    let mut section = |bytes: Vec<u8>| {
        out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        out.extend_from_slice(&bytes);
    };
    let serialises = "the governance state serialises";
    section(postcard::to_allocvec(&state.deployments).expect(serialises));
    section(postcard::to_allocvec(&state.evidence).expect(serialises));
    section(postcard::to_allocvec(state).expect(serialises));
    out
}

/// Decodes [`encode`]'s output, the sections on separate threads.
fn decode(body: &[u8]) -> Result<GovernanceState, SnapshotError> {
    let mut rest = body;
    let mut next_section = || -> Result<&[u8], SnapshotError> {
        let too_short = || SnapshotError::Decode("a section is cut short".into());
        let (len, tail) = rest.split_first_chunk::<8>().ok_or_else(too_short)?;
        let len = usize::try_from(u64::from_be_bytes(*len)).map_err(|_| too_short())?;
        let section = tail.get(..len).ok_or_else(too_short)?;
        rest = &tail[len..];
        Ok(section)
    };
    let (deployments, evidence, others) = (next_section()?, next_section()?, next_section()?);
    if !rest.is_empty() {
        return Err(SnapshotError::Decode("bytes after the last section".into()));
    }
    let failed = |e: postcard::Error| SnapshotError::Decode(e.to_string());
    std::thread::scope(|scope| {
        let deployments = scope.spawn(|| postcard::from_bytes(deployments));
        let evidence = scope.spawn(|| postcard::from_bytes(evidence));
        let mut state: GovernanceState = postcard::from_bytes(others).map_err(failed)?;
        state.deployments = deployments
            .join()
            .expect("decoding does not panic")
            .map_err(failed)?;
        state.evidence = evidence
            .join()
            .expect("decoding does not panic")
            .map_err(failed)?;
        Ok(state)
    })
}

/// The state's fingerprint: SHA-256 of [`encode`]'s output, computed without holding that
/// output (at a million entries it is over 100 MB): each section is serialised twice, once to
/// count its bytes for the length prefix and once straight into the hash.
///
/// # Panics
/// Never: every type in the state serialises.
pub fn fingerprint(state: &GovernanceState) -> Digest {
    use erased::Section as _;
    use sha2::Digest as _;
    // The length prefixes of the later sections are counted on another core while the first
    // section is counted and hashed here.
    // The two record maps count and write themselves: settled records (see `settling`) are
    // copied as kept, not decoded and re-encoded.
    let ((evidence_len, rest_len), deployments_len) = std::thread::scope(|scope| {
        let later = scope.spawn(|| (state.evidence.encoding_len(), state.encoded_len()));
        let first = state.deployments.encoding_len();
        (later.join().expect("counting does not panic"), first)
    });
    let mut hasher = sha2::Sha256::new();
    hasher.update(deployments_len.to_be_bytes());
    state
        .deployments
        .write_encoding(&mut |bytes| hasher.update(bytes));
    hasher.update(evidence_len.to_be_bytes());
    state
        .evidence
        .write_encoding(&mut |bytes| hasher.update(bytes));
    hasher.update(rest_len.to_be_bytes());
    state.hash_into(&mut hasher);
    Digest(hasher.finalize().into())
}

/// Serialising a section into a byte count or a hash, through postcard's output "flavors".
mod erased {
    use postcard::ser_flavors::Flavor;
    use serde::Serialize;

    pub(super) trait Section {
        fn encoded_len(&self) -> u64;
        fn hash_into(&self, hasher: &mut sha2::Sha256);
    }

    impl<T: Serialize> Section for T {
        fn encoded_len(&self) -> u64 {
            postcard::serialize_with_flavor(self, Count(0)).expect(SERIALISES)
        }

        fn hash_into(&self, hasher: &mut sha2::Sha256) {
            let buffered = Hashing {
                hasher,
                buffer: Vec::with_capacity(BUFFER_BYTES),
            };
            postcard::serialize_with_flavor(self, buffered).expect(SERIALISES);
        }
    }

    const SERIALISES: &str = "the governance state serialises";
    /// Bytes gathered before each hash update: postcard writes a few bytes at a time.
    const BUFFER_BYTES: usize = 64 << 10;

    struct Count(u64);

    impl Flavor for Count {
        type Output = u64;
        fn try_push(&mut self, _: u8) -> postcard::Result<()> {
            self.0 += 1;
            Ok(())
        }
        fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
            self.0 += data.len() as u64;
            Ok(())
        }
        fn finalize(self) -> postcard::Result<u64> {
            Ok(self.0)
        }
    }

    struct Hashing<'a> {
        hasher: &'a mut sha2::Sha256,
        buffer: Vec<u8>,
    }

    impl Hashing<'_> {
        fn drain_if_full(&mut self) {
            use sha2::Digest as _;
            if self.buffer.len() >= BUFFER_BYTES {
                self.hasher.update(&self.buffer);
                self.buffer.clear();
            }
        }
    }

    impl Flavor for Hashing<'_> {
        type Output = ();
        fn try_push(&mut self, data: u8) -> postcard::Result<()> {
            self.buffer.push(data);
            self.drain_if_full();
            Ok(())
        }
        fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
            self.buffer.extend_from_slice(data);
            self.drain_if_full();
            Ok(())
        }
        fn finalize(self) -> postcard::Result<()> {
            use sha2::Digest as _;
            self.hasher.update(&self.buffer);
            Ok(())
        }
    }
}

/// A snapshot, opened: the state and the log it was folded from.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// The last seq it covers.
    pub seq: u64,
    /// The hash of the entry at `seq` in the log it was folded from (which names the log's
    /// origin and, through the chain, every entry before): a snapshot is used only with a log
    /// whose entry at `seq` has this hash.
    pub head: Digest,
    /// The state.
    pub state: GovernanceState,
}

/// Seals `state`, which covers the log up to and including `seq`, whose entry there hashes to
/// `head`.
pub fn seal(state: &GovernanceState, seq: u64, head: Digest) -> Vec<u8> {
    let body = encode(state);
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&PROJECTION_VERSION.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&head.0);
    out.extend_from_slice(blake3::hash(&body).as_bytes());
    out.extend_from_slice(&body);
    out
}

/// Opens a sealed snapshot. Whether it belongs to a given log is for the caller to check
/// against that log's entry at [`Sealed::seq`].
///
/// # Errors
/// [`SnapshotError`] when anything about it is off.
pub fn unseal(bytes: &[u8]) -> Result<Sealed, SnapshotError> {
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
    let head = Digest(bytes[20..52].try_into().expect("length checked"));
    let body = &bytes[HEADER_BYTES..];
    if blake3::hash(body).as_bytes() != &bytes[52..84] {
        return Err(SnapshotError::Corrupt);
    }
    let state = decode(body)?;
    // Pair assertion: the state says it covers the same seq as the header.
    if state.last_seq != Some(seq) {
        return Err(SnapshotError::Decode(format!(
            "header covers seq {seq}, state covers {:?}",
            state.last_seq
        )));
    }
    Ok(Sealed { seq, head, state })
}
