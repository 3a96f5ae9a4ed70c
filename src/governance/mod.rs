//! The governance service: folds the log into [`GovernanceState`], checks the caller's role, and
//! has the sequencer decide each command with the pure policy and append it.
//!
//! Commands queue to one sequencer ([`sequencer`]), which decides them in arrival order against
//! a state that includes every earlier decision, durable or not, and group-commits them; readers
//! see the published state, which holds only durable entries and is locked only while the
//! sequencer folds a commit's entries into it (in memory, never across IO).

mod access;
mod backtest_check;
mod digest;
pub mod role;
mod sequencer;
mod snapshots;

pub use access::{
    authenticate, authenticate_digest, new_token, roles_for, token_in_force, Principal, Role,
    CLI_ADMIN,
};
pub use digest::{digest_stream, DigestError, ARTIFACT_BYTES_MAX, SBOM_BYTES_MAX};
pub use snapshots::{
    open_sealed, retained_snapshots, RETAINED_SNAPSHOT_INDEX, RETAINED_SNAPSHOT_PREFIX,
    RETAIN_SNAPSHOT_EVERY_ENTRIES, SNAPSHOT_EVERY_ENTRIES, SNAPSHOT_NAME,
};

use events::{AppendError, Appended, Clock, Log, ReadError, Timestamp};
use projections::genesis::{genesis_events, GENESIS_ACTOR};
use projections::policy::{Command, Rejection};
use projections::snapshot;
use projections::state::GovernanceState;
use sequencer::{Queued, Sequencer, Shared};
use snapshots::SnapshotKeeper;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Most commands waiting for the sequencer; past it, [`Governance::submit`] answers
/// [`CommandError::Busy`] at once.
pub const COMMAND_QUEUE_MAX: usize = 4096;

/// Why a command did not take effect. Nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The caller lacks every role the command needs.
    #[error("{principal} needs one of the roles {needed:?}")]
    Unauthorized {
        /// The caller.
        principal: String,
        /// Roles that would do.
        needed: &'static [Role],
    },
    /// The policy refused it.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The log refused or failed the append.
    #[error("append: {0}")]
    Append(#[from] AppendError),
    /// The log could not be read.
    #[error("read: {0}")]
    Read(#[from] ReadError),
    /// The command queue is full: retry shortly.
    #[error("the command queue is full ({0} waiting)")]
    Busy(usize),
    /// The service cannot decide now: the log refuses writes, or an earlier decision this one
    /// was decided after failed to commit.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// This node follows another that leads (several nodes on one database): commands go to the
    /// leader, at its advertised URL when it gave one.
    #[error("this node follows; commands go to the leader{}", .0.as_ref().map(|u| format!(" at {u}")).unwrap_or_default())]
    NotLeader(Option<String>),
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// These entries were appended (in order).
    Appended(Vec<Appended>),
    /// An idempotent retry of an earlier submission: nothing new was written.
    Replayed {
        /// The deployment the original submission created.
        deployment_id: Uuid,
    },
}

/// Where new event and entity ids come from.
#[derive(Debug)]
pub enum IdSource {
    /// Random v4 UUIDs from the operating system.
    Random,
    /// Deterministic v4-shaped UUIDs from a seed (simulations, tests).
    Seeded(u64),
}

impl IdSource {
    /// The next id.
    pub fn next_id(&mut self) -> Uuid {
        match self {
            Self::Random => Uuid::new_v4(),
            Self::Seeded(state) => {
                let mut bytes = [0u8; 16];
                for half in bytes.chunks_mut(8) {
                    // splitmix64
                    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut z = *state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    half.copy_from_slice(&(z ^ (z >> 31)).to_be_bytes());
                }
                uuid::Builder::from_random_bytes(bytes).into_uuid()
            }
        }
    }
}

/// Borrowed access to the published state (see [`Governance::read`]).
pub struct StateGuard<'a>(RwLockReadGuard<'a, GovernanceState>);

impl std::ops::Deref for StateGuard<'_> {
    type Target = GovernanceState;
    fn deref(&self) -> &GovernanceState {
        &self.0
    }
}

/// How `Governance::open` built its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenedFrom {
    /// From the snapshot covering up to `seq`, then the tail of the log.
    Snapshot {
        /// Last seq the snapshot covered.
        seq: u64,
    },
    /// By folding the whole log; `discarded` says why a stored snapshot was not used.
    Rebuilt {
        /// Why the stored snapshot was refused, if there was one.
        discarded: Option<String>,
    },
}

/// The governance service over one log.
pub struct Governance {
    shared: Arc<Shared>,
    commands: Option<mpsc::Sender<Queued>>,
    sequencer: Option<std::thread::JoinHandle<()>>,
    opened_from: OpenedFrom,
}

