//! The writer thread: it owns the head, takes every request waiting, checks each against the
//! head and the requests before it in its group, and writes the group as one atomic, durable
//! commit (a sled batch, or a PostgreSQL transaction) before it answers.

use super::store::{Commit, CommitError};
use super::*;

/// Makes sled's writes reach the disk: `fdatasync` of its `db` file and of any blob files; and
/// marks each durable head (see [`super::head_mark`]).
pub(super) struct DiskSync {
    dir: PathBuf,
    db_file: File,
    synced_blobs: BTreeSet<std::ffi::OsString>,
    pub(super) mark: super::head_mark::HeadMark,
}

impl DiskSync {
    pub(super) fn open(dir: &Path) -> std::io::Result<Self> {
        let disk = Self {
            dir: dir.to_owned(),
            db_file: File::open(dir.join("db"))?,
            synced_blobs: BTreeSet::new(),
            mark: super::head_mark::HeadMark::open(dir)?,
        };
        Ok(disk)
    }

    pub(super) fn sync(&mut self) -> std::io::Result<()> {
        self.db_file.sync_data()?;
        // sled writes values too large for a log segment as separate blob files.
        let blobs = self.dir.join("blobs");
        let mut new_blob = false;
        if let Ok(listing) = std::fs::read_dir(&blobs) {
            for item in listing {
                let item = item?;
                if !self.synced_blobs.contains(&item.file_name()) {
                    File::open(item.path())?.sync_data()?;
                    self.synced_blobs.insert(item.file_name());
                    new_blob = true;
                }
            }
        }
        if new_blob {
            File::open(&blobs)?.sync_all()?;
        }
        Ok(())
    }
}

/// What the writer owns.
pub(super) struct Writer {
    pub(super) store: Store,
    /// A PostgreSQL commit whose outcome is unknown (the database failed while it committed):
    /// the head it would make, settled before the next commit (see [`Writer::settle`]).
    pub(super) uncertain: Option<Landing>,
    pub(super) origin: String,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) signer: Option<NoteSigner>,
    pub(super) durability: Durability,
    /// sled's files (none for PostgreSQL, whose commit is durable when it returns).
    pub(super) disk: Option<DiskSync>,
    pub(super) head: Head,
    pub(super) frontier: Frontier,
    pub(super) publish: watch::Sender<Head>,
    pub(super) stats: Arc<CommitStats>,
    pub(super) failed: Option<String>,
    /// `failed` says another writer moved the head: following it (see [`Writer::follow`])
    /// makes this writer current again.
    pub(super) fenced: bool,
    /// False only in the benchmark that measures what Merkle maintenance costs.
    pub(super) merkle_maintenance: bool,
    /// Shared with readers; the writer adds each group once it is durable.
    pub(super) index: Arc<IndexCell>,
    #[cfg(feature = "fault-injection")]
    pub(super) fail_next_commit: Arc<std::sync::atomic::AtomicBool>,
}

/// What a commit changes in memory once it is durable.
pub(super) struct Landing {
    pub(super) head: Head,
    pub(super) frontier: Frontier,
    pub(super) index_records: Vec<(u64, sled::IVec)>,
}

/// A chunk being assembled (see [`keys::CHUNK`]).
struct PendingChunk {
    first: u64,
    /// Entries' bytes, each followed by `\n`.
    entries: Vec<u8>,
    index: ChunkIndexWriter,
}

/// The head as a group is being assembled. A refused request is undone with [`Tentative::mark`]
/// and [`Tentative::undo`], so checking a request costs what it adds, not what the group holds.
struct Tentative {
    size: u64,
    last_hash: Digest,
    frontier: Frontier,
    /// The group's chunks, in seq order.
    chunks: Vec<PendingChunk>,
    /// Entries accepted earlier in this group, by id.
    ids: HashMap<Uuid, Entry>,
    /// Last stream version per subject touched in this group.
    streams: HashMap<String, u64>,
}

