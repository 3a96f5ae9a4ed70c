//! The sequencer: the one task that decides commands.
//!
//! It owns the *decision state*: the durable state plus every decision already handed to the
//! log but not yet durable. Commands arrive on a bounded queue; it decides each in arrival order
//! against that state, builds the decision's entries itself ([`Log::append_sequenced`], a compare
//! and set on the log's head), folds them at once, and hands them to the log's group commit
//! without waiting, so concurrent commands share one fsync. Each caller is answered, in order,
//! only once its entries are durable; only then are they folded into the *published* state that
//! readers see.
//!
//! When a commit fails, every decision after the last durable one fails with it (the log refuses
//! each as [`AppendError::HeadMoved`], and answers decided without writing are withdrawn), and the
//! decision state is rebuilt from the published one, which holds exactly the durable log.

use super::snapshots::SnapshotKeeper;
use super::{CommandError, IdSource, Outcome};
use events::payloads::Payload;
use events::{AppendError, AppendTicket, Appended, Clock, Entry, Log, Sequenced, Timestamp, Tip};
use futures_util::stream::{FuturesOrdered, StreamExt as _};
use projections::policy::{self, Command};
use projections::state::GovernanceState;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// A command waiting for the sequencer.
pub(super) struct Queued {
    pub(super) actor: String,
    pub(super) command: Command,
    pub(super) reply: oneshot::Sender<Result<Outcome, CommandError>>,
}

/// What the sequencer shares with the service's handle.
pub(super) struct Shared {
    pub(super) log: Log,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) ids: Mutex<IdSource>,
    /// The durable state, as readers see it.
    pub(super) published: RwLock<GovernanceState>,
    /// Why the log refuses writes, once a commit failed.
    pub(super) failure: Mutex<Option<String>>,
    pub(super) snapshots: SnapshotKeeper,
    pub(super) role: super::role::Role,
}

impl Shared {
    pub(super) fn next_id(&self) -> Uuid {
        self.ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next_id()
    }

    pub(super) fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A decided command on its way to its caller.
struct Pending {
    reply: oneshot::Sender<Result<Outcome, CommandError>>,
    /// The decision state's generation it was decided in (see [`Sequencer::generation`]).
    generation: u64,
    result: Settled,
}

enum Settled {
    /// Nothing to write: the answer stands once everything before it is durable.
    Answer(Result<Outcome, CommandError>),
    /// Entries the log is committing.
    Written {
        entries: Vec<Entry>,
        durable: Result<Vec<Appended>, AppendError>,
    },
}

/// What deciding a command came to.
enum Decided {
    /// Nothing was queued.
    Answer(Result<Outcome, CommandError>),
    /// These entries were folded into the decision state and queued.
    Queued(Vec<Entry>, AppendTicket),
}

type PendingFuture = Pin<Box<dyn Future<Output = Pending> + Send>>;

/// The sequencer's own state (see the module doc).
pub(super) struct Sequencer {
    shared: Arc<Shared>,
    state: GovernanceState,
    tip: Tip,
    /// Stream versions of entries handed to the log and not yet durable: subject → (seq, version).
    queued_versions: HashMap<String, (u64, u64)>,
    /// Bumped each time the decision state is rebuilt; a failure fails its whole generation.
    generation: u64,
    failed_generation: Option<u64>,
    /// Another node wrote ahead of a commit of ours (a failover's race): the log is followed
    /// before the state is rebuilt, so the next decision is made against the whole log.
    fenced: bool,
}

impl Sequencer {
    pub(super) fn new(shared: Arc<Shared>, state: GovernanceState) -> Self {
        let head = shared.log.head();
        Self {
            shared,
            state,
            tip: Tip {
                size: head.size,
                last_hash: head.last_hash,
            },
            queued_versions: HashMap::new(),
            generation: 0,
            failed_generation: None,
            fenced: false,
        }
    }

