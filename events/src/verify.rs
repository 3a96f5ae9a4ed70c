//! Integrity verification: the chain rules any copy of the log must obey ([`ChainVerifier`],
//! usable on an export as well as on the store), and the store's own index checks
//! ([`verify_store`]).

use crate::checkpoint::{Checkpoint, NoteVerifier};
use crate::entry::{Digest, Entry, EntryHeader};
use crate::keys::{self, ChunkIndex, IndexedEntry};
use crate::log::store::{Records, Store};
use crate::log::{Log, ReadError};
use crate::merkle::{self, Frontier};
use crate::rotation::{self, KeySchedule};
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
        match &self.origin {
            Some(origin) => check_origin(seq, &entry.source, origin)?,
            None => self.origin = Some(entry.source.clone()),
        }
        self.link_in_order(
            &CheckedEntry {
                seq: entry.seq,
                prev_hash: entry.prev_hash,
                time: entry.time,
                hash,
                leaf,
            },
            completed,
        )?;
        Ok(entry)
    }

    /// [`ChainVerifier::link`] for an entry whose source [`check_in_chunk`] has already
    /// compared with this verifier's origin.
    pub(crate) fn link_checked(
        &mut self,
        checked: &CheckedEntry,
        completed: impl FnMut(crate::merkle::CompletedNode),
    ) -> Result<(), IntegrityProblem> {
        debug_assert!(self.origin.is_some(), "the origin was checked against");
        self.link_in_order(checked, completed)
    }

    /// The checks that need the entry before: seq, `prevhash`, time.
    fn link_in_order(
        &mut self,
        checked: &CheckedEntry,
        completed: impl FnMut(crate::merkle::CompletedNode),
    ) -> Result<(), IntegrityProblem> {
        let seq = self.next_seq;
        if checked.seq != seq {
            return Err(problem(
                seq,
                format!(
                    "expected seq {seq}, found an entry with seq {}",
                    checked.seq
                ),
            ));
        }
        check_link(checked, &self.last_hash)?;
        if let Some(last) = self.last_time {
            if checked.time < last {
                return Err(problem(
                    seq,
                    format!(
                        "time {} is before the previous entry's {last}",
                        checked.time
                    ),
                ));
            }
        }
        self.last_hash = checked.hash;
        self.last_time = Some(checked.time);
        self.last_leaf = checked.leaf;
        self.frontier.push(checked.leaf, completed);
        self.next_seq += 1;
        Ok(())
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

    /// [`ChainVerifier::push`], with the entry after this one (if there is one) to say which of
    /// the two was altered when this entry's `prevhash` does not match: if `next` records this
    /// entry's hash, this entry is as written and the one before it was changed.
    ///
    /// # Errors
    /// As [`ChainVerifier::push`], at the seq of the altered entry.
    pub fn push_located(
        &mut self,
        bytes: &[u8],
        next: Option<&[u8]>,
    ) -> Result<Entry, IntegrityProblem> {
        let seq = self.next_seq;
        let hashed =
            Hashed::of(bytes).map_err(|e| problem(seq, format!("malformed entry: {e}")))?;
        let (hash, breaks) = (
            hashed.hash,
            seq > 0 && hashed.entry.prev_hash != self.last_hash,
        );
        self.link(hashed, |_| {}).map_err(|problem| {
            let confirmed = next
                .and_then(|n| Hashed::of(n).ok())
                .is_some_and(|n| n.entry.prev_hash == hash);
            if breaks && confirmed && problem.seq == seq && problem.reason.starts_with("prevhash") {
                altered_before(&problem)
            } else {
                problem
            }
        })
    }

    /// Where it stands, to [`ChainVerifier::resume`] later (a monitor between runs); `None`
    /// before the first entry.
    pub fn position(&self) -> Option<ChainPosition> {
        Some(ChainPosition {
            origin: self.origin.clone()?,
            size: self.next_seq,
            last_hash: self.last_hash,
            last_leaf: self.last_leaf,
            last_time_micros: self.last_time?.unix_micros(),
            right_edge: self.frontier.edge().to_vec(),
        })
    }

    /// A verifier that goes on from `position`, expecting entry `position.size` next.
    ///
    /// # Errors
    /// When the position's right edge does not fit its size.
    pub fn resume(position: ChainPosition) -> Result<Self, String> {
        let frontier = Frontier::from_edge(position.size, position.right_edge)
            .ok_or("the right edge does not fit the size")?;
        Ok(Self {
            origin: Some(position.origin),
            next_seq: position.size,
            last_hash: position.last_hash,
            last_leaf: position.last_leaf,
            last_time: Some(Timestamp::from_unix_micros(position.last_time_micros)),
            frontier,
        })
    }
}

