//! A tiled log's Merkle nodes read from its hash tiles, so that proofs between any two of its
//! checkpoints can be computed by a client that holds nothing but the tiles. Nothing read is
//! trusted: a proof computed from served tiles is verified against signed roots like any other,
//! so damaged tiles give a proof that fails, never a false pass.

use crate::tiles::TileSource;
use events::merkle::{node_hash, NodeSource};
use events::tiles::{tile_hashes, Tile, TileKind, TILE_HEIGHT, TILE_WIDTH};
use events::Digest;
use std::cell::RefCell;
use std::collections::HashMap;

/// Why a node could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// The source could not be read (the network, a file): try again later.
    #[error("{0}")]
    Unreadable(String),
    /// The source answered, but without the tile or with a malformed one.
    #[error("{0}")]
    Invalid(String),
}

/// The nodes of the tree of `size` leaves that `source` serves.
pub struct TileNodes<'a, S> {
    source: &'a S,
    size: u64,
    /// Tiles fetched so far, decoded.
    cache: RefCell<HashMap<Tile, Vec<Digest>>>,
}

impl<'a, S: TileSource> TileNodes<'a, S> {
    /// The nodes of the tree of `size` leaves.
    pub fn new(source: &'a S, size: u64) -> Self {
        Self {
            source,
            size,
            cache: RefCell::new(HashMap::new()),
        }
    }

    /// The hashes of the tile holding Merkle level `level` (a multiple of 8), item `index`.
    fn stored(&self, level: u8, index: u64) -> Result<Digest, TileError> {
        let items = self.size >> level;
        if index >= items {
            return Err(TileError::Invalid(format!(
                "node {index} at level {level} is not in a tree of size {}",
                self.size
            )));
        }
        let tile_index = index / TILE_WIDTH;
        let tile = Tile {
            kind: TileKind::Hashes {
                level: level / TILE_HEIGHT,
            },
            index: tile_index,
            width: (items - tile_index * TILE_WIDTH).min(TILE_WIDTH),
        };
        let offset = usize::try_from(index % TILE_WIDTH).expect("below 256");
        if let Some(hashes) = self.cache.borrow().get(&tile) {
            return Ok(hashes[offset]);
        }
        let path = tile.path();
        let bytes = self
            .source
            .fetch(&path)
            .map_err(TileError::Unreadable)?
            .ok_or_else(|| TileError::Invalid(format!("{path} is missing")))?;
        let hashes = tile_hashes(&bytes, tile.width).ok_or_else(|| {
            TileError::Invalid(format!("{path} does not hold {} hashes", tile.width))
        })?;
        let hash = hashes[offset];
        self.cache.borrow_mut().insert(tile, hashes);
        Ok(hash)
    }
}

impl<S: TileSource> NodeSource for TileNodes<'_, S> {
    type Error = TileError;

    fn node(&self, level: u8, index: u64) -> Result<Digest, TileError> {
        if level.is_multiple_of(TILE_HEIGHT) {
            return self.stored(level, index);
        }
        // Levels between the tiled ones: hashed up from the tiled level below.
        Ok(node_hash(
            &self.node(level - 1, 2 * index)?,
            &self.node(level - 1, 2 * index + 1)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::merkle::{consistency_proof, root, verify_consistency, MemoryTree};
    use events::tiles::{tile_bytes, tiles_of};

    /// The tiles of a tree in memory, as a server would serve them.
    struct Served(HashMap<String, Vec<u8>>);

    impl TileSource for Served {
        fn fetch(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
            Ok(self.0.get(path).cloned())
        }
    }

    fn served(tree: &MemoryTree, size: u64) -> Served {
        let mut files = HashMap::new();
        for tile in tiles_of(size).filter(|t| t.kind != TileKind::Entries) {
            let level = u8::try_from(u32::from(tile.level()) * u32::from(TILE_HEIGHT)).unwrap();
            let hashes: Vec<Digest> = (tile.first_item()..tile.first_item() + tile.width)
                .map(|i| tree.node(level, i).unwrap())
                .collect();
            files.insert(tile.path(), tile_bytes(&hashes));
        }
        Served(files)
    }

    #[test]
    fn proofs_from_tiles_equal_proofs_from_the_tree_and_damage_fails_them() {
        let mut tree = MemoryTree::new();
        for i in 0..70_000u32 {
            tree.push_entry(&i.to_be_bytes());
        }
        let size = 70_000;
        let tiles = served(&tree, size);
        let nodes = TileNodes::new(&tiles, size);
        for (from, to) in [
            (1, size),
            (255, 257),
            (256, 65_536),
            (65_537, size),
            (12_345, 69_999),
        ] {
            let proof = consistency_proof(&nodes, from, to).unwrap();
            assert_eq!(proof, consistency_proof(&tree, from, to).unwrap());
            let (old, new) = (root(&tree, from).unwrap(), root(&tree, to).unwrap());
            assert!(verify_consistency(from, to, &old, &new, &proof).is_ok());
        }
        let mut damaged = served(&tree, size);
        let file = damaged.0.get_mut("tile/0/000").unwrap();
        file[40] ^= 1;
        let nodes = TileNodes::new(&damaged, size);
        let proof = consistency_proof(&nodes, 3, size).unwrap();
        let (old, new) = (root(&tree, 3).unwrap(), root(&tree, size).unwrap());
        assert!(verify_consistency(3, size, &old, &new, &proof).is_err());
    }
}
