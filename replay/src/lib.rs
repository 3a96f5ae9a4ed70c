//! The auditor's library: verified sources of entries and, as the governance policy lands, the
//! re-derivation of recorded decisions. It has no write API: nothing here can append to a log.
//!
//! - [`bundle::verify_bundle`] verifies an export bundle (`entries.jsonl`, the signed
//!   `checkpoint` covering exactly those entries, the `verifier-key`) with nothing but the bundle
//!   and, ideally, a verifier key the auditor obtained independently.
//! - [`audit`] re-derives every recorded decision with the same policy code the service runs, and
//!   reports each one the rules in force would not have made ([`audit::audit_bundle`],
//!   [`audit::audit_log`]).
//! - [`remote::audit_url`] does the same for a live server, checking every page it serves against
//!   its signed checkpoint and the checkpoint the auditor kept.
//!
//! ```no_run
//! use replay::bundle::{verify_bundle, BundleOptions};
//! match verify_bundle(std::path::Path::new("export"), &BundleOptions::default(), |_| {}) {
//!     Ok(Ok(report)) => println!("{report}"),
//!     Ok(Err(invalid)) => println!("INVALID: {invalid}"),
//!     Err(unusable) => eprintln!("cannot read the bundle: {unusable}"),
//! }
//! ```
#![deny(missing_docs)]

pub mod audit;
pub mod backtest;
pub mod bundle;
pub mod citations;
pub mod monitor;
pub mod remote;
pub mod spill;
pub mod tile_nodes;
pub mod tiles;

pub use projections;
