//! Key layout of the `log` tree. One tree holds entries and every index, so that a group commit
//! is one `Tree::apply_batch`, which sled applies atomically (all of it survives a crash or none).

use crate::entry::Digest;
use uuid::Uuid;

/// `e ‖ seq(u64 BE)` → entry bytes.
pub const ENTRY: u8 = b'e';
/// `i ‖ event id (16 bytes)` → seq(u64 BE) ‖ the entry's Merkle leaf hash (32 bytes). Keeping the
/// leaf here (the id is looked up on every append anyway) saves a key per entry and still lets
/// verification tell exactly which entry's content changed.
pub const ID: u8 = b'i';
/// `s ‖ subject ‖ 0x00 ‖ streamversion(u64 BE)` → seq(u64 BE). Subjects hold no control characters,
/// so the 0x00 separator makes one subject's keys a prefix range no other subject shares.
pub const STREAM: u8 = b's';
/// `m ‖ leaf index(u64 BE)` → the hashes (32 bytes each, level 1 upwards) of the complete
/// subtrees that appending that leaf completed. Only odd leaf indexes complete any, so this is half
/// a key per entry on average; leaves themselves are recomputed from the entry bytes.
pub const MERKLE: u8 = b'm';
/// `c ‖ size(u64 BE)` → signed checkpoint note.
pub const CHECKPOINT: u8 = b'c';

pub fn entry(seq: u64) -> [u8; 9] {
    let mut k = [ENTRY; 9];
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub fn id(id: &Uuid) -> [u8; 17] {
    let mut k = [ID; 17];
    k[1..].copy_from_slice(id.as_bytes());
    k
}

pub fn stream_prefix(subject: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(subject.len() + 10);
    k.push(STREAM);
    k.extend_from_slice(subject.as_bytes());
    k.push(0);
    k
}

pub fn stream(subject: &str, version: u64) -> Vec<u8> {
    let mut k = stream_prefix(subject);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

pub fn merkle_completed(leaf: u64) -> [u8; 9] {
    let mut k = [MERKLE; 9];
    k[1..].copy_from_slice(&leaf.to_be_bytes());
    k
}

pub fn id_value(seq: u64, leaf: &Digest) -> [u8; 40] {
    let mut v = [0u8; 40];
    v[..8].copy_from_slice(&seq.to_be_bytes());
    v[8..].copy_from_slice(&leaf.0);
    v
}

pub fn decode_id_value(bytes: &[u8]) -> Option<(u64, Digest)> {
    let seq = decode_u64(bytes.get(..8)?)?;
    Some((seq, Digest(bytes.get(8..40)?.try_into().ok()?)))
}

pub fn checkpoint(size: u64) -> [u8; 9] {
    let mut k = [CHECKPOINT; 9];
    k[1..].copy_from_slice(&size.to_be_bytes());
    k
}

/// Decodes a big-endian u64 stored as a value or key suffix.
pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}
