//! The id and stream indexes, held in memory and rebuilt on open from the chunks' index records.

use super::*;

/// The id and stream indexes once a thread started at open has rebuilt them from the index
/// records, so that opening a large log does not wait for it. Whatever needs them (an append,
/// a read by id or by stream, full verification) waits for that thread.
#[derive(Default)]
pub(super) struct IndexCell(pub(super) std::sync::OnceLock<LoadedIndex>);

pub(super) struct LoadedIndex {
    pub(super) index: RwLock<LogIndex>,
    /// The first index record that could not be indexed (a repeated id, a stream version out of
    /// order), as (seq, reason): the log refuses writes and full verification reports it.
    pub(super) problem: Option<(u64, String)>,
    /// The store could not be read to rebuild it.
    pub(super) storage_error: Option<String>,
}

impl IndexCell {
    pub(super) fn wait(&self) -> &LoadedIndex {
        self.0.wait()
    }

    /// The indexes, or why they could not be rebuilt.
    pub(super) fn ready(&self) -> Result<&RwLock<LogIndex>, ReadError> {
        let loaded = self.wait();
        match &loaded.storage_error {
            Some(e) => Err(ReadError::IndexCorrupt(format!(
                "the indexes could not be rebuilt: {e}"
            ))),
            None => Ok(&loaded.index),
        }
    }
}

/// The id and stream indexes, in memory. Rebuilt on open from the chunks' index records and
/// extended by the writer after each durable commit, so it never names an entry that could
/// still be lost; a reader still checks a seq against the durable head it read.
#[derive(Debug, Default)]
pub(crate) struct LogIndex {
    /// Event id → seq.
    pub(super) ids: HashMap<Uuid, u64>,
    /// Subject → the seq of each of its versions (version = position).
    pub(super) streams: HashMap<Box<str>, Vec<u64>>,
}

impl LogIndex {
    /// Adds the entry at `seq`, which must be its stream's next version and carry a new id.
    pub(super) fn add(&mut self, seq: u64, indexed: &IndexedEntry<'_>) -> Result<(), String> {
        let versions = match self.streams.get_mut(indexed.subject) {
            Some(versions) => versions,
            None => self.streams.entry(indexed.subject.into()).or_default(),
        };
        if indexed.stream_version != versions.len() as u64 {
            return Err(format!(
                "the index record puts it at version {} of stream {}, which continues at version {}",
                indexed.stream_version,
                indexed.subject,
                versions.len()
            ));
        }
        match self.ids.entry(indexed.id) {
            // The first entry keeps the id: reads by id stay right on a refused log.
            std::collections::hash_map::Entry::Occupied(earlier) => {
                return Err(format!(
                    "the index record repeats event id {}, already at seq {}",
                    indexed.id,
                    earlier.get()
                ));
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(seq);
            }
        }
        versions.push(seq);
        Ok(())
    }

    pub(super) fn last_version(&self, subject: &str) -> Option<u64> {
        self.streams
            .get(subject)
            .and_then(|v| (v.len() as u64).checked_sub(1))
    }
}

/// Rebuilds the id and stream indexes from the index record of every chunk below `size` (the
/// head when the log was opened: what another writer commits later is the writer's to add),
/// in order. On the first record that is out of place or inconsistent, returns what was built
/// so far and the problem.
pub(super) fn load_index(
    store: &super::Store,
    size: u64,
) -> Result<(LogIndex, Option<(u64, String)>), sled::Error> {
    let mut index = LogIndex::default();
    let mut expected = 0u64;
    for item in store.range(keys::CHUNK_INDEX, ..size) {
        let (key, record) = item?;
        let Some(first) = keys::key_number(&key, keys::CHUNK_INDEX) else {
            return Ok((index, Some((expected, "malformed index record key".into()))));
        };
        if first != expected {
            return Ok((
                index,
                Some((
                    expected,
                    format!(
                        "entry {expected} is missing: the next index record starts at seq {first}"
                    ),
                )),
            ));
        }
        let chunk = match ChunkIndex::decode(first, &record) {
            Ok(chunk) => chunk,
            Err(e) => {
                return Ok((
                    index,
                    Some((first, format!("the chunk's index record is malformed: {e}"))),
                ))
            }
        };
        for (seq, indexed) in (first..).zip(&chunk.entries) {
            if let Err(reason) = index.add(seq, indexed) {
                return Ok((index, Some((seq, reason))));
            }
        }
        expected = chunk.end();
    }
    Ok((index, None))
}
