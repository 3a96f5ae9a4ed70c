//! Sequenced appends: for a caller that decides many requests one after another against a state
//! that already includes the ones not yet durable (the governance sequencer), and must not wait
//! for each to be durable before deciding the next.
//!
//! The caller says where its request must land (the size and last hash it decided after) and
//! gets back the entries exactly as they will be written, built here on its own thread, so it can
//! fold them at once; the writer group-commits the request with everything else queued, but
//! only if the log still ends where the caller said (a compare and set on the head) and only if
//! each entry it builds hashes as the caller's did. So when an earlier request fails, every
//! request decided after it fails too: no decision is written against a state that did not
//! happen, and nothing the caller folded differs from what was written.

use crate::entry::{Digest, Entry, EventDraft, Position};
use crate::log::{prepare_request, AppendError, Appended, Expectation, Log, Request};
use crate::time::Timestamp;
use std::collections::HashMap;
use tokio::sync::oneshot;

/// Where the caller's view of the log ends: the next entry goes at seq `size`, after `last_hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    /// Entries before it.
    pub size: u64,
    /// Hash of the last of them ([`Digest::ZERO`] for an empty log).
    pub last_hash: Digest,
}

impl Tip {
    /// The tip after `entry`.
    pub fn after(entry: &Entry) -> Self {
        Self {
            size: entry.seq + 1,
            last_hash: entry.hash(),
        }
    }
}

/// A sequenced append on its way to the writer: the entries it will write, and the answer once
/// they are durable.
#[derive(Debug)]
pub struct Sequenced {
    /// The entries, as they will be stored.
    pub entries: Vec<Entry>,
    /// The writer's answer.
    pub ticket: AppendTicket,
}

/// The writer's answer to a queued append, once it is durable or refused.
#[derive(Debug)]
pub struct AppendTicket(oneshot::Receiver<Result<Vec<Appended>, AppendError>>);

impl AppendTicket {
    /// Waits until the entries are durable, or the request is refused.
    ///
    /// # Errors
    /// [`AppendError`]: [`AppendError::HeadMoved`] when an earlier request failed, or whatever
    /// refused or failed this one. Nothing of it was written.
    pub async fn durable(self) -> Result<Vec<Appended>, AppendError> {
        self.0.await.map_err(|_| AppendError::Closed)?
    }
}

impl Log {
    /// Builds `drafts` as entries at `tip`, stamped `at` (which must not be before the entry at
    /// the tip), and queues them for the writer. `last_version` gives each subject's last stream
    /// version as the caller sees it (durable entries and its own queued ones).
    ///
    /// Returns once the request is queued (waiting only while the writer's queue is full), not
    /// once it is durable: see [`AppendTicket::durable`].
    ///
    /// # Errors
    /// [`AppendError`] if a draft is invalid or the log refuses writes; nothing was queued.
    pub async fn append_sequenced(
        &self,
        drafts: Vec<EventDraft>,
        tip: Tip,
        at: Timestamp,
        mut last_version: impl FnMut(&str) -> Option<u64>,
    ) -> Result<Sequenced, AppendError> {
        let prepared = prepare_request(drafts)?;
        let mut versions: HashMap<&str, Option<u64>> = HashMap::new();
        let mut entries = Vec::with_capacity(prepared.len());
        let mut position = Position {
            seq: tip.size,
            stream_version: 0,
            time: at,
            prev_hash: tip.last_hash,
        };
        for (index, draft) in prepared.iter().enumerate() {
            let subject = draft.draft.subject.as_str();
            let last = *versions
                .entry(subject)
                .or_insert_with(|| last_version(subject));
            position.stream_version = last.map_or(0, |v| v + 1);
            let entry = Entry::build_prepared(draft, self.origin(), position)
                .map_err(|source| AppendError::Invalid { index, source })?;
            versions.insert(subject, Some(position.stream_version));
            position.seq += 1;
            position.prev_hash = entry.hash();
            entries.push(entry);
        }
        let (reply, answer) = oneshot::channel();
        let request = Request {
            drafts: prepared,
            at: Some(at),
            expect: Some(Expectation {
                after: (tip.size, tip.last_hash),
                hashes: entries.iter().map(Entry::hash).collect(),
            }),
            reply,
        };
        self.sender_for_sequenced()?
            .send(crate::log::Message::Append(request))
            .await
            .map_err(|_| AppendError::Closed)?;
        Ok(Sequenced {
            entries,
            ticket: AppendTicket(answer),
        })
    }
}
