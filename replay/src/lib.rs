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
//! let report = verify_bundle(std::path::Path::new("export"), &BundleOptions::default(), |_| {}).unwrap();
//! println!("{report}");
//! ```
#![deny(missing_docs)]

pub mod bundle;

pub use projections;