impl std::fmt::Debug for Governance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governance")
            .field("log", &self.shared.log)
            .finish_non_exhaustive()
    }
}

impl Drop for Governance {
    fn drop(&mut self) {
        // Closing the queue lets the sequencer answer everything queued, then end.
        drop(self.commands.take());
        if let Some(handle) = self.sequencer.take() {
            let _ = handle.join();
        }
        self.shared.snapshots.wait();
    }
}

/// Entries folded per read while rebuilding.
const FOLD_PAGE: usize = 4096;

/// Folds the log from `state`'s next entry up to the head, or to the last entry `keep` accepts.
/// Returns how many entries it folded.
fn fold_log(
    log: &Log,
    state: &mut GovernanceState,
    keep: impl Fn(&events::Entry) -> bool,
) -> Result<u64, ReadError> {
    let mut next = state.last_seq.map_or(0, |s| s + 1);
    let mut folded = 0u64;
    loop {
        let page = log.read_range(next, FOLD_PAGE)?;
        let Some(last) = page.last() else { break };
        next = last.seq + 1;
        for entry in &page {
            if !keep(entry) {
                return Ok(folded);
            }
            state.apply(entry);
            folded += 1;
        }
    }
    Ok(folded)
}

/// The stored snapshot, if it is usable, and how the state will be built.
fn stored_snapshot(log: &Log) -> Result<(GovernanceState, OpenedFrom), CommandError> {
    let head = log.head().size;
    let reading = std::time::Instant::now();
    let stored = log.get_snapshot(SNAPSHOT_NAME)?;
    let read_ms = reading.elapsed().as_millis();
    let unsealing = std::time::Instant::now();
    let unsealed = stored.map(|bytes| open_sealed(log, &bytes));
    tracing::debug!(
        read_ms,
        unseal_ms = unsealing.elapsed().as_millis(),
        "snapshot read and unsealed"
    );
    let rebuilt = |discarded| (GovernanceState::new(), OpenedFrom::Rebuilt { discarded });
    Ok(match unsealed {
        Some(Ok((seq, state))) if seq < head => (state, OpenedFrom::Snapshot { seq }),
        Some(Ok((seq, _))) => rebuilt(Some(format!(
            "the snapshot covers seq {seq}, beyond the log's {head} entries"
        ))),
        Some(Err(reason)) => {
            tracing::warn!(%reason, "the stored snapshot is not used; the state is rebuilt from the log");
            rebuilt(Some(reason))
        }
        None => rebuilt(None),
    })
}

impl Governance {
    /// Folds the whole log and, if it is empty, writes the genesis configuration; then starts
    /// the sequencer.
    ///
    /// `clock` must be the log's clock: decisions are made at its time.
    ///
    /// # Errors
    /// If the log cannot be read or the genesis append fails.
    pub fn open(log: Log, clock: Arc<dyn Clock>, ids: IdSource) -> Result<Self, CommandError> {
        Self::open_as(log, clock, ids, true)
    }

    /// [`Governance::open`] for a node that starts as a follower (see [`role`]): it writes
    /// nothing, genesis included, until it is promoted.
    ///
    /// # Errors
    /// If the log cannot be read.
    pub fn open_following(
        log: Log,
        clock: Arc<dyn Clock>,
        ids: IdSource,
    ) -> Result<Self, CommandError> {
        Self::open_as(log, clock, ids, false)
    }

    fn open_as(
        log: Log,
        clock: Arc<dyn Clock>,
        mut ids: IdSource,
        leading: bool,
    ) -> Result<Self, CommandError> {
        let (mut state, opened_from) = stored_snapshot(&log)?;
        let mut folded = fold_log(&log, &mut state, |_| true)?;
        if log.head().size == 0 && leading {
            let at = clock.now();
            let correlation = "genesis";
            let mut cause: Option<Uuid> = None;
            let drafts = genesis_events()
                .iter()
                .map(|(subject, payload)| {
                    let id = ids.next_id();
                    let mut draft = payload.to_draft(id, subject, GENESIS_ACTOR, correlation);
                    draft.causation_id = cause.map(|c| c.to_string());
                    cause.get_or_insert(id);
                    draft
                })
                .collect();
            log.append_batch_at_blocking(drafts, Some(at))?;
            folded += fold_log(&log, &mut state, |_| true)?;
        }
        let last_retained = retained_snapshots(&log)?.last().map(|(_, seq, _)| *seq);
        let shared = Arc::new(Shared {
            log,
            clock,
            ids: Mutex::new(ids),
            published: RwLock::new(state.clone()),
            failure: Mutex::new(None),
            snapshots: SnapshotKeeper::new(folded, last_retained),
            role: role::Role::new(leading),
        });
        if folded >= SNAPSHOT_EVERY_ENTRIES {
            shared.snapshots.save(&shared.log, &state)?;
        }
        let (commands, inbox) = mpsc::channel(COMMAND_QUEUE_MAX);
        let sequencer = Sequencer::new(Arc::clone(&shared), state);
        let handle = std::thread::Builder::new()
            .name("trustledger-sequencer".into())
            .spawn(move || sequencer.run(inbox))
            .map_err(|e| CommandError::Unavailable(format!("starting the sequencer: {e}")))?;
        Ok(Self {
            shared,
            commands: Some(commands),
            sequencer: Some(handle),
            opened_from,
        })
    }

