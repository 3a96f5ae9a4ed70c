//! The log in PostgreSQL (tokio-postgres through a deadpool pool, on a runtime of the store's
//! own so that the log's blocking API can be called from any thread, async or not).
//!
//! Tables (created on first open; `docs/postgres.md` describes them for operators):
//! - `tl_entries`: one row per entry (seq, stored bytes, hash, id unique, subject and stream
//!   version unique together);
//! - `tl_chunks`: each commit's chunks (first seq, count, index record: the leaf hashes and the
//!   Merkle nodes the chunk's leaves completed, in the layout of [`crate::keys::ChunkIndex`]);
//! - `tl_checkpoints`, `tl_cosigned_checkpoints`: signed notes by size;
//! - `tl_snapshots`: projection snapshots by name;
//! - `tl_head`: one row, the size and last hash of the log, moved by compare and set;
//! - `tl_meta`: the origin and the schema version.

use super::{Commit, CommitError, Record};
use crate::entry::Digest;
use crate::keys::{self, ChunkIndex};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::NoTls;

/// How long one statement or transaction may take before the caller gets a storage error (a
/// database that stopped answering must not hold a writer or a reader forever).
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections in the pool: the writer's, and readers'.
const POOL_CONNECTIONS_MAX: usize = 8;
/// The channel a commit notifies with the new size (for followers).
pub const HEAD_CHANNEL: &str = "trustledger_head";
/// `tl_meta.schema` of the tables this version creates and reads.
const SCHEMA_VERSION: &str = "1";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tl_meta (name text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS tl_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    size bigint NOT NULL CHECK (size >= 0),
    last_hash bytea NOT NULL CHECK (length(last_hash) = 32));
CREATE TABLE IF NOT EXISTS tl_entries (
    seq bigint PRIMARY KEY CHECK (seq >= 0),
    bytes bytea NOT NULL,
    hash bytea NOT NULL CHECK (length(hash) = 32),
    id uuid NOT NULL UNIQUE,
    subject text NOT NULL,
    stream_version bigint NOT NULL CHECK (stream_version >= 0),
    UNIQUE (subject, stream_version));
CREATE TABLE IF NOT EXISTS tl_chunks (
    first_seq bigint PRIMARY KEY CHECK (first_seq >= 0),
    count integer NOT NULL CHECK (count > 0),
    index_record bytea NOT NULL);
CREATE TABLE IF NOT EXISTS tl_checkpoints (size bigint PRIMARY KEY, note bytea NOT NULL);
CREATE TABLE IF NOT EXISTS tl_cosigned_checkpoints (size bigint PRIMARY KEY, note bytea NOT NULL);
CREATE TABLE IF NOT EXISTS tl_snapshots (name text PRIMARY KEY, bytes bytea NOT NULL);
INSERT INTO tl_head (singleton, size, last_hash)
    VALUES (true, 0, '\\x0000000000000000000000000000000000000000000000000000000000000000')
    ON CONFLICT DO NOTHING;
";

/// An open PostgreSQL store.
pub struct PostgresStore {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pool: Pool,
    url: String,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // A runtime dropped on an async thread panics; this one may be dropped anywhere.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgresStore({})", redacted(&self.url))
    }
}

/// The URL without its password, for messages and logs.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A failure as text, with each cause the error's own message does not already say (the pool's
/// "error connecting to server" and the socket's "Connection refused" beneath it).
fn storage(e: impl std::error::Error) -> String {
    let mut text = format!("PostgreSQL: {e}");
    let mut cause = e.source();
    while let Some(inner) = cause {
        let said = inner.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = inner.source();
    }
    text
}

/// A PostgreSQL failure as the error type the log's reads carry.
pub(crate) fn read_error(reason: String) -> sled::Error {
    sled::Error::Io(std::io::Error::other(reason))
}

