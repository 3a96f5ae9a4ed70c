//! Maps of records that settle: once a record stops changing, it may leave memory for a
//! [`SpillStore`], keeping only a small header that queries over every record read.
//!
//! Why: an audit folds the whole log into one state, and the state holds every deployment and
//! every evidence package the log ever named. Nearly all of them are settled (released or
//! rejected long ago) and are read again only by rare entries (a late incident). Keeping those
//! postcard-encoded in a store the auditor provides (a temporary file) keeps the audit's memory
//! to the records still in play plus a few dozen bytes per settled one.
//!
//! Where a record lives never changes what it is: lookups decode settled records, mutations
//! bring them back to memory first, and the map serialises, compares and fingerprints exactly as
//! the plain map of the same records. The service attaches no store, and keeps everything in
//! memory as before. Nothing here does IO itself: the store does.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

/// Somewhere to keep encoded records out of memory, append-only.
pub trait SpillStore: Send + Sync + fmt::Debug {
    /// Keeps `bytes`; their offset, or `None` if they could not be kept (the record then simply
    /// stays in memory).
    fn append(&self, bytes: &[u8]) -> Option<u64>;
    /// The `len` bytes kept at `at`, or `None` if they cannot be read back. The store must then
    /// remember the failure and its owner report the whole result unusable: the map can only
    /// answer "absent" for a record it lost.
    fn read(&self, at: u64, len: u32) -> Option<Vec<u8>>;
    /// The bytes read back from `at` do not decode as the record they were: remember it as a
    /// failed read.
    fn damaged(&self, at: u64);
}

/// A record type whose values settle.
pub trait Settles: Serialize + DeserializeOwned + Clone + Eq {
    /// What queries over all records read, kept in memory for settled ones.
    type Header: Clone + fmt::Debug;
    /// This record's header.
    fn header(&self) -> Self::Header;
}

const SERIALISES: &str = "records serialise";

/// A record as a map keeps it.
enum Kept<'a, V> {
    InMemory(&'a V),
    Spilled(Spilled),
}

/// Postcard's encoding of a map's length (a varint).
fn length_prefix(len: usize) -> Vec<u8> {
    postcard::to_allocvec(&len).expect(SERIALISES)
}

/// Postcard's encoding of an id (its 16 bytes, length-prefixed).
fn encoded_id(id: &Uuid) -> Vec<u8> {
    postcard::to_allocvec(id).expect(SERIALISES)
}

/// Where a settled record's encoding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spilled {
    at: u64,
    len: u32,
}

/// Records by id: those in play in memory, settled ones (when a store is attached) in the store.
#[derive(Clone)]
pub struct SettlingMap<V: Settles> {
    /// Keyed by the id as a big-endian `u128`, which orders exactly as the id's bytes do: a
    /// comparison is then two integer comparisons rather than a `memcmp` call, and an audit
    /// makes hundreds of millions of them.
    in_memory: BTreeMap<u128, Box<V>>,
    settled: BTreeMap<u128, (V::Header, Spilled)>,
    store: Option<Arc<dyn SpillStore>>,
    /// Ids changed since the owner last asked ([`SettlingMap::take_touched`]); kept only while
    /// a store is attached, since only then does anything settle.
    touched: Vec<Uuid>,
    /// Where records are encoded on their way to the store.
    scratch: Vec<u8>,
}