    /// The log.
    pub fn log(&self) -> &Log {
        &self.shared.log
    }

    /// How the state was built on open.
    pub fn opened_from(&self) -> &OpenedFrom {
        &self.opened_from
    }

    /// Commands waiting for the sequencer.
    pub fn queued_commands(&self) -> usize {
        self.commands
            .as_ref()
            .map_or(0, |c| COMMAND_QUEUE_MAX - c.capacity())
    }

    /// Why the service refuses commands, once a commit failed (the log refuses writes until it
    /// is reopened).
    pub fn failure(&self) -> Option<String> {
        self.shared.failure()
    }

    /// Seals the published state as the stored snapshot. Returns the seq it covers.
    ///
    /// # Errors
    /// If the snapshot cannot be stored.
    pub fn save_snapshot(&self) -> Result<Option<u64>, CommandError> {
        self.shared.snapshots.save(&self.shared.log, &self.read())
    }

    /// Stores the published state as a retained snapshot, for time travel. Returns the seq it
    /// covers. The service retains one every [`RETAIN_SNAPSHOT_EVERY_ENTRIES`] on its own.
    ///
    /// # Errors
    /// If the snapshot cannot be stored.
    pub fn retain_snapshot(&self) -> Result<Option<u64>, CommandError> {
        self.shared.snapshots.retain(&self.shared.log, &self.read())
    }

    /// The retained snapshots: (name, seq, time), by seq.
    ///
    /// # Errors
    /// If the store cannot be read.
    pub fn retained_snapshots(&self) -> Result<Vec<(String, u64, Timestamp)>, CommandError> {
        retained_snapshots(&self.shared.log)
    }

    /// The fingerprint of the published state and the seq it covers.
    pub fn fingerprint(&self) -> (Option<u64>, events::Digest) {
        self.with_state(|s| (s.last_seq, snapshot::fingerprint(s)))
    }

    /// A copy of the published state.
    pub fn state(&self) -> GovernanceState {
        self.read().clone()
    }

    /// A read guard on the published state. The sequencer waits for it only to fold a commit's
    /// entries in: keep it short, and never across an `.await`.
    pub fn read(&self) -> StateGuard<'_> {
        StateGuard(
            self.shared
                .published
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Runs `read` against the published state without copying it.
    pub fn with_state<T>(&self, read: impl FnOnce(&GovernanceState) -> T) -> T {
        read(&self.read())
    }

    /// The log's time now: its clock, never before the last durable entry.
    pub fn current_time(&self) -> Timestamp {
        let now = self.shared.clock.now();
        self.with_state(|s| s.last_time.map_or(now, |last| last.max(now)))
    }

    /// A fresh id (for commands that create things).
    pub fn new_id(&self) -> Uuid {
        self.shared.next_id()
    }

    fn authorize(principal: &Principal, command: &Command) -> Result<(), CommandError> {
        let needed = roles_for(command);
        if needed.iter().any(|r| principal.roles.contains(r)) {
            Ok(())
        } else {
            Err(CommandError::Unauthorized {
                principal: principal.name.clone(),
                needed,
            })
        }
    }

    fn queued(
        principal: &Principal,
        command: Command,
    ) -> (Queued, oneshot::Receiver<Result<Outcome, CommandError>>) {
        let (reply, answer) = oneshot::channel();
        let queued = Queued {
            actor: principal.name.clone(),
            command,
            reply,
        };
        (queued, answer)
    }

    fn closed() -> CommandError {
        CommandError::Append(AppendError::Closed)
    }

    /// Checks the caller's role and has the sequencer decide the command; returns once its
    /// entries are durable. Waits for room in the queue. For callers outside an async runtime
    /// (the command line, the simulation, tests); the API uses [`Governance::submit`].
    ///
    /// # Errors
    /// [`CommandError`]; nothing was written when one is returned.
    ///
    /// # Panics
    /// If called from inside an async runtime.
    pub fn execute(
        &self,
        principal: &Principal,
        command: &Command,
    ) -> Result<Outcome, CommandError> {
        Self::authorize(principal, command)?;
        self.check_cited_backtest(command)?;
        let (queued, answer) = Self::queued(principal, command.clone());
        let commands = self.commands.as_ref().ok_or_else(Self::closed)?;
        commands.blocking_send(queued).map_err(|_| Self::closed())?;
        answer.blocking_recv().map_err(|_| Self::closed())?
    }

    /// [`Governance::execute`] for async callers, which never waits for room in the queue: a
    /// full queue is [`CommandError::Busy`].
    ///
    /// # Errors
    /// [`CommandError`]; nothing was written when one is returned.
    pub async fn submit(
        &self,
        principal: &Principal,
        command: Command,
    ) -> Result<Outcome, CommandError> {
        Self::authorize(principal, &command)?;
        // A cited backtest folds the log: off the async workers where the runtime allows.
        match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::CurrentThread => self.check_cited_backtest(&command)?,
            _ => tokio::task::block_in_place(|| self.check_cited_backtest(&command))?,
        }
        let (queued, answer) = Self::queued(principal, command);
        let commands = self.commands.as_ref().ok_or_else(Self::closed)?;
        commands.try_send(queued).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => CommandError::Busy(COMMAND_QUEUE_MAX),
            mpsc::error::TrySendError::Closed(_) => Self::closed(),
        })?;
        answer.await.map_err(|_| Self::closed())?
    }
}

