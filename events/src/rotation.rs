//! Checkpoint key rotation. A log changes the key that signs its checkpoints only by appending a
//! `trustledger.log.key_rotated` entry (stream [`SUBJECT`]) whose statement is a signed note
//!
//! ```text
//! trustledger.key-rotation/v1
//! <origin>
//! <the old verifier key>
//! <the new verifier key>
//! ```
//! signed by both keys: each vouches for the other. Checkpoints up to and including the first
//! that covers the rotation entry (size R + 1 for an entry at seq R) are signed by the old key;
//! every later one by the new. The rotations chain the log's keys, each link signed at both
//! ends, so a verifier may pin any key of the chain (the first one it kept, or the one the log
//! serves now) and follow the rest from the log itself ([`KeySchedule`]).

use crate::catalogue::{self, EventPayload};
use crate::checkpoint::{split_note, NoteSigner, NoteVerifier};
use crate::Entry;
use serde::{Deserialize, Serialize};

/// The stream every rotation entry is appended to.
pub const SUBJECT: &str = "log/checkpoint-key";
/// The statement's first line.
pub const HEADER: &str = "trustledger.key-rotation/v1";

/// `trustledger.log.key_rotated`: the checkpoint key changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRotated {
    /// The signed statement (see the module documentation).
    pub statement: String,
}

impl EventPayload for KeyRotated {
    const NAME: &'static str = "log.key_rotated";
    const VERSION: u32 = 1;
}

/// The statement rotating `origin`'s key from `old` to `new`, signed by both.
pub fn statement(origin: &str, old: &NoteSigner, new: &NoteSigner) -> String {
    let text = format!(
        "{HEADER}\n{origin}\n{}\n{}\n",
        old.verifier(),
        new.verifier()
    );
    let by_old = old.sign_note(&text);
    let by_new = new.sign_note(&text);
    let new_line = &by_new[text.len() + 1..];
    format!("{by_old}{new_line}")
}

/// Which key signs the checkpoints of each size, from the key a verifier pinned and the
/// rotations it read.
#[derive(Debug, Clone)]
pub struct KeySchedule {
    /// (the first checkpoint size the key signs, the key), in order.
    keys: Vec<(u64, NoteVerifier)>,
    pinned: NoteVerifier,
}

impl KeySchedule {
    /// A schedule anchored at the key the verifier pinned.
    pub fn new(pinned: NoteVerifier) -> Self {
        Self {
            keys: vec![(0, pinned.clone())],
            pinned,
        }
    }

    /// The key that signs the checkpoint of `size`.
    pub fn key_for(&self, size: u64) -> &NoteVerifier {
        self.keys
            .iter()
            .rev()
            .find(|(from, _)| *from <= size)
            .map_or(&self.keys[0].1, |(_, key)| key)
    }

    /// The key in force after the last rotation followed.
    pub fn current(&self) -> &NoteVerifier {
        &self.keys[self.keys.len() - 1].1
    }

    /// Rotations followed.
    pub fn rotations(&self) -> usize {
        self.keys.len() - 1
    }

    /// Whether the pinned key is one of the chain's (always, until a rotation shows the log's
    /// first key to be another).
    pub fn anchored(&self) -> bool {
        self.keys.iter().any(|(_, key)| *key == self.pinned)
    }

    /// Follows `entry` if it is a rotation: its statement must name this log's origin and be
    /// signed by both keys it names, the old one being the key in force (or, at the first
    /// rotation, any: the pinned key may be a later one). Other entries are ignored.
    ///
    /// # Errors
    /// Why a rotation entry is not a valid rotation.
    pub fn follow(&mut self, entry: &Entry) -> Result<(), String> {
        if !catalogue::is_event_type::<KeyRotated>(&entry.event_type) {
            return Ok(());
        }
        let rotation = catalogue::decode::<KeyRotated>(entry).map_err(|e| e.to_string())?;
        let (old, new) = rotation_keys(&rotation.statement, &entry.source)?;
        if self.rotations() == 0 && old != self.keys[0].1 {
            // The pinned key is not the first: the chain starts with this rotation's old key.
            self.keys[0].1 = old;
        } else if old != *self.key_for(entry.seq + 1) {
            return Err(format!(
                "the key rotation is from {old}, not the key in force {}",
                self.key_for(entry.seq + 1)
            ));
        }
        self.keys.push((entry.seq + 2, new));
        Ok(())
    }
}

