//! Export bundles: `entries.jsonl` (line i = the stored bytes of entry i, then `\n`),
//! `checkpoint` (the signed note covering exactly those entries) and `verifier-key`.

use events::checkpoint::{Checkpoint, CheckpointError, NoteVerifier};
use events::limits::ENTRY_BYTES_MAX;
use events::rotation::KeySchedule;
use events::verify::{ChainVerifier, Hashed, IntegrityProblem, RootAt};
use events::{Digest, Entry};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

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

/// Entry `n` (in `problem`) names a `prevhash` other than entry `n − 1`'s hash. If the next line
/// records entry `n`'s hash (`hash`) as its `prevhash`, entry `n` is as the log wrote it and entry
/// `n − 1` is the one altered: the problem is reported there. Otherwise it stays at `n`.
fn attribute_broken_link<X>(
    problem: IntegrityProblem,
    hash: events::Digest,
    next: &Line<X>,
) -> IntegrityProblem {
    match next {
        Line::Prepared(hashed, _) if hashed.entry.prev_hash == hash && problem.seq > 0 => {
            events::verify::altered_before(&problem)
        }
        _ => problem,
    }
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
    progress: impl FnMut(u64),
) -> Result<Result<BundleReport, BundleInvalid>, BundleError> {
    check_bundle(dir, options, progress, |_: &Entry| (), |_, ()| {})
}

/// What a worker makes of each entry of a bundle, before the calling thread links it.
pub trait Prepare<X>: Sync {
    /// What `take` receives with `entry`.
    fn entry(&self, entry: &Entry) -> X;
    /// Called on the worker after the last entry of each block it prepared (before the block
    /// is handed on): work batched across a block's entries is finished here.
    fn block_done(&self) {}
}

impl<X, F: Fn(&Entry) -> X + Sync> Prepare<X> for F {
    fn entry(&self, entry: &Entry) -> X {
        self(entry)
    }
}

