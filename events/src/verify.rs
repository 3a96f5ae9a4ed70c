//! Integrity verification: the chain rules any copy of the log must obey ([`ChainVerifier`],
//! usable on an export as well as on the store), and the store's own index checks
//! ([`verify_store`]).

use crate::checkpoint::{Checkpoint, NoteVerifier};
use crate::entry::{Digest, Entry};
use crate::keys;
use crate::log::{Log, ReadError};
use crate::merkle::{self, Frontier};
use crate::time::Timestamp;
use std::fmt;

/// The first thing wrong with a log, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("seq {seq}: {reason}")]
pub struct IntegrityProblem {
    /// The first bad seq.
    pub seq: u64,
    /// What is wrong there.
    pub reason: String,
}

fn problem(seq: u64, reason: impl Into<String>) -> IntegrityProblem {
    IntegrityProblem {
        seq,
        reason: reason.into(),
    }
}

/// Checks entries one at a time, in order: canonical form, seq contiguity, `prevhash` chain,
/// non-decreasing time, one origin; and folds them into the Merkle tree's right edge.
///
/// Memory is O(log n) whatever the log's length.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    origin: Option<String>,
    next_seq: u64,
    last_hash: Digest,
    last_time: Option<Timestamp>,
    last_leaf: Digest,
    frontier: Frontier,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// A verifier expecting entry 0 first.
    pub fn new() -> Self {
        Self {
            origin: None,
            next_seq: 0,
            last_hash: Digest::ZERO,
            last_leaf: Digest::ZERO,
            last_time: None,
            frontier: Frontier::default(),
        }
    }

    /// A verifier that also requires every entry's `source` to be `origin`.
    pub fn with_origin(origin: impl Into<String>) -> Self {
        Self {
            origin: Some(origin.into()),
            ..Self::new()
        }
    }

    /// Checks the next entry's stored bytes and returns it decoded.
    ///
    /// # Errors
    /// [`IntegrityProblem`] at the seq the entry should have.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Entry, IntegrityProblem> {
        self.push_collecting(bytes, |_| {})
    }

    /// [`ChainVerifier::push`], also calling `completed` for every Merkle subtree this entry's leaf
    /// completes (so a store's recorded nodes can be compared with the recomputed ones).
    ///
    /// # Errors
    /// As [`ChainVerifier::push`].
    pub fn push_collecting(
        &mut self,
        bytes: &[u8],
        completed: impl FnMut(crate::merkle::CompletedNode),
    ) -> Result<Entry, IntegrityProblem> {
        let seq = self.next_seq;
        let entry =
            Entry::parse(bytes).map_err(|e| problem(seq, format!("malformed entry: {e}")))?;
        if entry.seq != seq {
            return Err(problem(
                seq,
                format!("expected seq {seq}, found an entry with seq {}", entry.seq),
            ));
        }
        if entry.prev_hash != self.last_hash {
            return Err(problem(
                seq,
                format!(
                    "prevhash {} does not match the previous entry's hash {}",
                    entry.prev_hash, self.last_hash
                ),
            ));
        }
        if let Some(last) = self.last_time {
            if entry.time < last {
                return Err(problem(
                    seq,
                    format!("time {} is before the previous entry's {last}", entry.time),
                ));
            }
        }
        match &self.origin {
            Some(origin) if *origin != entry.source => {
                return Err(problem(
                    seq,
                    format!(
                        "source {:?} is not the log's origin {origin:?}",
                        entry.source
                    ),
                ));
            }
            Some(_) => {}
            None => self.origin = Some(entry.source.clone()),
        }
        self.last_hash = Digest::of(bytes);
        self.last_time = Some(entry.time);
        self.last_leaf = merkle::leaf_hash(bytes);
        self.frontier.push(self.last_leaf, completed);
        self.next_seq += 1;
        Ok(entry)
    }

    /// Entries checked so far.
    pub fn size(&self) -> u64 {
        self.next_seq
    }

    /// Merkle leaf hash of the last entry checked.
    pub fn last_leaf(&self) -> Digest {
        self.last_leaf
    }

    /// Hash of the last entry checked.
    pub fn last_hash(&self) -> Digest {
        self.last_hash
    }

    /// Merkle root of the entries checked so far.
    pub fn root(&self) -> Digest {
        self.frontier.root()
    }

    /// The origin seen (or required).
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }
}

