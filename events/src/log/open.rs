//! What opening a store does before the log takes writes: take sled's lock (or connect to
//! PostgreSQL), settle the origin, and check the tail.

use super::store::PostgresStore;
use super::*;

/// Opens a sled store: its tree, its origin (storing `configured`, or a random one, in a new
/// store), and the handles that sync its files.
pub(super) fn open_sled(
    path: &Path,
    cache_bytes: Option<u64>,
    configured: Option<String>,
) -> Result<(Store, String, DiskSync), OpenLogError> {
    let db = open_sled_retrying_lock(path, cache_bytes)?;
    let tree = db.open_tree("log")?;
    if tree.scan_prefix([keys::LAYOUT_1_ENTRY]).next().is_some() {
        return Err(OpenLogError::Layout1);
    }
    let meta = db.open_tree("meta")?;
    // Snapshots used to be values in this tree; they are files now (see `put_snapshot`).
    db.drop_tree("snapshots")?;
    let origin = match (meta.get("origin")?, configured) {
        (Some(stored), configured) => {
            let stored = String::from_utf8_lossy(&stored).into_owned();
            settled_origin(stored, configured)?
        }
        (None, configured) => {
            let origin = new_origin(configured)?;
            meta.insert("origin", origin.as_bytes())?;
            db.flush()?;
            origin
        }
    };
    let mut disk = DiskSync::open(path)?;
    disk.sync()?;
    Ok((Store::Sled { db, tree }, origin, disk))
}

/// Connects to a PostgreSQL store and settles its origin as [`open_sled`] does.
pub(super) fn open_postgres(
    url: &str,
    configured: Option<String>,
) -> Result<(Store, String), OpenLogError> {
    let pg = PostgresStore::connect(url).map_err(OpenLogError::Database)?;
    let origin = match pg.origin().map_err(OpenLogError::Database)? {
        Some(stored) => settled_origin(stored, configured)?,
        None => {
            // Another node may store its origin first: the stored one is the origin.
            let proposed = new_origin(configured.clone())?;
            settled_origin(
                pg.origin_or(proposed).map_err(OpenLogError::Database)?,
                configured,
            )?
        }
    };
    Ok((Store::Postgres(pg), origin))
}

fn settled_origin(stored: String, configured: Option<String>) -> Result<String, OpenLogError> {
    match configured.filter(|c| *c != stored) {
        Some(configured) => Err(OpenLogError::OriginMismatch { stored, configured }),
        None => Ok(stored),
    }
}

fn new_origin(configured: Option<String>) -> Result<String, OpenLogError> {
    let origin = configured.unwrap_or_else(random_origin);
    if valid_origin(&origin) {
        Ok(origin)
    } else {
        Err(OpenLogError::InvalidOrigin(origin))
    }
}

/// Whether the entry PostgreSQL's head row names (the `size`th, hash `head_hash`) is the one
/// stored: the head row moves in the same transaction as the entries, so any difference means
/// rows were changed outside the log.
pub(super) fn check_head_row(
    store: &Store,
    size: u64,
    head_hash: Digest,
) -> Result<(), (u64, String)> {
    let last = match size.checked_sub(1) {
        None => Digest::ZERO,
        Some(seq) => match stored_entry(store, seq) {
            Ok(Some(bytes)) => Digest::of(&bytes),
            Ok(None) => return Err((seq, "entry is missing".into())),
            Err(e) => return Err((seq, format!("storage: {e}"))),
        },
    };
    if head_hash == last {
        Ok(())
    } else {
        Err((
            size.saturating_sub(1),
            format!(
                "the head row says the log ends at entry {} with hash {head_hash}, but that entry's hash is {last}",
                size.saturating_sub(1)
            ),
        ))
    }
}

/// How long `Log::open` keeps retrying when another handle still holds sled's directory lock.
pub(super) const LOCK_RETRY_MS_MAX: u64 = 2_000;

/// Opens sled, retrying briefly on a held lock: sled's IO threads can outlive the last handle of
/// a log that was just closed (in this process or one that just exited) by a few milliseconds.
/// A store it creates has its files made durable by name ([`sync_store_directory`]).
pub(super) fn open_sled_retrying_lock(
    path: &Path,
    cache_bytes: Option<u64>,
) -> Result<sled::Db, sled::Error> {
    let new_store = !path.join("db").exists();
    let started = std::time::Instant::now();
    loop {
        let mut config = sled::Config::new();
        if let Some(bytes) = cache_bytes {
            config = config.cache_capacity(bytes);
        }
        let result = config
            .path(path)
            // The writer flushes (and fsyncs) every commit itself; sled's periodic flusher
            // would only add a background thread.
            .flush_every_ms(None)
            .open();
        match result {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && started.elapsed() < std::time::Duration::from_millis(LOCK_RETRY_MS_MAX) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(db) if new_store => {
                return sync_store_directory(path).map(|()| db).map_err(Into::into)
            }
            other => return other,
        }
    }
}