/// Enough of a [`Tentative`] to put it back as it was before a request.
struct Mark {
    size: u64,
    last_hash: Digest,
    frontier: Frontier,
    chunks: usize,
    /// The last chunk's lengths (entry bytes, index record).
    last_chunk: Option<(usize, (u32, usize, usize))>,
    /// Ids added by the request, to forget on undo.
    added_ids: Vec<Uuid>,
    /// Stream versions the request replaced (`None`: the subject was not in the map).
    replaced_streams: Vec<(String, Option<u64>)>,
}

impl Tentative {
    fn mark(&self) -> Mark {
        Mark {
            size: self.size,
            last_hash: self.last_hash,
            frontier: self.frontier.clone(),
            chunks: self.chunks.len(),
            last_chunk: self
                .chunks
                .last()
                .map(|c| (c.entries.len(), c.index.mark())),
            added_ids: Vec::new(),
            replaced_streams: Vec::new(),
        }
    }

    fn undo(&mut self, mark: Mark) {
        self.size = mark.size;
        self.last_hash = mark.last_hash;
        self.frontier = mark.frontier;
        self.chunks.truncate(mark.chunks);
        if let (Some(chunk), Some((entries, index))) = (self.chunks.last_mut(), mark.last_chunk) {
            chunk.entries.truncate(entries);
            chunk.index.truncate(index);
        }
        for id in mark.added_ids {
            self.ids.remove(&id);
        }
        for (subject, previous) in mark.replaced_streams.into_iter().rev() {
            match previous {
                Some(v) => self.streams.insert(subject, v),
                None => self.streams.remove(&subject),
            };
        }
    }
}

