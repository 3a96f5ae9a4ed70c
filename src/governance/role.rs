//! Leading and following, for several `serve` nodes on one PostgreSQL database: one node leads
//! (it holds the database's advisory lock, see `crate::cluster`) and decides commands; the others
//! follow: they take in what the leader commits ([`Governance::catch_up`]), serve every read,
//! and refuse commands with the leader's advertised URL. A sled log has one node, which leads.

use super::{fold_log, CommandError, Governance};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// This node's part.
#[derive(Debug)]
pub struct Role {
    leading: AtomicBool,
    /// The leader's advertised URL, as a follower last read it.
    leader: Mutex<Option<String>>,
    /// Entries the leader has committed that this node has not taken in, as last measured.
    lag: AtomicU64,
}

impl Role {
    pub(super) fn new(leading: bool) -> Self {
        Self {
            leading: AtomicBool::new(leading),
            leader: Mutex::new(None),
            lag: AtomicU64::new(0),
        }
    }

    /// Whether this node decides commands.
    pub fn leading(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }

    /// The leader's advertised URL, if known.
    pub fn leader(&self) -> Option<String> {
        self.leader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Governance {
    /// This node's part (leader or follower).
    pub fn role(&self) -> &Role {
        &self.shared.role
    }

    /// Records where the leader is (a follower's answer to commands).
    pub fn set_leader(&self, url: Option<String>) {
        *self
            .shared
            .role
            .leader
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = url;
    }

    /// Records how far behind the leader this node is, in entries.
    pub fn set_lag(&self, entries: u64) {
        self.shared.role.lag.store(entries, Ordering::Relaxed);
    }

    /// How far behind the leader this node was when last measured, in entries.
    pub fn lag(&self) -> u64 {
        self.shared.role.lag.load(Ordering::Relaxed)
    }

    /// Takes in what the leader committed ([`events::Log::follow`]) and folds it into the
    /// published state. Returns the log's size.
    ///
    /// # Errors
    /// When what the store holds does not verify, or cannot be read.
    pub fn catch_up(&self) -> Result<u64, CommandError> {
        let log = &self.shared.log;
        let size = log.follow()?;
        let mut published = self
            .shared
            .published
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        fold_log(log, &mut published, |e| e.seq < size)?;
        Ok(size)
    }

    /// Makes this node the leader: it catches up first, and its sequencer decides the next
    /// command against the log as it then is.
    ///
    /// # Errors
    /// As [`Governance::catch_up`]; the node then stays a follower.
    pub fn promote(&self) -> Result<u64, CommandError> {
        let size = self.catch_up()?;
        self.set_leader(None);
        self.shared.role.leading.store(true, Ordering::SeqCst);
        Ok(size)
    }

    /// Makes this node a follower (it lost the lock): it decides nothing more. A commit it had
    /// already sent can still land only if no other node moved the head (the head row's
    /// compare and set).
    pub fn demote(&self) {
        self.shared.role.leading.store(false, Ordering::SeqCst);
    }
}
