//! Projection snapshots of the published state: the current one (rewritten every
//! [`SNAPSHOT_EVERY_ENTRIES`]) and the retained ones, for time travel.

use super::sequencer::Shared;
use super::CommandError;
use events::{Log, Timestamp};
use projections::snapshot;
use projections::state::GovernanceState;
use std::sync::{Arc, Mutex, PoisonError};

/// Name under which the governance snapshot is stored.
pub const SNAPSHOT_NAME: &str = "governance";
/// Save a snapshot after folding this many entries.
pub const SNAPSHOT_EVERY_ENTRIES: u64 = 10_000;
/// Retained snapshots, for time travel, are stored as `governance@<seq>@<unix micros>` (both
/// zero-padded to 20 digits, so names sort by seq): a past state is folded from the nearest one
/// at or before it instead of from genesis.
pub const RETAINED_SNAPSHOT_PREFIX: &str = "governance@";
/// The list of retained snapshots' names, one per line, in seq order. Kept apart because
/// listing the snapshots themselves would read every one of them (sled yields values with keys).
pub const RETAINED_SNAPSHOT_INDEX: &str = "governance-retained";
/// Keep a snapshot for time travel at least this many entries apart.
pub const RETAIN_SNAPSHOT_EVERY_ENTRIES: u64 = 100_000;

fn retained_snapshot_name(seq: u64, time: Timestamp) -> String {
    format!(
        "{RETAINED_SNAPSHOT_PREFIX}{seq:020}@{:020}",
        time.unix_micros().max(0)
    )
}

/// The (seq, time) a retained snapshot's name says it covers.
fn parse_retained_snapshot_name(name: &str) -> Option<(u64, Timestamp)> {
    let (seq, micros) = name
        .strip_prefix(RETAINED_SNAPSHOT_PREFIX)?
        .split_once('@')?;
    Some((
        seq.parse().ok()?,
        Timestamp::from_unix_micros(micros.parse().ok()?),
    ))
}

/// Seals `state` with the hash of the log's entry at the seq it covers, which ties it to this
/// log (see [`open_sealed`]).
fn seal_for(log: &Log, state: &GovernanceState, seq: u64) -> Result<Vec<u8>, CommandError> {
    let head = log
        .get(seq)?
        .ok_or_else(|| {
            CommandError::Unavailable(format!("the state covers seq {seq}, beyond the log"))
        })?
        .hash();
    Ok(snapshot::seal(state, seq, head))
}

/// Opens a sealed snapshot if it was folded from this log: the log's entry at the seq it covers
/// must have the hash it was sealed with (a snapshot copied from another data directory, or one
/// whose log was rewritten, is refused, so its state is never used).
///
/// # Errors
/// Why it cannot be used.
pub fn open_sealed(log: &Log, bytes: &[u8]) -> Result<(u64, GovernanceState), String> {
    let sealed = snapshot::unseal(bytes).map_err(|e| e.to_string())?;
    let found = log
        .get(sealed.seq)
        .map_err(|e| e.to_string())?
        .map(|entry| entry.hash());
    match found {
        Some(hash) if hash == sealed.head => Ok((sealed.seq, sealed.state)),
        Some(hash) => Err(format!(
            "the snapshot was folded from another log: it names entry {} as {}, this log's is {hash}",
            sealed.seq, sealed.head
        )),
        None => Err(format!(
            "the snapshot covers seq {}, beyond the log's entries",
            sealed.seq
        )),
    }
}

/// When the next snapshots are due.
#[derive(Debug, Default)]
pub(super) struct SnapshotKeeper(Mutex<Due>);

#[derive(Debug, Default)]
struct Due {
    /// Entries folded since the last snapshot was saved.
    since_snapshot: u64,
    /// The seq of the latest retained snapshot.
    last_retained: Option<u64>,
    /// A snapshot is being sealed on its own thread.
    sealing: bool,
    /// That thread.
    sealer: Option<std::thread::JoinHandle<()>>,
}

impl SnapshotKeeper {
    pub(super) fn new(folded: u64, last_retained: Option<u64>) -> Self {
        Self(Mutex::new(Due {
            since_snapshot: folded,
            last_retained,
            sealing: false,
            sealer: None,
        }))
    }

