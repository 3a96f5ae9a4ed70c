//! In-process subscriptions: from any seq, catch up from the store, then follow live.
//!
//! A subscription pulls: it remembers only the next seq it owes its reader and a page of at most
//! [`SUBSCRIPTION_PAGE_ENTRIES`] entries, and waits on the durable head when it has caught up.
//! There is therefore no switch-over between "catch-up" and "live" (both are reads of the
//! store below the durable head), so no gap or duplicate is possible there, and a subscriber that
//! falls far behind costs no memory: it simply reads older entries from the store. How far behind
//! it is can be asked ([`Subscription::lag`]).

use crate::entry::Entry;
use crate::limits::SUBSCRIPTION_PAGE_ENTRIES;
use crate::log::{Head, Log, ReadError};
use std::collections::VecDeque;
use tokio::sync::watch;

/// Why a subscription stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The log was closed.
    #[error("the log was closed")]
    Closed,
    /// The store could not be read; resume from [`Subscription::next_seq`] later.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// A cursor over the log from a seq onwards, following new entries as they become durable.
#[derive(Debug)]
pub struct Subscription {
    log: Log,
    head: watch::Receiver<Head>,
    next_seq: u64,
    page: VecDeque<Entry>,
}

impl Log {
    /// Subscribes from `from_seq` (0 for everything; the head's size for only new entries).
    pub fn subscribe(&self, from_seq: u64) -> Subscription {
        Subscription {
            log: self.clone(),
            head: self.watch_head(),
            next_seq: from_seq,
            page: VecDeque::new(),
        }
    }
}

impl Subscription {
    /// The seq of the entry the next call returns: where to resume after a disconnect.
    pub fn next_seq(&self) -> u64 {
        self.page.front().map_or(self.next_seq, |e| e.seq)
    }

    /// How many durable entries the subscriber has not yet received.
    pub fn lag(&self) -> u64 {
        self.head.borrow().size.saturating_sub(self.next_seq())
    }

    /// The next entry, waiting for one to be appended if the subscriber has caught up.
    ///
    /// # Errors
    /// [`SubscribeError`] when the log closes or cannot be read.
    pub async fn next(&mut self) -> Result<Entry, SubscribeError> {
        loop {
            if let Some(entry) = self.page.pop_front() {
                return Ok(entry);
            }
            if self.next_seq < self.head.borrow_and_update().size {
                let page = self
                    .log
                    .read_range(self.next_seq, SUBSCRIPTION_PAGE_ENTRIES)?;
                if let Some(last) = page.last() {
                    // Pair assertion: the page continues exactly where the subscriber is.
                    assert_eq!(page[0].seq, self.next_seq);
                    self.next_seq = last.seq + 1;
                }
                self.page.extend(page);
                continue;
            }
            if self.head.changed().await.is_err() {
                return Err(SubscribeError::Closed);
            }
        }
    }

    /// The next entry if one is durable now, without waiting.
    ///
    /// # Errors
    /// [`SubscribeError::Read`] when the store cannot be read.
    pub fn try_next(&mut self) -> Result<Option<Entry>, SubscribeError> {
        if self.page.is_empty() && self.next_seq < self.head.borrow().size {
            let page = self
                .log
                .read_range(self.next_seq, SUBSCRIPTION_PAGE_ENTRIES)?;
            if let Some(last) = page.last() {
                self.next_seq = last.seq + 1;
            }
            self.page.extend(page);
        }
        Ok(self.page.pop_front())
    }
}
