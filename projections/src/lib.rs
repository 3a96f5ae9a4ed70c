//! Pure folds of trustledger log entries into read models, and the decision policy they feed.
//!
//! Nothing here does IO or reads a clock: the same entries always give the same state. The read
//! models and the policy arrive with the governance and maturity work; this crate exists now so
//! that the dependency direction `src -> replay -> projections -> events` is fixed from the start.
#![deny(missing_docs)]

pub use events;
