//! The governance service: folds the log into [`GovernanceState`], checks the caller's role, asks
//! the pure policy for a decision, and appends it as one atomic batch.
//!
//! Commands are serialised by a mutex so that every decision is made against the state that
//! includes every earlier decision (the log's own expected-version checks are a second line).

use events::payloads::Payload;
use events::{AppendError, Appended, Clock, Log, ReadError, Timestamp};
use projections::genesis::{genesis_events, GENESIS_ACTOR};
use projections::policy::{self, Command, Rejection};
use projections::snapshot;
use projections::state::GovernanceState;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;
use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

/// A role a principal may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads everything, changes nothing.
    Auditor,
    /// Runs the service; records evidence.
    Operator,
    /// Submits deployments and records evidence.
    Submitter,
    /// The deploy agent: presents artifacts at release.
    Deployer,
    /// CAB member duties (votes, exceptions, break-glass, reviews). Membership itself is data.
    Cab,
    /// Reports incidents.
    IncidentReporter,
    /// Manages models, CAB membership, keys and access.
    Admin,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Name recorded as the entries' `actor`.
    pub name: String,
    /// Roles.
    pub roles: BTreeSet<Role>,
}

impl Principal {
    /// A principal with these roles.
    pub fn new(name: impl Into<String>, roles: &[Role]) -> Self {
        Self {
            name: name.into(),
            roles: roles.iter().copied().collect(),
        }
    }
}

impl Role {
    /// Parses a role name as tokens carry it (`incident-reporter`, `cab`, ...).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "auditor" => Self::Auditor,
            "operator" => Self::Operator,
            "submitter" => Self::Submitter,
            "deployer" => Self::Deployer,
            "cab" => Self::Cab,
            "incident-reporter" => Self::IncidentReporter,
            "admin" => Self::Admin,
            _ => return None,
        })
    }
}

/// The principal the command line acts as when an operator with access to the data directory
/// creates tokens (file-system access to the data directory is the root of trust).
pub const CLI_ADMIN: &str = "system:cli";

/// A new random bearer token (`tl_` + 64 hex digits from two v4 UUIDs: 244 random bits) and its
/// SHA-256 hex (the only form in which it is recorded).
///
/// # Panics
/// If the operating system has no randomness.
pub fn new_token() -> (String, String) {
    let bytes: [u8; 32] = *Uuid::new_v4()
        .as_bytes()
        .iter()
        .chain(Uuid::new_v4().as_bytes())
        .copied()
        .collect::<Vec<u8>>()
        .first_chunk()
        .expect("32 bytes");
    let token = format!("tl_{}", hex::encode(bytes));
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    (token, digest)
}

/// The principal a bearer token authenticates, if it is granted and not revoked. The token is
/// hashed first, so look-up time does not depend on how much of a guess is right.
pub fn authenticate(state: &GovernanceState, token: &str) -> Option<Principal> {
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    let record = state.access.get(&digest).filter(|a| !a.revoked)?;
    Some(Principal {
        name: record.principal.clone(),
        roles: record.roles.iter().filter_map(|r| Role::parse(r)).collect(),
    })
}

/// The roles allowed to issue a command (any one suffices).
pub fn roles_for(command: &Command) -> &'static [Role] {
    match command {
        Command::ProposeRiskModel(_) => &[Role::Admin, Role::Cab],
        Command::ActivateRiskModel { .. }
        | Command::AddCabMember { .. }
        | Command::RemoveCabMember { .. }
        | Command::TrustSigningKey(_)
        | Command::RevokeSigningKey(_)
        | Command::GrantAccess(_)
        | Command::RevokeAccess(_) => &[Role::Admin],
        Command::RecordEvidence { .. } => &[Role::Submitter, Role::Operator],
        Command::Submit { .. } => &[Role::Submitter],
        Command::Release(_) => &[Role::Deployer],
        Command::ReportIncident(_) | Command::UpdateIncident(_) => &[Role::IncidentReporter],
        Command::EvaluateMaturity { .. } => &[Role::Operator, Role::Admin, Role::Cab],
        _ => &[Role::Cab],
    }
}

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

struct Inner {
    state: GovernanceState,
    ids: IdSource,
    /// Entries folded since the last snapshot was saved.
    since_snapshot: u64,
    /// The seq of the latest retained snapshot.
    last_retained: Option<u64>,
}

/// Borrowed access to the current state (see [`Governance::read`]).
pub struct StateGuard<'a>(MutexGuard<'a, Inner>);

