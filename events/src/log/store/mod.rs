//! The storage boundary: where a log's records live. Two stores hold the same records under the
//! same keys ([`crate::keys`]: chunks, their index records, signed checkpoints), so everything
//! above this module (the writer, the indexes, proofs, tiles, verification) is one code path and
//! the bytes, roots and checkpoints are identical whichever store holds them:
//!
//! - **sled** (the embedded default): one ordered tree in a directory;
//! - **PostgreSQL** ([`postgres`]): tables an operator can query, one row per entry, with the
//!   database's own constraints on ids, stream versions and the head (see `docs/postgres.md`).
//!
//! A group commit is one atomic write in either: a sled batch, or one transaction that moves the
//! head row only if it is still where the writer last saw it.

pub mod postgres;

use crate::entry::Digest;
use crate::keys;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

pub use postgres::PostgresStore;

/// Where a log is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A sled store in this directory.
    Directory(std::path::PathBuf),
    /// A PostgreSQL database, by connection URL (`postgres://user@host:port/db`).
    Postgres(String),
}

impl StoreLocation {
    /// A `postgres://` or `postgresql://` URL names a database; anything else a directory.
    pub fn parse(text: &str) -> Self {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Self::Postgres(text.to_owned())
        } else {
            Self::Directory(text.into())
        }
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Directory(dir) => write!(f, "{}", dir.display()),
            Self::Postgres(url) => write!(f, "{}", postgres::redacted(url)),
        }
    }
}

/// One group commit: the chunks (first seq, entries each followed by `\n`, index record) and the
/// signed checkpoints (the writer's: one, of the new head; a migration's: those the source holds
/// for sizes the commit reaches), written only if the head is still `after`.
pub(crate) struct Commit {
    /// The head (size, last hash) the group was built on.
    pub(crate) after: (u64, Digest),
    /// The head once it is written.
    pub(crate) head: (u64, Digest),
    pub(crate) chunks: Vec<(u64, Vec<u8>, sled::IVec)>,
    pub(crate) checkpoints: Vec<(u64, String)>,
}

/// Why a commit failed.
#[derive(Debug)]
pub(crate) enum CommitError {
    /// The store failed; whether the commit landed is unknown for PostgreSQL (the connection can
    /// drop after `COMMIT` was sent), known not to for sled (which refuses further writes).
    Storage(String),
    /// Another writer moved the head: this one is stale and must not write again.
    Fenced { found: (u64, Digest) },
}

/// An open store.
#[derive(Clone)]
pub(crate) enum Store {
    Sled { db: sled::Db, tree: sled::Tree },
    Postgres(Arc<PostgresStore>),
}

/// Records of one key prefix in key order, read lazily (sled's iterator, or pages of rows).
pub(crate) enum Records {
    Sled(sled::Iter),
    Postgres(postgres::Pages),
}

/// A key/value pair as read: both as sled holds them.
pub(crate) type Record = (sled::IVec, sled::IVec);

impl Iterator for Records {
    type Item = Result<Record, sled::Error>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Sled(iter) => iter.next(),
            Self::Postgres(pages) => pages.next(),
        }
    }
}

impl DoubleEndedIterator for Records {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Self::Sled(iter) => iter.next_back(),
            Self::Postgres(pages) => pages.next_back(),
        }
    }
}

/// The inclusive seq bounds of a range, `None` when it is empty.
fn inclusive(range: &impl RangeBounds<u64>) -> Option<(u64, u64)> {
    let low = match range.start_bound() {
        Bound::Included(n) => *n,
        Bound::Excluded(n) => n.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let high = match range.end_bound() {
        Bound::Included(n) => *n,
        Bound::Excluded(n) => n.checked_sub(1)?,
        Bound::Unbounded => u64::MAX,
    };
    (low <= high).then_some((low, high))
}

impl Store {
    /// The record under `prefix ‖ n`.
    pub(crate) fn get(&self, prefix: u8, n: u64) -> Result<Option<sled::IVec>, sled::Error> {
        match self {
            Self::Sled { tree, .. } => tree.get(key(prefix, n)),
            Self::Postgres(pg) => pg.get(prefix, n),
        }
    }

    /// The records of `prefix` whose numbers are in `range`, in order.
    pub(crate) fn range(&self, prefix: u8, range: impl RangeBounds<u64>) -> Records {
        let bounds = inclusive(&range);
        match self {
            Self::Sled { tree, .. } => Records::Sled(match bounds {
                Some((low, high)) => tree.range(key(prefix, low)..=key(prefix, high)),
                None => tree.range(key(prefix, 1)..key(prefix, 1)),
            }),
            Self::Postgres(pg) => Records::Postgres(pg.pages(prefix, bounds)),
        }
    }

    /// Every record of `prefix`, in order.
    pub(crate) fn scan(&self, prefix: u8) -> Records {
        self.range(prefix, ..)
    }

    /// Writes a group commit atomically (sled: one batch, then flush; PostgreSQL: one
    /// transaction with a compare and set on the head row). sled's files are synced by the writer.
    pub(crate) fn commit(&self, commit: &Commit) -> Result<(), CommitError> {
        match self {
            Self::Sled { db, tree } => {
                let mut batch = sled::Batch::default();
                for (first, entries, record) in &commit.chunks {
                    batch.insert(&keys::chunk(*first), entries.as_slice());
                    batch.insert(&keys::chunk_index(*first), record.clone());
                }
                for (size, note) in &commit.checkpoints {
                    batch.insert(&keys::checkpoint(*size), note.as_bytes());
                }
                tree.apply_batch(batch)
                    .map_err(|e| CommitError::Storage(format!("write: {e}")))?;
                db.flush()
                    .map_err(|e| CommitError::Storage(format!("flush: {e}")))?;
                Ok(())
            }
            Self::Postgres(pg) => pg.commit(commit),
        }
    }

    /// Whether another node has committed the log to at least `size` entries since this handle
    /// read its head: a record past the handle's head is then that node's, not damage. Never
    /// on sled, which has one writer.
    pub(crate) fn committed_elsewhere(&self, size: u64) -> bool {
        self.postgres()
            .is_some_and(|pg| pg.head().is_ok_and(|(now, _)| now >= size))
    }

    /// The store's PostgreSQL side, if it is one.
    pub(crate) fn postgres(&self) -> Option<&PostgresStore> {
        match self {
            Self::Postgres(pg) => Some(pg),
            Self::Sled { .. } => None,
        }
    }
}

fn key(prefix: u8, n: u64) -> [u8; 9] {
    let mut k = [prefix; 9];
    k[1..].copy_from_slice(&n.to_be_bytes());
    k
}
