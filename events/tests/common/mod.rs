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
