//! The append-only, hash-chained log over sled (or PostgreSQL: see [`store`]).
//!
//! One writer thread owns the head (size, last hash, last time, Merkle frontier). Callers send it
//! append requests; it takes every request waiting (up to [`GROUP_ENTRIES_MAX`] entries), checks
//! each one against the head and the requests before it in the group, writes all accepted entries
//! as chunks with their index records (ids, streams, Merkle nodes; see [`keys`]) and a signed
//! checkpoint in one atomic commit (sled: one `apply_batch`, made durable by `Db::flush` and then
//! `fdatasync` of sled's files, because sled 0.34's flush stops at `sync_file_range`;
//! PostgreSQL: one transaction), and only then answers.
//! Readers never see past the durable head.
//!
//! The id and stream indexes are held in memory ([`LogIndex`]), rebuilt on open from the chunks'
//! index records, which are compact and read without touching an entry.

use crate::checkpoint::{Checkpoint, NoteSigner, NoteVerifier};
use crate::entry::{
    Digest, Entry, EventDraft, ExpectedVersion, InvalidDraft, MalformedEntry, Position,
    PreparedDraft,
};
use crate::keys::{self, ChunkIndex, ChunkIndexWriter, IndexedEntry};
use crate::limits::{
    APPEND_ENTRIES_MAX, GROUP_ENTRIES_MAX, READ_PAGE_ENTRIES_MAX, TAIL_VERIFY_ENTRIES,
    URI_BYTES_MAX, WRITER_QUEUE_REQUESTS_MAX,
};
use crate::merkle::{self, Frontier, NodeSource, ProofRequestError};
use crate::time::{Clock, SystemClock, Timestamp};
use index::{load_index, IndexCell, LoadedIndex, LogIndex};
use open::{check_tail, random_origin};
pub use open::{stored_origin, sync_store_directory};
use store::{Store, StoreLocation};
use writer::{DiskSync, Writer};

mod cosigned;
mod follow;
mod head_mark;
mod index;
pub mod migrate;
mod open;
mod snapshots;
pub mod store;
mod tiles;
mod writer;
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

/// How an acknowledged append is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Acknowledge after `Db::flush()` and `fdatasync` of sled's files: survives power loss.
    #[default]
    Fsync,
    /// Acknowledge after `Db::flush()` only (sled's `sync_file_range`): survives a process crash,
    /// but acknowledged entries may be lost if the machine loses power before the disk's write
    /// cache drains. Opt-in; for benchmarks and disposable simulations.
    FlushOnlyMayLoseOnPowerFailure,
}

/// How to open a log.
#[derive(Clone)]
pub struct LogConfig {
    /// The log's origin (checkpoint origin line and every entry's `source`). Unique per log.
    /// `None` keeps the stored one, or makes `trustledger.local/log/<random>` for a new log.
    pub origin: Option<String>,
    /// Durability of acknowledged appends.
    pub durability: Durability,
    /// Where entry times come from.
    pub clock: Arc<dyn Clock>,
    /// Key that signs a checkpoint after every commit. `None`: no checkpoints are written.
    pub signer: Option<NoteSigner>,
    /// The most memory sled's page cache may hold. `None` keeps sled's default (1 GiB), which
    /// suits a server. A command that reads the log once, front to back, needs little: see
    /// [`READ_ONCE_CACHE_BYTES`].
    pub cache_bytes: Option<u64>,
}

/// A page cache for commands that read the log once, in order (verify, export, audit,
/// backtest): pages are not revisited, so a large cache only holds memory. With sled's default
/// the RSS of `audit --data` grew with the store.
pub const READ_ONCE_CACHE_BYTES: u64 = 8 * 1024 * 1024;

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            origin: None,
            durability: Durability::Fsync,
            clock: Arc::new(SystemClock),
            signer: None,
            cache_bytes: None,
        }
    }
}

impl std::fmt::Debug for LogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogConfig")
            .field("origin", &self.origin)
            .field("durability", &self.durability)
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

/// Why the log could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenLogError {
    /// sled failed (IO, lock held by another process, corruption sled detected).
    #[error("storage: {0}")]
    Storage(#[from] sled::Error),
    /// IO outside sled (the fsync handles).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The configured origin differs from the one the log was created with.
    #[error("this log's origin is {stored:?}; refusing to reopen it as {configured:?}")]
    OriginMismatch {
        /// Stored origin.
        stored: String,
        /// Configured origin.
        configured: String,
    },
    /// The configured origin is unusable.
    #[error("invalid origin {0:?}: 1–256 printable characters without spaces")]
    InvalidOrigin(String),
    /// The store was written by an earlier trustledger in storage layout 1 (a key per entry).
    #[error(
        "this store uses storage layout 1 (one sled key per entry), which this trustledger no \
         longer reads: export it with the trustledger that wrote it (`trustledger export`) and \
         keep the export, whose format has not changed"
    )]
    Layout1,
    /// The PostgreSQL store could not be opened (unreachable, unsafe settings, other schema).
    #[error("{0}")]
    Database(String),
}

