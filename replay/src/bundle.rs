//! Export bundles: `entries.jsonl` (line i = the stored bytes of entry i, then `\n`),
//! `checkpoint` (the signed note covering exactly those entries) and `verifier-key`.

use events::checkpoint::{Checkpoint, CheckpointError, NoteVerifier};
use events::limits::ENTRY_BYTES_MAX;
use events::verify::{ChainVerifier, IntegrityProblem};
use events::Digest;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// File name of the entries in a bundle.
pub const ENTRIES_FILE: &str = "entries.jsonl";
/// File name of the signed checkpoint in a bundle.
pub const CHECKPOINT_FILE: &str = "checkpoint";
/// File name of the verifier key in a bundle.
pub const KEY_FILE: &str = "verifier-key";

/// What to check a bundle against.
#[derive(Debug, Clone, Default)]
pub struct BundleOptions {
    /// The verifier key the auditor trusts. `None`: use the bundle's own `verifier-key`, which
    /// proves only that the bundle is self-consistent, not who signed it.
    pub pinned_key: Option<NoteVerifier>,
    /// A signed checkpoint the auditor kept from earlier: the bundle must extend it.
    pub earlier_checkpoint: Option<String>,
}

/// The bundle is unusable (missing files, unreadable, malformed key) — as opposed to invalid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The bundle's own verifier key is malformed.
    #[error("{path}: {source}")]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        source: CheckpointError,
    },
}

/// Why a readable bundle is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleInvalid {
    /// An entry breaks the chain rules, at this seq.
    #[error("entries.jsonl: {0}")]
    Entry(#[from] IntegrityProblem),
    /// The checkpoint is malformed, unsigned by the key, or badly signed.
    #[error("checkpoint: {0}")]
    Checkpoint(CheckpointError),
    /// The checkpoint does not describe these entries.
    #[error("checkpoint covers {checkpoint_size} entries with root {checkpoint_root}, but entries.jsonl has {size} entries with root {root}")]
    CheckpointMismatch {
        /// Size in the checkpoint.
        checkpoint_size: u64,
        /// Root in the checkpoint.
        checkpoint_root: Digest,
        /// Entries in the file.
        size: u64,
        /// Their root.
        root: Digest,
    },
    /// The checkpoint names another log than the entries' `source`.
    #[error("checkpoint origin {checkpoint:?} is not the entries' source {entries:?}")]
    OriginMismatch {
        /// Origin in the checkpoint.
        checkpoint: String,
        /// Source of the entries.
        entries: String,
    },
    /// The earlier checkpoint is not a prefix of this bundle: history was rewritten or cut.
    #[error("the earlier checkpoint (size {size}, root {expected}) is not a prefix of this bundle: {why}")]
    NotAnExtension {
        /// Earlier size.
        size: u64,
        /// Earlier root.
        expected: Digest,
        /// What differs.
        why: String,
    },
}

/// A bundle that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleReport {
    /// The log's origin.
    pub origin: String,
    /// Entries verified.
    pub entries: u64,
    /// Hash of the last entry.
    pub last_hash: Digest,
    /// Merkle root (equal to the checkpoint's).
    pub root: Digest,
    /// The key that signed the checkpoint.
    pub key: String,
    /// Whether that key was pinned by the auditor (true) or taken from the bundle or server itself.
    pub key_pinned: bool,
    /// Size of the earlier checkpoint this bundle was shown to extend.
    pub extends: Option<u64>,
}

impl fmt::Display for BundleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "valid: {} entries of {}", self.entries, self.origin)?;
        writeln!(f, "  head hash   {}", self.last_hash)?;
        writeln!(
            f,
            "  Merkle root {} (equals the signed checkpoint's)",
            self.root
        )?;
        if self.key_pinned {
            writeln!(f, "  signed by   {} (the key you pinned)", self.key)?;
        } else {
            writeln!(f, "  signed by   {}", self.key)?;
            writeln!(
                f,
                "  WARNING: the key came with the log itself and was not independently pinned;"
            )?;
            writeln!(
                f,
                "           pass --key with a verifier key obtained from the log's operator"
            )?;
        }
        if let Some(size) = self.extends {
            writeln!(
                f,
                "  extends the earlier checkpoint of size {size}: history only grew"
            )?;
        }
        Ok(())
    }
}