impl Writer {
    pub(super) fn run(mut self, mut inbox: mpsc::Receiver<Message>) {
        let mut carried: Option<Request> = None;
        loop {
            let first = match carried.take() {
                Some(r) => r,
                None => match inbox.blocking_recv() {
                    Some(Message::Append(r)) => r,
                    Some(Message::Follow(reply)) => {
                        let _ = reply.send(self.follow());
                        continue;
                    }
                    None => break,
                },
            };
            let mut entries = first.drafts.len();
            let mut group = vec![first];
            let mut follow = None;
            while entries < GROUP_ENTRIES_MAX {
                match inbox.try_recv() {
                    Ok(Message::Append(r)) if entries + r.drafts.len() > GROUP_ENTRIES_MAX => {
                        carried = Some(r);
                        break;
                    }
                    Ok(Message::Append(r)) => {
                        entries += r.drafts.len();
                        group.push(r);
                    }
                    Ok(Message::Follow(reply)) => {
                        follow = Some(reply);
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(group);
            if let Some(reply) = follow {
                let _ = reply.send(self.follow());
            }
        }
        if let Store::Sled { db, .. } = &self.store {
            let _ = db.flush();
        }
    }

    /// The indexes (rebuilt before the first commit: see [`Writer::commit_group`]).
    fn index(&self) -> &RwLock<LogIndex> {
        &self.index.wait().index
    }

    fn stream_last_version(&self, tentative: &Tentative, subject: &str) -> Option<u64> {
        tentative.streams.get(subject).copied().or_else(|| {
            self.index()
                .read()
                .expect("index lock")
                .last_version(subject)
        })
    }

    fn existing(&self, tentative: &Tentative, id: &Uuid) -> Result<Option<Entry>, String> {
        if let Some(e) = tentative.ids.get(id) {
            return Ok(Some(e.clone()));
        }
        let Some(seq) = self
            .index()
            .read()
            .expect("index lock")
            .ids
            .get(id)
            .copied()
        else {
            return Ok(None);
        };
        let bytes = stored_entry(&self.store, seq)
            .map_err(|e| e.to_string())?
            .ok_or("the id index points past the log")?;
        Entry::parse(&bytes)
            .map(Some)
            .map_err(|e| format!("entry {seq}: {e}"))
    }

    /// Checks one request against `tentative`, extending it if every draft is accepted.
    fn try_request(
        &self,
        drafts: &[PreparedDraft],
        time: Timestamp,
        expect: Option<&Expectation>,
        tentative: &mut Tentative,
    ) -> Result<Vec<Appended>, AppendError> {
        // `prepare_request` refused empty and oversized requests before they were sent.
        debug_assert!(!drafts.is_empty() && drafts.len() <= APPEND_ENTRIES_MAX);
        if let Some(expect) = expect {
            if expect.after != (tentative.size, tentative.last_hash) {
                return Err(AppendError::HeadMoved {
                    expected: expect.after.0,
                    expected_hash: expect.after.1,
                    actual: tentative.size,
                });
            }
        }
        let mut mark = tentative.mark();
        let outcome = self.add_request(drafts, time, expect, tentative, &mut mark);
        if outcome.is_err() {
            tentative.undo(mark);
        }
        outcome
    }

    fn add_request(
        &self,
        drafts: &[PreparedDraft],
        time: Timestamp,
        expect: Option<&Expectation>,
        next: &mut Tentative,
        mark: &mut Mark,
    ) -> Result<Vec<Appended>, AppendError> {
        let mut results = Vec::with_capacity(drafts.len());
        for (index, prepared) in drafts.iter().enumerate() {
            let draft = &prepared.draft;
            if let Some(previous) = self
                .existing(next, &draft.id)
                .map_err(AppendError::Storage)?
            {
                // A sequenced append carries new entries only: its caller folded them as new.
                if expect.is_some() || !draft.same_content_as(&previous) {
                    return Err(AppendError::IdConflict {
                        id: draft.id,
                        seq: previous.seq,
                    });
                }
                results.push(Appended {
                    seq: previous.seq,
                    hash: previous.hash(),
                    stream_version: previous.stream_version,
                    time: previous.time,
                    duplicate: true,
                });
                continue;
            }
            let last = self.stream_last_version(next, &draft.subject);
            let matches = match draft.expected {
                ExpectedVersion::Any => true,
                ExpectedVersion::NoStream => last.is_none(),
                ExpectedVersion::Exactly(v) => last == Some(v),
            };
            if !matches {
                return Err(AppendError::VersionConflict {
                    subject: draft.subject.clone(),
                    expected: draft.expected,
                    actual: last,
                });
            }
            let stream_version = last.map_or(0, |v| v + 1);
            let position = Position {
                seq: next.size,
                stream_version,
                time,
                prev_hash: next.last_hash,
            };
            let entry = Entry::build_prepared(prepared, &self.origin, position)
                .map_err(|source| AppendError::Invalid { index, source })?;
            let hash = entry.hash();
            if let Some(expected) = expect.and_then(|e| e.hashes.get(index)) {
                if *expected != hash {
                    return Err(AppendError::Diverged {
                        seq: entry.seq,
                        expected: *expected,
                        written: hash,
                    });
                }
            }
            // Pair assertion: what is about to be written links to what precedes it.
            assert_eq!(entry.seq, next.size);
            assert_eq!(entry.prev_hash, next.last_hash);
            let leaf = if self.merkle_maintenance {
                merkle::leaf_hash(entry.bytes())
            } else {
                Digest::ZERO
            };
            let mut completed = Vec::new();
            if self.merkle_maintenance {
                next.frontier.push(leaf, |node| {
                    if node.level > 0 {
                        completed.extend_from_slice(&node.hash.0);
                    }
                });
            } else {
                // Same record layout, so the store still reads; the nodes are simply zero.
                completed.resize(keys::nodes_completed_by(entry.seq) * 32, 0);
            }
            let chunk = match next.chunks.last_mut() {
                Some(chunk) if chunk.entries.len() < keys::CHUNK_BYTES_TARGET => chunk,
                _ => {
                    next.chunks.push(PendingChunk {
                        first: entry.seq,
                        entries: Vec::with_capacity(keys::CHUNK_BYTES_TARGET + 1024),
                        index: ChunkIndexWriter::default(),
                    });
                    next.chunks.last_mut().expect("just pushed")
                }
            };
            chunk.entries.extend_from_slice(entry.bytes());
            chunk.entries.push(b'\n');
            chunk.index.push(
                IndexedEntry {
                    id: entry.id,
                    leaf,
                    stream_version,
                    subject: &entry.subject,
                },
                &completed,
            );
            let replaced = next.streams.insert(entry.subject.clone(), stream_version);
            mark.replaced_streams
                .push((entry.subject.clone(), replaced));
            results.push(Appended {
                seq: entry.seq,
                hash,
                stream_version,
                time,
                duplicate: false,
            });
            mark.added_ids.push(entry.id);
            next.ids.insert(entry.id, entry);
            next.size += 1;
            next.last_hash = hash;
        }
        Ok(results)
    }

    fn commit_group(&mut self, group: Vec<Request>) {
        if self.failed.is_none() {
            // The first commit waits for the indexes. Callers are refused before they get here
            // if rebuilding them found a problem (`Log::refusal`); this is a second guard.
            let loaded = self.index.wait();
            if let Some(e) = &loaded.storage_error {
                self.failed = Some(format!("the indexes could not be rebuilt: {e}"));
            } else if let Some((seq, reason)) = &loaded.problem {
                self.failed = Some(format!("seq {seq}: {reason}"));
            }
        }
        if let Err(reason) = self.settle() {
            for request in group {
                let _ = request
                    .reply
                    .send(Err(AppendError::Unavailable(reason.clone())));
            }
            return;
        }
        if let Some(reason) = &self.failed {
            let refusal = if self.fenced {
                AppendError::Fenced(reason.clone())
            } else {
                AppendError::Storage(reason.clone())
            };
            for request in group {
                let _ = request.reply.send(Err(refusal.clone()));
            }
            return;
        }
        let now = self.clock.now();
        let entries_in_group = group.iter().map(|r| r.drafts.len()).sum();
        // Each request's time: its own decision time or the clock, never before the last entry.
        let mut last_time = self.head.last_time;
        let mut tentative = Tentative {
            size: self.head.size,
            last_hash: self.head.last_hash,
            frontier: self.frontier.clone(),
            chunks: Vec::new(),
            ids: HashMap::with_capacity(entries_in_group),
            streams: HashMap::with_capacity(entries_in_group),
        };
        let outcomes: Vec<_> = group
            .into_iter()
            .map(|request| {
                let wanted = request.at.unwrap_or(now);
                let time = last_time.map_or(wanted, |last| last.max(wanted));
                let size_before = tentative.size;
                let outcome = self.try_request(
                    &request.drafts,
                    time,
                    request.expect.as_ref(),
                    &mut tentative,
                );
                if tentative.size > size_before {
                    last_time = Some(time);
                }
                (request.reply, outcome)
            })
            .collect();
        if tentative.size > self.head.size {
            let root = tentative.frontier.root();
            let chunks: Vec<_> = tentative
                .chunks
                .into_iter()
                .map(|chunk| {
                    (
                        chunk.first,
                        chunk.entries,
                        sled::IVec::from(chunk.index.encode()),
                    )
                })
                .collect();
            let checkpoints = self
                .signer
                .as_ref()
                .filter(|_| self.merkle_maintenance)
                .map(|signer| {
                    let note = Checkpoint {
                        origin: self.origin.clone(),
                        size: tentative.size,
                        root,
                    }
                    .sign(signer);
                    (tentative.size, note)
                })
                .into_iter()
                .collect();
            let landing = Landing {
                head: Head {
                    size: tentative.size,
                    last_hash: tentative.last_hash,
                    root,
                    last_time,
                },
                frontier: tentative.frontier,
                index_records: chunks
                    .iter()
                    .map(|(first, _, r)| (*first, r.clone()))
                    .collect(),
            };
            let commit = Commit {
                after: (self.head.size, self.head.last_hash),
                head: (tentative.size, tentative.last_hash),
                chunks,
                checkpoints,
            };
            let written = tentative.size - self.head.size;
            if let Err(failure) = self.write_durably(&commit, written) {
                let error = match failure {
                    CommitError::Fenced { found } => {
                        let reason = fenced(found);
                        self.failed = Some(reason.clone());
                        self.fenced = true;
                        AppendError::Fenced(reason)
                    }
                    CommitError::Storage(reason) if self.disk.is_none() => {
                        self.uncertain = Some(landing);
                        AppendError::Unavailable(reason)
                    }
                    CommitError::Storage(reason) => {
                        self.failed = Some(reason.clone());
                        AppendError::Storage(reason)
                    }
                };
                for (reply, outcome) in outcomes {
                    let _ = reply.send(outcome.and(Err(error.clone())));
                }
                return;
            }
            self.land(landing);
        }
        for (reply, outcome) in outcomes {
            let _ = reply.send(outcome);
        }
    }

    /// Takes in a durable commit: the head, the frontier, the indexes, the head mark.
    pub(super) fn land(&mut self, landing: Landing) {
        self.head = landing.head;
        self.frontier = landing.frontier;
        if let Some(disk) = self.disk.as_mut() {
            disk.mark.record(self.head.size, self.head.last_hash);
        }
        {
            let mut index = self.index().write().expect("index lock");
            for (first, record) in &landing.index_records {
                let chunk = ChunkIndex::decode(*first, record)
                    .expect("the writer decodes the records it just encoded");
                for (seq, indexed) in (*first..).zip(&chunk.entries) {
                    index
                        .add(seq, indexed)
                        .expect("the writer indexes only checked entries");
                }
            }
        }
        self.publish.send_replace(self.head);
    }

    /// Settles a commit whose outcome was unknown by reading PostgreSQL's head row: landed (take
    /// it in), not landed (carry on from the head before it), or another writer's head (stop:
    /// this writer is stale). While the database cannot say, every request gets its error.
    pub(super) fn settle(&mut self) -> Result<(), String> {
        let Some(landing) = self.uncertain.as_ref() else {
            return Ok(());
        };
        let pg = self
            .store
            .postgres()
            .expect("only a PostgreSQL commit is left uncertain");
        let found = pg.head()?;
        self.uncertain = if found == (landing.head.size, landing.head.last_hash) {
            let landing = self.uncertain.take().expect("checked above");
            self.land(landing);
            None
        } else if found == (self.head.size, self.head.last_hash) {
            None
        } else {
            self.failed = Some(fenced(found));
            self.fenced = true;
            None
        };
        Ok(())
    }

    fn write_durably(&mut self, commit: &Commit, entries: u64) -> Result<(), CommitError> {
        let started = std::time::Instant::now();
        self.write_and_sync(commit)?;
        self.stats.record(
            entries,
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        );
        Ok(())
    }

    fn write_and_sync(&mut self, commit: &Commit) -> Result<(), CommitError> {
        #[cfg(feature = "fault-injection")]
        if self
            .fail_next_commit
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(CommitError::Storage(
                "write: injected storage failure".into(),
            ));
        }
        self.store.commit(commit)?;
        if let Some(disk) = self
            .disk
            .as_mut()
            .filter(|_| self.durability == Durability::Fsync)
        {
            disk.sync()
                .map_err(|e| CommitError::Storage(format!("fsync: {e}")))?;
        }
        Ok(())
    }
}

/// Why a writer stopped after another writer moved the head.
fn fenced((size, hash): (u64, Digest)) -> String {
    format!(
        "another writer extended the log (its head is now {size} entries ending in {hash}): this \
         writer no longer leads and takes no more appends"
    )
}