/// Why an append was refused. Nothing of the refused request was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The request carried no entries.
    #[error("nothing to append")]
    Empty,
    /// The request carried more entries than one atomic append may.
    #[error("{count} entries in one append, over the limit of {max}")]
    TooMany {
        /// Entries in the request.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A draft is invalid.
    #[error("entry {index} of the append: {source}")]
    Invalid {
        /// Position of the draft in the request.
        index: usize,
        /// What is wrong.
        source: InvalidDraft,
    },
    /// The stream is not at the expected version.
    #[error("stream {subject:?} is at {actual:?}, not the expected {expected:?}")]
    VersionConflict {
        /// The subject.
        subject: String,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// The stream's last `streamversion`, `None` if the stream is empty.
        actual: Option<u64>,
    },
    /// The event id exists with different content.
    #[error("event id {id} already exists at seq {seq} with different content")]
    IdConflict {
        /// The event id.
        id: Uuid,
        /// Where it is.
        seq: u64,
    },
    /// The log failed its integrity check on open and refuses writes until repaired.
    #[error("the log refuses writes: integrity check failed at seq {seq}: {reason}")]
    ChainBroken {
        /// First bad seq.
        seq: u64,
        /// What is wrong there.
        reason: String,
    },
    /// Writing or syncing failed; the log refuses further writes until reopened.
    #[error("storage failure, the log refuses writes until reopened: {0}")]
    Storage(String),
    /// The database did not answer (PostgreSQL down or unreachable): the append may or may not
    /// have landed, and a retry with the same ids gets the original answer once it is back.
    #[error("the store is unavailable, retry: {0}")]
    Unavailable(String),
    /// Another writer extended the log (several nodes on one database): nothing was written,
    /// and this handle takes no appends until it has followed ([`Log::follow`]).
    #[error("fenced: {0}")]
    Fenced(String),
    /// The log is closed.
    #[error("the log is closed")]
    Closed,
    /// A sequenced append expected the log to end elsewhere (an earlier request it was decided
    /// after was refused or failed): nothing of it was written.
    #[error("expected the log to hold {expected} entries ending in {expected_hash}, but it holds {actual}")]
    HeadMoved {
        /// Size the caller decided against.
        expected: u64,
        /// The last hash the caller decided against.
        expected_hash: Digest,
        /// The size the writer found.
        actual: u64,
    },
    /// A sequenced append's entry came out differently from the one its caller built and folded.
    #[error("entry {seq} was built as {written}, not the {expected} its caller folded")]
    Diverged {
        /// Its seq.
        seq: u64,
        /// The hash the caller built.
        expected: Digest,
        /// The hash the writer built.
        written: Digest,
    },
}

/// Where an appended (or already present) entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Its seq.
    pub seq: u64,
    /// Its hash.
    pub hash: Digest,
    /// Its position in its stream.
    pub stream_version: u64,
    /// Its time.
    pub time: Timestamp,
    /// True if the id was already in the log with the same content (nothing new was written).
    pub duplicate: bool,
}

/// Counters of the writer's commits since the log was opened (for metrics).
#[derive(Debug, Default)]
pub struct CommitStats {
    commits: std::sync::atomic::AtomicU64,
    entries: std::sync::atomic::AtomicU64,
    micros: std::sync::atomic::AtomicU64,
    last_batch: std::sync::atomic::AtomicU64,
}

/// A reading of [`CommitStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitStatsSnapshot {
    /// Group commits.
    pub commits: u64,
    /// Entries written by them.
    pub entries: u64,
    /// Total time spent writing and syncing them, in microseconds.
    pub micros: u64,
    /// Entries in the last group.
    pub last_batch: u64,
}

impl CommitStats {
    fn record(&self, entries: u64, micros: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.commits.fetch_add(1, Relaxed);
        self.entries.fetch_add(entries, Relaxed);
        self.micros.fetch_add(micros, Relaxed);
        self.last_batch.store(entries, Relaxed);
    }

    fn read(&self) -> CommitStatsSnapshot {
        use std::sync::atomic::Ordering::Relaxed;
        CommitStatsSnapshot {
            commits: self.commits.load(Relaxed),
            entries: self.entries.load(Relaxed),
            micros: self.micros.load(Relaxed),
            last_batch: self.last_batch.load(Relaxed),
        }
    }
}

/// The durable head of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Number of entries.
    pub size: u64,
    /// Hash of the last entry ([`Digest::ZERO`] if empty).
    pub last_hash: Digest,
    /// Merkle root of all entries.
    pub root: Digest,
    /// Time of the last entry.
    pub last_time: Option<Timestamp>,
}

/// A stored entry's seq and its bytes, as read.
pub type StoredBytes = (u64, Arc<[u8]>);