/// A point in the log's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// After the entry with this seq.
    Seq(u64),
    /// After the last entry at or before this time.
    Time(Timestamp),
}

/// The principal the service acts as for scheduled work.
pub use projections::policy::SCHEDULER;

impl Governance {
    /// The state as it was at `as_of`, rebuilt by folding the log up to there.
    ///
    /// # Errors
    /// If the log cannot be read.
    pub fn state_as_of(&self, as_of: AsOf) -> Result<GovernanceState, CommandError> {
        Ok(self.state_as_of_traced(as_of)?.0)
    }

    /// [`Governance::state_as_of`], also saying where the fold started: `Some(seq)` from the
    /// retained snapshot covering up to `seq`, `None` from genesis (or the published state
    /// itself, when the point is at or after it).
    ///
    /// # Errors
    /// If the log cannot be read.
    pub fn state_as_of_traced(
        &self,
        as_of: AsOf,
    ) -> Result<(GovernanceState, Option<u64>), CommandError> {
        let covers = |seq: u64, time: Timestamp| match as_of {
            AsOf::Seq(s) => seq <= s,
            AsOf::Time(t) => time <= t,
        };
        {
            let live = self.read();
            if let (Some(seq), Some(time)) = (live.last_seq, live.last_time) {
                if covers(seq, time) {
                    return Ok((live.clone(), None));
                }
            }
        }
        // The nearest retained snapshot at or before the point; one that fails its checks is
        // skipped (snapshots are a cache, never a source of truth).
        let log = &self.shared.log;
        let mut start = None;
        for (name, seq, time) in retained_snapshots(log)?.into_iter().rev() {
            if !covers(seq, time) {
                continue;
            }
            if let Some(Ok((_, state))) = log.get_snapshot(&name)?.map(|b| open_sealed(log, &b)) {
                start = Some((state, seq));
                break;
            }
        }
        let started_from = start.as_ref().map(|(_, seq)| *seq);
        let mut state = start.map_or_else(GovernanceState::new, |(state, _)| state);
        fold_log(log, &mut state, |entry| match as_of {
            AsOf::Seq(seq) => entry.seq <= seq,
            AsOf::Time(t) => entry.time <= t,
        })?;
        Ok((state, started_from))
    }

    /// Runs the scheduled maturity evaluation if `cadence_micros` of log time have passed since
    /// the last one (or since the level took effect). Returns whether it ran.
    ///
    /// # Errors
    /// As [`Governance::execute`].
    pub fn evaluate_if_due(&self, cadence_micros: i64, strict: bool) -> Result<bool, CommandError> {
        let now = self.current_time();
        let due = self.with_state(|s| {
            let last = s.last_evaluation.as_ref().map(|e| e.at).or(s.level_since);
            last.is_none_or(|t| now.unix_micros() - t.unix_micros() >= cadence_micros)
        });
        if due {
            let scheduler = Principal::new(SCHEDULER, &[Role::Operator]);
            self.execute(&scheduler, &Command::EvaluateMaturity { strict })?;
        }
        Ok(due)
    }
}
