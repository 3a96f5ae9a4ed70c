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

/// An entry parsed (so checked canonical and well-formed) and hashed, not yet linked to its
/// predecessor: the half of checking an entry that needs no other entry, so any thread can do it.
#[derive(Debug, Clone)]
pub struct Hashed {
    /// The decoded entry.
    pub entry: Entry,
    /// SHA-256 of its bytes (the next entry's `prevhash`).
    pub hash: Digest,
    /// Its Merkle leaf hash.
    pub leaf: Digest,
}

impl Hashed {
    /// Parses and hashes stored bytes.
    ///
    /// # Errors
    /// [`MalformedEntry`](crate::entry::MalformedEntry) when they are not a well-formed entry.
    pub fn of(bytes: &[u8]) -> Result<Self, crate::entry::MalformedEntry> {
        Ok(Self {
            entry: Entry::parse(bytes)?,
            hash: Digest::of(bytes),
            leaf: merkle::leaf_hash(bytes),
        })
    }
}

/// The root a chain had when it held exactly `size` entries: what a checkpoint the auditor kept
/// from earlier must match for the log to have only grown since. Call [`RootAt::observe`] after
/// every entry; an empty prefix has the empty tree's root from the start.
#[derive(Debug, Clone)]
pub struct RootAt {
    size: u64,
    root: Option<Digest>,
}

impl RootAt {
    /// Watches for the chain reaching `size` entries.
    pub fn new(size: u64) -> Self {
        Self {
            size,
            root: (size == 0).then(merkle::empty_root),
        }
    }

    /// Notes the chain's root if it now holds `size` entries.
    pub fn observe(&mut self, chain: &ChainVerifier) {
        if chain.size() == self.size {
            self.root = Some(chain.root());
        }
    }

    /// The root at `size`, if the chain got that far.
    pub fn root(&self) -> Option<Digest> {
        self.root
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
        let hashed = Hashed::of(bytes)
            .map_err(|e| problem(self.next_seq, format!("malformed entry: {e}")))?;
        self.link(hashed, completed)
    }