/// Checks one stored entry against its neighbours and the store's indexes (used on open for the
/// tail and by [`verify_store`] for everything).
pub(crate) fn check_stored_entry(
    tree: &sled::Tree,
    seq: u64,
    bytes: &[u8],
    prev_hash: &Digest,
    origin: &str,
) -> Result<Entry, IntegrityProblem> {
    let entry = Entry::parse(bytes).map_err(|e| problem(seq, format!("malformed entry: {e}")))?;
    if entry.seq != seq {
        return Err(problem(
            seq,
            format!("stored at seq {seq} but the entry says seq {}", entry.seq),
        ));
    }
    check_link_origin(&entry, prev_hash, origin)?;
    check_indexes(tree, &entry, &merkle::leaf_hash(bytes))?;
    Ok(entry)
}

fn check_link_origin(
    entry: &Entry,
    prev_hash: &Digest,
    origin: &str,
) -> Result<(), IntegrityProblem> {
    let seq = entry.seq;
    if entry.prev_hash != *prev_hash {
        return Err(problem(
            seq,
            format!(
                "prevhash {} does not match the previous entry's hash {prev_hash}",
                entry.prev_hash
            ),
        ));
    }
    if entry.source != origin {
        return Err(problem(
            seq,
            format!(
                "source {:?} is not the log's origin {origin:?}",
                entry.source
            ),
        ));
    }
    Ok(())
}

/// Checks that the store's indexes describe `entry` (already checked against its neighbours),
/// whose Merkle leaf hash is `leaf`.
fn check_indexes(tree: &sled::Tree, entry: &Entry, leaf: &Digest) -> Result<(), IntegrityProblem> {
    let seq = entry.seq;
    let storage = |e: sled::Error| problem(seq, format!("storage: {e}"));
    let points_here =
        |value: Option<sled::IVec>| value.as_deref().and_then(keys::decode_u64) == Some(seq);
    let indexed = tree.get(keys::id(&entry.id)).map_err(storage)?;
    match indexed.as_deref().and_then(keys::decode_id_value) {
        Some((indexed_seq, _)) if indexed_seq != seq => {
            return Err(problem(
                seq,
                format!(
                    "the id index maps event id {} to seq {indexed_seq}",
                    entry.id
                ),
            ));
        }
        None => {
            return Err(problem(
                seq,
                format!("the id index has no valid record for event id {}", entry.id),
            ));
        }
        Some((_, recorded)) if recorded != *leaf => {
            return Err(problem(
                seq,
                "content differs from the Merkle leaf recorded when it was appended",
            ));
        }
        Some(_) => {}
    }
    if !points_here(
        tree.get(keys::stream(&entry.subject, entry.stream_version))
            .map_err(storage)?,
    ) {
        return Err(problem(
            seq,
            format!(
                "the stream index does not map {}@{} to this seq",
                entry.subject, entry.stream_version
            ),
        ));
    }
    if entry.stream_version > 0 {
        let before = tree
            .get(keys::stream(&entry.subject, entry.stream_version - 1))
            .map_err(storage)?;
        let earlier = before.as_deref().and_then(keys::decode_u64);
        if earlier.is_none_or(|s| s >= seq) {
            return Err(problem(
                seq,
                format!(
                    "stream {} has no earlier entry at version {}",
                    entry.subject,
                    entry.stream_version - 1
                ),
            ));
        }
    }
    Ok(())
}

/// The leaf index of the first stored Merkle record at or beyond `size`, if any (a cut tail).
pub(crate) fn merkle_nodes_beyond(
    tree: &sled::Tree,
    size: u64,
) -> Result<Option<u64>, sled::Error> {
    match tree.range(keys::merkle_completed(size)..).next() {
        Some(item) => {
            let (key, _) = item?;
            Ok((key.first() == Some(&keys::MERKLE))
                .then(|| keys::decode_u64(&key[1..]).unwrap_or(u64::MAX)))
        }
        None => Ok(None),
    }
}

/// What a full verification of the store found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreReport {
    /// Entries verified.
    pub entries: u64,
    /// Hash of the last entry.
    pub last_hash: Digest,
    /// Merkle root of all entries.
    pub root: Digest,
    /// Signed checkpoints whose root and signature were checked.
    pub checkpoints: u64,
}

impl fmt::Display for StoreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} entries verified; head hash {}; Merkle root {}; {} signed checkpoints verified",
            self.entries, self.last_hash, self.root, self.checkpoints
        )
    }
}

