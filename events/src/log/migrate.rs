//! Copying a log from one store to another (`trustledger migrate`): sled to PostgreSQL or back.
//! The source is verified, then every chunk, index record and signed checkpoint is copied byte
//! for byte, in commits whose head moves exactly as the source's did (so the target's head row
//! and its checkpoints agree at every step), and the target is verified and compared with the
//! source before success is reported. The source is only read.

use super::store::{Commit, Store, StoreLocation};
use super::{open, Log, LogConfig, OpenLogError, ReadError};
use crate::entry::Digest;
use crate::keys;
use crate::verify::{verify_store, ChunkError, PairedChunks};

/// Chunks per target commit (about 1 MiB of entries).
const CHUNKS_PER_COMMIT: usize = 256;

/// What a migration copied and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The log's origin.
    pub origin: String,
    /// Entries copied.
    pub entries: u64,
    /// Signed checkpoints copied.
    pub checkpoints: u64,
    /// The Merkle root both stores hold.
    pub root: Digest,
}

/// Why a migration stopped. The target may hold a partial copy, never reported as a log that
/// matches; the source is untouched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The source has no log.
    #[error("no log at {0}")]
    NoSource(String),
    /// The source could not be opened.
    #[error("the source: {0}")]
    Source(OpenLogError),
    /// The target could not be opened.
    #[error("the target: {0}")]
    Target(OpenLogError),
    /// The target already holds entries.
    #[error("the target already holds a log ({0}); migrate writes only into an empty store")]
    TargetNotEmpty(String),
    /// The source failed verification (nothing was copied).
    #[error("the source does not verify: {0}")]
    SourceInvalid(String),
    /// Reading the source failed.
    #[error("reading the source: {0}")]
    Read(String),
    /// Writing the target failed.
    #[error("writing the target: {0}")]
    Write(String),
    /// The copy, read back, is not the source.
    #[error("the copy differs from the source: {0}")]
    Mismatch(String),
}

fn read(e: impl std::fmt::Display) -> MigrateError {
    MigrateError::Read(e.to_string())
}

/// Copies the log at `from` into the empty store at `to` and checks the copy. `progress` is
/// called with the entries copied so far.
///
/// # Errors
/// [`MigrateError`]: nothing is reported as migrated unless the target verifies and holds the
/// source's bytes, root and checkpoints.
pub fn migrate(
    from: &StoreLocation,
    to: &StoreLocation,
    mut progress: impl FnMut(u64),
) -> Result<Migration, MigrateError> {
    if let StoreLocation::Directory(dir) = from {
        if !dir.join("conf").exists() {
            return Err(MigrateError::NoSource(dir.display().to_string()));
        }
    }
    let source = Log::open_at(from, LogConfig::default()).map_err(MigrateError::Source)?;
    if let Some(refusal) = source.refusal() {
        return Err(MigrateError::SourceInvalid(refusal.to_string()));
    }
    verify_store(&source, None, |_| {}).map_err(|e| MigrateError::SourceInvalid(e.to_string()))?;
    let origin = source.origin().to_owned();
    let (target, disk) = match to {
        StoreLocation::Directory(dir) => {
            let (store, _, disk) =
                open::open_sled(dir, None, Some(origin.clone())).map_err(MigrateError::Target)?;
            (store, Some(disk))
        }
        StoreLocation::Postgres(url) => {
            let (store, _) =
                open::open_postgres(url, Some(origin.clone())).map_err(MigrateError::Target)?;
            (store, None)
        }
    };
    if target.scan(keys::CHUNK).next().is_some() || target.scan(keys::CHECKPOINT).next().is_some() {
        return Err(MigrateError::TargetNotEmpty(to.to_string()));
    }
    let checkpoints = copy_records(&source, &target, &mut progress)?;
    if let Some(mut disk) = disk {
        disk.sync()
            .map_err(|e| MigrateError::Write(e.to_string()))?;
    }
    drop(target);
    if let Some(note) = source.latest_cosigned_checkpoint().map_err(read)? {
        let size = note
            .lines()
            .nth(1)
            .and_then(|line| line.parse().ok())
            .ok_or_else(|| read("a cosigned checkpoint without a size line"))?;
        let copy = Log::open_at(to, LogConfig::default()).map_err(MigrateError::Target)?;
        copy.put_cosigned_checkpoint(size, &note)
            .map_err(|e| MigrateError::Write(e.to_string()))?;
    }
    let migration = Migration {
        origin,
        entries: source.head().size,
        checkpoints,
        root: source.head().root,
    };
    compare(&source, to, &migration)?;
    Ok(migration)
}