    /// The order-dependent half of [`ChainVerifier::push_collecting`], for an entry already
    /// parsed and hashed (perhaps on another thread).
    ///
    /// # Errors
    /// As [`ChainVerifier::push`].
    pub fn link(
        &mut self,
        hashed: Hashed,
        completed: impl FnMut(crate::merkle::CompletedNode),
    ) -> Result<Entry, IntegrityProblem> {
        let seq = self.next_seq;
        let Hashed { entry, hash, leaf } = hashed;
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
        self.last_hash = hash;
        self.last_time = Some(entry.time);
        self.last_leaf = leaf;
        self.frontier.push(leaf, completed);
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
    check_stream_predecessor(tree, &entry)?;
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
    Ok(())
}

/// Checks that the stream index has `entry`'s predecessor in its stream at an earlier seq (for
/// the tail check on open; a full walk tracks every stream's versions itself).
fn check_stream_predecessor(tree: &sled::Tree, entry: &Entry) -> Result<(), IntegrityProblem> {
    let seq = entry.seq;
    if entry.stream_version > 0 {
        let before = tree
            .get(keys::stream(&entry.subject, entry.stream_version - 1))
            .map_err(|e| problem(seq, format!("storage: {e}")))?;
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
    let threads = worker_threads();
    let mut stored_entries = tree.scan_prefix([keys::ENTRY]);
    // The last version seen of every stream: each entry must be its stream's next version.
    let mut stream_versions: std::collections::HashMap<String, u64> =
        std::collections::HashMap::new();
    loop {
        // Entries are read in order by this thread, in chunks; the per-entry work that needs no
        // other entry (parsing, hashing, index look-ups) is shared across the cores; then the
        // chunk is linked in order, so the first problem reported is the first in seq order.
        let chunk = stored_entries
            .by_ref()
            .take(VERIFY_CHUNK)
            .collect::<Result<Vec<_>, _>>()
            .map_err(ReadError::from)?;
        if chunk.is_empty() {
            break;
        }
        let base = chain.size();
        let checked = in_parallel(&chunk, threads, |offset, (key, bytes)| {
            check_alone(tree, base + offset as u64, key, bytes)
        });
        // The checkpoints this chunk reaches. A busy log signs one per commit batch (a simulated
        // 1.4M-entry history holds 966k), so their signatures are verified across the cores too;
        // only the comparison with the recomputed root is left to the linking below.
        let mut notes = Vec::new();
        while let Some(Ok((key, _))) = checkpoints.peek() {
            let size = keys::decode_u64(&key[1..])
                .ok_or_else(|| problem(base, "malformed checkpoint key"))?;
            if size > base + chunk.len() as u64 {
                break;
            }
            let (_, note) = checkpoints
                .next()
                .expect("peeked")
                .map_err(ReadError::from)?;
            notes.push((size, note));
        }
        let mut opened = in_parallel(&notes, threads, |_, (size, note)| {
            (
                *size,
                open_checkpoint(&String::from_utf8_lossy(note), *size, verifier),
            )
        })
        .into_iter()
        .peekable();
        for alone in checked {
            let seq = chain.size();
            let hashed = alone.hashed?;
            let mut recomputed = Vec::new();
            let entry = chain.link(hashed, |node| {
                if node.level > 0 {
                    recomputed.extend_from_slice(&node.hash.0);
                }
            })?;
            debug_assert_eq!(entry.seq, seq);
            alone.indexes?;
            let expected_version = match stream_versions.get_mut(entry.subject.as_str()) {
                Some(last) => {
                    *last += 1;
                    *last
                }
                None => {
                    stream_versions.insert(entry.subject.clone(), 0);
                    0
                }
            };
            if entry.stream_version != expected_version {
                return Err(problem(
                    seq,
                    format!(
                        "stream {} continues at version {}, but this entry says {}",
                        entry.subject, expected_version, entry.stream_version
                    ),
                )
                .into());
            }
            let stored = alone.merkle_record.map_err(ReadError::from)?;
            if stored.as_deref().unwrap_or_default() != recomputed.as_slice() {
                return Err(problem(
                    seq,
                    "the Merkle nodes recorded for this leaf differ from the recomputed ones",
                )
                .into());
            }
            while let Some((size, checkpoint)) = opened.next_if(|(size, _)| *size <= chain.size()) {
                compare_checkpoint(checkpoint?, size, &chain, origin)?;
                checked_checkpoints += 1;
            }
            if chain.size().is_multiple_of(4096) {
                progress(chain.size());
            }
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

/// Entries read and checked per round of [`verify_store`].
const VERIFY_CHUNK: usize = 4096;

/// What can be checked about one stored entry without its neighbours.
struct CheckedAlone {
    /// Parsed and hashed, or why not (stored at the wrong key, malformed).
    hashed: Result<Hashed, IntegrityProblem>,
    /// The id and stream indexes describe it.
    indexes: Result<(), IntegrityProblem>,
    /// The Merkle record stored for its leaf.
    merkle_record: Result<Option<sled::IVec>, sled::Error>,
}

fn check_alone(tree: &sled::Tree, seq: u64, key: &[u8], bytes: &[u8]) -> CheckedAlone {
    let key_seq = keys::decode_u64(&key[1..]);
    let hashed = match key_seq {
        None => Err(problem(seq, "malformed entry key")),
        Some(key_seq) if key_seq != seq => Err(problem(
            seq,
            format!("entry is missing (the next stored entry is at seq {key_seq})"),
        )),
        Some(_) => Hashed::of(bytes).map_err(|e| problem(seq, format!("malformed entry: {e}"))),
    };
    let indexes = match &hashed {
        // Only meaningful once the entry is known to be the one at `seq`; reported after the
        // chain checks, in the same order as a sequential walk.
        Ok(h) if h.entry.seq == seq => check_indexes(tree, &h.entry, &h.leaf),
        _ => Ok(()),
    };
    CheckedAlone {
        hashed,
        indexes,
        merkle_record: tree.get(keys::merkle_completed(seq)),
    }
}

/// How many threads to spread per-entry checking over: one per core (at most 8; 1 if the
/// platform cannot say). Verification and the auditor's readers share it.
pub fn worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// `f(index, item)` for every item, the slice split into `threads` contiguous parts each mapped
/// on its own scoped thread; results in the items' order. (The auditor uses it too, to parse a
/// store's entries on every core.)
///
/// # Panics
/// If `f` panics.
pub fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(usize, &T) -> R + Sync,
) -> Vec<R> {
    let part = items.len().div_ceil(threads.max(1)).max(1);
    if threads <= 1 || items.len() <= part {
        return items.iter().enumerate().map(|(i, t)| f(i, t)).collect();
    }
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = items
            .chunks(part)
            .enumerate()
            .map(|(n, slice)| {
                scope.spawn(move || {
                    slice
                        .iter()
                        .enumerate()
                        .map(|(i, t)| f(n * part + i, t))
                        .collect::<Vec<R>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a verification thread panicked"))
            .collect()
    })
}

/// Parses a stored checkpoint note and, given a verifier, checks its signature: the half of
/// checking a checkpoint that needs no entry, so any thread can do it.
fn open_checkpoint(
    note: &str,
    size: u64,
    verifier: Option<&NoteVerifier>,
) -> Result<Checkpoint, IntegrityProblem> {
    match verifier {
        Some(v) => Checkpoint::verify(note, v),
        None => note
            .find("\n\n")
            .ok_or_else(|| {
                crate::checkpoint::CheckpointError::MalformedNote("no signature block".into())
            })
            .and_then(|split| Checkpoint::parse_text(&note[..=split])),
    }
    .map_err(|e| {
        problem(
            size.saturating_sub(1),
            format!("stored checkpoint for size {size}: {e}"),
        )
    })
}

/// The checkpoint stored at `size` describes the chain once it has `size` entries.
fn compare_checkpoint(
    checkpoint: Checkpoint,
    size: u64,
    chain: &ChainVerifier,
    origin: &str,
) -> Result<(), IntegrityProblem> {
    let at = size.saturating_sub(1);
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
