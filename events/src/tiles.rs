//! C2SP `tlog-tiles`: the log's Merkle tree and entries as static, cacheable resources.
//!
//! A tile at level *L* and index *N* holds up to 256 consecutive Merkle Tree Hashes, each the
//! root of a complete subtree of 256^L leaves: `MTH(D[(N·256 + i)·256^L : (N·256 + i + 1)·256^L])`.
//! Level 0 holds leaf hashes. An entry bundle at index *N* holds the stored bytes of entries
//! `N·256 ..`, each behind its length as a big-endian `u16`. A full tile or bundle has 256 items;
//! the rightmost of each level may be partial (`.p/<W>`, 1–255 items). Paths write *N* as
//! zero-padded groups of three digits, all but the last prefixed `x` (`1234067` →
//! `x001/x234/067`).

use crate::merkle::node_hash;
use crate::Digest;

/// Items in a full tile or entry bundle.
pub const TILE_WIDTH: u64 = 256;
/// Merkle tree levels one tile level spans (256 = 2^8).
pub const TILE_HEIGHT: u8 = 8;
/// Highest tile level a path may name.
pub const TILE_LEVEL_MAX: u8 = 63;

/// What a tile holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TileKind {
    /// Merkle Tree Hashes at a tile level (0: leaf hashes).
    Hashes {
        /// The tile level, 0–63.
        level: u8,
    },
    /// Entry bundles: the entries' stored bytes, length-prefixed.
    Entries,
}

/// One tile or entry bundle: its kind, index and width (256 for a full one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tile {
    /// What it holds.
    pub kind: TileKind,
    /// Its index within its level.
    pub index: u64,
    /// How many items it holds, 1–256.
    pub width: u64,
}

impl Tile {
    /// Whether it holds 256 items (and so never changes).
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// The tile level (entry bundles are at level 0).
    pub fn level(&self) -> u8 {
        match self.kind {
            TileKind::Hashes { level } => level,
            TileKind::Entries => 0,
        }
    }

    /// The entries (leaves) one item of it spans: 256^level.
    pub fn leaves_per_item(&self) -> u64 {
        1u64 << (u32::from(TILE_HEIGHT) * u32::from(self.level()))
    }

    /// The first item's index at its Merkle level (the first leaf for level 0).
    pub fn first_item(&self) -> u64 {
        self.index * TILE_WIDTH
    }

    /// Its path under the log's prefix: `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        let level = match self.kind {
            TileKind::Hashes { level } => level.to_string(),
            TileKind::Entries => "entries".to_owned(),
        };
        let mut path = format!("tile/{level}/{}", index_path(self.index));
        if !self.is_full() {
            path.push_str(&format!(".p/{}", self.width));
        }
        path
    }

    /// Parses a path as [`Tile::path`] writes it (and only so: no leading zeros, no other
    /// spelling), or `None`.
    pub fn parse(path: &str) -> Option<Self> {
        let rest = path.strip_prefix("tile/")?;
        let (level, rest) = rest.split_once('/')?;
        let kind = if level == "entries" {
            TileKind::Entries
        } else {
            let level = parse_decimal(level)?;
            if level > u64::from(TILE_LEVEL_MAX) {
                return None;
            }
            TileKind::Hashes {
                level: u8::try_from(level).ok()?,
            }
        };
        let (index, width) = match rest.split_once(".p/") {
            Some((index, width)) => {
                let width = parse_decimal(width)?;
                if !(1..TILE_WIDTH).contains(&width) {
                    return None;
                }
                (index, width)
            }
            None => (rest, TILE_WIDTH),
        };
        let tile = Self {
            kind,
            index: parse_index_path(index)?,
            width,
        };
        (tile.path() == path).then_some(tile)
    }

    /// Whether a tree of `size` leaves holds every item of it.
    pub fn within(&self, size: u64) -> bool {
        let per = self.leaves_per_item();
        self.first_item()
            .checked_add(self.width)
            .and_then(|end| end.checked_mul(per))
            .is_some_and(|last| last <= size)
    }
}

/// Every tile and entry bundle a tree of `size` leaves is served as: for each level, its full
/// tiles and (where the level's count is not a multiple of 256) its one partial tile; then the
/// entry bundles, laid out as level 0.
pub fn tiles_of(size: u64) -> impl Iterator<Item = Tile> {
    let mut levels = Vec::new();
    let mut level = 0u8;
    loop {
        let items = size >> (u32::from(TILE_HEIGHT) * u32::from(level));
        if items == 0 || level > TILE_LEVEL_MAX {
            break;
        }
        levels.push((TileKind::Hashes { level }, items));
        level += 1;
    }
    levels.push((TileKind::Entries, size));
    levels.into_iter().flat_map(|(kind, items)| {
        let full = items / TILE_WIDTH;
        let partial = items % TILE_WIDTH;
        (0..full)
            .map(move |index| Tile {
                kind,
                index,
                width: TILE_WIDTH,
            })
            .chain((partial > 0).then_some(Tile {
                kind,
                index: full,
                width: partial,
            }))
    })
}

/// `n` as path elements: zero-padded groups of three digits, all but the last prefixed `x`.
pub fn index_path(n: u64) -> String {
    let digits = n.to_string();
    let padded = format!("{}{digits}", "0".repeat((3 - digits.len() % 3) % 3));
    let groups: Vec<&str> = padded
        .as_bytes()
        .chunks(3)
        .map(|g| std::str::from_utf8(g).expect("ASCII digits"))
        .collect();
    let (last, rest) = groups.split_last().expect("at least one group");
    let mut path: String = rest.iter().map(|g| format!("x{g}/")).collect();
    path.push_str(last);
    path
}