/// An error reading the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// sled failed.
    #[error("storage: {0}")]
    Storage(#[from] sled::Error),
    /// A snapshot file could not be read or written.
    #[error("snapshot file: {0}")]
    SnapshotIo(#[from] std::io::Error),
    /// A stored entry is malformed (corruption).
    #[error("entry at seq {seq} is malformed: {source}")]
    Corrupt {
        /// Its seq.
        seq: u64,
        /// What is wrong.
        source: MalformedEntry,
    },
    /// A stored node or index is missing or malformed (corruption).
    #[error("index corrupt: {0}")]
    IndexCorrupt(String),
    /// A proof request is out of range.
    #[error(transparent)]
    Proof(#[from] ProofRequestError),
}

/// What the writer thread is sent.
pub(crate) enum Message {
    /// Append (see [`Request`]).
    Append(Request),
    /// Take in what other writers committed (see [`Log::follow`]); answers the new size.
    Follow(oneshot::Sender<Result<u64, String>>),
}

pub(crate) struct Request {
    /// Checked and encoded by the caller ([`prepare_request`]).
    pub(crate) drafts: Vec<PreparedDraft>,
    /// The time the caller decided at (stamped if not before the last entry), else the clock's.
    pub(crate) at: Option<Timestamp>,
    /// For a sequenced append: where it must land and what it must write.
    pub(crate) expect: Option<Expectation>,
    pub(crate) reply: oneshot::Sender<Result<Vec<Appended>, AppendError>>,
}

/// What a sequenced append (see [`crate::sequenced`]) must find and write: a compare and set on
/// the head, then exactly the entries its caller built.
pub(crate) struct Expectation {
    /// The size and last hash it was decided after.
    pub(crate) after: (u64, Digest),
    /// The hash of each entry, in order, as the caller built it.
    pub(crate) hashes: Vec<Digest>,
}

struct Shared {
    stats: Arc<CommitStats>,
    store: Store,
    /// Where projection snapshots are kept, as files, in a sled store (see [`Log::put_snapshot`]).
    snapshot_dir: std::path::PathBuf,
    origin: String,
    verifier: Option<NoteVerifier>,
    head: watch::Receiver<Head>,
    /// Why the tail check on open refused writes, if it did.
    tail_refusal: Option<AppendError>,
    /// The first problem of the tail check and the index rebuild (known once the latter ends).
    refusal: std::sync::OnceLock<Option<AppendError>>,
    sender: Mutex<Option<mpsc::Sender<Message>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Upper Merkle nodes read for proofs (never changed once written, so always valid).
    node_cache: NodeCache,
    /// The id and stream indexes (the writer adds each group once it is durable).
    index: Arc<IndexCell>,
    /// The thread rebuilding them on open.
    index_loader: Mutex<Option<JoinHandle<()>>>,
    /// Set by tests to make the writer's next commit fail as a storage error would.
    #[cfg(feature = "fault-injection")]
    fail_next_commit: Arc<std::sync::atomic::AtomicBool>,
}

/// A bounded cache of complete Merkle subtrees at level ≥ [`NODE_CACHE_LEVEL_MIN`]. Every proof
/// touches the same few upper nodes; there are only n / 2^level of them. When full it stops
/// admitting (complete nodes never change, so nothing in it is ever stale).
#[derive(Default)]
struct NodeCache(std::sync::RwLock<HashMap<(u8, u64), Digest>>);

/// Lowest level cached.
const NODE_CACHE_LEVEL_MIN: u8 = 4;
/// Most nodes cached (32 MiB or so).
const NODE_CACHE_NODES_MAX: usize = 1 << 19;

/// Reads complete Merkle subtrees through the cache.
struct CachedNodes<'a> {
    store: &'a Store,
    cache: &'a NodeCache,
}

impl NodeSource for CachedNodes<'_> {
    type Error = ReadError;
    fn node(&self, level: u8, index: u64) -> Result<Digest, ReadError> {
        if level < NODE_CACHE_LEVEL_MIN {
            return StoredNodes(self.store).node(level, index);
        }
        if let Some(hit) = self
            .cache
            .0
            .read()
            .ok()
            .and_then(|c| c.get(&(level, index)).copied())
        {
            return Ok(hit);
        }
        let node = StoredNodes(self.store).node(level, index)?;
        if let Ok(mut cache) = self.cache.0.write() {
            if cache.len() < NODE_CACHE_NODES_MAX {
                cache.insert((level, index), node);
            }
        }
        Ok(node)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
    fn shutdown(&self) {
        // Closing the channel lets the writer finish every queued request, then exit.
        drop(self.sender.lock().expect("sender lock").take());
        if let Some(handle) = self.writer.lock().expect("writer lock").take() {
            let _ = handle.join();
        }
        // It holds the store open until it ends.
        if let Some(handle) = self.index_loader.lock().expect("loader lock").take() {
            let _ = handle.join();
        }
    }
}

/// A handle to an open log. Cheap to clone; the writer stops when the last handle is dropped
/// (after finishing every queued append) or at [`Log::close`].
#[derive(Clone)]
pub struct Log {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("origin", &self.shared.origin)
            .field("head", &self.head())
            .finish()
    }
}

/// Reads complete Merkle subtrees from the store.
pub(crate) struct StoredNodes<'a>(pub(crate) &'a Store);