/// Makes a new sled store's files durable by name: sled creates its files and never syncs a
/// directory, so a store created just before a power cut would come back without them, whatever
/// its commits synced (the power-cut test found a new store empty after a cut). Syncs its
/// configuration, the directory (its entries) and the directory's parent (its own name). Called
/// when a store is created, before any write is answered; not on later opens, where sled has
/// just renamed its start-up snapshot into the directory: made durable beside the log as of its
/// last sync, that snapshot makes sled refuse the store ("Read corrupted data"), which the
/// power-cut test showed every time.
///
/// # Errors
/// When a directory cannot be opened or synced.
pub fn sync_store_directory(dir: &Path) -> std::io::Result<()> {
    if let Ok(conf) = std::fs::File::open(dir.join("conf")) {
        conf.sync_all()?;
    }
    std::fs::File::open(dir)?.sync_all()?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Checks the log's last entries (at least the last group: every chunk holding one of the
/// last [`TAIL_VERIFY_ENTRIES`]) as full verification does, except for Merkle nodes: each is the
/// entry its chunk's index record describes and links to the one before; and nothing is stored
/// beyond them (no chunk, index record or signed checkpoint).
pub(super) fn check_tail(store: &Store, size: u64, origin: &str) -> Result<(), (u64, String)> {
    use crate::verify::{check_in_chunk, check_link, ChunkError, PairedChunks};
    let storage = |seq: u64| move |e: sled::Error| (seq, format!("storage: {e}"));
    let start = size.saturating_sub(TAIL_VERIFY_ENTRIES);
    let from = chunk_containing(store, keys::CHUNK, start)
        .map_err(storage(start))?
        .map_or(0, |(first, _)| first);
    let mut prev_hash = if from == 0 {
        Digest::ZERO
    } else {
        match stored_entry(store, from - 1).map_err(storage(from - 1))? {
            Some(bytes) => Digest::of(&bytes),
            None => return Err((from - 1, "entry is missing".into())),
        }
    };
    let mut expected = from;
    let problem = |p: crate::verify::IntegrityProblem| (p.seq, p.reason);
    // In PostgreSQL, what lies past the head row was committed by another node after it was read.
    for chunk in PairedChunks::up_to_head(store, from, size) {
        let chunk = chunk.map_err(|e| match e {
            ChunkError::Read(e) => storage(expected)(e),
            ChunkError::Problem(p) => problem(p),
        })?;
        let index = chunk.decode_index().map_err(problem)?;
        for (k, (seq, bytes)) in chunk.entries().enumerate() {
            let checked =
                check_in_chunk(seq, bytes, index.entries.get(k), origin).map_err(problem)?;
            check_link(&checked, &prev_hash).map_err(problem)?;
            prev_hash = checked.hash;
            expected = seq + 1;
        }
        chunk.check_count(&index).map_err(problem)?;
    }
    if expected != size {
        return Err((expected, "entry is missing".into()));
    }
    if let Some(Ok((key, _))) = store.scan(keys::CHECKPOINT).next_back() {
        if keys::key_number(&key, keys::CHECKPOINT)
            .is_some_and(|signed| signed > size && !store.committed_elsewhere(signed))
        {
            return Err((
                size,
                "entries from here on are missing (a signed checkpoint covers them)".into(),
            ));
        }
    }
    Ok(())
}

pub(super) fn valid_origin(origin: &str) -> bool {
    !origin.is_empty()
        && origin.len() <= URI_BYTES_MAX
        && !origin.chars().any(|c| c.is_whitespace() || c.is_control())
        && !origin.contains('+')
}

pub(super) fn random_origin() -> String {
    let mut bytes = [0u8; 8];
    // Falls back to a time-derived suffix only if the OS has no randomness at all.
    if getrandom::getrandom(&mut bytes).is_err() {
        bytes = (SystemClock.now().unix_micros() as u64).to_be_bytes();
    }
    format!("trustledger.local/log/{}", hex::encode(bytes))
}

/// The origin a store holds, `None` when it holds no log yet (a sled directory without sled's
/// files, a database without trustledger's tables or origin).
///
/// # Errors
/// When the store cannot be read.
pub fn stored_origin(location: &StoreLocation) -> Result<Option<String>, OpenLogError> {
    match location {
        StoreLocation::Directory(dir) if !dir.join("conf").exists() => Ok(None),
        StoreLocation::Directory(_) => Ok(Some(
            Log::open_at(location, LogConfig::default())?
                .origin()
                .to_owned(),
        )),
        StoreLocation::Postgres(url) => PostgresStore::connect(url)
            .and_then(|pg| pg.origin())
            .map_err(OpenLogError::Database),
    }
}
