//! Helpers shared by the events integration tests.
#![allow(dead_code)]

use events::{Durability, EventDraft, Log, LogConfig, ManualClock, Timestamp};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

pub fn clock() -> ManualClock {
    ManualClock::new(Timestamp::parse("2026-02-10T09:00:00.000000Z").unwrap())
}

pub fn config(clock: &ManualClock) -> LogConfig {
    LogConfig {
        origin: Some("trustledger.test/log".into()),
        durability: Durability::Fsync,
        clock: Arc::new(clock.clone()),
        signer: Some(
            events::checkpoint::NoteSigner::from_seed("trustledger.test", [42; 32]).unwrap(),
        ),
        cache_bytes: None,
    }
}

pub fn open(dir: &Path) -> Log {
    Log::open(dir, config(&clock())).unwrap()
}

pub fn draft(n: u64, subject: &str) -> EventDraft {
    EventDraft::new(
        Uuid::from_u128(u128::from(n) + 1),
        "trustledger.test.happened",
        subject,
        "alice",
        format!("corr-{n}"),
        json!({"n": n, "note": "hello"}),
    )
}

/// What a crash-test child does until it is killed: appends from 4 threads (so group commit is
/// in play), printing `ACK <id>` once each append is acknowledged. The parent trusts only
/// complete lines. Ids are unique across rounds.
pub fn append_until_killed(log: &Log, round: u64, subject: &str) {
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let log = log.clone();
            let subject = format!("{subject}/{t}");
            std::thread::spawn(move || {
                for i in 0.. {
                    let d = draft(round * 10_000_000 + t * 1_000_000 + i, &subject);
                    let id = d.id;
                    log.append_blocking(d).unwrap();
                    println!("ACK {id}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

pub mod postgres_cluster;

/// Which store a conformance test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sled,
    Postgres,
}

/// A fresh, empty store of either kind: a temporary sled directory, or a new database in the
/// test cluster.
pub struct TestStore {
    pub kind: Kind,
    pub location: events::StoreLocation,
    _dir: Option<tempfile::TempDir>,
}

impl TestStore {
    /// `None` when the store cannot be had here (PostgreSQL not installed, outside CI).
    pub fn new(kind: Kind, test: &str) -> Option<Self> {
        match kind {
            Kind::Sled => {
                let dir = tempfile::tempdir().unwrap();
                Some(Self {
                    kind,
                    location: events::StoreLocation::Directory(dir.path().to_owned()),
                    _dir: Some(dir),
                })
            }
            Kind::Postgres => {
                let cluster = postgres_cluster::cluster(test)?;
                Some(Self {
                    kind,
                    location: events::StoreLocation::Postgres(cluster.new_database()),
                    _dir: None,
                })
            }
        }
    }

    pub fn open(&self) -> Log {
        self.open_with(config(&clock())).unwrap()
    }

    pub fn open_with(&self, config: LogConfig) -> Result<Log, events::OpenLogError> {
        Log::open_at(&self.location, config)
    }

    /// The sled directory (sled-only tests).
    pub fn dir(&self) -> &Path {
        match &self.location {
            events::StoreLocation::Directory(dir) => dir,
            events::StoreLocation::Postgres(_) => panic!("not a sled store"),
        }
    }
}

/// Defines each test twice, in modules `sled_store` and `postgres_store`, the body given a
/// fresh [`TestStore`] of that kind: one conformance suite for both stores.
#[macro_export]
macro_rules! on_both_stores {
    ($( $(#[$meta:meta])* fn $name:ident($store:ident) $body:block )*) => {
        mod sled_store {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                fn $name() {
                    let $store = $crate::common::TestStore::new($crate::common::Kind::Sled, stringify!($name)).unwrap();
                    $body
                }
            )*
        }
        mod postgres_store {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                fn $name() {
                    let Some($store) = $crate::common::TestStore::new($crate::common::Kind::Postgres, stringify!($name)) else {
                        return;
                    };
                    $body
                }
            )*
        }
    };
}