/// Why a full verification did not complete with a verdict of "valid".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyStoreError {
    /// The log is not intact.
    #[error("integrity: {0}")]
    Integrity(#[from] IntegrityProblem),
    /// The store could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Walks every stored entry: seq contiguity, `prevhash` chain, canonical form, time order, the
/// id, stream and Merkle indexes, and every stored checkpoint (its root equals the recomputed root
/// at its size; its signature verifies under `verifier` when one is given). Reports the first bad
/// seq. `progress` is called with the number of entries checked so far, every 4096 entries.
///
/// # Errors
/// [`VerifyStoreError::Integrity`] naming the first bad seq, or a read error.
pub fn verify_store(
    log: &Log,
    verifier: Option<&NoteVerifier>,
    mut progress: impl FnMut(u64),
) -> Result<StoreReport, VerifyStoreError> {
    let tree = log.tree();
    let origin = log.origin();
    let mut chain = ChainVerifier::with_origin(origin);
    let mut checkpoints = tree.scan_prefix([keys::CHECKPOINT]).peekable();
    let mut checked_checkpoints = 0u64;
    for item in tree.scan_prefix([keys::ENTRY]) {
        let (key, bytes) = item.map_err(ReadError::from)?;
        let seq = chain.size();
        let key_seq =
            keys::decode_u64(&key[1..]).ok_or_else(|| problem(seq, "malformed entry key"))?;
        if key_seq != seq {
            return Err(problem(
                seq,
                format!("entry is missing (the next stored entry is at seq {key_seq})"),
            )
            .into());
        }
        let mut recomputed = Vec::new();
        let entry = chain.push_collecting(&bytes, |node| {
            if node.level > 0 {
                recomputed.extend_from_slice(&node.hash.0);
            }
        })?;
        check_indexes(tree, &entry, &chain.last_leaf())?;
        let stored = tree
            .get(keys::merkle_completed(seq))
            .map_err(ReadError::from)?;
        if stored.as_deref().unwrap_or_default() != recomputed.as_slice() {
            return Err(problem(
                seq,
                "the Merkle nodes recorded for this leaf differ from the recomputed ones",
            )
            .into());
        }
        while let Some(Ok((key, _))) = checkpoints.peek() {
            let size = keys::decode_u64(&key[1..])
                .ok_or_else(|| problem(seq, "malformed checkpoint key"))?;
            if size > chain.size() {
                break;
            }
            let (_, note) = checkpoints
                .next()
                .expect("peeked")
                .map_err(ReadError::from)?;
            check_checkpoint(
                &String::from_utf8_lossy(&note),
                size,
                &chain,
                origin,
                verifier,
            )?;
            checked_checkpoints += 1;
        }
        if chain.size().is_multiple_of(4096) {
            progress(chain.size());
        }
    }
    let size = chain.size();
    progress(size);
    if let Some(item) = checkpoints.next() {
        let (key, _) = item.map_err(ReadError::from)?;
        let signed = keys::decode_u64(&key[1..]).unwrap_or(u64::MAX);
        return Err(problem(
            size,
            format!(
                "entries from here on are missing: a signed checkpoint covers {signed} entries"
            ),
        )
        .into());
    }
    if merkle_nodes_beyond(tree, size)
        .map_err(ReadError::from)?
        .is_some()
    {
        return Err(problem(
            size,
            "entries from here on are missing: the Merkle index holds their nodes",
        )
        .into());
    }
    for (prefix, name) in [(keys::ID, "id"), (keys::STREAM, "stream")] {
        let indexed = tree.scan_prefix([prefix]).count() as u64;
        if indexed != size {
            return Err(problem(
                size,
                format!("the {name} index holds {indexed} entries but the log has {size}"),
            )
            .into());
        }
    }
    Ok(StoreReport {
        entries: size,
        last_hash: chain.last_hash(),
        root: chain.root(),
        checkpoints: checked_checkpoints,
    })
}

fn check_checkpoint(
    note: &str,
    size: u64,
    chain: &ChainVerifier,
    origin: &str,
    verifier: Option<&NoteVerifier>,
) -> Result<(), IntegrityProblem> {
    let at = size.saturating_sub(1);
    let checkpoint = match verifier {
        Some(v) => Checkpoint::verify(note, v),
        None => note
            .find("\n\n")
            .ok_or_else(|| {
                crate::checkpoint::CheckpointError::MalformedNote("no signature block".into())
            })
            .and_then(|split| Checkpoint::parse_text(&note[..=split])),
    }
    .map_err(|e| problem(at, format!("stored checkpoint for size {size}: {e}")))?;
    if checkpoint.size != size || checkpoint.origin != origin {
        return Err(problem(
            at,
            format!(
                "stored checkpoint for size {size} names size {} of {:?}",
                checkpoint.size, checkpoint.origin
            ),
        ));
    }
    if checkpoint.root != chain.root() {
        return Err(problem(
            at,
            format!(
                "signed checkpoint root {} differs from the recomputed root {}",
                checkpoint.root,
                chain.root()
            ),
        ));
    }
    Ok(())
}