impl std::ops::Deref for StateGuard<'_> {
    type Target = GovernanceState;
    fn deref(&self) -> &GovernanceState {
        &self.0.state
    }
}

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
    log: Log,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
    opened_from: OpenedFrom,
}

impl std::fmt::Debug for Governance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governance")
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

/// Entries folded per read while rebuilding.
const FOLD_PAGE: usize = 4096;

impl Governance {
    /// Folds the whole log and, if it is empty, writes the genesis configuration.
    ///
    /// `clock` must be the log's clock: decisions are made at its time.
    ///
    /// # Errors
    /// If the log cannot be read or the genesis append fails.
    pub fn open(log: Log, clock: Arc<dyn Clock>, ids: IdSource) -> Result<Self, CommandError> {
        let head = log.head().size;
        let reading = std::time::Instant::now();
        let stored = log.get_snapshot(SNAPSHOT_NAME)?;
        let read_ms = reading.elapsed().as_millis();
        let unsealing = std::time::Instant::now();
        let unsealed = stored.map(|bytes| snapshot::unseal(&bytes));
        tracing::debug!(
            read_ms,
            unseal_ms = unsealing.elapsed().as_millis(),
            "snapshot read and unsealed"
        );
        let (mut state, opened_from) = match unsealed {
            Some(Ok((seq, state))) if seq < head => (state, OpenedFrom::Snapshot { seq }),
            Some(Ok((seq, _))) => (
                GovernanceState::new(),
                OpenedFrom::Rebuilt {
                    discarded: Some(format!(
                        "the snapshot covers seq {seq}, beyond the log's {head} entries"
                    )),
                },
            ),
            Some(Err(e)) => (
                GovernanceState::new(),
                OpenedFrom::Rebuilt {
                    discarded: Some(e.to_string()),
                },
            ),
            None => (
                GovernanceState::new(),
                OpenedFrom::Rebuilt { discarded: None },
            ),
        };
        let mut next = state.last_seq.map_or(0, |s| s + 1);
        let mut folded = 0u64;
        loop {
            let page = log.read_range(next, FOLD_PAGE)?;
            let Some(last) = page.last() else { break };
            next = last.seq + 1;
            for entry in &page {
                state.apply(entry);
            }
            folded += page.len() as u64;
        }
        let service = Self {
            log,
            clock,
            inner: Mutex::new(Inner {
                state,
                ids,
                since_snapshot: folded,
                last_retained: None,
            }),
            opened_from,
        };
        service.lock().last_retained = service.retained_snapshots()?.last().map(|(_, seq, _)| *seq);
        if folded >= SNAPSHOT_EVERY_ENTRIES {
            service.save_snapshot()?;
        }
        if service.log.head().size == 0 {
            let mut inner = service.lock();
            service.append(&mut inner, GENESIS_ACTOR, "genesis", genesis_events(), None)?;
        }
        Ok(service)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// How the state was built on open.
    pub fn opened_from(&self) -> &OpenedFrom {
        &self.opened_from
    }

    /// Seals the current state as the stored snapshot. Returns the seq it covers.
    ///
    /// # Errors
    /// If the snapshot cannot be stored.
    pub fn save_snapshot(&self) -> Result<Option<u64>, CommandError> {
        let mut inner = self.lock();
        let Some(seq) = inner.state.last_seq else {
            return Ok(None);
        };
        self.log
            .put_snapshot(SNAPSHOT_NAME, &snapshot::seal(&inner.state, seq))?;
        inner.since_snapshot = 0;
        Ok(Some(seq))
    }

    /// Stores the current state as a retained snapshot, for time travel. Returns the seq it
    /// covers. The service retains one every [`RETAIN_SNAPSHOT_EVERY_ENTRIES`] on its own.
    ///
    /// # Errors
    /// If the snapshot cannot be stored.
    pub fn retain_snapshot(&self) -> Result<Option<u64>, CommandError> {
        let mut inner = self.lock();
        let Some(seq) = inner.state.last_seq else {
            return Ok(None);
        };
        let sealed = snapshot::seal(&inner.state, seq);
        self.store_retained(&mut inner, &sealed)?;
        Ok(Some(seq))
    }

    /// Stores `sealed` (the current state) as a retained snapshot, then lists it in the index: a
    /// crash in between leaves an unlisted snapshot, never a listed one that is missing.
    fn store_retained(&self, inner: &mut Inner, sealed: &[u8]) -> Result<(), CommandError> {
        let (Some(seq), Some(time)) = (inner.state.last_seq, inner.state.last_time) else {
            return Ok(());
        };
        let name = retained_snapshot_name(seq, time);
        self.log.put_snapshot(&name, sealed)?;
        let mut index = self
            .log
            .get_snapshot(RETAINED_SNAPSHOT_INDEX)?
            .unwrap_or_default();
        index.extend_from_slice(name.as_bytes());
        index.push(b'\n');
        self.log.put_snapshot(RETAINED_SNAPSHOT_INDEX, &index)?;
        inner.last_retained = Some(seq);
        Ok(())
    }

    /// The retained snapshots: (name, seq, time), by seq.
    ///
    /// # Errors
    /// If the store cannot be read.
    pub fn retained_snapshots(&self) -> Result<Vec<(String, u64, Timestamp)>, CommandError> {
        let index = self
            .log
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

    /// The fingerprint of the current state and the seq it covers.
    pub fn fingerprint(&self) -> (Option<u64>, events::Digest) {
        self.with_state(|s| (s.last_seq, snapshot::fingerprint(s)))
    }

    /// A copy of the current state.
    pub fn state(&self) -> GovernanceState {
        self.lock().state.clone()
    }

    /// A read guard on the current state (commands wait while it is held: keep it short, and
    /// never across an `.await`).
    pub fn read(&self) -> StateGuard<'_> {
        StateGuard(self.lock())
    }

    /// Runs `read` against the current state without copying it.
    pub fn with_state<T>(&self, read: impl FnOnce(&GovernanceState) -> T) -> T {
        read(&self.lock().state)
    }

    /// The log's time now: its clock, never before the last entry (what a decision made now
    /// would be stamped with).
    pub fn current_time(&self) -> Timestamp {
        self.with_state(|s| self.now(s))
    }

    /// The time decisions are made at: the clock, never before the last entry.
    fn now(&self, state: &GovernanceState) -> Timestamp {
        let now = self.clock.now();
        state.last_time.map_or(now, |last| last.max(now))
    }

    /// A fresh id (for commands that create things).
    pub fn new_id(&self) -> Uuid {
        self.lock().ids.next_id()
    }

    /// Checks the caller's role, decides, and appends the decision atomically.
    ///
    /// # Errors
    /// [`CommandError`]; nothing was written when one is returned.
    pub fn execute(
        &self,
        principal: &Principal,
        command: &Command,
    ) -> Result<Outcome, CommandError> {
        let needed = roles_for(command);
        if !needed.iter().any(|r| principal.roles.contains(r)) {
            return Err(CommandError::Unauthorized {
                principal: principal.name.clone(),
                needed,
            });
        }
        let mut inner = self.lock();
        let at = self.now(&inner.state);
        let decision = policy::decide(&inner.state, &principal.name, at, command)?;
        if let Some(deployment_id) = decision.replay_of {
            return Ok(Outcome::Replayed { deployment_id });
        }
        if decision.events.is_empty() {
            // An idempotent retry the policy recognised: nothing new to record.
            return Ok(Outcome::Appended(Vec::new()));
        }
        let correlation = match command {
            Command::Submit { request, .. } => request.correlation_id.clone(),
            _ => inner.ids.next_id().to_string(),
        };
        let appended = self.append(
            &mut inner,
            &principal.name,
            &correlation,
            decision.events,
            Some(at),
        )?;
        Ok(Outcome::Appended(appended))
    }

    /// Appends a decision's events, stamped with the time `at` it was decided at (so that an
    /// auditor re-deriving it from the entries uses exactly that time).
    fn append(
        &self,
        inner: &mut Inner,
        actor: &str,
        correlation: &str,
        events: Vec<(String, Payload)>,
        at: Option<Timestamp>,
    ) -> Result<Vec<Appended>, CommandError> {
        let mut drafts = Vec::with_capacity(events.len());
        let mut cause: Option<Uuid> = None;
        for (subject, payload) in &events {
            let id = inner.ids.next_id();
            let mut draft = payload.to_draft(id, subject, actor, correlation);
            // The first event of a decision caused the ones after it.
            draft.causation_id = cause.map(|c| c.to_string());
            cause.get_or_insert(id);
            drafts.push(draft);
        }
        let appended = self.log.append_batch_at_blocking(drafts, at)?;
        // Pair assertion: the decision's time is the time recorded (the service is the only writer).
        debug_assert!(at.is_none() || appended.iter().all(|a| Some(a.time) == at));
        let first = appended.first().map_or(0, |a| a.seq);
        for entry in self.log.read_range(first, appended.len())? {
            inner.state.apply(&entry);
        }
        inner.since_snapshot += appended.len() as u64;
        if inner.since_snapshot >= SNAPSHOT_EVERY_ENTRIES {
            if let Some(seq) = inner.state.last_seq {
                // A failed snapshot only costs a longer start-up or time travel; the append
                // itself succeeded.
                let sealed = snapshot::seal(&inner.state, seq);
                if self.log.put_snapshot(SNAPSHOT_NAME, &sealed).is_ok() {
                    inner.since_snapshot = 0;
                }
                let retain = inner
                    .last_retained
                    .is_none_or(|last| seq >= last + RETAIN_SNAPSHOT_EVERY_ENTRIES);
                if retain {
                    let _ = self.store_retained(inner, &sealed);
                }
            }
        }
        Ok(appended)
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
pub const SCHEDULER: &str = "system:scheduler";

impl Governance {
    /// The state as it was at `as_of`, rebuilt by folding the log up to there.
    ///
    /// # Errors
    /// If the log cannot be read.
    pub fn state_as_of(&self, as_of: AsOf) -> Result<GovernanceState, CommandError> {
        Ok(self.state_as_of_traced(as_of)?.0)
    }

    /// [`Governance::state_as_of`], also saying where the fold started: `Some(seq)` from the
    /// retained snapshot covering up to `seq`, `None` from genesis (or the live state itself,
    /// when the point is at or after it).
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
            let live = self.lock();
            if let (Some(seq), Some(time)) = (live.state.last_seq, live.state.last_time) {
                if covers(seq, time) && self.log.head().size == seq + 1 {
                    return Ok((live.state.clone(), None));
                }
            }
        }
        // The nearest retained snapshot at or before the point; one that fails its checks is
        // skipped (snapshots are a cache, never a source of truth).
        let mut start = None;
        for (name, seq, time) in self.retained_snapshots()?.into_iter().rev() {
            if !covers(seq, time) {
                continue;
            }
            if let Some(Ok((_, state))) =
                self.log.get_snapshot(&name)?.map(|b| snapshot::unseal(&b))
            {
                start = Some((state, seq));
                break;
            }
        }
        let started_from = start.as_ref().map(|(_, seq)| *seq);
        let mut state = start.map_or_else(GovernanceState::new, |(state, _)| state);
        let mut next = state.last_seq.map_or(0, |s| s + 1);
        'fold: loop {
            let page = self.log.read_range(next, FOLD_PAGE)?;
            let Some(last) = page.last() else { break };
            next = last.seq + 1;
            for entry in &page {
                let past = match as_of {
                    AsOf::Seq(seq) => entry.seq > seq,
                    AsOf::Time(t) => entry.time > t,
                };
                if past {
                    break 'fold;
                }
                state.apply(entry);
            }
        }
        Ok((state, started_from))
    }

