//! The auditor's library: verified sources of entries and, as the governance policy lands, the
//! re-derivation of recorded decisions. It has no write API: nothing here can append to a log.
//!
//! Today it verifies export bundles ([`bundle::verify_bundle`]): the directory `trustledger
//! export` writes, holding `entries.jsonl`, the signed `checkpoint` covering exactly those entries
//! and the `verifier-key`. Verification needs nothing but the bundle and, ideally, a verifier key
//! the auditor obtained independently.
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

pub mod bundle;

pub use projections;