/// Writes the source's chunks, index records and checkpoints into `target`, a few hundred
/// chunks a commit. Returns the checkpoints copied.
fn copy_records(
    source: &Log,
    target: &Store,
    progress: &mut impl FnMut(u64),
) -> Result<u64, MigrateError> {
    let size = source.head().size;
    let mut checkpoints = source.store().scan(keys::CHECKPOINT).peekable();
    let mut copied_checkpoints = 0u64;
    let mut after = (0u64, Digest::ZERO);
    let mut pending = Vec::new();
    let mut last_hash = Digest::ZERO;
    for chunk in PairedChunks::up_to_head(source.store(), 0, size) {
        let chunk = chunk.map_err(|e| match e {
            ChunkError::Read(e) => read(e),
            ChunkError::Problem(p) => MigrateError::SourceInvalid(p.to_string()),
        })?;
        let end = chunk.first + chunk.len() as u64;
        if let Some((_, bytes)) = chunk.entries().last() {
            last_hash = Digest::of(bytes);
        }
        pending.push((chunk.first, chunk.entries.to_vec(), chunk.index.clone()));
        if pending.len() < CHUNKS_PER_COMMIT && end < size {
            continue;
        }
        let mut notes = Vec::new();
        while let Some(Ok((key, _))) = checkpoints.peek() {
            match keys::key_number(key, keys::CHECKPOINT) {
                Some(signed) if signed <= end => {
                    let (_, note) = checkpoints.next().expect("peeked").map_err(read)?;
                    notes.push((signed, String::from_utf8_lossy(&note).into_owned()));
                }
                _ => break,
            }
        }
        if let Some(Err(e)) = checkpoints.peek() {
            return Err(read(e));
        }
        copied_checkpoints += notes.len() as u64;
        let commit = Commit {
            after,
            head: (end, last_hash),
            chunks: std::mem::take(&mut pending),
            checkpoints: notes,
        };
        target
            .commit(&commit)
            .map_err(|e| MigrateError::Write(format!("{e:?}")))?;
        after = (end, last_hash);
        progress(end);
        if end >= size {
            break;
        }
    }
    Ok(copied_checkpoints)
}

/// Opens the copy as a log and checks it: it verifies in full, and holds the source's head,
/// every entry's bytes and every checkpoint.
fn compare(source: &Log, to: &StoreLocation, expected: &Migration) -> Result<(), MigrateError> {
    let copy = Log::open_at(to, LogConfig::default()).map_err(MigrateError::Target)?;
    let mismatch = MigrateError::Mismatch;
    if let Some(refusal) = copy.refusal() {
        return Err(mismatch(refusal.to_string()));
    }
    let report =
        verify_store(&copy, None, |_| {}).map_err(|e| mismatch(format!("verification: {e}")))?;
    if copy.head() != source.head() || report.root != expected.root {
        return Err(mismatch(format!(
            "the copy's head is {:?}, the source's {:?}",
            copy.head(),
            source.head()
        )));
    }
    let pairs = source.iter_bytes(0).zip(copy.iter_bytes(0));
    for (original, copied) in pairs {
        let ((seq, original), (_, copied)) = (original.map_err(read)?, copied.map_err(read)?);
        if original != copied {
            return Err(mismatch(format!("entry {seq} differs")));
        }
    }
    let listed =
        |log: &Log| -> Result<Vec<(u64, String)>, ReadError> { log.iter_checkpoints().collect() };
    if listed(source).map_err(read)? != listed(&copy).map_err(read)? {
        return Err(mismatch("the signed checkpoints differ".into()));
    }
    if source.latest_cosigned_checkpoint().map_err(read)?
        != copy.latest_cosigned_checkpoint().map_err(read)?
    {
        return Err(mismatch("the cosigned checkpoint differs".into()));
    }
    Ok(())
}