    /// Runs until the queue closes and every decided command is answered.
    pub(super) fn run(mut self, mut inbox: mpsc::Receiver<Queued>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime needs no resources that can be missing");
        runtime.block_on(async move {
            let mut in_flight: FuturesOrdered<PendingFuture> = FuturesOrdered::new();
            let mut open = true;
            loop {
                let rebuilding = self.failed_generation == Some(self.generation);
                tokio::select! {
                    biased;
                    Some(pending) = in_flight.next(), if !in_flight.is_empty() => {
                        self.settle(pending);
                    }
                    queued = inbox.recv(), if open && !rebuilding => match queued {
                        Some(queued) => in_flight.push_back(self.decide(queued).await),
                        None => open = false,
                    },
                    else => break,
                }
                if in_flight.is_empty() && self.failed_generation == Some(self.generation) {
                    if std::mem::take(&mut self.fenced) {
                        if let Err(e) = self.shared.log.follow_async().await {
                            tracing::error!(error = %e, "following the writer that fenced this one");
                        }
                    }
                    self.rebuild();
                }
            }
        });
    }

    /// Decides one command against the decision state and, if it writes, queues its entries.
    /// Returns the answer to give once everything decided before it is settled.
    async fn decide(&mut self, queued: Queued) -> PendingFuture {
        let Queued {
            actor,
            command,
            reply,
        } = queued;
        let generation = self.generation;
        match self.decide_and_queue(&actor, &command).await {
            Decided::Answer(answer) => Box::pin(std::future::ready(Pending {
                reply,
                generation,
                result: Settled::Answer(answer),
            })),
            Decided::Queued(entries, ticket) => Box::pin(async move {
                let durable = ticket.durable().await;
                Pending {
                    reply,
                    generation,
                    result: Settled::Written { entries, durable },
                }
            }),
        }
    }

    async fn decide_and_queue(&mut self, actor: &str, command: &Command) -> Decided {
        if let Some(reason) = self.shared.failure() {
            return Decided::Answer(Err(CommandError::Unavailable(reason)));
        }
        if !self.shared.role.leading() {
            return Decided::Answer(Err(CommandError::NotLeader(self.shared.role.leader())));
        }
        if self.queued_versions.is_empty() && self.shared.log.head().size != self.tip.size {
            // Promoted after following another leader: decide against the log as it is now.
            self.rebuild();
        }
        let at = self.now();
        let decision = match policy::decide(&self.state, actor, at, command) {
            Ok(decision) => decision,
            Err(rejection) => return Decided::Answer(Err(rejection.into())),
        };
        if let Some(deployment_id) = decision.replay_of {
            return Decided::Answer(Ok(Outcome::Replayed { deployment_id }));
        }
        if decision.events.is_empty() {
            // An idempotent retry the policy recognised: nothing new to record.
            return Decided::Answer(Ok(Outcome::Appended(Vec::new())));
        }
        let correlation = match command {
            Command::Submit { request, .. } => request.correlation_id.clone(),
            _ => self.shared.next_id().to_string(),
        };
        let drafts = decision_drafts(&self.shared, actor, &correlation, decision.events);
        let Sequenced { entries, ticket } = match self.queue(drafts, at).await {
            Ok(sequenced) => sequenced,
            Err(e) => return Decided::Answer(Err(e.into())),
        };
        for entry in &entries {
            self.state.apply(entry);
            self.queued_versions
                .insert(entry.subject.clone(), (entry.seq, entry.stream_version));
        }
        if let Some(last) = entries.last() {
            self.tip = Tip::after(last);
        }
        Decided::Queued(entries, ticket)
    }

    async fn queue(
        &self,
        drafts: Vec<events::EventDraft>,
        at: Timestamp,
    ) -> Result<Sequenced, AppendError> {
        let log = &self.shared.log;
        let mut unreadable = None;
        let sequenced = log
            .append_sequenced(drafts, self.tip, at, |subject| {
                match self.queued_versions.get(subject) {
                    Some((_, version)) => Some(*version),
                    None => log.stream_last_version(subject).unwrap_or_else(|e| {
                        unreadable = Some(e.to_string());
                        None
                    }),
                }
            })
            .await?;
        match unreadable {
            // The writer would refuse a wrong version anyway (its hash differs); say why here.
            Some(reason) => Err(AppendError::Storage(reason)),
            None => Ok(sequenced),
        }
    }