impl NodeSource for StoredNodes<'_> {
    type Error = ReadError;
    fn node(&self, level: u8, index: u64) -> Result<Digest, ReadError> {
        let missing = || {
            ReadError::IndexCorrupt(format!(
                "Merkle node level {level} index {index} is missing"
            ))
        };
        // The subtree (level, index) was completed by its last leaf, whose chunk's index record
        // holds its leaf hash and the nodes it completed.
        let last_leaf = ((index + 1) << level) - 1;
        let (first, record) =
            chunk_containing(self.0, keys::CHUNK_INDEX, last_leaf)?.ok_or_else(missing)?;
        let chunk = ChunkIndex::decode(first, &record).map_err(ReadError::IndexCorrupt)?;
        if last_leaf >= chunk.end() {
            return Err(missing());
        }
        if level == 0 {
            return Ok(chunk.entries[(last_leaf - first) as usize].leaf);
        }
        let at = usize::from(level - 1) * 32;
        let bytes: [u8; 32] = chunk
            .nodes_of(last_leaf)
            .get(at..at + 32)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(missing)?;
        Ok(Digest(bytes))
    }
}

/// The chunk (or index record, by `prefix`) whose first seq is the greatest at or below `seq`:
/// the only one that can hold `seq`.
fn chunk_containing(
    store: &Store,
    prefix: u8,
    seq: u64,
) -> Result<Option<(u64, sled::IVec)>, sled::Error> {
    match store.range(prefix, ..=seq).next_back() {
        None => Ok(None),
        Some(item) => {
            let (key, value) = item?;
            Ok(keys::key_number(&key, prefix).map(|first| (first, value)))
        }
    }
}

/// The stored bytes of entry `seq`, as a slice of its chunk (no copy), if the store holds it.
fn stored_entry(store: &Store, seq: u64) -> Result<Option<sled::IVec>, sled::Error> {
    let Some((first, chunk)) = chunk_containing(store, keys::CHUNK, seq)? else {
        return Ok(None);
    };
    let wanted = usize::try_from(seq - first).unwrap_or(usize::MAX);
    let range = keys::chunk_entry_ranges(&chunk).nth(wanted);
    Ok(range.map(|range| chunk.subslice(range.start, range.len())))
}

/// Checks and encodes a request's drafts on the caller's thread (see [`EventDraft::prepare`]):
/// everything about an entry that does not depend on the log's state, so that the one writer
/// thread, which every append waits on, spends its time only on what must be serial.
pub(crate) fn prepare_request(drafts: Vec<EventDraft>) -> Result<Vec<PreparedDraft>, AppendError> {
    if drafts.is_empty() {
        return Err(AppendError::Empty);
    }
    if drafts.len() > APPEND_ENTRIES_MAX {
        return Err(AppendError::TooMany {
            count: drafts.len(),
            max: APPEND_ENTRIES_MAX,
        });
    }
    drafts
        .into_iter()
        .enumerate()
        .map(|(index, draft)| {
            draft
                .prepare()
                .map_err(|source| AppendError::Invalid { index, source })
        })
        .collect()
}

/// The directory, inside the store's, that holds projection snapshots.
const SNAPSHOT_DIR: &str = "projection-snapshots";

impl Log {
    /// Opens (or creates) the log in directory `path`, re-verifying its tail.
    ///
    /// A log whose tail fails verification still opens, for reading and full verification, but
    /// every append is refused with [`AppendError::ChainBroken`] naming the first bad seq.
    ///
    /// # Errors
    /// [`OpenLogError`] if sled cannot open the directory or the origin does not match.
    pub fn open(path: impl AsRef<Path>, config: LogConfig) -> Result<Self, OpenLogError> {
        Self::open_with(
            &StoreLocation::Directory(path.as_ref().into()),
            config,
            true,
        )
    }

    /// Opens (or creates) the log wherever `location` says: a sled directory, or a PostgreSQL
    /// database (whose tables it creates). Otherwise as [`Log::open`]; several handles, in
    /// several processes, may open one database, and only one of them can extend a given head.
    ///
    /// # Errors
    /// As [`Log::open`]; [`OpenLogError::Database`] when PostgreSQL cannot hold the log.
    pub fn open_at(location: &StoreLocation, config: LogConfig) -> Result<Self, OpenLogError> {
        Self::open_with(location, config, true)
    }

    /// Opens a log whose writer skips Merkle maintenance (leaf hashing, subtree records,
    /// checkpoints), only to measure what that maintenance costs. Such a log has no proofs and
    /// fails full verification; the feature that compiles this is enabled by the benches alone.
    ///
    /// # Errors
    /// As [`Log::open`].
    #[cfg(feature = "bench-internals")]
    pub fn open_without_merkle_for_benchmarks(
        path: impl AsRef<Path>,
        config: LogConfig,
    ) -> Result<Self, OpenLogError> {
        Self::open_with(
            &StoreLocation::Directory(path.as_ref().into()),
            config,
            false,
        )
    }