    fn due(&self) -> std::sync::MutexGuard<'_, Due> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts `entries` newly published and, when a snapshot is due, saves (and retains) one
    /// on a thread of its own from a copy of the published state: sealing and writing a large
    /// state takes long enough to stall every command if the sequencer waited for it.
    pub(super) fn folded(&self, shared: &Arc<Shared>, entries: u64) {
        {
            let mut due = self.due();
            due.since_snapshot += entries;
            if due.since_snapshot < SNAPSHOT_EVERY_ENTRIES || due.sealing {
                return;
            }
            due.sealing = true;
        }
        let state = shared
            .published
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("trustledger-snapshot".into())
            .spawn(move || shared.snapshots.seal_and_store(&shared.log, &state));
        let mut due = self.due();
        match spawned {
            Ok(sealer) => due.sealer = Some(sealer),
            Err(_) => due.sealing = false,
        }
    }

    /// Waits for a snapshot being sealed, if one is.
    pub(super) fn wait(&self) {
        let sealer = self.due().sealer.take();
        if let Some(sealer) = sealer {
            let _ = sealer.join();
        }
    }

    /// Saves `state` (and retains it, when one is due); a failure only costs a longer start-up
    /// or time travel, as the entries are durable.
    fn seal_and_store(&self, log: &Log, state: &GovernanceState) {
        let sealed = state.last_seq.map(|seq| (seq, seal_for(log, state, seq)));
        let mut due = self.due();
        due.sealing = false;
        let Some((seq, Ok(sealed))) = sealed else {
            return;
        };
        if log.put_snapshot(SNAPSHOT_NAME, &sealed).is_ok() {
            due.since_snapshot = due.since_snapshot.saturating_sub(SNAPSHOT_EVERY_ENTRIES);
        }
        let retain = due
            .last_retained
            .is_none_or(|last| seq >= last + RETAIN_SNAPSHOT_EVERY_ENTRIES);
        if retain {
            let _ = store_retained(log, &mut due, state, &sealed);
        }
    }

    /// Seals `state` as the stored snapshot. Returns the seq it covers.
    pub(super) fn save(
        &self,
        log: &Log,
        state: &GovernanceState,
    ) -> Result<Option<u64>, CommandError> {
        let Some(seq) = state.last_seq else {
            return Ok(None);
        };
        let mut due = self.due();
        log.put_snapshot(SNAPSHOT_NAME, &seal_for(log, state, seq)?)?;
        due.since_snapshot = 0;
        Ok(Some(seq))
    }

    /// Stores `state` as a retained snapshot. Returns the seq it covers.
    pub(super) fn retain(
        &self,
        log: &Log,
        state: &GovernanceState,
    ) -> Result<Option<u64>, CommandError> {
        let Some(seq) = state.last_seq else {
            return Ok(None);
        };
        let sealed = seal_for(log, state, seq)?;
        store_retained(log, &mut self.due(), state, &sealed)?;
        Ok(Some(seq))
    }
}

/// Stores `sealed` (`state`, sealed) as a retained snapshot, then lists it in the index: a crash
/// in between leaves an unlisted snapshot, never a listed one that is missing.
fn store_retained(
    log: &Log,
    due: &mut Due,
    state: &GovernanceState,
    sealed: &[u8],
) -> Result<(), CommandError> {
    let (Some(seq), Some(time)) = (state.last_seq, state.last_time) else {
        return Ok(());
    };
    let name = retained_snapshot_name(seq, time);
    log.put_snapshot(&name, sealed)?;
    let mut index = log
        .get_snapshot(RETAINED_SNAPSHOT_INDEX)?
        .unwrap_or_default();
    index.extend_from_slice(name.as_bytes());
    index.push(b'\n');
    log.put_snapshot(RETAINED_SNAPSHOT_INDEX, &index)?;
    due.last_retained = Some(seq);
    Ok(())
}

/// The retained snapshots: (name, seq, time), by seq.
///
/// # Errors
/// If the store cannot be read.
pub fn retained_snapshots(log: &Log) -> Result<Vec<(String, u64, Timestamp)>, CommandError> {
    let index = log
        .get_snapshot(RETAINED_SNAPSHOT_INDEX)?
        .unwrap_or_default();
    let mut retained: Vec<_> = String::from_utf8_lossy(&index)
        .lines()
        .filter_map(|name| {
            let (seq, time) = parse_retained_snapshot_name(name)?;
            Some((name.to_owned(), seq, time))
        })
        .collect();
    retained.sort_by_key(|(_, seq, _)| *seq);
    Ok(retained)
}
