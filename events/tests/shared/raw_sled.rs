//! Shared by the test crates that tamper with a store (`events/tests/tamper.rs`,
//! `tests/cli.rs`), each including this file by path.

// Each including crate uses some of these helpers.
#![allow(dead_code)]

use events::keys;
use std::collections::BTreeMap;
use std::path::Path;

/// Opens the store's sled directly, as an attacker with disk access would, waiting out the lock
/// that sled's IO threads of the just-closed log may hold for a few milliseconds.
pub fn open_raw_sled(path: &Path) -> sled::Db {
    let started = std::time::Instant::now();
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(_) if started.elapsed() < std::time::Duration::from_secs(5) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("cannot open {}: {e}", path.display()),
        }
    }
}

/// Edits stored entries as an attacker would: `edit` gets every stored entry's bytes by seq and
/// may change, remove or swap them; each chunk is then written back holding what is left of its
/// own seqs, in order.
pub fn edit_entries(tree: &sled::Tree, edit: impl FnOnce(&mut BTreeMap<u64, Vec<u8>>)) {
    let mut chunks = Vec::new();
    let mut entries = BTreeMap::new();
    for item in tree.scan_prefix([keys::CHUNK]) {
        let (key, value) = item.unwrap();
        let first = keys::key_number(&key, keys::CHUNK).unwrap();
        let mut end = first;
        for range in keys::chunk_entry_ranges(&value) {
            entries.insert(end, value[range].to_vec());
            end += 1;
        }
        chunks.push((first, end));
    }
    edit(&mut entries);
    for (first, end) in chunks {
        let mut value = Vec::new();
        for bytes in entries.range(first..end).map(|(_, bytes)| bytes) {
            value.extend_from_slice(bytes);
            value.push(b'\n');
        }
        tree.insert(keys::chunk(first), value).unwrap();
    }
}

/// One entry's record in its chunk's index record, owned so that a test can change it.
pub struct IndexedRecord {
    pub id: uuid::Uuid,
    pub leaf: events::Digest,
    pub stream_version: u64,
    pub subject: String,
    /// The Merkle nodes its leaf completed, 32 bytes each, level 1 first.
    pub nodes: Vec<u8>,
}

/// Edits the index record of entry `seq` as an attacker would, re-encoding its chunk's record.
pub fn edit_index_record(tree: &sled::Tree, seq: u64, edit: impl FnOnce(&mut IndexedRecord)) {
    let (key, value) = tree
        .range(keys::chunk_index(0)..=keys::chunk_index(seq))
        .next_back()
        .unwrap()
        .unwrap();
    let first = keys::key_number(&key, keys::CHUNK_INDEX).unwrap();
    let index = keys::ChunkIndex::decode(first, &value).unwrap();
    let mut writer = keys::ChunkIndexWriter::default();
    let mut edit = Some(edit);
    for (at, entry) in (first..).zip(&index.entries) {
        let mut record = IndexedRecord {
            id: entry.id,
            leaf: entry.leaf,
            stream_version: entry.stream_version,
            subject: entry.subject.to_owned(),
            nodes: index.nodes_of(at).to_vec(),
        };
        if at == seq {
            (edit.take().expect("one entry per seq"))(&mut record);
        }
        writer.push(
            keys::IndexedEntry {
                id: record.id,
                leaf: record.leaf,
                stream_version: record.stream_version,
                subject: &record.subject,
            },
            &record.nodes,
        );
    }
    tree.insert(key, writer.encode()).unwrap();
}