fn read_text(path: &Path) -> Result<String, BundleError> {
    std::fs::read_to_string(path).map_err(|source| BundleError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Verifies a bundle: every entry (canonical form, contiguous seqs, `prevhash` chain, time order,
/// one origin), the Merkle root against the signed checkpoint, the signature, and optionally that
/// an earlier checkpoint is a prefix. Streams `entries.jsonl`: memory does not grow with its length.
/// `progress` is called with the entries checked so far, every 4096 entries.
///
/// # Errors
/// Outer [`BundleError`] when the bundle cannot be used at all; inner [`BundleInvalid`] when it
/// was read and is not valid.
pub fn verify_bundle(
    dir: &Path,
    options: &BundleOptions,
    mut progress: impl FnMut(u64),
) -> Result<Result<BundleReport, BundleInvalid>, BundleError> {
    let key_path = dir.join(KEY_FILE);
    let (verifier, key_pinned) = match &options.pinned_key {
        Some(key) => (key.clone(), true),
        None => {
            let text = read_text(&key_path)?;
            let key = NoteVerifier::parse(text.trim()).map_err(|source| BundleError::Key {
                path: key_path,
                source,
            })?;
            (key, false)
        }
    };
    let note = read_text(&dir.join(CHECKPOINT_FILE))?;
    let checkpoint = match Checkpoint::verify(&note, &verifier) {
        Ok(c) => c,
        Err(e) => return Ok(Err(BundleInvalid::Checkpoint(e))),
    };
    let earlier = match &options.earlier_checkpoint {
        None => None,
        Some(text) => match Checkpoint::verify(text, &verifier) {
            Ok(c) => Some(c),
            Err(e) => return Ok(Err(BundleInvalid::Checkpoint(e))),
        },
    };
    let entries_path = dir.join(ENTRIES_FILE);
    let file = File::open(&entries_path).map_err(|source| BundleError::Io {
        path: entries_path.clone(),
        source,
    })?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut chain = ChainVerifier::with_origin(checkpoint.origin.clone());
    let mut earlier_root = earlier
        .as_ref()
        .filter(|c| c.size == 0)
        .map(|_| events::merkle::empty_root());
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        let read = Read::by_ref(&mut reader)
            .take(ENTRY_BYTES_MAX as u64 + 2)
            .read_until(b'\n', &mut line)
            .map_err(|source| BundleError::Io {
                path: entries_path.clone(),
                source,
            })?;
        if read == 0 {
            break;
        }
        let seq = chain.size();
        let Some(bytes) = line.strip_suffix(b"\n") else {
            let why = if line.len() > ENTRY_BYTES_MAX {
                "line is longer than the entry size limit"
            } else {
                "last line does not end with a newline"
            };
            return Ok(Err(IntegrityProblem {
                seq,
                reason: why.into(),
            }
            .into()));
        };
        if let Err(problem) = chain.push(bytes) {
            // An entry of another origin is reported as such, with its seq.
            return Ok(Err(problem.into()));
        }
        if earlier.as_ref().is_some_and(|c| c.size == chain.size()) {
            earlier_root = Some(chain.root());
        }
        if chain.size().is_multiple_of(4096) {
            progress(chain.size());
        }
    }
    progress(chain.size());
    if checkpoint.size != chain.size() || checkpoint.root != chain.root() {
        return Ok(Err(BundleInvalid::CheckpointMismatch {
            checkpoint_size: checkpoint.size,
            checkpoint_root: checkpoint.root,
            size: chain.size(),
            root: chain.root(),
        }));
    }
    if let Some(old) = &earlier {
        if old.origin != checkpoint.origin {
            return Ok(Err(BundleInvalid::OriginMismatch {
                checkpoint: old.origin.clone(),
                entries: checkpoint.origin.clone(),
            }));
        }
        match earlier_root {
            None => {
                return Ok(Err(BundleInvalid::NotAnExtension {
                    size: old.size,
                    expected: old.root,
                    why: format!("the bundle has only {} entries", chain.size()),
                }))
            }
            Some(root) if root != old.root => {
                return Ok(Err(BundleInvalid::NotAnExtension {
                    size: old.size,
                    expected: old.root,
                    why: format!("its first {} entries have root {root}", old.size),
                }))
            }
            Some(_) => {}
        }
    }
    Ok(Ok(BundleReport {
        origin: checkpoint.origin,
        entries: chain.size(),
        last_hash: chain.last_hash(),
        root: chain.root(),
        key: verifier.to_string(),
        key_pinned,
        extends: earlier.map(|c| c.size),
    }))
}