impl<V: Settles> Default for SettlingMap<V> {
    fn default() -> Self {
        Self {
            in_memory: BTreeMap::new(),
            settled: BTreeMap::new(),
            store: None,
            touched: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

impl<V: Settles> SettlingMap<V> {
    /// From now on, records [`SettlingMap::settle`]d go to `store`.
    pub fn spill_to(&mut self, store: Arc<dyn SpillStore>) {
        self.store = Some(store);
    }

    /// How many records.
    pub fn len(&self) -> usize {
        self.in_memory.len() + self.settled.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many records are settled out of memory.
    pub fn settled_len(&self) -> usize {
        self.settled.len()
    }

    /// Whether the record of `id` is settled out of memory.
    pub fn is_spilled(&self, id: &Uuid) -> bool {
        self.settled.contains_key(&id.as_u128())
    }

    /// Whether `id` is here.
    pub fn contains_key(&self, id: &Uuid) -> bool {
        let key = id.as_u128();
        self.in_memory.contains_key(&key) || self.settled.contains_key(&key)
    }

    /// The record of `id`: borrowed if in memory, decoded if settled.
    pub fn get(&self, id: &Uuid) -> Option<Cow<'_, V>> {
        let key = id.as_u128();
        if let Some(record) = self.in_memory.get(&key) {
            return Some(Cow::Borrowed(record));
        }
        let (_, spilled) = self.settled.get(&key)?;
        self.read(*spilled).map(Cow::Owned)
    }

    /// The record of `id` to change, brought back to memory if it had settled.
    pub fn get_mut(&mut self, id: &Uuid) -> Option<&mut V> {
        let key = id.as_u128();
        if let Some((_, spilled)) = self.settled.remove(&key) {
            let record = self.read(spilled)?;
            self.in_memory.insert(key, Box::new(record));
        }
        let record = self.in_memory.get_mut(&key)?;
        if self.store.is_some() {
            self.touched.push(*id);
        }
        Some(record)
    }

    /// Adds or replaces the record of `id`.
    pub fn insert(&mut self, id: Uuid, record: V) {
        self.settled.remove(&id.as_u128());
        self.in_memory.insert(id.as_u128(), Box::new(record));
        if self.store.is_some() {
            self.touched.push(id);
        }
    }

    /// The ids changed since the last call, each once.
    pub fn take_touched(&mut self) -> Vec<Uuid> {
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        touched
    }

    /// Moves the record of `id` out of memory, if a store is attached and takes it.
    pub fn settle(&mut self, id: &Uuid) {
        let key = id.as_u128();
        let (Some(store), Some(record)) = (&self.store, self.in_memory.get(&key)) else {
            return;
        };
        // One buffer for every record settled: a fresh one each time was a measurable share of
        // an audit's allocations.
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        bytes = postcard::to_extend(record, bytes).expect(SERIALISES);
        let kept = (store.append(&bytes), u32::try_from(bytes.len()));
        self.scratch = bytes;
        let (Some(at), Ok(len)) = kept else {
            return;
        };
        let header = record.header();
        self.in_memory.remove(&key);
        self.settled.insert(key, (header, Spilled { at, len }));
    }

    fn read(&self, spilled: Spilled) -> Option<V> {
        let store = self.store.as_ref()?;
        let bytes = store.read(spilled.at, spilled.len)?;
        let record = postcard::from_bytes(&bytes).ok();
        if record.is_none() {
            // Damaged in the store: its owner learns of it as of a failed read.
            store.damaged(spilled.at);
        }
        record
    }

    /// Every record in id order, as it is kept.
    fn entries(&self) -> impl Iterator<Item = (Uuid, Kept<'_, V>)> {
        let mut in_memory = self.in_memory.iter().peekable();
        let mut settled = self.settled.iter().peekable();
        std::iter::from_fn(move || {
            let take_settled = match (in_memory.peek(), settled.peek()) {
                (None, None) => return None,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((a, _)), Some((b, _))) => b < a,
            };
            Some(if take_settled {
                let (key, (_, spilled)) = settled.next()?;
                (Uuid::from_u128(*key), Kept::Spilled(*spilled))
            } else {
                let (key, record) = in_memory.next()?;
                (Uuid::from_u128(*key), Kept::InMemory(&**record))
            })
        })
    }

    /// Every record in id order, settled ones decoded.
    pub fn iter(&self) -> impl Iterator<Item = (Uuid, Cow<'_, V>)> {
        self.iter_where(|_| true)
    }

    /// The records whose ids `keep` accepts, in id order; the others are neither read nor
    /// decoded (a pass split across threads by id reads each record once).
    pub fn iter_where(
        &self,
        keep: impl Fn(Uuid) -> bool,
    ) -> impl Iterator<Item = (Uuid, Cow<'_, V>)> {
        self.entries()
            .filter(move |(id, _)| keep(*id))
            .filter_map(|(id, kept)| match kept {
                Kept::InMemory(record) => Some((id, Cow::Borrowed(record))),
                // A record the store lost is skipped; its owner reports the store's failure.
                Kept::Spilled(spilled) => self.read(spilled).map(|record| (id, Cow::Owned(record))),
            })
    }

    /// The length of the map's postcard encoding, without reading settled records back.
    pub fn encoding_len(&self) -> u64 {
        let id_len = encoded_id(&Uuid::nil()).len() as u64;
        let records: u64 = self
            .entries()
            .map(|(_, kept)| match kept {
                Kept::InMemory(record) => {
                    postcard::experimental::serialized_size(record).expect(SERIALISES) as u64
                }
                Kept::Spilled(spilled) => u64::from(spilled.len),
            })
            .sum();
        length_prefix(self.len()).len() as u64 + id_len * self.len() as u64 + records
    }

    /// Writes the map's postcard encoding (exactly what serialising it gives) piece by piece,
    /// copying settled records' kept bytes rather than decoding and re-encoding them: the
    /// fingerprint of an audited million-entry history reads half a million of them.
    pub fn write_encoding(&self, out: &mut dyn FnMut(&[u8])) {
        out(&length_prefix(self.len()));
        let mut scratch = Vec::new();
        for (id, kept) in self.entries() {
            out(&encoded_id(&id));
            match kept {
                Kept::InMemory(record) => {
                    scratch.clear();
                    scratch = postcard::to_extend(record, scratch).expect(SERIALISES);
                    out(&scratch);
                }
                Kept::Spilled(spilled) => {
                    // A record the store lost is left out; its owner reports the failure.
                    if let Some(bytes) = self
                        .store
                        .as_ref()
                        .and_then(|store| store.read(spilled.at, spilled.len))
                    {
                        out(&bytes);
                    }
                }
            }
        }
    }

    /// Every record's value in id order.
    pub fn values(&self) -> impl Iterator<Item = Cow<'_, V>> {
        self.iter().map(|(_, record)| record)
    }

    /// Every record's header, in no particular order, without decoding any.
    pub fn headers(&self) -> impl Iterator<Item = Cow<'_, V::Header>> {
        self.in_memory
            .values()
            .map(|record| Cow::Owned(record.header()))
            .chain(
                self.settled
                    .values()
                    .map(|(header, _)| Cow::Borrowed(header)),
            )
    }
}

