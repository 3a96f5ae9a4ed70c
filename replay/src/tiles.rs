//! Verifying a log from its C2SP `tlog-tiles` resources alone (a directory that
//! `trustledger export --tiles` wrote, or a server's `/tlog/`): the checkpoint's signature, every
//! entry bundle's entries against the chain rules, the Merkle root against the checkpoint, and
//! every hash tile against the hashes the entries give.

use events::checkpoint::NoteVerifier;
use events::cosignature::WitnessPolicy;
use events::merkle::leaf_hash;
use events::rotation::KeySchedule;
use events::tiles::{self, Tile, TileKind, TILE_WIDTH};
use events::verify::ChainVerifier;
use events::Digest;
use std::path::PathBuf;

/// Where tiles are read from: a path under the log's prefix (`checkpoint`, `tile/…`) to its
/// bytes, or `None` when there is no such resource.
pub trait TileSource {
    /// The resource at `path`.
    ///
    /// # Errors
    /// When it cannot be read (other than being absent).
    fn fetch(&self, path: &str) -> Result<Option<Vec<u8>>, String>;
}

/// Tiles as files under a directory (what `export --tiles` writes).
#[derive(Debug, Clone)]
pub struct DirTiles(pub PathBuf);

impl TileSource for DirTiles {
    fn fetch(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        match std::fs::read(self.0.join(path)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{path}: {e}")),
        }
    }
}

/// Tiles served over HTTP under a URL prefix (a trustledger server's is `…/tlog`).
#[derive(Debug, Clone)]
pub struct UrlTiles(pub String);

impl TileSource for UrlTiles {
    fn fetch(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        let url = format!("{}/{path}", self.0.trim_end_matches('/'));
        match ureq::get(&url).call() {
            Ok(response) => {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(response.into_reader(), 1 << 24),
                    &mut bytes,
                )
                .map_err(|e| format!("{url}: {e}"))?;
                Ok(Some(bytes))
            }
            Err(ureq::Error::Status(404, _)) => Ok(None),
            Err(e) => Err(format!("{url}: {e}")),
        }
    }
}

/// What a tiled log that verifies holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TiledLog {
    /// The checkpoint's origin.
    pub origin: String,
    /// Entries verified.
    pub size: u64,
    /// Their Merkle root (the checkpoint's).
    pub root: Digest,
    /// Hash tiles checked.
    pub hash_tiles: u64,
    /// The witnesses whose cosignature on the checkpoint verified.
    pub cosigned_by: Vec<String>,
}

/// Verifies the tiled log `source` serves, under `verifier`, its checkpoint cosigned as `policy`
/// requires. `Ok(Err(problem))` when it does not verify; `Err` when a resource could not be read
/// at all.
///
/// # Errors
/// A resource that could not be read (as opposed to one that is wrong or missing).
pub fn verify_tiles(
    source: &impl TileSource,
    verifier: &NoteVerifier,
    policy: &WitnessPolicy,
    mut progress: impl FnMut(u64),
) -> Result<Result<TiledLog, String>, String> {
    let Some(note) = source.fetch("checkpoint")? else {
        return Ok(Err("no checkpoint".into()));
    };
    let note = String::from_utf8_lossy(&note);
    // Read now, verified once the entries are read: a key rotation among them may have changed
    // the key that signs it.
    let checkpoint = match unverified(&note) {
        Ok(c) => c,
        Err(e) => return Ok(Err(format!("checkpoint: {e}"))),
    };
    let mut keys = KeySchedule::new(verifier.clone());
    let size = checkpoint.size;
    let mut chain = ChainVerifier::with_origin(checkpoint.origin.clone());
    // `levels[l]`: every hash of tile level l, as the entries give them.
    let mut levels: Vec<Vec<Digest>> = vec![Vec::new()];
    while chain.size() < size {
        let checked = check_entries_bundle(source, size, &mut chain, Some(&mut keys), |entry| {
            levels[0].push(leaf_hash(entry));
        })?;
        if let Err(problem) = checked {
            return Ok(Err(problem));
        }
        progress(chain.size());
    }
    if chain.root() != checkpoint.root {
        return Ok(Err(format!(
            "the entries' Merkle root {} is not the checkpoint's {}",
            chain.root(),
            checkpoint.root
        )));
    }
    let cosigned = match policy.verify(&note, keys.key_for(size)) {
        Ok((_, cosigned)) if keys.anchored() => cosigned,
        Ok(_) => {
            return Ok(Err(format!(
                "checkpoint: the key {verifier} is none of this log's"
            )))
        }
        Err(e) => return Ok(Err(format!("checkpoint: {e}"))),
    };
    while levels.last().is_some_and(|l| l.len() as u64 >= TILE_WIDTH) {
        let below = levels.last().expect("a level");
        let above = below
            .chunks_exact(TILE_WIDTH as usize)
            .map(tiles::full_tile_root)
            .collect();
        levels.push(above);
    }
    let mut hash_tiles = 0;
    for tile in tiles::tiles_of(size).filter(|t| t.kind != TileKind::Entries) {
        if let Err(problem) = check_hash_tile(source, &tile, &levels)? {
            return Ok(Err(problem));
        }
        hash_tiles += 1;
    }
    Ok(Ok(TiledLog {
        origin: checkpoint.origin,
        size,
        root: checkpoint.root,
        hash_tiles,
        cosigned_by: cosigned.into_iter().map(|(name, _)| name).collect(),
    }))
}

