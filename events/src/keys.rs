//! Key layout of the `log` tree (storage layout 2), public for tools and tests that read a store
//! directly. One tree holds entries and every index, so
//! that a group commit is one `Tree::apply_batch`, which sled applies atomically (all of it
//! survives a crash or none).
//!
//! Entries are stored in *chunks*: runs of consecutive entries from one commit, each chunk
//! under two keys (its entries, and its index record). A commit writes a few keys, not several
//! per entry: sled 0.34's cost is per key (a leaf is cloned per insert and split past 16 keys),
//! and per-entry keys for entries, ids, streams and Merkle nodes made it 3.5 inserts per entry.
//! Keys are never rewritten: a chunk never spans two commits.

use crate::entry::Digest;
use uuid::Uuid;

/// `E ‖ first seq(u64 BE)` → the chunk's entries, each one's stored bytes followed by `\n`
/// (canonical JSON holds no raw newline), so a chunk is a slice of an export's `entries.jsonl`.
pub const CHUNK: u8 = b'E';
/// `X ‖ first seq(u64 BE)` → the chunk's index record ([`ChunkIndex`]).
pub const CHUNK_INDEX: u8 = b'X';
/// `c ‖ size(u64 BE)` → signed checkpoint note.
pub const CHECKPOINT: u8 = b'c';
/// Storage layout 1 kept one `e ‖ seq` key per entry; a store holding such keys is refused.
pub const LAYOUT_1_ENTRY: u8 = b'e';

/// A new chunk starts once the current one holds this many bytes. sled 0.34 keeps up to 17 keys
/// in a leaf whatever their size and, once a page it rewrites is over 128 KiB (a quarter of its
/// 512 KiB segment), writes it to a blob file of its own, which then needs an fsync of its own
/// and of the directory. 17 chunks of 4 KiB and an entry stay under that; 32 KiB chunks made a
/// blob file every commit or so and halved batched throughput. Measured in `benches/README.md`.
pub const CHUNK_BYTES_TARGET: usize = 4 * 1024;

/// The key of the chunk whose first entry is `first`.
pub fn chunk(first: u64) -> [u8; 9] {
    prefixed(CHUNK, first)
}

/// The key of the index record of the chunk whose first entry is `first`.
pub fn chunk_index(first: u64) -> [u8; 9] {
    prefixed(CHUNK_INDEX, first)
}

/// The key of the signed checkpoint for `size` entries.
pub fn checkpoint(size: u64) -> [u8; 9] {
    prefixed(CHECKPOINT, size)
}

fn prefixed(prefix: u8, n: u64) -> [u8; 9] {
    let mut k = [prefix; 9];
    k[1..].copy_from_slice(&n.to_be_bytes());
    k
}

/// Decodes a big-endian u64 stored as a value or key suffix.
pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// The seq (or size) a 9-byte key of the given prefix names.
pub fn key_number(key: &[u8], prefix: u8) -> Option<u64> {
    (key.len() == 9 && key[0] == prefix)
        .then(|| decode_u64(&key[1..]))
        .flatten()
}

/// How many Merkle nodes above the leaves appending leaf `index` completes: one per trailing
/// one bit (leaf 0b0111 completes the subtrees of 2, 4 and 8 leaves it ends).
pub fn nodes_completed_by(index: u64) -> usize {
    index.trailing_ones() as usize
}

/// The index record of one chunk:
///
/// ```text
/// count u32 BE
/// nodes: 32-byte hashes, for each leaf of the chunk in order the nodes it completed, level 1 up
/// per entry, in order: event id (16) ‖ Merkle leaf hash (32) ‖ streamversion (u64 BE)
///                      ‖ subject length (u16 BE) ‖ subject (UTF-8)
/// ```
///
/// It is what the id and stream indexes are rebuilt from on open (without reading entries), the
/// interior Merkle nodes that proofs read, and each entry's leaf hash, which lets verification
/// tell exactly which entry's content changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkIndex<'a> {
    /// The chunk's first seq.
    pub first: u64,
    /// Every Merkle node the chunk's leaves completed, in order (32 bytes each).
    pub nodes: &'a [u8],
    /// Each entry's record, in seq order.
    pub entries: Vec<IndexedEntry<'a>>,
}

/// One entry as its chunk's index record describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedEntry<'a> {
    /// Its event id.
    pub id: Uuid,
    /// Its Merkle leaf hash (RFC 9162: SHA-256 of 0x00 ‖ stored bytes).
    pub leaf: Digest,
    /// Its `streamversion`.
    pub stream_version: u64,
    /// Its `subject`.
    pub subject: &'a str,
}