impl<V: Settles> Serialize for SettlingMap<V> {
    /// Exactly as the `BTreeMap` of the same records.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // The length up front: postcard writes it before the entries.
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (id, record) in self.iter() {
            map.serialize_entry(&id, &record)?;
        }
        map.end()
    }
}

impl<'de, V: Settles> Deserialize<'de> for SettlingMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let records = BTreeMap::<Uuid, V>::deserialize(deserializer)?;
        Ok(records.into_iter().collect())
    }
}

impl<V: Settles> PartialEq for SettlingMap<V> {
    /// The same records, wherever each is kept.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<V: Settles> Eq for SettlingMap<V> {}

impl<V: Settles + fmt::Debug> fmt::Debug for SettlingMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V: Settles> FromIterator<(Uuid, V)> for SettlingMap<V> {
    fn from_iter<I: IntoIterator<Item = (Uuid, V)>>(records: I) -> Self {
        Self {
            in_memory: records
                .into_iter()
                .map(|(id, record)| (id.as_u128(), Box::new(record)))
                .collect(),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    struct Record {
        name: String,
        done: bool,
    }

    impl Settles for Record {
        type Header = bool;
        fn header(&self) -> bool {
            self.done
        }
    }

    /// A store in memory that can be made to hand back damaged bytes.
    #[derive(Debug, Default)]
    struct MemoryStore {
        bytes: Mutex<Vec<u8>>,
        damaged_at: Mutex<Vec<u64>>,
    }

    impl SpillStore for MemoryStore {
        fn append(&self, bytes: &[u8]) -> Option<u64> {
            let mut kept = self.bytes.lock().unwrap();
            kept.extend_from_slice(bytes);
            Some((kept.len() - bytes.len()) as u64)
        }
        fn read(&self, at: u64, len: u32) -> Option<Vec<u8>> {
            let kept = self.bytes.lock().unwrap();
            kept.get(at as usize..at as usize + len as usize)
                .map(<[u8]>::to_vec)
        }
        fn damaged(&self, at: u64) {
            self.damaged_at.lock().unwrap().push(at);
        }
    }

    fn id(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn record(n: u8) -> Record {
        Record {
            name: format!("record {n}"),
            done: n.is_multiple_of(2),
        }
    }

    #[test]
    fn settled_records_read_iterate_and_encode_as_records_in_memory() {
        let store = Arc::new(MemoryStore::default());
        let mut plain = SettlingMap::default();
        let mut settling = SettlingMap::default();
        settling.spill_to(Arc::clone(&store) as Arc<dyn SpillStore>);
        for n in [9, 2, 7, 4, 1, 200, 0] {
            plain.insert(id(n), record(n));
            settling.insert(id(n), record(n));
        }
        for n in [2, 4, 200, 0] {
            settling.settle(&id(n));
        }
        assert_eq!(settling.settled_len(), 4);
        assert!(settling.is_spilled(&id(200)) && !settling.is_spilled(&id(9)));
        assert_eq!(settling, plain);
        assert_eq!(settling.get(&id(4)).as_deref(), Some(&record(4)));
        assert_eq!(settling.get(&id(3)), None);
        assert!(settling.contains_key(&id(0)) && !settling.contains_key(&id(3)));
        let ids: Vec<Uuid> = settling.iter().map(|(id, _)| id).collect();
        assert_eq!(ids, plain.iter().map(|(id, _)| id).collect::<Vec<_>>());
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order");
        let mut headers: Vec<bool> = settling.headers().map(|h| *h).collect();
        headers.sort_unstable();
        assert_eq!(headers, [false, false, false, true, true, true, true]);

        let encoded = postcard::to_allocvec(&plain).unwrap();
        assert_eq!(postcard::to_allocvec(&settling).unwrap(), encoded);
        let mut written = Vec::new();
        settling.write_encoding(&mut |bytes| written.extend_from_slice(bytes));
        assert_eq!(written, encoded);
        assert_eq!(settling.encoding_len(), encoded.len() as u64);
        let decoded: SettlingMap<Record> = postcard::from_bytes(&encoded).unwrap();
        assert_eq!(decoded, plain);

        // Changing a settled record brings it back to memory.
        assert_eq!(
            settling.take_touched().len(),
            7,
            "every insert was a change"
        );
        settling.get_mut(&id(4)).unwrap().name = "changed".into();
        plain.get_mut(&id(4)).unwrap().name = "changed".into();
        assert!(!settling.is_spilled(&id(4)));
        assert_eq!(settling.take_touched(), vec![id(4)]);
        assert_eq!(settling, plain);
        assert!(store.damaged_at.lock().unwrap().is_empty());
    }

    #[test]
    fn a_settled_record_that_no_longer_decodes_is_reported_to_its_store() {
        let store = Arc::new(MemoryStore::default());
        let mut settling = SettlingMap::default();
        settling.spill_to(Arc::clone(&store) as Arc<dyn SpillStore>);
        settling.insert(id(1), record(1));
        settling.settle(&id(1));
        store.bytes.lock().unwrap()[0] = 0xff;
        assert_eq!(settling.get(&id(1)), None);
        assert_eq!(*store.damaged_at.lock().unwrap(), vec![0]);
    }
}