/// The old and new keys a statement names, once it is checked: this origin, both signatures.
fn rotation_keys(statement: &str, origin: &str) -> Result<(NoteVerifier, NoteVerifier), String> {
    let (text, _) = split_note(statement).map_err(|e| e.to_string())?;
    let mut lines = text.lines();
    let (Some(HEADER), Some(named), Some(old), Some(new), None) = (
        lines.next(),
        lines.next(),
        lines.next(),
        lines.next(),
        lines.next(),
    ) else {
        return Err(format!(
            "the key rotation statement is not {HEADER} <origin> <old key> <new key>"
        ));
    };
    if named != origin {
        return Err(format!(
            "the key rotation names origin {named:?}, not this log's {origin:?}"
        ));
    }
    let old = NoteVerifier::parse(old).map_err(|e| format!("the old key: {e}"))?;
    let new = NoteVerifier::parse(new).map_err(|e| format!("the new key: {e}"))?;
    for (which, key) in [("old", &old), ("new", &new)] {
        key.verify_note(statement)
            .map_err(|e| format!("the key rotation is not signed by the {which} key: {e}"))?;
    }
    Ok((old, new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Digest, Position, Timestamp};

    fn rotation_entry(seq: u64, statement: String) -> Entry {
        let draft = catalogue::draft(
            uuid::Uuid::from_u128(1),
            SUBJECT,
            "operator",
            "rotation",
            &KeyRotated { statement },
        )
        .unwrap();
        let position = Position {
            seq,
            stream_version: 0,
            time: Timestamp::from_unix_micros(0),
            prev_hash: Digest([1; 32]),
        };
        Entry::build(&draft, "example.com/log", position).unwrap()
    }

    #[test]
    fn a_schedule_follows_a_rotation_signed_by_both_keys_and_only_that() {
        let (k1, k2, k3) = (
            NoteSigner::from_seed("example.com/log", [1; 32]).unwrap(),
            NoteSigner::from_seed("example.com/log", [2; 32]).unwrap(),
            NoteSigner::from_seed("example.com/log", [3; 32]).unwrap(),
        );
        let first = statement("example.com/log", &k1, &k2);
        let mut schedule = KeySchedule::new(k1.verifier());
        schedule.follow(&rotation_entry(9, first.clone())).unwrap();
        assert_eq!(
            schedule.key_for(10),
            &k1.verifier(),
            "the covering checkpoint"
        );
        assert_eq!(schedule.key_for(11), &k2.verifier());
        assert_eq!(schedule.current(), &k2.verifier());
        assert!(schedule.anchored());
        // Not from the key in force (k1 again), another origin, or without the new key's line.
        for bad in [
            statement("example.com/log", &k1, &k3),
            statement("elsewhere.example/log", &k2, &k3),
        ] {
            assert!(schedule.follow(&rotation_entry(20, bad)).is_err());
        }
        let text = format!(
            "{HEADER}\nexample.com/log\n{}\n{}\n",
            k2.verifier(),
            k3.verifier()
        );
        assert!(schedule
            .follow(&rotation_entry(20, k2.sign_note(&text)))
            .is_err());
        assert_eq!(schedule.rotations(), 1);
        // Pinned to the key in force now, a verifier learns the earlier key from the chain.
        let mut later = KeySchedule::new(k2.verifier());
        later.follow(&rotation_entry(9, first)).unwrap();
        assert_eq!(later.key_for(3), &k1.verifier());
        assert!(later.anchored());
        // Pinned to a key the chain never names: not anchored.
        let mut stranger = KeySchedule::new(k3.verifier());
        stranger
            .follow(&rotation_entry(9, statement("example.com/log", &k1, &k2)))
            .unwrap();
        assert!(!stranger.anchored());
    }
}
