//! The event log at the heart of trustledger: an append-only, hash-chained, Merkle-tree-backed
//! log of CloudEvents over sled, and the catalogue of event payloads written to it.
//!
//! - [`Log`] opens a data directory, appends [`EventDraft`]s (group-committed, durable before
//!   acknowledged, idempotent by event id, with optional [`ExpectedVersion`] checks), reads
//!   entries by seq, stream or id, and serves Merkle proofs and signed checkpoints.
//! - [`Entry`] is the pinned format: canonical (RFC 8785) CloudEvents JSON whose stored bytes are
//!   hashed; [`canonical`] implements the encoding, [`merkle`] the RFC 9162 tree and proofs,
//!   [`checkpoint`] the C2SP signed notes.
//! - [`verify::ChainVerifier`] checks any copy of the log entry by entry;
//!   [`verify::verify_store`] checks the store and its indexes.
//! - [`Log::append_sequenced`] queues entries its caller built against a [`Tip`] (a compare
//!   and set on the head), for a caller that decides ahead of durability.
//! - [`Subscription`] follows the log from any seq.
//!
//! ```
//! use events::{EventDraft, Log, LogConfig};
//! use serde_json::json;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let log = Log::open(dir.path(), LogConfig::default()).unwrap();
//! let draft = EventDraft::new(
//!     uuid::Uuid::new_v4(),
//!     "trustledger.example.happened",
//!     "example/1",
//!     "alice",
//!     "corr-1",
//!     json!({"answer": 42}),
//! );
//! let appended = log.append_blocking(draft.clone()).unwrap();
//! assert_eq!(appended.seq, 0);
//! // The same id with the same content is acknowledged again, not written twice.
//! assert!(log.append_blocking(draft).unwrap().duplicate);
//! assert_eq!(log.head().size, 1);
//! ```
#![deny(missing_docs)]

pub mod canonical;
pub mod catalogue;
pub mod checkpoint;
pub mod cosignature;
mod entry;
pub mod keys;
pub mod limits;
mod log;
pub mod merkle;
pub mod payloads;
pub mod receipt;
pub mod rotation;
mod sequenced;
mod subscribe;
pub mod tiles;
mod time;
pub mod verify;
pub mod witness;

pub use entry::{
    lower_hex_digit, Digest, Entry, EntryHeader, EventDraft, ExpectedVersion, InvalidDraft,
    MalformedEntry, Position,
};
pub use log::{
    AppendError, Appended, CommitStats, CommitStatsSnapshot, Durability, Head, Log, LogConfig,
    OpenLogError, ReadError, READ_ONCE_CACHE_BYTES,
};
// Also for other sled stores of ours (the witness's).
pub use log::migrate::{migrate, MigrateError, Migration};
pub use log::store::postgres::HEAD_CHANNEL as POSTGRES_HEAD_CHANNEL;
pub use log::store::StoreLocation;
pub use log::{stored_origin, sync_store_directory};
pub use sequenced::{AppendTicket, Sequenced, Tip};
pub use subscribe::{SubscribeError, Subscription};
pub use time::{Clock, ManualClock, ParseTimestampError, SystemClock, Timestamp};
