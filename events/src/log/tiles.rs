//! The log read back as C2SP `tlog-tiles` resources ([`crate::tiles`]): hash tiles from the
//! Merkle nodes the index records hold, entry bundles from the stored chunks.

use super::{chunk_containing, keys, Log, ReadError};
use crate::keys::ChunkIndex;
use crate::merkle::NodeSource;
use crate::tiles::{self, Tile, TileKind, TILE_HEIGHT};

impl Log {
    /// The bytes of `tile` as served (32 bytes a hash, or an entry bundle), or `None` when the
    /// log's durable head does not yet hold all of it.
    ///
    /// # Errors
    /// When the store cannot be read, or its index records are damaged.
    pub fn tile(&self, tile: &Tile) -> Result<Option<Vec<u8>>, ReadError> {
        if !tile.within(self.head().size) {
            return Ok(None);
        }
        let first = tile.first_item();
        Ok(Some(match tile.kind {
            TileKind::Entries => {
                let limit = usize::try_from(tile.width).expect("at most 256");
                let stored = self.read_bytes(first, limit)?;
                tiles::encode_bundle(stored.iter().map(|(_, bytes)| bytes.as_ref()))
            }
            TileKind::Hashes { level: 0 } => self.leaf_hashes(first, tile.width)?,
            TileKind::Hashes { level } => {
                let nodes = self.nodes();
                let mut out = Vec::with_capacity(usize::try_from(tile.width * 32).unwrap_or(0));
                for item in first..first + tile.width {
                    out.extend_from_slice(&nodes.node(level * TILE_HEIGHT, item)?.0);
                }
                out
            }
        }))
    }

    /// The leaf hashes of entries `first .. first + count`, read from their chunks' index
    /// records in one ordered scan.
    fn leaf_hashes(&self, first: u64, count: u64) -> Result<Vec<u8>, ReadError> {
        let store = &self.shared.store;
        let damaged =
            |seq: u64| ReadError::IndexCorrupt(format!("no index record holds seq {seq}"));
        let (start, _) =
            chunk_containing(store, keys::CHUNK_INDEX, first)?.ok_or(damaged(first))?;
        let mut out = Vec::with_capacity(usize::try_from(count * 32).unwrap_or(0));
        let end = first + count;
        let mut next = first;
        for item in store.range(keys::CHUNK_INDEX, start..) {
            let (key, record) = item?;
            let Some(chunk_first) = keys::key_number(&key, keys::CHUNK_INDEX) else {
                break;
            };
            let chunk =
                ChunkIndex::decode(chunk_first, &record).map_err(ReadError::IndexCorrupt)?;
            for (offset, entry) in chunk.entries.iter().enumerate() {
                let seq = chunk_first + offset as u64;
                if seq == next && seq < end {
                    out.extend_from_slice(&entry.leaf.0);
                    next += 1;
                }
            }
            if next >= end {
                return Ok(out);
            }
        }
        Err(damaged(next))
    }
}