fn seq(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl PostgresStore {
    /// Connects, checks that the server's settings make a commit durable, and creates the tables
    /// if they are missing.
    ///
    /// # Errors
    /// Why the database cannot hold the log, as text.
    pub fn connect(url: &str) -> Result<Arc<Self>, String> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| format!("{}: {e}", redacted(url)))?;
        config
            .connect_timeout(Duration::from_secs(5))
            .application_name("trustledger");
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("trustledger-postgres")
            .enable_all()
            .build()
            .map_err(storage)?;
        let pool = Pool::builder(manager)
            .max_size(POOL_CONNECTIONS_MAX)
            .runtime(Runtime::Tokio1)
            .timeouts(Timeouts {
                wait: Some(OPERATION_TIMEOUT),
                create: Some(Duration::from_secs(5)),
                recycle: Some(Duration::from_secs(5)),
            })
            .build()
            .map_err(storage)?;
        let store = Arc::new(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            pool,
            url: url.to_owned(),
        });
        store.prepare_schema()?;
        Ok(store)
    }

    /// Runs `work` on the store's runtime and waits for it, within [`OPERATION_TIMEOUT`].
    pub(crate) fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, String>> + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let outcome = tokio::time::timeout(OPERATION_TIMEOUT, work)
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "PostgreSQL did not answer within {} s",
                        OPERATION_TIMEOUT.as_secs()
                    ))
                });
            let _ = tx.send(outcome);
        });
        rx.recv()
            .unwrap_or_else(|_| Err("the PostgreSQL store is closed".into()))
    }

    pub(crate) fn pool(&self) -> Pool {
        self.pool.clone()
    }

    fn prepare_schema(&self) -> Result<(), String> {
        let pool = self.pool();
        self.run(async move {
            let mut client = pool.get().await.map_err(storage)?;
            for (setting, refused) in [("fsync", "off"), ("synchronous_commit", "off")] {
                let row = client
                    .query_one(&format!("SHOW {setting}"), &[])
                    .await
                    .map_err(storage)?;
                if row.get::<_, String>(0) == refused {
                    return Err(format!(
                        "PostgreSQL runs with {setting} = {refused}: an acknowledged append could be lost; the log needs {setting} on"
                    ));
                }
            }
            let tx = client.transaction().await.map_err(storage)?;
            // Two nodes starting at once would otherwise race to create the same tables.
            tx.execute("SELECT pg_advisory_xact_lock(7355608001)", &[])
                .await
                .map_err(storage)?;
            tx.batch_execute(SCHEMA).await.map_err(storage)?;
            let stored = tx
                .query_opt("SELECT value FROM tl_meta WHERE name = 'schema'", &[])
                .await
                .map_err(storage)?;
            match stored.map(|row| row.get::<_, String>(0)) {
                Some(version) if version != SCHEMA_VERSION => {
                    return Err(format!(
                        "the database holds trustledger tables of schema {version}; this version reads schema {SCHEMA_VERSION}"
                    ))
                }
                Some(_) => {}
                None => {
                    tx.execute(
                        "INSERT INTO tl_meta (name, value) VALUES ('schema', $1)",
                        &[&SCHEMA_VERSION],
                    )
                    .await
                    .map_err(storage)?;
                }
            }
            tx.commit().await.map_err(storage)
        })
    }

    /// The stored origin, or `proposed` stored as the origin if the database has none yet.
    pub(crate) fn origin_or(&self, proposed: String) -> Result<String, String> {
        let pool = self.pool();
        self.run(async move {
            let client = pool.get().await.map_err(storage)?;
            client
                .execute(
                    "INSERT INTO tl_meta (name, value) VALUES ('origin', $1) ON CONFLICT DO NOTHING",
                    &[&proposed],
                )
                .await
                .map_err(storage)?;
            let row = client
                .query_one("SELECT value FROM tl_meta WHERE name = 'origin'", &[])
                .await
                .map_err(storage)?;
            Ok(row.get(0))
        })
    }

    /// The stored origin, if any.
    pub(crate) fn origin(&self) -> Result<Option<String>, String> {
        let pool = self.pool();
        self.run(async move {
            let client = pool.get().await.map_err(storage)?;
            let row = client
                .query_opt("SELECT value FROM tl_meta WHERE name = 'origin'", &[])
                .await
                .map_err(storage)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    /// The head row: the size and last hash the last commit wrote.
    pub(crate) fn head(&self) -> Result<(u64, Digest), String> {
        let pool = self.pool();
        self.run(async move {
            let client = pool.get().await.map_err(storage)?;
            let row = client
                .query_one("SELECT size, last_hash FROM tl_head", &[])
                .await
                .map_err(storage)?;
            head_of(&row)
        })
    }

    pub(crate) fn get(&self, prefix: u8, n: u64) -> Result<Option<sled::IVec>, sled::Error> {
        let found = self.fetch(prefix, (n, n), false, 1).map_err(read_error)?;
        Ok(found.into_iter().next().map(|(_, value)| value))
    }

    /// Records of `prefix` numbered within `bounds` (inclusive), ascending or descending.
    fn fetch(
        &self,
        prefix: u8,
        (low, high): (u64, u64),
        descending: bool,
        limit: i64,
    ) -> Result<Vec<(u64, sled::IVec)>, String> {
        let order = if descending { "DESC" } else { "ASC" };
        let sql = match prefix {
            keys::CHUNK => format!(
                "SELECT c.first_seq, coalesce((SELECT string_agg(e.bytes || '\\x0a'::bytea, ''::bytea ORDER BY e.seq) \
                 FROM tl_entries e WHERE e.seq >= c.first_seq AND e.seq < c.first_seq + c.count), ''::bytea) \
                 FROM tl_chunks c WHERE c.first_seq BETWEEN $1 AND $2 ORDER BY c.first_seq {order} LIMIT $3"
            ),
            keys::CHUNK_INDEX => format!(
                "SELECT first_seq, index_record FROM tl_chunks WHERE first_seq BETWEEN $1 AND $2 \
                 ORDER BY first_seq {order} LIMIT $3"
            ),
            keys::CHECKPOINT => format!(
                "SELECT size, note FROM tl_checkpoints WHERE size BETWEEN $1 AND $2 \
                 ORDER BY size {order} LIMIT $3"
            ),
            COSIGNED => format!(
                "SELECT size, note FROM tl_cosigned_checkpoints WHERE size BETWEEN $1 AND $2 \
                 ORDER BY size {order} LIMIT $3"
            ),
            _ => return Ok(Vec::new()),
        };
        let pool = self.pool();
        self.run(async move {
            let client = pool.get().await.map_err(storage)?;
            let statement = client.prepare_cached(&sql).await.map_err(storage)?;
            let rows = client
                .query(&statement, &[&seq(low), &seq(high), &limit])
                .await
                .map_err(storage)?;
            Ok(rows
                .iter()
                .map(|row| {
                    let value: &[u8] = row.get(1);
                    (unsigned(row.get(0)), sled::IVec::from(value))
                })
                .collect())
        })
    }

    /// A lazy, double-ended read of the records of `prefix` within `bounds`.
    pub(crate) fn pages(self: &Arc<Self>, prefix: u8, bounds: Option<(u64, u64)>) -> Pages {
        Pages {
            store: Arc::clone(self),
            prefix,
            remaining: bounds,
            front: VecDeque::new(),
            back: VecDeque::new(),
            failed: false,
        }
    }

    /// Writes a group commit in one transaction that first moves the head row from
    /// `commit.after` to `commit.head` (compare and set), and notifies followers.
    pub(crate) fn commit(&self, commit: &Commit) -> Result<(), CommitError> {
        let rows = EntryRows::of(commit).map_err(CommitError::Storage)?;
        let chunks: Vec<(i64, i32, Vec<u8>)> = commit
            .chunks
            .iter()
            .map(|(first, _, record)| {
                let count = ChunkIndex::decode(*first, record).map_or(0, |c| c.entries.len());
                (
                    seq(*first),
                    i32::try_from(count).unwrap_or(0),
                    record.to_vec(),
                )
            })
            .collect();
        let (after, head) = (commit.after, commit.head);
        let (sizes, notes): (Vec<i64>, Vec<Vec<u8>>) = commit
            .checkpoints
            .iter()
            .map(|(size, note)| (seq(*size), note.as_bytes().to_vec()))
            .unzip();
        let pool = self.pool();
        let (firsts, counts, records): (Vec<i64>, Vec<i32>, Vec<Vec<u8>>) = chunks
            .into_iter()
            .fold(Default::default(), |mut acc, (f, c, r)| {
                acc.0.push(f);
                acc.1.push(c);
                acc.2.push(r);
                acc
            });
        let outcome = self.run(async move {
            let mut client = pool.get().await.map_err(storage)?;
            let tx = client.transaction().await.map_err(storage)?;
            // Prepared once per connection; then every statement of the commit is sent without
            // waiting for the one before (tokio-postgres pipelines them), and the head's compare
            // and set is checked before COMMIT: a commit is BEGIN, one round of five statements,
            // and COMMIT.
            let (move_head, add_entries, add_chunks, add_checkpoints, notify) = tokio::try_join!(
                tx.prepare_cached(
                    "UPDATE tl_head SET size = $3, last_hash = $4 WHERE size = $1 AND last_hash = $2"
                ),
                tx.prepare_cached(
                    "INSERT INTO tl_entries (seq, bytes, hash, id, subject, stream_version) \
                     SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::uuid[], $5::text[], $6::bigint[])"
                ),
                tx.prepare_cached(
                    "INSERT INTO tl_chunks (first_seq, count, index_record) \
                     SELECT * FROM unnest($1::bigint[], $2::integer[], $3::bytea[])"
                ),
                tx.prepare_cached(
                    "INSERT INTO tl_checkpoints (size, note) SELECT * FROM unnest($1::bigint[], $2::bytea[])"
                ),
                tx.prepare_cached("SELECT pg_notify($1, $2)"),
            )
            .map_err(storage)?;
            let new_size = head.0.to_string();
            let (old_seq, old_hash, new_seq, new_hash) =
                (seq(after.0), after.1 .0.to_vec(), seq(head.0), head.1 .0.to_vec());
            let head_values: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                [&old_seq, &old_hash, &new_seq, &new_hash];
            let entry_values: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
                [&rows.seqs, &rows.bytes, &rows.hashes, &rows.ids, &rows.subjects, &rows.versions];
            let chunk_values: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                [&firsts, &counts, &records];
            let checkpoint_values: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
                [&sizes, &notes];
            let notify_values: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
                [&HEAD_CHANNEL, &new_size];
            let (moved, entries, chunks, checkpoints, notified) = tokio::join!(
                tx.execute(&move_head, &head_values),
                tx.execute(&add_entries, &entry_values),
                tx.execute(&add_chunks, &chunk_values),
                tx.execute(&add_checkpoints, &checkpoint_values),
                tx.execute(&notify, &notify_values),
            );
            if moved.as_ref().is_ok_and(|n| *n != 1) {
                // Another writer moved the head; what was sent after the update is rolled back.
                drop(tx);
                let row = client
                    .query_one("SELECT size, last_hash FROM tl_head", &[])
                    .await
                    .map_err(storage)?;
                return Ok(Some(head_of(&row)?));
            }
            for done in [moved, entries, chunks, checkpoints, notified] {
                done.map_err(storage)?;
            }
            tx.commit().await.map_err(storage)?;
            Ok(None)
        });
        match outcome {
            Ok(None) => Ok(()),
            Ok(Some(found)) => Err(CommitError::Fenced { found }),
            Err(reason) => Err(CommitError::Storage(reason)),
        }
    }

    /// Stores a projection snapshot, replacing the previous one of that name.
    pub(crate) fn put_snapshot(&self, name: &str, bytes: &[u8]) -> Result<(), String> {
        let (pool, name, bytes) = (self.pool(), name.to_owned(), bytes.to_vec());
        self.run(async move {
            let client = pool.get().await.map_err(storage)?;
            client
                .execute(
                    "INSERT INTO tl_snapshots (name, bytes) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET bytes = excluded.bytes",
                    &[&name, &bytes],
                )
                .await
                .map_err(storage)?;
            Ok(())
        })
    }

    /// The projection snapshot stored under `name`.
    pub(crate) fn get_snapshot(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        let (pool, name) = (self.pool(), name.to_owned());
        self.run(async move {
            let client = pool.get().await.map_err(storage)?;
            let row = client
                .query_opt("SELECT bytes FROM tl_snapshots WHERE name = $1", &[&name])
                .await
                .map_err(storage)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    /// Keeps a cosigned checkpoint (committed before this returns).
    pub(crate) fn put_cosigned(&self, size: u64, note: &str) -> Result<(), String> {
        let (pool, note) = (self.pool(), note.as_bytes().to_vec());
        self.run(async move {
            let client = pool.get().await.map_err(storage)?;
            client
                .execute(
                    "INSERT INTO tl_cosigned_checkpoints (size, note) VALUES ($1, $2) \
                     ON CONFLICT (size) DO UPDATE SET note = excluded.note",
                    &[&seq(size), &note],
                )
                .await
                .map_err(storage)?;
            Ok(())
        })
    }

    /// The newest cosigned checkpoint.
    pub(crate) fn latest_cosigned(&self) -> Result<Option<String>, String> {
        let found = self.fetch(COSIGNED, (0, u64::MAX), true, 1)?;
        Ok(found
            .into_iter()
            .next()
            .map(|(_, note)| String::from_utf8_lossy(&note).into_owned()))
    }

    /// Bytes the log's tables take, with their indexes and TOAST.
    pub(crate) fn size_on_disk(&self) -> Result<u64, String> {
        let pool = self.pool();
        self.run(async move {
            let client = pool.get().await.map_err(storage)?;
            let row = client
                .query_one(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
                     WHERE c.relkind = 'r' AND c.relname LIKE 'tl\\_%' AND pg_table_is_visible(c.oid)",
                    &[],
                )
                .await
                .map_err(storage)?;
            Ok(unsigned(row.get(0)))
        })
    }
}

/// The key prefix the cosigned checkpoints are read under (sled keeps them in a tree of their
/// own under the checkpoint prefix).
const COSIGNED: u8 = b'C';

fn head_of(row: &tokio_postgres::Row) -> Result<(u64, Digest), String> {
    let hash: &[u8] = row.get(1);
    let hash = <[u8; 32]>::try_from(hash).map_err(|_| "the head row's hash is not 32 bytes")?;
    Ok((unsigned(row.get(0)), Digest(hash)))
}

/// A commit's entries as columns (one array per column, for `unnest`).
struct EntryRows {
    seqs: Vec<i64>,
    bytes: Vec<Vec<u8>>,
    hashes: Vec<Vec<u8>>,
    ids: Vec<uuid::Uuid>,
    subjects: Vec<String>,
    versions: Vec<i64>,
}

impl EntryRows {
    fn of(commit: &Commit) -> Result<Self, String> {
        let mut rows = Self {
            seqs: Vec::new(),
            bytes: Vec::new(),
            hashes: Vec::new(),
            ids: Vec::new(),
            subjects: Vec::new(),
            versions: Vec::new(),
        };
        for (first, entries, record) in &commit.chunks {
            let index = ChunkIndex::decode(*first, record)?;
            let ranges = keys::chunk_entry_ranges(entries);
            for ((seq_no, indexed), range) in (*first..).zip(&index.entries).zip(ranges) {
                let bytes = &entries[range];
                rows.seqs.push(seq(seq_no));
                rows.hashes.push(Digest::of(bytes).0.to_vec());
                rows.bytes.push(bytes.to_vec());
                rows.ids.push(indexed.id);
                rows.subjects.push(indexed.subject.to_owned());
                rows.versions.push(seq(indexed.stream_version));
            }
        }
        Ok(rows)
    }
}

/// Records of one prefix read a page at a time from either end.
pub(crate) struct Pages {
    store: Arc<PostgresStore>,
    prefix: u8,
    /// The numbers not yet read (inclusive), `None` once every one has been.
    remaining: Option<(u64, u64)>,
    front: VecDeque<(u64, sled::IVec)>,
    /// Read from the high end, highest first.
    back: VecDeque<(u64, sled::IVec)>,
    failed: bool,
}

impl Pages {
    fn page_rows(&self) -> i64 {
        // Chunks are about 4 KiB each.
        if self.prefix == keys::CHUNK {
            64
        } else {
            512
        }
    }

    /// Reads the next page from the low end (`descending`: the high end) of what remains.
    fn refill(&mut self, descending: bool) -> Result<(), sled::Error> {
        let Some((low, high)) = self.remaining else {
            return Ok(());
        };
        let page = self
            .store
            .fetch(self.prefix, (low, high), descending, self.page_rows())
            .map_err(read_error)?;
        self.remaining = match page.last() {
            None => None,
            Some((n, _)) if descending => n.checked_sub(1).filter(|h| *h >= low).map(|h| (low, h)),
            Some((n, _)) => n.checked_add(1).filter(|l| *l <= high).map(|l| (l, high)),
        };
        if descending {
            self.back.extend(page);
        } else {
            self.front.extend(page);
        }
        Ok(())
    }

    fn take(&mut self, descending: bool) -> Option<Result<Record, sled::Error>> {
        if self.failed {
            return None;
        }
        let own_empty = if descending {
            self.back.is_empty()
        } else {
            self.front.is_empty()
        };
        if own_empty {
            if let Err(e) = self.refill(descending) {
                self.failed = true;
                return Some(Err(e));
            }
        }
        let next = if descending {
            self.back.pop_front().or_else(|| self.front.pop_back())
        } else {
            self.front.pop_front().or_else(|| self.back.pop_back())
        };
        next.map(|(n, value)| Ok((sled::IVec::from(&super::key(self.prefix, n)[..]), value)))
    }
}

impl Iterator for Pages {
    type Item = Result<Record, sled::Error>;
    fn next(&mut self) -> Option<Self::Item> {
        self.take(false)
    }
}

impl DoubleEndedIterator for Pages {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.take(true)
    }
}