impl<'a> ChunkIndex<'a> {
    /// Decodes the record stored for the chunk starting at `first`.
    ///
    /// # Errors
    /// What is malformed, as text.
    pub fn decode(first: u64, bytes: &'a [u8]) -> Result<Self, String> {
        let count = bytes
            .get(..4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
            .ok_or("index record is shorter than its count")? as u64;
        let node_count: usize = (first..first.saturating_add(count))
            .map(nodes_completed_by)
            .sum();
        let nodes_end = 4 + node_count * 32;
        let nodes = bytes
            .get(4..nodes_end)
            .ok_or("index record is shorter than its Merkle nodes")?;
        let mut rest = &bytes[nodes_end..];
        let mut entries = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for _ in 0..count {
            let fixed = rest
                .get(..58)
                .ok_or("index record ends inside an entry's record")?;
            let subject_len = usize::from(u16::from_be_bytes([fixed[56], fixed[57]]));
            let subject = rest
                .get(58..58 + subject_len)
                .ok_or("index record ends inside a subject")?;
            entries.push(IndexedEntry {
                id: Uuid::from_bytes(fixed[..16].try_into().expect("16 bytes")),
                leaf: Digest(fixed[16..48].try_into().expect("32 bytes")),
                stream_version: decode_u64(&fixed[48..56]).expect("8 bytes"),
                subject: std::str::from_utf8(subject)
                    .map_err(|_| "index record holds a subject that is not UTF-8")?,
            });
            rest = &rest[58 + subject_len..];
        }
        if !rest.is_empty() {
            return Err("index record has bytes after its last entry".into());
        }
        Ok(Self {
            first,
            nodes,
            entries,
        })
    }

    /// One past the last seq of the chunk.
    pub fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    /// The nodes leaf `leaf` (in this chunk) completed, level 1 first.
    pub fn nodes_of(&self, leaf: u64) -> &'a [u8] {
        let before: usize = (self.first..leaf).map(nodes_completed_by).sum();
        &self.nodes[before * 32..(before + nodes_completed_by(leaf)) * 32]
    }
}

/// Writes a chunk's index record as entries are added (see [`ChunkIndex`] for the layout).
#[derive(Debug, Clone, Default)]
pub struct ChunkIndexWriter {
    count: u32,
    nodes: Vec<u8>,
    entries: Vec<u8>,
}

impl ChunkIndexWriter {
    /// Adds the next entry and the Merkle nodes its leaf completed (32 bytes each, level 1 up).
    pub fn push(&mut self, entry: IndexedEntry<'_>, completed_nodes: &[u8]) {
        self.count += 1;
        self.nodes.extend_from_slice(completed_nodes);
        self.entries.extend_from_slice(entry.id.as_bytes());
        self.entries.extend_from_slice(&entry.leaf.0);
        self.entries
            .extend_from_slice(&entry.stream_version.to_be_bytes());
        let len = u16::try_from(entry.subject.len()).expect("subjects are at most 256 bytes");
        self.entries.extend_from_slice(&len.to_be_bytes());
        self.entries.extend_from_slice(entry.subject.as_bytes());
    }

    /// Lengths to return to with [`ChunkIndexWriter::truncate`].
    pub fn mark(&self) -> (u32, usize, usize) {
        (self.count, self.nodes.len(), self.entries.len())
    }

    /// Returns to lengths taken with [`ChunkIndexWriter::mark`].
    pub fn truncate(&mut self, (count, nodes, entries): (u32, usize, usize)) {
        self.count = count;
        self.nodes.truncate(nodes);
        self.entries.truncate(entries);
    }

    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.nodes.len() + self.entries.len());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.nodes);
        out.extend_from_slice(&self.entries);
        out
    }
}

/// Byte ranges of each entry in a chunk value, in order (for slicing a shared buffer).
pub fn chunk_entry_ranges(chunk: &[u8]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut start = 0;
    let mut newlines = memchr::memchr_iter(b'\n', chunk);
    std::iter::from_fn(move || {
        if start >= chunk.len() {
            return None;
        }
        let end = newlines.next().unwrap_or(chunk.len());
        let range = start..end;
        start = end + 1;
        Some(range)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_record_round_trips_and_finds_each_leafs_nodes() {
        let mut writer = ChunkIndexWriter::default();
        // Leaves 5, 6, 7: 5 = 0b101 completes one node, 6 none, 7 = 0b111 three.
        let subjects = ["a", "", "stream/ü"];
        for (i, leaf) in (5u64..8).enumerate() {
            let nodes: Vec<u8> = (0..nodes_completed_by(leaf))
                .flat_map(|level| [leaf as u8 * 10 + level as u8; 32])
                .collect();
            writer.push(
                IndexedEntry {
                    id: Uuid::from_u128(leaf as u128),
                    leaf: Digest([leaf as u8; 32]),
                    stream_version: leaf * 100,
                    subject: subjects[i],
                },
                &nodes,
            );
        }
        let bytes = writer.encode();
        let index = ChunkIndex::decode(5, &bytes).unwrap();
        assert_eq!(index.end(), 8);
        assert_eq!(index.entries[2].subject, "stream/ü");
        assert_eq!(index.entries[1].stream_version, 600);
        assert_eq!(index.nodes_of(5), &[50u8; 32][..]);
        assert!(index.nodes_of(6).is_empty());
        assert_eq!(index.nodes_of(7).len(), 96);
        assert_eq!(index.nodes_of(7)[64], 72);
        for cut in 0..bytes.len() {
            assert!(
                ChunkIndex::decode(5, &bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn chunk_entry_ranges_split_at_newlines() {
        let chunk = b"{\"a\":1}\n{\"b\":2}\n";
        let ranges: Vec<_> = chunk_entry_ranges(chunk).collect();
        assert_eq!(ranges, [0..7, 8..15]);
        assert_eq!(chunk_entry_ranges(b"").count(), 0);
        assert_eq!(chunk_entry_ranges(b"{}").next(), Some(0..2));
    }
}
