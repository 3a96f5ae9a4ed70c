//! Pure folds of trustledger log entries into read models, and the decision policy they feed.
//!
//! - [`state::GovernanceState`]: the governance read model (models, classes, CAB, evidence,
//!   deployments, exceptions), built by `apply(&Entry)` one entry at a time.
//! - [`policy`]: every decision (classification, risk score, gate, quorum, release checks,
//!   exceptions, break-glass) as a pure function of (state, actor, time, command).
//! - [`genesis`]: the v1.1 configuration written to a new log.
//!
//! Nothing here does IO or reads a clock: the same entries always give the same state. (An
//! auditor may hand the state a [`settling::SpillStore`] for records that no longer change.)
#![deny(missing_docs)]

pub mod calibration;
pub mod evidence_signature;
pub mod genesis;
pub mod maturity;
pub mod passkey;
pub mod policy;
pub mod proposal;
pub mod settling;
pub mod snapshot;
pub mod state;
pub mod stats;
pub mod trends;
pub mod views;
mod vote_keys;
pub mod vote_statement;

pub use events;
