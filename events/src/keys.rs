//! Key layout of the `log` tree. One tree holds entries and every index, so that a group commit
//! is one `Tree::apply_batch`, which sled applies atomically (all of it survives a crash or none).

use uuid::Uuid;

/// `e ‖ seq(u64 BE)` → entry bytes.
pub const ENTRY: u8 = b'e';
/// `i ‖ event id (16 bytes)` → seq(u64 BE).
pub const ID: u8 = b'i';
/// `s ‖ subject ‖ 0x00 ‖ streamversion(u64 BE)` → seq(u64 BE). Subjects hold no control characters,
/// so the 0x00 separator makes one subject's keys a prefix range no other subject shares.
pub const STREAM: u8 = b's';
/// `m ‖ level(u8) ‖ index(u64 BE)` → 32-byte complete-subtree hash.
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

pub fn merkle(level: u8, index: u64) -> [u8; 10] {
    let mut k = [MERKLE; 10];
    k[1] = level;
    k[2..].copy_from_slice(&index.to_be_bytes());
    k
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
