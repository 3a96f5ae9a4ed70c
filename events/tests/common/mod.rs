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