    /// Runs the scheduled maturity evaluation if `cadence_micros` of log time have passed since
    /// the last one (or since the level took effect). Returns whether it ran.
    ///
    /// # Errors
    /// As [`Governance::execute`].
    pub fn evaluate_if_due(&self, cadence_micros: i64, strict: bool) -> Result<bool, CommandError> {
        let due = self.with_state(|s| {
            let now = self.now(s);
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

/// Largest artifact the release gate accepts.
pub const ARTIFACT_BYTES_MAX: u64 = 8 * 1024 * 1024 * 1024;
/// Largest SBOM the release gate accepts.
pub const SBOM_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Why streamed bytes could not be digested.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// Reading failed.
    #[error("reading: {0}")]
    Io(#[from] std::io::Error),
    /// More than the limit.
    #[error("more than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
}

/// SHA-256 (lowercase hex) and size of everything `reader` yields, streamed in 256 KiB chunks,
/// never holding more than that in memory.
///
/// # Errors
/// [`DigestError`] on a read error or more than `limit` bytes.
pub fn digest_stream(mut reader: impl Read, limit: u64) -> Result<(String, u64), DigestError> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > limit {
            return Err(DigestError::TooLarge { limit });
        }
        hasher.update(&buffer[..n]);
    }
    Ok((hex::encode(hasher.finalize()), size))
}
