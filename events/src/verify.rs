//! Integrity verification: the chain rules any copy of the log must obey ([`ChainVerifier`],
//! usable on an export as well as on the store), and the store's own index checks
//! ([`verify_store`]).

use crate::checkpoint::{Checkpoint, NoteVerifier};
use crate::entry::{Digest, Entry};
use crate::keys::{self, ChunkIndex, IndexedEntry};
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

/// Checks one stored entry without its neighbours: it is the entry that belongs at `seq`
/// (its position in its chunk), well-formed, and exactly as its chunk's index record describes it
/// (`indexed`). Shared by the tail check on open and by [`verify_store`], so both name the same
/// seq for the same damage.
pub(crate) fn check_in_chunk(
    seq: u64,
    bytes: &[u8],
    indexed: Option<&IndexedEntry<'_>>,
) -> Result<Hashed, IntegrityProblem> {
    let hashed = Hashed::of(bytes).map_err(|e| problem(seq, format!("malformed entry: {e}")))?;
    let entry = &hashed.entry;
    if entry.seq != seq {
        return Err(problem(
            seq,
            format!(
                "entry {seq} is missing: the entry stored in its place says seq {}",
                entry.seq
            ),
        ));
    }
    let Some(indexed) = indexed else {
        return Err(problem(
            seq,
            "the chunk's index record does not list this entry",
        ));
    };
    if indexed.leaf != hashed.leaf {
        return Err(problem(
            seq,
            "content differs from the Merkle leaf recorded when it was appended",
        ));
    }
    if indexed.id != entry.id {
        return Err(problem(
            seq,
            format!(
                "the id index records event id {} here, but the entry's id is {}",
                indexed.id, entry.id
            ),
        ));
    }
    if indexed.subject != entry.subject || indexed.stream_version != entry.stream_version {
        return Err(problem(
            seq,
            format!(
                "the stream index records {}@{} here, but the entry is {}@{}",
                indexed.subject, indexed.stream_version, entry.subject, entry.stream_version
            ),
        ));
    }
    Ok(hashed)
}