/// Reads the entry bundle holding entry `chain.size()` of the tree of `size` and pushes its
/// entries from there on through `chain` (following key rotations into `keys`), calling `each`
/// with every entry pushed. When an entry does not link to the one before, the entry after it
/// decides which of the two was altered (the next bundle's first, at a bundle's end).
/// `Ok(Err(problem))` for a bundle that is missing, malformed or holds a bad entry.
///
/// # Errors
/// When a bundle could not be read at all.
pub fn check_entries_bundle(
    source: &impl TileSource,
    size: u64,
    chain: &mut ChainVerifier,
    mut keys: Option<&mut KeySchedule>,
    mut each: impl FnMut(&[u8]),
) -> Result<Result<(), String>, String> {
    let bundle = entry_bundle(chain.size() / TILE_WIDTH, size);
    let Some(bytes) = source.fetch(&bundle.path())? else {
        return Ok(Err(format!("{} is missing", bundle.path())));
    };
    let entries = match tiles::decode_bundle(&bytes) {
        Ok(entries) if entries.len() as u64 == bundle.width => entries,
        Ok(entries) => {
            return Ok(Err(format!(
                "{} holds {} entries, not {}",
                bundle.path(),
                entries.len(),
                bundle.width
            )))
        }
        Err(e) => return Ok(Err(format!("{}: {e}", bundle.path()))),
    };
    let skip = usize::try_from(chain.size() - bundle.first_item()).unwrap_or(usize::MAX);
    for (i, entry) in entries.iter().enumerate().skip(skip) {
        let pushed = match entries.get(i + 1) {
            Some(next) => chain.push_located(entry, Some(next)),
            None => match chain.push_located(entry, None) {
                // The failed push changed nothing: try again, with the next bundle's first.
                Err(_) => {
                    let next = first_entry(source, &entry_bundle(bundle.index + 1, size))?;
                    chain.push_located(entry, next.as_deref())
                }
                ok => ok,
            },
        };
        let entry = match pushed {
            Ok(entry) => entry,
            Err(problem) => return Ok(Err(problem.to_string())),
        };
        if let Some(keys) = keys.as_deref_mut() {
            if let Err(why) = keys.follow(&entry) {
                return Ok(Err(format!("seq {}: {why}", entry.seq)));
            }
        }
        each(entry.bytes());
    }
    Ok(Ok(()))
}

/// Entry bundle `index` of a tree of `size` (of width 0 past its end).
fn entry_bundle(index: u64, size: u64) -> Tile {
    Tile {
        kind: TileKind::Entries,
        index,
        width: size.saturating_sub(index * TILE_WIDTH).min(TILE_WIDTH),
    }
}

/// The first entry of `bundle`, if it exists and decodes (only to tell which entry of a broken
/// link was altered).
fn first_entry(source: &impl TileSource, bundle: &Tile) -> Result<Option<Vec<u8>>, String> {
    if bundle.width == 0 {
        return Ok(None);
    }
    Ok(source.fetch(&bundle.path())?.and_then(|bytes| {
        tiles::decode_bundle(&bytes)
            .ok()?
            .first()
            .map(|e| e.to_vec())
    }))
}

/// A signed checkpoint note's body, parsed without checking its signature (checked later, with
/// the key in force at its size).
///
/// # Errors
/// A note without a body, or a malformed one.
pub fn unverified(
    note: &str,
) -> Result<events::checkpoint::Checkpoint, events::checkpoint::CheckpointError> {
    let split = note.find("\n\n").ok_or_else(|| {
        events::checkpoint::CheckpointError::MalformedNote(
            "no blank line before the signatures".into(),
        )
    })?;
    events::checkpoint::Checkpoint::parse_text(&note[..=split])
}

/// Whether `tile` as served holds the hashes the entries give.
fn check_hash_tile(
    source: &impl TileSource,
    tile: &Tile,
    levels: &[Vec<Digest>],
) -> Result<Result<(), String>, String> {
    let path = tile.path();
    let Some(bytes) = source.fetch(&path)? else {
        return Ok(Err(format!("{path} is missing")));
    };
    let first = usize::try_from(tile.first_item()).unwrap_or(usize::MAX);
    let width = usize::try_from(tile.width).unwrap_or(usize::MAX);
    let expected = levels
        .get(usize::from(tile.level()))
        .and_then(|level| level.get(first..first + width))
        .map(tiles::tile_bytes);
    Ok(if expected.as_deref() == Some(bytes.as_slice()) {
        Ok(())
    } else {
        Err(format!("{path} does not hold the hashes its entries give"))
    })
}
