//! The head mark: a small file in the store's directory holding the size and last entry hash of
//! the log after its latest durable commit. sled, finding a damaged segment when it opens,
//! recovers the part of its files before the damage and reports no error: the store looks like
//! a shorter, intact log. The mark is how the log knows that entries it acknowledged are gone,
//! and refuses writes instead of carrying on from the wrong head.
//!
//! It is written after the commit's own sync and not synced itself, so it can only lag the
//! store (a power cut may lose it): it never names entries the store did not make durable.

use super::{stored_entry, Digest, Store};
use std::fs::File;
use std::path::Path;

/// The mark's file name in the store's directory.
pub(super) const FILE: &str = "trustledger-head";
/// `<20-digit size> <64 hex digits>\n`: always the same length, so a rewrite is one write.
const LEN: usize = 20 + 1 + 64 + 1;

/// The mark's file, open for rewriting.
pub(super) struct HeadMark {
    file: File,
    recorded: Option<(u64, Digest)>,
}

impl HeadMark {
    /// Opens (creating) the mark in `dir` and reads what it records.
    pub(super) fn open(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(FILE);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let text = std::fs::read(&path)?;
        let recorded =
            if text.is_empty() {
                None
            } else {
                Some(parse(&text).ok_or_else(|| {
                    std::io::Error::other(format!("{} is malformed", path.display()))
                })?)
            };
        Ok(Self { file, recorded })
    }

    /// Records a durable head (best effort: a mark that is not written only lags).
    pub(super) fn record(&mut self, size: u64, last_hash: Digest) {
        use std::os::unix::fs::FileExt as _;
        let text = format!("{size:020} {}\n", last_hash.to_hex());
        debug_assert_eq!(text.len(), LEN);
        if self.file.write_all_at(text.as_bytes(), 0).is_ok() {
            self.recorded = Some((size, last_hash));
        }
    }

    /// Whether the store of `size` entries holds every entry the mark says was acknowledged,
    /// the last of them unchanged. A log without a mark gets one.
    pub(super) fn check(&mut self, store: &Store, size: u64) -> Result<(), (u64, String)> {
        let last_hash = |seq: u64| -> Result<Option<Digest>, (u64, String)> {
            stored_entry(store, seq)
                .map(|bytes| bytes.as_deref().map(Digest::of))
                .map_err(|e| (seq, format!("storage: {e}")))
        };
        match self.recorded {
            Some((marked, _)) if marked > size => Err((
                size,
                format!(
                    "the store holds {size} entries but {marked} were acknowledged: entries {size}–{} are lost (the store's files are damaged; restore them from a backup)",
                    marked - 1
                ),
            )),
            Some((marked, hash)) if marked > 0 && last_hash(marked - 1)? != Some(hash) => Err((
                marked - 1,
                format!(
                    "the entry differs from the one acknowledged at this seq (hash {hash})"
                ),
            )),
            Some(_) => Ok(()),
            None => {
                let hash = size
                    .checked_sub(1)
                    .map(last_hash)
                    .transpose()?
                    .flatten()
                    .unwrap_or(Digest::ZERO);
                self.record(size, hash);
                Ok(())
            }
        }
    }
}

fn parse(text: &[u8]) -> Option<(u64, Digest)> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('\n')?;
    let (size, hash) = text.split_once(' ')?;
    Some((size.parse().ok()?, Digest::from_hex(hash)?))
}