/// [`verify_bundle`], also handing every entry that links to `take`, in order, with what
/// `prepare` made of it on a worker thread. Entries are parsed, hashed and prepared on all cores
/// while this thread links them and runs `take`, so a caller that folds the entries (the audit)
/// pays for one read and one parse of the file. `take` sees entries before the checkpoint is
/// compared, so what it derived counts only if the result is `Ok`.
///
/// # Errors
/// As [`verify_bundle`].
pub fn check_bundle<X: Send>(
    dir: &Path,
    options: &BundleOptions,
    mut progress: impl FnMut(u64),
    prepare: impl Prepare<X>,
    mut take: impl FnMut(Entry, X),
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
    // Read now, verified once the entries are read: a key rotation among them may have changed
    // the key that signs it.
    let checkpoint = match crate::tiles::unverified(&note) {
        Ok(c) => c,
        Err(e) => return Ok(Err(BundleInvalid::Checkpoint(e))),
    };
    let earlier = match options
        .earlier_checkpoint
        .as_deref()
        .map(crate::tiles::unverified)
    {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => return Ok(Err(BundleInvalid::Checkpoint(e))),
    };
    let mut keys = KeySchedule::new(verifier.clone());
    let entries_path = dir.join(ENTRIES_FILE);
    let file = File::open(&entries_path).map_err(|source| BundleError::Io {
        path: entries_path.clone(),
        source,
    })?;
    let mut chain = ChainVerifier::with_origin(checkpoint.origin.clone());
    let mut earlier_root = earlier.as_ref().map(|c| RootAt::new(c.size));
    let mut invalid = None;
    // An entry whose `prevhash` does not match the entry before: held for one line, to see
    // which of the two was altered (see `attribute_broken_link`).
    let mut broken_link: Option<(IntegrityProblem, events::Digest)> = None;
    read_lines_prepared(file, prepare, |line| {
        if let Some((problem, hash)) = broken_link.take() {
            invalid = Some(attribute_broken_link(problem, hash, &line));
            return Ok(ControlFlow::Break(()));
        }
        let seq = chain.size();
        let mut link_breaks = None;
        if let Line::Prepared(hashed, _) = &line {
            // Only a broken `prevhash` is held: the seq and the origin are the entry's own.
            if seq > 0
                && hashed.entry.seq == seq
                && Some(hashed.entry.source.as_str()) == chain.origin()
                && hashed.entry.prev_hash != chain.last_hash()
            {
                link_breaks = Some(hashed.hash);
            }
        }
        let linked = match line {
            Line::Io(source) => return Err(source),
            Line::Unterminated(len) => Err(IntegrityProblem {
                seq,
                reason: if len > ENTRY_BYTES_MAX {
                    "line is longer than the entry size limit"
                } else {
                    "last line does not end with a newline"
                }
                .into(),
            }),
            Line::Malformed(e) => Err(IntegrityProblem {
                seq,
                reason: format!("malformed entry: {e}"),
            }),
            Line::Prepared(hashed, extra) => chain.link(hashed, |_| {}).and_then(|entry| {
                keys.follow(&entry).map_err(|reason| IntegrityProblem {
                    seq: entry.seq,
                    reason,
                })?;
                take(entry, extra);
                Ok(())
            }),
        };
        if let Err(problem) = linked {
            if let Some(hash) = link_breaks.filter(|_| problem.seq == seq) {
                broken_link = Some((problem, hash));
                return Ok(ControlFlow::Continue(()));
            }
            // An entry of another origin is reported as such, with its seq.
            invalid = Some(problem);
            return Ok(ControlFlow::Break(()));
        }
        if let Some(watch) = &mut earlier_root {
            watch.observe(&chain);
        }
        if chain.size().is_multiple_of(4096) {
            progress(chain.size());
        }
        Ok(ControlFlow::Continue(()))
    })
    .map_err(|source| BundleError::Io {
        path: entries_path.clone(),
        source,
    })?;
    if let Some((problem, _)) = broken_link {
        // The last entry: nothing after it says which of the two was altered.
        invalid.get_or_insert(problem);
    }
    if let Some(problem) = invalid {
        return Ok(Err(problem.into()));
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
    let mut signed = vec![(note.as_str(), checkpoint.size)];
    if let (Some(text), Some(old)) = (options.earlier_checkpoint.as_deref(), &earlier) {
        signed.push((text, old.size));
    }
    for (text, size) in signed {
        if let Err(e) = Checkpoint::verify(text, keys.key_for(size)) {
            return Ok(Err(BundleInvalid::Checkpoint(e)));
        }
    }
    if !keys.anchored() {
        return Ok(Err(BundleInvalid::Checkpoint(
            CheckpointError::NoSignatureByKey {
                name: verifier.name().to_owned(),
                key_id: verifier.key_id(),
            },
        )));
    }
    if let Some(old) = &earlier {
        if old.origin != checkpoint.origin {
            return Ok(Err(BundleInvalid::OriginMismatch {
                checkpoint: old.origin.clone(),
                entries: checkpoint.origin.clone(),
            }));
        }
        match earlier_root.as_ref().and_then(RootAt::root) {
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
        key: keys.current().to_string(),
        key_pinned,
        extends: earlier.map(|c| c.size),
    }))
}

/// One line of `entries.jsonl` as the reader's workers left it.
// Nearly every line is `Prepared`: boxing it would add an allocation per entry to save space only
// on the rare error lines.
#[allow(clippy::large_enum_variant)]
enum Line<X> {
    /// Parsed, hashed and prepared; not yet linked to its predecessor.
    Prepared(Hashed, X),
    /// Not a well-formed entry: why.
    Malformed(String),
    /// The file ends (or the size limit is passed) inside a line of this many bytes.
    Unterminated(usize),
    /// Reading the file failed here.
    Io(std::io::Error),
}