/// Entry `n` (in `problem`) does not link to entry `n − 1`, and entry `n + 1` confirms entry `n`:
/// so entry `n − 1` is the one altered, and the problem is reported there.
pub fn altered_before(problem: &IntegrityProblem) -> IntegrityProblem {
    let altered = problem.seq.saturating_sub(1);
    IntegrityProblem {
        seq: altered,
        reason: format!(
            "entry {altered} was altered: its hash is not the prevhash entry {} records, and entry {} confirms entry {}",
            problem.seq,
            problem.seq + 1,
            problem.seq
        ),
    }
}

/// Where a [`ChainVerifier`] stands: what it needs to check the next entry and extend the root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChainPosition {
    /// The log's origin.
    pub origin: String,
    /// Entries checked.
    pub size: u64,
    /// The last entry's hash (the next one's `prevhash`).
    pub last_hash: Digest,
    /// The last entry's Merkle leaf hash.
    pub last_leaf: Digest,
    /// The last entry's time, in microseconds since the epoch.
    pub last_time_micros: i64,
    /// The Merkle tree's right edge (see [`Frontier::edge`]).
    pub right_edge: Vec<Option<Digest>>,
}

/// What checking a stored entry on its own established, and what linking it to the entry
/// before it needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckedEntry {
    /// The seq the entry says it has.
    pub(crate) seq: u64,
    /// Its `prevhash`.
    pub(crate) prev_hash: Digest,
    /// Its time.
    pub(crate) time: Timestamp,
    /// SHA-256 of its bytes.
    pub(crate) hash: Digest,
    /// Its Merkle leaf hash.
    pub(crate) leaf: Digest,
}