    fn open_with(
        location: &StoreLocation,
        config: LogConfig,
        merkle_maintenance: bool,
    ) -> Result<Self, OpenLogError> {
        let (store, origin, mut disk, snapshot_dir) = match location {
            StoreLocation::Directory(path) => {
                let (store, origin, disk) =
                    open::open_sled(path, config.cache_bytes, config.origin)?;
                (store, origin, Some(disk), path.join(SNAPSHOT_DIR))
            }
            StoreLocation::Postgres(url) => {
                let (store, origin) = open::open_postgres(url, config.origin)?;
                (store, origin, None, PathBuf::new())
            }
        };
        // PostgreSQL's head row, read once: other nodes may commit past it while this opens.
        let head_row = match store.postgres() {
            Some(pg) => Some(pg.head().map_err(OpenLogError::Database)?),
            None => None,
        };
        let size = match (head_row, store.scan(keys::CHUNK).next_back()) {
            (Some((size, _)), _) => size,
            (None, None) => 0,
            (None, Some(item)) => {
                let (key, chunk) = item?;
                keys::key_number(&key, keys::CHUNK).map_or(0, |first| {
                    first + keys::chunk_entry_ranges(&chunk).count() as u64
                })
            }
        };
        let index = Arc::new(IndexCell::default());
        let index_loader = {
            let (store, index) = (store.clone(), Arc::clone(&index));
            std::thread::Builder::new()
                .name("trustledger-log-index".into())
                .spawn(move || {
                    let loaded = match load_index(&store, size) {
                        Ok((rebuilt, problem)) => LoadedIndex {
                            index: RwLock::new(rebuilt),
                            problem,
                            storage_error: None,
                        },
                        Err(e) => LoadedIndex {
                            index: RwLock::default(),
                            problem: None,
                            storage_error: Some(e.to_string()),
                        },
                    };
                    let _ = index.0.set(loaded);
                })?
        };
        let refusal = check_tail(&store, size, &origin)
            .and_then(|()| match (disk.as_mut(), head_row) {
                (Some(disk), _) => disk.mark.check(&store, size),
                (None, Some((_, hash))) => open::check_head_row(&store, size, hash),
                (None, None) => Ok(()),
            })
            .err()
            .map(|(seq, reason)| AppendError::ChainBroken { seq, reason });
        let (head, frontier) = if refusal.is_some() {
            (
                Head {
                    size,
                    last_hash: Digest::ZERO,
                    root: merkle::empty_root(),
                    last_time: None,
                },
                Frontier::default(),
            )
        } else {
            let frontier = Frontier::load(&StoredNodes(&store), size)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let last = if size == 0 {
                None
            } else {
                stored_entry(&store, size - 1)?
            };
            let last_entry = last
                .as_deref()
                .map(Entry::parse)
                .transpose()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let head = Head {
                size,
                last_hash: last.as_deref().map_or(Digest::ZERO, Digest::of),
                root: frontier.root(),
                last_time: last_entry.map(|e| e.time),
            };
            (head, frontier)
        };
        let (publish, head_rx) = watch::channel(head);
        let (sender, inbox) = mpsc::channel(WRITER_QUEUE_REQUESTS_MAX);
        let verifier = config.signer.as_ref().map(NoteSigner::verifier);
        let stats = Arc::new(CommitStats::default());
        #[cfg(feature = "fault-injection")]
        let fail_next_commit = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = Writer {
            store: store.clone(),
            uncertain: None,
            origin: origin.clone(),
            clock: config.clock,
            signer: config.signer,
            durability: config.durability,
            disk,
            head,
            frontier,
            publish,
            failed: refusal.as_ref().map(ToString::to_string),
            fenced: false,
            index: Arc::clone(&index),
            merkle_maintenance,
            stats: Arc::clone(&stats),
            #[cfg(feature = "fault-injection")]
            fail_next_commit: Arc::clone(&fail_next_commit),
        };
        let handle = std::thread::Builder::new()
            .name("trustledger-log-writer".into())
            .spawn(move || writer.run(inbox))?;
        Ok(Self {
            shared: Arc::new(Shared {
                store,
                snapshot_dir,
                origin,
                verifier,
                head: head_rx,
                tail_refusal: refusal,
                refusal: std::sync::OnceLock::new(),
                sender: Mutex::new(Some(sender)),
                writer: Mutex::new(Some(handle)),
                node_cache: NodeCache::default(),
                index,
                index_loader: Mutex::new(Some(index_loader)),
                #[cfg(feature = "fault-injection")]
                fail_next_commit,
                stats,
            }),
        })
    }

    /// A fresh origin for a new log that was given none (`trustledger.local/log/<random hex>`).
    pub fn new_origin() -> String {
        random_origin()
    }

    /// The log's origin: every entry's `source` and its checkpoints' first line.
    pub fn origin(&self) -> &str {
        &self.shared.origin
    }

    /// The verifier key of the configured signer, if any.
    pub fn verifier(&self) -> Option<&NoteVerifier> {
        self.shared.verifier.as_ref()
    }