/// Checks that `entry` links to the entry before it (for the tail check on open, which starts
/// mid-log and so has no [`ChainVerifier`]).
pub(crate) fn check_link_origin(
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

/// A stored chunk (`E` key) and its index record (`X` key), checked to start at `expected`.
pub(crate) struct StoredChunk {
    pub(crate) first: u64,
    pub(crate) entries: sled::IVec,
    pub(crate) index: sled::IVec,
    /// Where each entry is in `entries`.
    ranges: Vec<std::ops::Range<usize>>,
}

/// Why [`PairedChunks`] stopped.
pub(crate) enum ChunkError {
    /// The store could not be read.
    Read(sled::Error),
    /// A chunk or index record is missing, misplaced or malformed.
    Problem(IntegrityProblem),
}

/// The stored chunks from the one starting at seq `from`, each paired with its index record and
/// checked to start where the one before ended; it stops after the first error. The tail check
/// on open and [`verify_store`] both walk the store with it.
pub(crate) struct PairedChunks {
    chunks: sled::Iter,
    indexes: sled::Iter,
    next_seq: u64,
    done: bool,
}

impl PairedChunks {
    pub(crate) fn from(tree: &sled::Tree, from: u64) -> Self {
        Self {
            chunks: tree.range(keys::chunk(from)..=keys::chunk(u64::MAX)),
            indexes: tree.range(keys::chunk_index(from)..=keys::chunk_index(u64::MAX)),
            next_seq: from,
            done: false,
        }
    }
}

impl Iterator for PairedChunks {
    type Item = Result<StoredChunk, ChunkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let read = self
            .chunks
            .next()
            .transpose()
            .and_then(|chunk| Ok((chunk, self.indexes.next().transpose()?)));
        let paired = match read {
            Ok((chunk, index)) => StoredChunk::pair(self.next_seq, chunk, index),
            Err(e) => {
                self.done = true;
                return Some(Err(ChunkError::Read(e)));
            }
        };
        match paired {
            Ok(Some(chunk)) => {
                self.next_seq += chunk.len() as u64;
                Some(Ok(chunk))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(problem) => {
                self.done = true;
                Some(Err(ChunkError::Problem(problem)))
            }
        }
    }
}

impl StoredChunk {
    /// Pairs the next chunk and index record, which must both start at `expected` (the size
    /// verified so far).
    fn pair(
        expected: u64,
        chunk: Option<(sled::IVec, sled::IVec)>,
        index: Option<(sled::IVec, sled::IVec)>,
    ) -> Result<Option<Self>, IntegrityProblem> {
        let first_of = |key: &sled::IVec, prefix| {
            keys::key_number(key, prefix).ok_or_else(|| problem(expected, "malformed chunk key"))
        };
        match (chunk, index) {
            (None, None) => Ok(None),
            (Some((key, _)), None) => Err(problem(
                first_of(&key, keys::CHUNK)?,
                "the chunk stored here has no index record",
            )),
            (None, Some((key, _))) => Err(problem(
                expected,
                format!(
                    "entries from here on are missing: an index record describes a chunk from seq {}",
                    first_of(&key, keys::CHUNK_INDEX)?
                ),
            )),
            (Some((chunk_key, entries)), Some((index_key, index))) => {
                let first = first_of(&chunk_key, keys::CHUNK)?;
                let indexed_first = first_of(&index_key, keys::CHUNK_INDEX)?;
                if first != expected || indexed_first != expected {
                    return Err(problem(
                        expected,
                        format!(
                            "entry {expected} is missing: the next chunk starts at seq {first}, \
                             its index record at seq {indexed_first}"
                        ),
                    ));
                }
                if !entries.ends_with(b"\n") {
                    return Err(problem(first, "the chunk does not end with a newline"));
                }
                let ranges = keys::chunk_entry_ranges(&entries).collect();
                Ok(Some(Self {
                    first,
                    entries,
                    index,
                    ranges,
                }))
            }
        }
    }

    /// The chunk's index record, decoded.
    pub(crate) fn decode_index(&self) -> Result<ChunkIndex<'_>, IntegrityProblem> {
        ChunkIndex::decode(self.first, &self.index).map_err(|e| {
            problem(
                self.first,
                format!("the chunk's index record is malformed: {e}"),
            )
        })
    }

    /// How many entries the chunk holds.
    pub(crate) fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Each entry's seq (from its position) and bytes.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        self.ranges
            .iter()
            .enumerate()
            .map(|(k, range)| (self.first + k as u64, &self.entries[range.clone()]))
    }

    /// A problem if the index record lists more entries than the chunk holds.
    pub(crate) fn check_count(&self, index: &ChunkIndex<'_>) -> Result<(), IntegrityProblem> {
        let stored = self.ranges.len() as u64;
        if (stored as usize) < index.entries.len() {
            return Err(problem(
                self.first + stored,
                format!(
                    "entries from here on are missing: the index record lists {} entries from seq {}",
                    index.entries.len(),
                    self.first
                ),
            ));
        }
        Ok(())
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
    let index_problem = log.index_problem()?;
    let mut stored_chunks = PairedChunks::from(tree, 0);
    // The last version seen of every stream: each entry must be its stream's next version.
    let mut stream_versions: std::collections::HashMap<String, u64> =
        std::collections::HashMap::new();
    let mut exhausted = false;
    while !exhausted {
        // Chunks are read in order by this thread until a round holds VERIFY_CHUNK entries; the
        // per-entry work that needs no other entry (parsing, hashing, comparing with the index
        // record) is shared across the cores; then the round is linked in order, so the first
        // problem reported is the first in seq order.
        let mut round: Vec<StoredChunk> = Vec::new();
        let mut entries_in_round = 0usize;
        let mut pairing_problem = None;
        while entries_in_round < VERIFY_CHUNK {
            match stored_chunks.next() {
                Some(Ok(paired)) => {
                    entries_in_round += paired.len();
                    round.push(paired);
                }
                // Reported once everything before it has been checked.
                Some(Err(ChunkError::Problem(problem))) => {
                    pairing_problem = Some(problem);
                    exhausted = true;
                    break;
                }
                Some(Err(ChunkError::Read(e))) => return Err(ReadError::from(e).into()),
                None => {
                    exhausted = true;
                    break;
                }
            }
        }
        let decoded: Vec<Result<ChunkIndex<'_>, IntegrityProblem>> =
            round.iter().map(StoredChunk::decode_index).collect();
        let items: Vec<(u64, &[u8], Option<&IndexedEntry<'_>>)> = round
            .iter()
            .zip(&decoded)
            .flat_map(|(chunk, index)| {
                chunk.entries().enumerate().map(move |(k, (seq, bytes))| {
                    let indexed = index.as_ref().ok().and_then(|i| i.entries.get(k));
                    (seq, bytes, indexed)
                })
            })
            .collect();
        let checked = in_parallel(&items, threads, |_, (seq, bytes, indexed)| {
            check_in_chunk(*seq, bytes, *indexed)
        });
        let round_end = chain.size() + items.len() as u64;
        // The checkpoints this round reaches. A busy log signs one per commit (a simulated
        // 1.4M-entry history holds 966k), so their signatures are verified across the cores too;
        // only the comparison with the recomputed root is left to the linking below.
        let mut notes = Vec::new();
        while let Some(Ok((key, _))) = checkpoints.peek() {
            let size = keys::key_number(key, keys::CHECKPOINT)
                .ok_or_else(|| problem(chain.size(), "malformed checkpoint key"))?;
            if size > round_end {
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
        let mut checked = checked.into_iter();
        for (chunk, index) in round.iter().zip(&decoded) {
            let index = index.as_ref().map_err(Clone::clone)?;
            for _ in chunk.entries() {
                let seq = chain.size();
                let hashed = checked.next().expect("one result per entry")?;
                let mut recomputed = Vec::new();
                let entry = chain.link(hashed, |node| {
                    if node.level > 0 {
                        recomputed.extend_from_slice(&node.hash.0);
                    }
                })?;
                debug_assert_eq!(entry.seq, seq);
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
                if index.nodes_of(seq) != recomputed.as_slice() {
                    return Err(problem(
                        seq,
                        "the Merkle nodes recorded for this leaf differ from the recomputed ones",
                    )
                    .into());
                }
                // Rebuilding the indexes on open checked what no single entry shows: that event
                // ids are unique across the log (each entry was compared with its index record
                // above, so the records speak for the entries).
                if let Some((at, reason)) = index_problem.filter(|(at, _)| *at == seq) {
                    return Err(problem(*at, reason.clone()).into());
                }
                while let Some((size, checkpoint)) =
                    opened.next_if(|(size, _)| *size <= chain.size())
                {
                    compare_checkpoint(checkpoint?, size, &chain, origin)?;
                    checked_checkpoints += 1;
                }
                if chain.size().is_multiple_of(4096) {
                    progress(chain.size());
                }
            }
            chunk.check_count(index)?;
        }
        if let Some(problem) = pairing_problem {
            return Err(problem.into());
        }
    }
    let size = chain.size();
    progress(size);
    if let Some((at, reason)) = index_problem {
        return Err(problem(*at, reason.clone()).into());
    }
    if let Some(item) = checkpoints.next() {
        let (key, _) = item.map_err(ReadError::from)?;
        let signed = keys::key_number(&key, keys::CHECKPOINT).unwrap_or(u64::MAX);
        return Err(problem(
            size,
            format!(
                "entries from here on are missing: a signed checkpoint covers {signed} entries"
            ),
        )
        .into());
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