fn parse_index_path(path: &str) -> Option<u64> {
    let mut digits = String::new();
    let parts: Vec<&str> = path.split('/').collect();
    let (last, rest) = parts.split_last()?;
    for part in rest {
        let group = part.strip_prefix('x')?;
        if group.len() != 3 || !group.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.push_str(group);
    }
    if last.len() != 3 || !last.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.push_str(last);
    digits.parse().ok()
}

fn parse_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// An entry bundle of `entries` (stored bytes, each at most 65,535 bytes).
///
/// # Panics
/// If an entry is longer than a `u16` length can frame (the log never stores one).
pub fn encode_bundle<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let len = u16::try_from(entry.len()).expect("entries are at most 65,535 bytes");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(entry);
    }
    out
}

/// The entries of an entry bundle, or what is wrong with it.
///
/// # Errors
/// A length that runs past the end.
pub fn decode_bundle(mut bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut entries = Vec::new();
    while !bytes.is_empty() {
        let [high, low, rest @ ..] = bytes else {
            return Err(format!(
                "entry {}: a length needs 2 bytes, {} left",
                entries.len(),
                bytes.len()
            ));
        };
        let len = usize::from(u16::from_be_bytes([*high, *low]));
        if rest.len() < len {
            return Err(format!(
                "entry {}: length {len} runs past the bundle's end",
                entries.len()
            ));
        }
        entries.push(&rest[..len]);
        bytes = &rest[len..];
    }
    Ok(entries)
}

/// The root of the complete subtree whose 256 hashes a full tile holds: the hash the tile
/// contributes to the tile level above.
///
/// # Panics
/// If `hashes` is not 256 long.
pub fn full_tile_root(hashes: &[Digest]) -> Digest {
    assert_eq!(
        hashes.len() as u64,
        TILE_WIDTH,
        "a full tile has 256 hashes"
    );
    let mut level: Vec<Digest> = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    level[0]
}

/// A tile's hashes as bytes (32 each, in order).
pub fn tile_bytes(hashes: &[Digest]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.0).collect()
}

/// A tile's bytes as hashes, or `None` when they are not `width` hashes.
pub fn tile_hashes(bytes: &[u8], width: u64) -> Option<Vec<Digest>> {
    (bytes.len() as u64 == width * 32).then(|| {
        bytes
            .chunks(32)
            .map(|c| Digest(c.try_into().expect("32 bytes")))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_the_specs() {
        // The spec's example: index 1234067 is x001/x234/067.
        assert_eq!(index_path(1_234_067), "x001/x234/067");
        assert_eq!(index_path(0), "000");
        assert_eq!(index_path(999), "999");
        assert_eq!(index_path(1000), "x001/000");
        let tile = Tile {
            kind: TileKind::Hashes { level: 2 },
            index: 1_234_067,
            width: 5,
        };
        assert_eq!(tile.path(), "tile/2/x001/x234/067.p/5");
        assert_eq!(Tile::parse(&tile.path()), Some(tile));
        let bundle = Tile {
            kind: TileKind::Entries,
            index: 3,
            width: 256,
        };
        assert_eq!(bundle.path(), "tile/entries/003");
        assert_eq!(Tile::parse("tile/entries/003"), Some(bundle));
        for bad in [
            "tile/0/3",
            "tile/00/003",
            "tile/64/000",
            "tile/0/x1/003",
            "tile/0/000.p/256",
            "tile/0/000.p/0",
            "tile/0/000.p/05",
            "tile/0/x000/003",
            "tiles/0/000",
        ] {
            assert_eq!(Tile::parse(bad), None, "{bad}");
        }
    }

    /// The spec's example: a tree of 70,000 is 273 full level-0 tiles, a partial one of 112, one
    /// full level-1 tile, a partial one of 17 and a partial level-2 tile of 1; a tree of 256 is
    /// one full level-0 tile and a partial level-1 tile of 1.
    #[test]
    fn a_tree_is_served_as_the_spec_says() {
        let hashes = |size| -> Vec<(u8, u64, u64)> {
            tiles_of(size)
                .filter_map(|t| match t.kind {
                    TileKind::Hashes { level } => Some((level, t.index, t.width)),
                    TileKind::Entries => None,
                })
                .collect()
        };
        let tiles = hashes(70_000);
        assert_eq!(tiles.iter().filter(|t| t.0 == 0 && t.2 == 256).count(), 273);
        assert!(tiles.contains(&(0, 273, 112)));
        assert!(tiles.contains(&(1, 0, 256)));
        assert!(tiles.contains(&(1, 1, 17)));
        assert!(tiles.contains(&(2, 0, 1)));
        assert_eq!(tiles.len(), 273 + 4);
        assert_eq!(hashes(256), vec![(0, 0, 256), (1, 0, 1)]);
        assert!(tiles_of(0).next().is_none());
    }

    #[test]
    fn bundles_frame_entries_with_a_big_endian_u16() {
        let bundle = encode_bundle([&b"ab"[..], &[7u8; 300][..]]);
        assert_eq!(&bundle[..4], &[0, 2, b'a', b'b']);
        assert_eq!(&bundle[4..6], &[1, 44]);
        let decoded = decode_bundle(&bundle).unwrap();
        assert_eq!(decoded, vec![&b"ab"[..], &[7u8; 300][..]]);
        assert!(decode_bundle(&bundle[..bundle.len() - 1]).is_err());
        assert!(decode_bundle(&[0]).is_err());
    }
}