    /// Why the log refuses writes, if it does: the first problem the tail check on open or the
    /// rebuilding of the indexes found (so this waits for the latter, as an append would).
    pub fn refusal(&self) -> Option<&AppendError> {
        self.shared
            .refusal
            .get_or_init(|| {
                let loaded = self.shared.index.wait();
                let from_index = loaded
                    .problem
                    .clone()
                    .map(|(seq, reason)| AppendError::ChainBroken { seq, reason })
                    .or_else(|| loaded.storage_error.clone().map(AppendError::Storage));
                // Both name the first bad seq they find; the lower one is the first problem.
                match (self.shared.tail_refusal.clone(), from_index) {
                    (
                        Some(AppendError::ChainBroken { seq: tail_seq, .. }),
                        Some(earlier @ AppendError::ChainBroken { seq, .. }),
                    ) if seq < tail_seq => Some(earlier),
                    (Some(tail), _) => Some(tail),
                    (None, from_index) => from_index,
                }
            })
            .as_ref()
    }

    /// The writer's commit counters since the log was opened.
    pub fn commit_stats(&self) -> CommitStatsSnapshot {
        self.shared.stats.read()
    }

    /// Makes the writer's next commit fail as a storage error would (nothing of it is written,
    /// and the writer refuses writes from then on, as after a real failure).
    #[cfg(feature = "fault-injection")]
    pub fn inject_commit_failure(&self) {
        self.shared
            .fail_next_commit
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The last version of `subject`'s stream among durable entries (`None`: no entry yet).
    /// Waits for the indexes to be rebuilt after open.
    ///
    /// # Errors
    /// If the indexes could not be rebuilt.
    pub fn stream_last_version(&self, subject: &str) -> Result<Option<u64>, ReadError> {
        Ok(self
            .shared
            .index
            .ready()?
            .read()
            .expect("index lock")
            .last_version(subject))
    }

    pub(crate) fn sender_for_sequenced(&self) -> Result<mpsc::Sender<Message>, AppendError> {
        self.sender()
    }

    /// The durable head.
    pub fn head(&self) -> Head {
        *self.shared.head.borrow()
    }

    /// A receiver that changes whenever the durable head moves.
    pub fn watch_head(&self) -> watch::Receiver<Head> {
        self.shared.head.clone()
    }

    fn sender(&self) -> Result<mpsc::Sender<Message>, AppendError> {
        if let Some(refusal) = self.refusal() {
            return Err(refusal.clone());
        }
        self.shared
            .sender
            .lock()
            .expect("sender lock")
            .clone()
            .ok_or(AppendError::Closed)
    }

    /// Appends `drafts` atomically (all or none) and returns once they are durable.
    ///
    /// # Errors
    /// [`AppendError`]; when one is returned nothing of this request was written.
    pub async fn append_batch(
        &self,
        drafts: Vec<EventDraft>,
    ) -> Result<Vec<Appended>, AppendError> {
        let drafts = prepare_request(drafts)?;
        let (reply, answer) = oneshot::channel();
        self.sender()?
            .send(Message::Append(Request {
                drafts,
                at: None,
                expect: None,
                reply,
            }))
            .await
            .map_err(|_| AppendError::Closed)?;
        answer.await.map_err(|_| AppendError::Closed)?
    }

    /// Appends one draft and returns once it is durable.
    ///
    /// # Errors
    /// As [`Log::append_batch`].
    pub async fn append(&self, draft: EventDraft) -> Result<Appended, AppendError> {
        Ok(self.append_batch(vec![draft]).await?.remove(0))
    }

    /// [`Log::append_batch`] for callers outside an async runtime.
    ///
    /// # Errors
    /// As [`Log::append_batch`].
    ///
    /// # Panics
    /// If called from inside an async runtime (use [`Log::append_batch`] there).
    pub fn append_batch_blocking(
        &self,
        drafts: Vec<EventDraft>,
    ) -> Result<Vec<Appended>, AppendError> {
        self.append_batch_at_blocking(drafts, None)
    }

    /// [`Log::append_batch_blocking`] stamping `at` (or the last entry's time, if later) instead of
    /// the clock's time: for a caller that decided at `at`, read from this log's clock, and must
    /// record exactly that time so that the decision can be re-derived from the entry alone.
    ///
    /// # Errors
    /// As [`Log::append_batch`].
    ///
    /// # Panics
    /// If called from inside an async runtime.
    pub fn append_batch_at_blocking(
        &self,
        drafts: Vec<EventDraft>,
        at: Option<Timestamp>,
    ) -> Result<Vec<Appended>, AppendError> {
        let drafts = prepare_request(drafts)?;
        let (reply, answer) = oneshot::channel();
        self.sender()?
            .blocking_send(Message::Append(Request {
                drafts,
                at,
                expect: None,
                reply,
            }))
            .map_err(|_| AppendError::Closed)?;
        answer.blocking_recv().map_err(|_| AppendError::Closed)?
    }

    /// [`Log::append`] for callers outside an async runtime.
    ///
    /// # Errors
    /// As [`Log::append_batch`].
    ///
    /// # Panics
    /// If called from inside an async runtime.
    pub fn append_blocking(&self, draft: EventDraft) -> Result<Appended, AppendError> {
        Ok(self.append_batch_blocking(vec![draft])?.remove(0))
    }

    /// Stops the writer after every queued append and flushes. Other handles see [`AppendError::Closed`].
    pub fn close(self) {
        self.shared.shutdown();
    }

    fn parse_at(seq: u64, bytes: &[u8]) -> Result<Entry, ReadError> {
        let entry = Entry::parse(bytes).map_err(|source| ReadError::Corrupt { seq, source })?;
        // Pair assertion on the read side: the key and the entry agree on the position.
        if entry.seq != seq {
            return Err(ReadError::IndexCorrupt(format!(
                "key seq {seq} holds an entry with seq {}",
                entry.seq
            )));
        }
        Ok(entry)
    }

    /// The entry at `seq`, if it is durable.
    ///
    /// # Errors
    /// [`ReadError`] on storage failure or corruption.
    pub fn get(&self, seq: u64) -> Result<Option<Entry>, ReadError> {
        if seq >= self.head().size {
            return Ok(None);
        }
        match stored_entry(&self.shared.store, seq)? {
            Some(bytes) => Self::parse_at(seq, &bytes).map(Some),
            None => Err(ReadError::IndexCorrupt(format!(
                "entry {seq} is missing below the head"
            ))),
        }
    }

    /// The raw stored bytes of durable entries from `from`, at most `limit` (≤ [`READ_PAGE_ENTRIES_MAX`]).
    ///
    /// # Errors
    /// [`ReadError`] on storage failure.
    pub fn read_bytes(&self, from: u64, limit: usize) -> Result<Vec<StoredBytes>, ReadError> {
        let end = self
            .head()
            .size
            .min(from.saturating_add(limit.min(READ_PAGE_ENTRIES_MAX) as u64));
        if from >= end {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(usize::try_from(end - from).unwrap_or(0));
        for item in self.iter_bytes_until(from, end) {
            let (seq, value) = item?;
            out.push((seq, Arc::from(value.as_ref())));
        }
        Ok(out)
    }

    /// Durable entries from `from`, at most `limit` (≤ [`READ_PAGE_ENTRIES_MAX`]), in seq order.
    ///
    /// # Errors
    /// [`ReadError`] on storage failure or corruption.
    pub fn read_range(&self, from: u64, limit: usize) -> Result<Vec<Entry>, ReadError> {
        self.read_bytes(from, limit)?
            .into_iter()
            .map(|(seq, bytes)| Self::parse_at(seq, &bytes))
            .collect()
    }

    /// Every durable entry's stored bytes from `from` on, in order, read lazily (for export and
    /// verification; memory stays flat).
    ///
    /// Each item's seq is its position in the store; a store that was tampered with can hold a
    /// different entry there, which [`Log::get`] and verification notice and this does not.
    pub fn iter_bytes(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<(u64, sled::IVec), ReadError>> + '_ {
        self.iter_bytes_until(from, self.head().size)
    }

    /// [`Log::iter_bytes`] that stops before seq `end` (a prefix of the log, e.g. the entries a
    /// cited backtest ran over).
    pub fn iter_bytes_until(
        &self,
        from: u64,
        end: u64,
    ) -> impl Iterator<Item = Result<(u64, sled::IVec), ReadError>> + '_ {
        let store = &self.shared.store;
        // Start at the chunk holding `from` (none if the store is empty or `from` is at the end).
        let start = match chunk_containing(store, keys::CHUNK, from) {
            Ok(found) => Ok(found.map_or(from, |(first, _)| first)),
            Err(e) => Err(ReadError::from(e)),
        };
        let chunks = match &start {
            Ok(start) if *start < end => Some(store.range(keys::CHUNK, *start..end)),
            _ => None,
        };
        let failed = start.err();
        failed
            .map(Err)
            .into_iter()
            .chain(chunks.into_iter().flatten().flat_map(move |item| {
                let (key, chunk) = match item {
                    Ok(kv) => kv,
                    Err(e) => return vec![Err(ReadError::from(e))],
                };
                let Some(first) = keys::key_number(&key, keys::CHUNK) else {
                    return vec![Err(ReadError::IndexCorrupt("malformed chunk key".into()))];
                };
                keys::chunk_entry_ranges(&chunk)
                    .enumerate()
                    .map(|(k, range)| (first + k as u64, range))
                    .filter(|(seq, _)| (from..end).contains(seq))
                    .map(|(seq, range)| Ok((seq, chunk.subslice(range.start, range.len()))))
                    .collect()
            }))
    }

    /// Durable entries of stream `subject` from `from_version`, at most `limit`, in stream order.
    ///
    /// # Errors
    /// [`ReadError`] on storage failure or corruption.
    pub fn read_stream(
        &self,
        subject: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Entry>, ReadError> {
        let size = self.head().size;
        let seqs: Vec<u64> = {
            let index = self.shared.index.ready()?.read().expect("index lock");
            let versions = index.streams.get(subject).map_or(&[][..], |v| v.as_slice());
            versions
                .iter()
                .skip(usize::try_from(from_version).unwrap_or(usize::MAX))
                .take(limit.min(READ_PAGE_ENTRIES_MAX))
                .copied()
                .take_while(|seq| *seq < size)
                .collect()
        };
        seqs.into_iter()
            .map(|seq| {
                self.get(seq)?.ok_or_else(|| {
                    ReadError::IndexCorrupt(format!("stream index points at missing seq {seq}"))
                })
            })
            .collect()
    }

    /// The durable entry with event id `id`.
    ///
    /// # Errors
    /// [`ReadError`] on storage failure or corruption.
    pub fn get_by_id(&self, id: &Uuid) -> Result<Option<Entry>, ReadError> {
        let seq = self
            .shared
            .index
            .ready()?
            .read()
            .expect("index lock")
            .ids
            .get(id)
            .copied();
        match seq {
            Some(seq) => self.get(seq),
            None => Ok(None),
        }
    }

    /// Merkle root of the first `size` entries.
    ///
    /// # Errors
    /// [`ReadError::Proof`] if `size` is beyond the log.
    pub fn root_at(&self, size: u64) -> Result<Digest, ReadError> {
        let available = self.head().size;
        if size > available {
            return Err(ProofRequestError::SizeBeyondLog { size, available }.into());
        }
        merkle::root(&self.nodes(), size)
    }

    /// Inclusion proof for entry `seq` in the tree of the first `size` entries.
    ///
    /// # Errors
    /// [`ReadError::Proof`] if `seq ≥ size` or `size` is beyond the log.
    pub fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<Digest>, ReadError> {
        let available = self.head().size;
        if size > available {
            return Err(ProofRequestError::SizeBeyondLog { size, available }.into());
        }
        if seq >= size {
            return Err(ProofRequestError::IndexOutOfRange { index: seq, size }.into());
        }
        merkle::inclusion_proof(&self.nodes(), seq, size)
    }

    /// Consistency proof from size `from` to size `to`.
    ///
    /// # Errors
    /// [`ReadError::Proof`] if `from > to` or `to` is beyond the log.
    pub fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Digest>, ReadError> {
        let available = self.head().size;
        if to > available {
            return Err(ProofRequestError::SizeBeyondLog {
                size: to,
                available,
            }
            .into());
        }
        if from > to {
            return Err(ProofRequestError::SizesOutOfOrder { from, to }.into());
        }
        merkle::consistency_proof(&self.nodes(), from, to)
    }

    /// The newest stored signed checkpoint note, if checkpoints are being written.
    ///
    /// # Errors
    /// [`ReadError`] on storage failure.
    pub fn latest_checkpoint(&self) -> Result<Option<String>, ReadError> {
        let size = self.head().size;
        match self
            .shared
            .store
            .range(keys::CHECKPOINT, ..=size)
            .next_back()
        {
            None => Ok(None),
            Some(item) => Ok(Some(String::from_utf8_lossy(&item?.1).into_owned())),
        }
    }

    /// The signed checkpoint stored for exactly `size`, if there is one.
    ///
    /// # Errors
    /// [`ReadError`] on storage failure.
    pub fn checkpoint_at(&self, size: u64) -> Result<Option<String>, ReadError> {
        Ok(self
            .shared
            .store
            .get(keys::CHECKPOINT, size)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Every stored checkpoint note with its size, in order (for full verification).
    pub fn iter_checkpoints(&self) -> impl Iterator<Item = Result<(u64, String), ReadError>> + '_ {
        self.shared.store.scan(keys::CHECKPOINT).map(|item| {
            let (key, value) = item?;
            let size = keys::decode_u64(&key[1..])
                .ok_or_else(|| ReadError::IndexCorrupt("malformed checkpoint key".into()))?;
            Ok((size, String::from_utf8_lossy(&value).into_owned()))
        })
    }

    fn nodes(&self) -> CachedNodes<'_> {
        CachedNodes {
            store: &self.shared.store,
            cache: &self.shared.node_cache,
        }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.shared.store
    }

    /// What rebuilding the id and stream indexes on open found wrong, if anything (waits for it).
    pub(crate) fn index_problem(&self) -> Result<Option<&(u64, String)>, ReadError> {
        self.shared.index.ready()?;
        Ok(self.shared.index.wait().problem.as_ref())
    }

    /// Bytes the store takes on disk (for metrics): sled's files, or the log's tables.
    ///
    /// # Errors
    /// [`ReadError`] on storage failure.
    pub fn size_on_disk(&self) -> Result<u64, ReadError> {
        match &self.shared.store {
            Store::Sled { db, .. } => Ok(db.size_on_disk()?),
            Store::Postgres(pg) => Ok(pg.size_on_disk().map_err(store::postgres::read_error)?),
        }
    }
}