/// Bytes read per block handed to a worker: about a thousand entries, so a block is worth a
/// thread hand-off while the blocks in flight stay a few MiB.
const BLOCK_BYTES: usize = 1 << 20;
/// Blocks queued between the stages; with the workers' own, this bounds the memory in flight.
const BLOCKS_QUEUED: usize = 8;

/// A block of whole lines (`terminated`), or the unterminated rest of the file.
struct Block {
    bytes: Vec<u8>,
    terminated: bool,
}

/// Streams `file` line by line to `take`, in order: a reader thread cuts it into blocks of whole
/// lines, one worker per core parses, hashes and `prepare`s each line, and the calling thread
/// puts the blocks back in order. Stops at the first `Break`, at an unterminated line, or at an
/// error, leaving no thread behind.
fn read_lines_prepared<X: Send>(
    file: File,
    prepare: impl Prepare<X>,
    mut take: impl FnMut(Line<X>) -> std::io::Result<ControlFlow<()>>,
) -> std::io::Result<()> {
    let workers = events::verify::worker_threads();
    let (block_tx, block_rx) = mpsc::sync_channel::<(u64, std::io::Result<Block>)>(BLOCKS_QUEUED);
    let (line_tx, line_rx) = mpsc::sync_channel::<(u64, Vec<Line<X>>)>(BLOCKS_QUEUED);
    // Owned by the workers alone: when the last one stops, the reader's next send fails and it
    // stops too.
    let block_rx = Arc::new(Mutex::new(block_rx));
    std::thread::scope(|scope| {
        scope.spawn(move || read_blocks(file, &block_tx));
        for _ in 0..workers {
            let block_rx = Arc::clone(&block_rx);
            let line_tx = line_tx.clone();
            let prepare = &prepare;
            scope.spawn(move || loop {
                let next = block_rx.lock().map(|rx| rx.recv());
                let Ok(Ok((index, block))) = next else {
                    return;
                };
                let lines = match block {
                    Err(e) => vec![Line::Io(e)],
                    Ok(block) => prepare_block(&block, prepare),
                };
                if line_tx.send((index, lines)).is_err() {
                    return;
                }
            });
        }
        drop(block_rx);
        drop(line_tx);
        // Moved in, so that returning early drops it before the scope joins the workers: their
        // next send fails and they stop instead of waiting for room forever.
        let line_rx = line_rx;
        let mut waiting = BTreeMap::new();
        let mut next_index = 0;
        for (index, lines) in line_rx.iter() {
            waiting.insert(index, lines);
            while let Some(lines) = waiting.remove(&next_index) {
                next_index += 1;
                for line in lines {
                    let stop = matches!(line, Line::Unterminated(_));
                    if take(line)?.is_break() || stop {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    })
}

/// The reader stage: blocks of whole lines numbered from 0, then the unterminated rest if any.
fn read_blocks(mut file: File, out: &mpsc::SyncSender<(u64, std::io::Result<Block>)>) {
    let mut carry: Vec<u8> = Vec::new();
    let mut index = 0;
    loop {
        let mut bytes = std::mem::take(&mut carry);
        bytes.reserve(BLOCK_BYTES);
        let mut eof = false;
        // Fill to a whole block: a block then holds a line end unless a line passes the limit.
        while bytes.len() < BLOCK_BYTES {
            let start = bytes.len();
            bytes.resize(BLOCK_BYTES, 0);
            match file.read(&mut bytes[start..]) {
                Ok(0) => {
                    bytes.truncate(start);
                    eof = true;
                    break;
                }
                Ok(n) => bytes.truncate(start + n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => bytes.truncate(start),
                Err(e) => {
                    let _ = out.send((index, Err(e)));
                    return;
                }
            }
        }
        if bytes.is_empty() {
            return;
        }
        let block = match bytes.iter().rposition(|&b| b == b'\n') {
            Some(last) => {
                carry = bytes.split_off(last + 1);
                Block {
                    bytes,
                    terminated: true,
                }
            }
            None => Block {
                bytes,
                terminated: false,
            },
        };
        let last = !block.terminated || (eof && carry.is_empty());
        if out.send((index, Ok(block))).is_err() || last {
            return;
        }
        index += 1;
    }
}

fn prepare_block<X>(block: &Block, prepare: &impl Prepare<X>) -> Vec<Line<X>> {
    if !block.terminated {
        return vec![Line::Unterminated(block.bytes.len())];
    }
    let body = block.bytes.strip_suffix(b"\n").unwrap_or(&block.bytes);
    // Sized up front: growing a vector of several hundred KiB by doubling cost a copy and fresh
    // pages from the allocator (page faults) for every block.
    let mut lines = Vec::with_capacity(body.iter().filter(|&&b| b == b'\n').count() + 1);
    lines.extend(
        body.split(|&b| b == b'\n')
            .map(|line| match Hashed::of(line) {
                Ok(hashed) => {
                    let extra = prepare.entry(&hashed.entry);
                    Line::Prepared(hashed, extra)
                }
                Err(e) => Line::Malformed(e.to_string()),
            }),
    );
    prepare.block_done();
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Lines that parse as JSON but not as entries, each naming its own number (in the unknown
    /// member's name), padded so that the file spans several blocks.
    fn numbered_lines(count: usize) -> Vec<u8> {
        let pad = "x".repeat(600);
        let mut text = Vec::new();
        for n in 0..count {
            writeln!(text, "{{\"m{n:06}\":\"{pad}\"}}").unwrap();
        }
        text
    }

    /// What `read_lines_prepared` hands over, as text, stopping after `stop_after` lines.
    fn read_back(bytes: &[u8], stop_after: usize) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lines");
        std::fs::write(&path, bytes).unwrap();
        let mut seen = Vec::new();
        read_lines_prepared(
            File::open(&path).unwrap(),
            |_: &Entry| (),
            |line| {
                seen.push(match line {
                    Line::Prepared(hashed, ()) => format!("entry {}", hashed.entry.seq),
                    Line::Malformed(why) => why,
                    Line::Unterminated(len) => format!("unterminated {len}"),
                    Line::Io(e) => format!("io {e}"),
                });
                Ok(if seen.len() == stop_after {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            },
        )
        .unwrap();
        seen
    }

    #[test]
    fn lines_of_many_blocks_arrive_once_each_in_file_order() {
        let count = 5_000; // about 3 MiB: several blocks, prepared on several threads
        let seen = read_back(&numbered_lines(count), usize::MAX);
        assert_eq!(seen.len(), count);
        for (n, why) in seen.iter().enumerate() {
            assert_eq!(why, &format!("unknown member \"m{n:06}\""));
        }
    }

    #[test]
    fn an_unterminated_last_line_is_reported_after_the_whole_lines() {
        let mut bytes = numbered_lines(2_000);
        bytes.extend_from_slice(b"{\"tail\":1}");
        let seen = read_back(&bytes, usize::MAX);
        assert_eq!(seen.len(), 2_001);
        assert_eq!(seen[1_999], "unknown member \"m001999\"");
        assert_eq!(seen[2_000], "unterminated 10");
        // A line that never ends is cut off at a block, far past the entry size limit.
        let mut endless = numbered_lines(3);
        endless.extend(std::iter::repeat_n(b'a', 3 * BLOCK_BYTES));
        let seen = read_back(&endless, usize::MAX);
        assert_eq!(seen.len(), 4);
        assert!(seen[3].starts_with("unterminated "), "{seen:?}");
        let len: usize = seen[3]["unterminated ".len()..].parse().unwrap();
        assert!(len > ENTRY_BYTES_MAX, "{len}");
    }

    #[test]
    fn stopping_early_leaves_no_thread_waiting_and_an_empty_file_has_no_lines() {
        // Returning at all is the test: a worker left blocked would hang the scope's join.
        assert_eq!(read_back(&numbered_lines(10_000), 3).len(), 3);
        assert!(read_back(b"", usize::MAX).is_empty());
    }
}