/// Checks one stored entry without its neighbours: it is the entry that belongs at `seq`
/// (its position in its chunk), well-formed, from the log's `origin`, and exactly as its chunk's
/// index record describes it (`indexed`). Shared by the tail check on open and by
/// [`verify_store`], so both name the same seq for the same damage. It decodes the header only,
/// borrowed from the bytes: nothing of the entry is kept but what linking needs.
pub(crate) fn check_in_chunk(
    seq: u64,
    bytes: &[u8],
    indexed: Option<&IndexedEntry<'_>>,
    origin: &str,
) -> Result<CheckedEntry, IntegrityProblem> {
    let entry =
        EntryHeader::parse(bytes).map_err(|e| problem(seq, format!("malformed entry: {e}")))?;
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
    let leaf = merkle::leaf_hash(bytes);
    if indexed.leaf != leaf {
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
    check_origin(seq, &entry.source, origin)?;
    Ok(CheckedEntry {
        seq,
        prev_hash: entry.prev_hash,
        time: entry.time,
        hash: Digest::of(bytes),
        leaf,
    })
}

fn check_origin(seq: u64, source: &str, origin: &str) -> Result<(), IntegrityProblem> {
    if source != origin {
        return Err(problem(
            seq,
            format!("source {source:?} is not the log's origin {origin:?}"),
        ));
    }
    Ok(())
}

/// Checks that the entry links to the entry before it, whose hash is `prev_hash`.
pub(crate) fn check_link(entry: &CheckedEntry, prev_hash: &Digest) -> Result<(), IntegrityProblem> {
    if entry.prev_hash != *prev_hash {
        return Err(problem(
            entry.seq,
            format!(
                "prevhash {} does not match the previous entry's hash {prev_hash}",
                entry.prev_hash
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
    chunks: Records,
    indexes: Records,
    next_seq: u64,
    done: bool,
}

impl PairedChunks {
    pub(crate) fn from(store: &Store, from: u64) -> Self {
        Self::between(store, from, u64::MAX)
    }

    /// The chunks starting from `from` up to (not including) seq `end`: on a store other nodes
    /// write to, the chunks and the index records are read at different moments, and what was
    /// committed past the head a reader knows of is not its to pair.
    pub(crate) fn between(store: &Store, from: u64, end: u64) -> Self {
        Self {
            chunks: store.range(keys::CHUNK, from..end),
            indexes: store.range(keys::CHUNK_INDEX, from..end),
            next_seq: from,
            done: false,
        }
    }

    /// [`PairedChunks::from`] on sled (anything past the head is damage to report), and
    /// [`PairedChunks::between`] up to `size` on PostgreSQL.
    pub(crate) fn up_to_head(store: &Store, from: u64, size: u64) -> Self {
        match store.postgres() {
            Some(_) => Self::between(store, from, size),
            None => Self::from(store, from),
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
    progress: impl FnMut(u64),
) -> Result<StoreReport, VerifyStoreError> {
    let store = log.store();
    let origin = log.origin();
    let index_problem = log.index_problem()?;
    let schedule = verifier
        .map(|pinned| key_schedule(log, pinned))
        .transpose()?;
    let verifier = schedule.as_ref();
    // Three stages, overlapped. One thread reads the store a round at a time; the checkers
    // take the rounds as they come, whichever is free, and check each entry on its own
    // (parsing, hashing, comparing with the index records: most of the work); this thread
    // links the checked rounds in seq order, so the first problem reported is the first in seq
    // order. A round is read only with a permit, which the linker hands back once it has linked
    // a round, so at most `ROUNDS_IN_FLIGHT_PER_CHECKER` rounds per checker are in memory
    // however unevenly the checkers progress.
    let checkers = worker_threads();
    std::thread::scope(|scope| {
        let in_flight = checkers * ROUNDS_IN_FLIGHT_PER_CHECKER;
        let (permits, permit) = std::sync::mpsc::sync_channel::<()>(in_flight);
        for _ in 0..in_flight {
            permits.send(()).expect("room for every permit");
        }
        let (to_checkers, read_rounds) = std::sync::mpsc::sync_channel::<(u64, ReadRound)>(1);
        let (checked, checked_rounds) = std::sync::mpsc::sync_channel(checkers);
        // Shared, and dropped with the last checker, so that the reader stops then too.
        let read_rounds = std::sync::Arc::new(std::sync::Mutex::new(read_rounds));
        for _ in 0..checkers {
            let (read_rounds, checked) = (std::sync::Arc::clone(&read_rounds), checked.clone());
            scope.spawn(move || loop {
                // Held while waiting for the reader: the other checkers are busy or waiting too.
                let next = read_rounds.lock().expect("no checker panics").recv();
                let Ok((number, round)) = next else { return };
                if checked
                    .send((number, round.check(origin, verifier)))
                    .is_err()
                {
                    return;
                }
            });
        }
        drop((checked, read_rounds));
        let head = log.head().size;
        scope.spawn(move || read_store_in_rounds((store, head), &permit, &to_checkers));
        link_rounds(
            &checked_rounds,
            &permits,
            store,
            origin,
            index_problem,
            progress,
        )
    })
}

/// The keys that sign the log's checkpoints, from the pinned one and the rotation entries (read
/// through the stream index; the walk then checks those entries like every other).
fn key_schedule(log: &Log, pinned: &NoteVerifier) -> Result<KeySchedule, VerifyStoreError> {
    let mut schedule = KeySchedule::new(pinned.clone());
    let mut version = 0u64;
    loop {
        let page = log.read_stream(
            rotation::SUBJECT,
            version,
            crate::limits::READ_PAGE_ENTRIES_MAX,
        )?;
        if page.is_empty() {
            break;
        }
        version += page.len() as u64;
        for entry in &page {
            schedule
                .follow(entry)
                .map_err(|reason| problem(entry.seq, reason))?;
        }
    }
    if !schedule.anchored() {
        return Err(problem(
            0,
            format!("the key {pinned} is none of the keys this log's rotations chain"),
        )
        .into());
    }
    Ok(schedule)
}

/// How many rounds of [`verify_store`] per checker may be read and not yet linked.
const ROUNDS_IN_FLIGHT_PER_CHECKER: usize = 3;

/// Entries per round of [`verify_store`]: small enough that the rounds share out evenly over
/// the checkers (and the pipeline fills fast), large enough that handing one over costs nothing.
const VERIFY_ROUND_ENTRIES: usize = 1024;

/// A round of [`verify_store`] as read: consecutive stored chunks and the signed checkpoints
/// for the sizes they reach.
struct ReadRound {
    chunks: Vec<StoredChunk>,
    checkpoints: Vec<(u64, sled::IVec)>,
    /// Why reading stopped after this round (reported once its entries are linked).
    stop: Option<VerifyStoreError>,
    /// No round follows.
    last: bool,
}

/// A round with each entry and checkpoint checked on its own.
struct CheckedRound {
    chunks: Vec<StoredChunk>,
    /// One result per entry of `chunks`, in seq order.
    entries: Vec<Result<CheckedEntry, IntegrityProblem>>,
    /// The checkpoints opened and their signatures checked. A busy log signs one per commit (a
    /// simulated 1.4M-entry history holds 966k), so this is checkers' work too; only the
    /// comparison with the recomputed root is left to the linking.
    checkpoints: Vec<(u64, Result<Checkpoint, IntegrityProblem>)>,
    stop: Option<VerifyStoreError>,
    last: bool,
}

impl ReadRound {
    fn check(self, origin: &str, verifier: Option<&KeySchedule>) -> CheckedRound {
        let mut entries = Vec::with_capacity(VERIFY_ROUND_ENTRIES);
        for chunk in &self.chunks {
            let index = chunk.decode_index();
            for (k, (seq, bytes)) in chunk.entries().enumerate() {
                let indexed = index.as_ref().ok().and_then(|i| i.entries.get(k));
                entries.push(check_in_chunk(seq, bytes, indexed, origin));
            }
        }
        let checkpoints = self
            .checkpoints
            .iter()
            .map(|(size, note)| {
                let key = verifier.map(|schedule| schedule.key_for(*size));
                let opened = open_checkpoint(&String::from_utf8_lossy(note), *size, key);
                (*size, opened)
            })
            .collect();
        CheckedRound {
            chunks: self.chunks,
            entries,
            checkpoints,
            stop: self.stop,
            last: self.last,
        }
    }
}

/// The first stage of [`verify_store`]: reads the store a round at a time, numbering the rounds
/// for the checkers, until the store ends, reading fails, or the checkers stop listening.
/// On PostgreSQL it stops at the log handle's `head` (other nodes may be writing past it).
fn read_store_in_rounds(
    (store, head): (&Store, u64),
    permit: &std::sync::mpsc::Receiver<()>,
    to_checkers: &std::sync::mpsc::SyncSender<(u64, ReadRound)>,
) {
    let mut stored_chunks = PairedChunks::up_to_head(store, 0, head);
    let checkpoints_end = if store.postgres().is_some() {
        head
    } else {
        u64::MAX
    };
    let mut checkpoints = store.range(keys::CHECKPOINT, ..=checkpoints_end).peekable();
    let mut round_start = 0u64;
    for number in 0.. {
        if permit.recv().is_err() {
            return; // The linker has stopped.
        }
        let mut round = ReadRound {
            chunks: Vec::new(),
            checkpoints: Vec::new(),
            stop: None,
            last: false,
        };
        let mut entries_in_round = 0usize;
        while entries_in_round < VERIFY_ROUND_ENTRIES {
            match stored_chunks.next() {
                Some(Ok(paired)) => {
                    entries_in_round += paired.len();
                    round.chunks.push(paired);
                }
                Some(Err(ChunkError::Problem(problem))) => {
                    round.stop = Some(problem.into());
                    break;
                }
                Some(Err(ChunkError::Read(e))) => {
                    round.stop = Some(ReadError::from(e).into());
                    break;
                }
                None => {
                    round.last = true;
                    break;
                }
            }
        }
        round.last |= round.stop.is_some();
        let round_end = round_start + entries_in_round as u64;
        loop {
            let size = match checkpoints.peek() {
                None => break,
                Some(Ok((key, _))) => keys::key_number(key, keys::CHECKPOINT),
                Some(Err(_)) => Some(round_start),
            };
            let stop = match size {
                Some(size) if size > round_end => break,
                Some(size) => match checkpoints.next().expect("peeked") {
                    Ok((_, note)) => {
                        round.checkpoints.push((size, note));
                        continue;
                    }
                    Err(e) => ReadError::from(e).into(),
                },
                None => problem(round_start, "malformed checkpoint key").into(),
            };
            // A problem found reading chunks comes first: it is at an earlier seq.
            round.stop.get_or_insert(stop);
            round.last = true;
            break;
        }
        let last = round.last;
        if to_checkers.send((number, round)).is_err() || last {
            return;
        }
        round_start = round_end;
    }
}

/// The last stage of [`verify_store`]: links the checked rounds in seq order (`prevhash` chain, time order, Merkle tree, stream versions), compares
/// the stored Merkle nodes and signed checkpoints with the recomputed ones, and gives the verdict.
fn link_rounds(
    checked_rounds: &std::sync::mpsc::Receiver<(u64, CheckedRound)>,
    permits: &std::sync::mpsc::SyncSender<()>,
    store: &Store,
    origin: &str,
    index_problem: Option<&(u64, String)>,
    mut progress: impl FnMut(u64),
) -> Result<StoreReport, VerifyStoreError> {
    let mut chain = ChainVerifier::with_origin(origin);
    let mut checked_checkpoints = 0u64;
    // The last version seen of every stream: each entry must be its stream's next version.
    let mut stream_versions: std::collections::HashMap<String, u64> =
        std::collections::HashMap::new();
    // Rounds come back in the order they were finished; each waits here for its turn.
    let mut finished_early = std::collections::BTreeMap::new();
    for number in 0u64.. {
        let round = loop {
            if let Some(round) = finished_early.remove(&number) {
                break round;
            }
            let (finished, round) = checked_rounds
                .recv()
                .expect("the checkers hand back every round read, the last one marked");
            finished_early.insert(finished, round);
        };
        let mut checked = round.entries.into_iter();
        let mut opened = round.checkpoints.into_iter().peekable();
        for chunk in &round.chunks {
            let index = chunk.decode_index()?;
            let mut recorded_nodes = index.nodes;
            for (k, _) in chunk.entries().enumerate() {
                let seq = chain.size();
                let entry = checked.next().expect("one result per entry")?;
                // `check_in_chunk` found the index record to describe this entry.
                let indexed = &index.entries[k];
                let mut nodes_match = true;
                chain.link_checked(&entry, |node| {
                    if node.level > 0 {
                        match recorded_nodes.split_first_chunk::<32>() {
                            Some((recorded, rest)) if *recorded == node.hash.0 => {
                                recorded_nodes = rest;
                            }
                            _ => nodes_match = false,
                        }
                    }
                })?;
                if !nodes_match {
                    return Err(problem(
                        seq,
                        "the Merkle nodes recorded for this leaf differ from the recomputed ones",
                    )
                    .into());
                }
                let expected_version = match stream_versions.get_mut(indexed.subject) {
                    Some(last) => {
                        *last += 1;
                        *last
                    }
                    None => {
                        stream_versions.insert(indexed.subject.to_owned(), 0);
                        0
                    }
                };
                if indexed.stream_version != expected_version {
                    return Err(problem(
                        seq,
                        format!(
                            "stream {} continues at version {}, but this entry says {}",
                            indexed.subject, expected_version, indexed.stream_version
                        ),
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
            chunk.check_count(&index)?;
        }
        if let Some(stop) = round.stop {
            return Err(stop);
        }
        if round.last {
            break;
        }
        // The reader may have finished already; then the permit is not needed.
        let _ = permits.send(());
    }
    let size = chain.size();
    progress(size);
    if let Some((at, reason)) = index_problem {
        return Err(problem(*at, reason.clone()).into());
    }
    let beyond = store.range(keys::CHECKPOINT, size + 1..).next();
    if let Some(item) = beyond {
        let (key, _) = item.map_err(ReadError::from)?;
        let signed = keys::key_number(&key, keys::CHECKPOINT).unwrap_or(u64::MAX);
        // On PostgreSQL it may be another node's later commit, not a missing tail.
        if !store.committed_elsewhere(signed) {
            return Err(problem(
                size,
                format!(
                    "entries from here on are missing: a signed checkpoint covers {signed} entries"
                ),
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

/// How many threads to spread per-entry checking over: one per core (at most 8; 1 if the
/// platform cannot say). Verification and the auditor's readers share it.
pub fn worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// `f(index, item)` for every item, the slice split into `threads` contiguous parts each mapped
/// on its own scoped thread; results in the items' order. The auditor parses a store's entries
/// on every core with it.
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