    /// Answers a decided command once everything before it is settled, folding what became
    /// durable into the published state first.
    fn settle(&mut self, pending: Pending) {
        let Pending {
            reply,
            generation,
            result,
        } = pending;
        let answer = match result {
            Settled::Written { entries, durable } => match durable {
                Ok(appended) => {
                    self.publish(&entries);
                    Ok(Outcome::Appended(appended))
                }
                Err(e) => {
                    self.fail(generation, &e);
                    Err(e.into())
                }
            },
            Settled::Answer(answer) if self.failed_generation == Some(generation) => {
                // Decided against decisions that were never written.
                drop(answer);
                Err(CommandError::Unavailable(
                    "an earlier decision failed to commit; retry".into(),
                ))
            }
            Settled::Answer(answer) => answer,
        };
        let _ = reply.send(answer);
    }

    fn publish(&mut self, entries: &[Entry]) {
        {
            let mut published = self
                .shared
                .published
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            // A follower's catch-up may have folded them already (see `role`).
            for entry in entries {
                if published.last_seq.is_none_or(|last| entry.seq > last) {
                    published.apply(entry);
                }
            }
        }
        for entry in entries {
            if self
                .queued_versions
                .get(&entry.subject)
                .map(|(seq, _)| *seq)
                == Some(entry.seq)
            {
                self.queued_versions.remove(&entry.subject);
            }
        }
        self.shared
            .snapshots
            .folded(&self.shared, entries.len() as u64);
    }

    fn fail(&mut self, generation: u64, error: &AppendError) {
        if generation == self.generation {
            self.failed_generation = Some(generation);
        }
        self.fenced |= matches!(error, AppendError::Fenced(_));
        if let AppendError::Storage(reason) = error {
            *self
                .shared
                .failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(reason.clone());
        }
        tracing::error!(%error, "a decision failed to commit; later decisions fail with it");
    }

    /// Rebuilds the decision state from the published one (exactly the durable log) after a
    /// failure, once every decision of the failed generation has been answered.
    fn rebuild(&mut self) {
        let head = self.shared.log.head();
        {
            let mut published = self
                .shared
                .published
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            // Entries this sequencer did not write (none, while it is the log's only writer) are
            // folded in from the log, so the state and the tip describe the same log.
            if let Err(e) = super::fold_log(&self.shared.log, &mut published, |e| e.seq < head.size)
            {
                tracing::error!(error = %e, "refolding after a failed commit");
            }
            self.state = published.clone();
        }
        self.tip = match self.state.last_seq {
            Some(seq) if seq + 1 == head.size => Tip {
                size: head.size,
                last_hash: head.last_hash,
            },
            // The log could not be read to its head: decide against what was folded, so the
            // writer refuses (the head moved) rather than a decision being made against a
            // state that does not describe the log.
            _ => Tip {
                size: self.state.last_seq.map_or(0, |s| s + 1),
                last_hash: events::Digest::ZERO,
            },
        };
        self.queued_versions.clear();
        self.generation += 1;
    }

    /// The time decisions are made at: the clock, never before the last decided entry.
    fn now(&self) -> Timestamp {
        let now = self.shared.clock.now();
        self.state.last_time.map_or(now, |last| last.max(now))
    }
}

/// A decision's events as drafts: fresh ids, the actor, one correlation id, and every event
/// after the first caused by the first.
pub(super) fn decision_drafts(
    shared: &Shared,
    actor: &str,
    correlation: &str,
    events: Vec<(String, Payload)>,
) -> Vec<events::EventDraft> {
    let mut cause: Option<Uuid> = None;
    events
        .iter()
        .map(|(subject, payload)| {
            let id = shared.next_id();
            let mut draft = payload.to_draft(id, subject, actor, correlation);
            draft.causation_id = cause.map(|c| c.to_string());
            cause.get_or_insert(id);
            draft
        })
        .collect()
}
