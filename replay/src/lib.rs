//! The auditor's library: verified sources of entries and the re-derivation of recorded
//! decisions. It has no write API: nothing here can append to a log.
//!
//! Today it offers integrity checks of a stored log and of an export bundle (see
//! [`events::verify`]); decision re-derivation arrives with the governance policy.
#![deny(missing_docs)]

pub use projections;
