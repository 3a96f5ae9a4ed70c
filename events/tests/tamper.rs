//! Tampering with the stored log is detected at the right seq, both by full verification and by
//! the tail check on open (which then refuses writes).

mod common;

#[path = "shared/raw_sled.rs"]
mod raw_sled;
use common::{draft, open};
use events::verify::{verify_store, VerifyStoreError};
use events::AppendError;
use raw_sled::{edit_entries, edit_index_record, open_raw_sled};
use std::collections::BTreeMap;
use std::path::Path;

const ENTRIES: u64 = 40;

/// Replaces the first `hello` in entry `seq` with `jello`: still canonical JSON, so only the
/// entry's hash can tell.
fn change_a_byte(seq: u64) -> impl FnOnce(&mut BTreeMap<u64, Vec<u8>>) {
    move |entries| {
        let bytes = entries.get_mut(&seq).unwrap();
        let at = bytes.windows(5).position(|w| w == b"hello").unwrap();
        bytes[at] = b'j';
    }
}

/// A log of 40 entries written in 8 commits, closed.
fn build(dir: &Path) {
    build_in_commits(dir, 8, 5);
}

/// A log of `commits` × `per_commit` entries over three streams, closed.
fn build_in_commits(dir: &Path, commits: u64, per_commit: u64) {
    let log = open(dir);
    for commit in 0..commits {
        log.append_batch_blocking(
            (commit * per_commit..(commit + 1) * per_commit)
                .map(|n| draft(n, &format!("s/{}", n % 3)))
                .collect(),
        )
        .unwrap();
    }
    log.close();
}

/// Edits the stored tree directly, as an attacker with disk access would.
fn tamper(dir: &Path, edit: impl FnOnce(&sled::Tree)) {
    let db = open_raw_sled(dir);
    let tree = db.open_tree("log").unwrap();
    edit(&tree);
    db.flush().unwrap();
}

fn first_bad_seq(dir: &Path) -> (u64, String) {
    let log = open(dir);
    let result = verify_store(&log, log.verifier(), |_| {});
    let Err(VerifyStoreError::Integrity(problem)) = result else {
        panic!("tampering went unnoticed: {result:?}");
    };
    // The tail check on open saw it too, and the log refuses writes, naming the seq.
    match log.append_blocking(draft(1000, "s/9")) {
        Err(AppendError::ChainBroken { seq, .. }) => {
            assert_eq!(seq, problem.seq, "open and full verification agree")
        }
        other => panic!("a tampered log accepted a write: {other:?}"),
    }
    (problem.seq, problem.reason)
}

#[test]
fn untouched_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let log = open(dir.path());
    let report = verify_store(&log, log.verifier(), |_| {}).unwrap();
    assert_eq!((report.entries, report.checkpoints), (ENTRIES, 8));
    assert!(log.refusal().is_none());
}

#[test]
fn one_changed_byte_is_found_at_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    tamper(dir.path(), |t| edit_entries(t, change_a_byte(17)));
    let (seq, reason) = first_bad_seq(dir.path());
    assert_eq!(seq, 17, "{reason}");
}

#[test]
fn a_byte_that_breaks_the_json_is_found_at_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    tamper(dir.path(), |t| {
        edit_entries(t, |entries| entries.get_mut(&33).unwrap()[0] = b' ')
    });
    let (seq, reason) = first_bad_seq(dir.path());
    assert_eq!(seq, 33);
    assert!(reason.contains("malformed"), "{reason}");
}

#[test]
fn a_deleted_entry_is_found_at_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    tamper(dir.path(), |t| {
        edit_entries(t, |entries| {
            entries.remove(&21).unwrap();
        })
    });
    let (seq, reason) = first_bad_seq(dir.path());
    assert_eq!(seq, 21);
    assert!(reason.contains("missing"), "{reason}");
}

#[test]
fn two_swapped_entries_are_found_at_the_first() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    tamper(dir.path(), |t| {
        edit_entries(t, |entries| {
            let a = entries.remove(&12).unwrap();
            let b = entries.insert(30, a).unwrap();
            entries.insert(12, b);
        })
    });
    assert_eq!(first_bad_seq(dir.path()).0, 12);
}

#[test]
fn a_truncated_tail_is_found_where_it_was_cut() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    tamper(dir.path(), |t| {
        edit_entries(t, |entries| {
            for seq in 36..ENTRIES {
                entries.remove(&seq).unwrap();
            }
        })
    });
    let (seq, reason) = first_bad_seq(dir.path());
    assert_eq!(seq, 36);
    assert!(reason.contains("missing"), "{reason}");
}

#[test]
fn an_entry_rewritten_and_rechained_is_caught_by_the_merkle_index_and_checkpoints() {
    // A forger who rewrites entry 39 (the last, so no later prevhash exposes it) and keeps it
    // canonical is still caught: its Merkle leaf and the signed checkpoint disagree.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    tamper(dir.path(), |t| {
        edit_entries(t, |entries| {
            let text = String::from_utf8(entries[&39].clone())
                .unwrap()
                .replace("\"alice\"", "\"alicf\"");
            entries.insert(39, text.into_bytes());
        })
    });
    assert_eq!(first_bad_seq(dir.path()).0, 39);
}

#[test]
fn a_forged_merkle_node_is_found_at_the_leaf_that_completed_it() {
    // Interior nodes serve proofs; a forged one would make proofs lie, so full verification
    // recomputes every node and compares it with the recorded one.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    tamper(dir.path(), |t| {
        // Level 2 of the subtrees leaf 23 completed.
        edit_index_record(t, 23, |record| record.nodes[40] ^= 1)
    });
    let log = open(dir.path());
    let Err(VerifyStoreError::Integrity(problem)) = verify_store(&log, log.verifier(), |_| {})
    else {
        panic!("a forged Merkle node went unnoticed");
    };
    assert_eq!(problem.seq, 23, "{problem}");
    assert!(problem.reason.contains("Merkle nodes"), "{problem}");
}

#[test]
fn a_damaged_index_record_is_found_at_the_entry_it_describes() {
    // Entry 17 is the sixth of stream s/2 (entries 2, 5, 8, 11, 14, 17…): version 5.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    tamper(dir.path(), |t| {
        edit_index_record(t, 17, |record| {
            assert_eq!((record.subject.as_str(), record.stream_version), ("s/2", 5));
            record.stream_version = 6;
        })
    });
    let (seq, reason) = first_bad_seq(dir.path());
    assert_eq!(seq, 17, "{reason}");
    assert!(reason.contains("stream index"), "{reason}");

    // The index record giving entry 29 the id of entry 28.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let mut id_of_28 = None;
    tamper(dir.path(), |t| {
        edit_index_record(t, 28, |record| id_of_28 = Some(record.id));
        edit_index_record(t, 29, |record| record.id = id_of_28.unwrap());
    });
    let (seq, reason) = first_bad_seq(dir.path());
    assert_eq!(seq, 29, "{reason}");
    assert!(reason.contains("id index"), "{reason}");
}

/// Checkpoint signatures are verified on worker threads ahead of the linking; a stored
/// checkpoint whose signature was altered is still reported at its own size, and only with the
/// key (without one, verification can check only its root).
#[test]
fn a_checkpoint_with_a_broken_signature_is_found_at_its_size() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let mut key = vec![b'c'];
    key.extend_from_slice(&25u64.to_be_bytes());
    tamper(dir.path(), |t| {
        let note = String::from_utf8(t.get(&key).unwrap().unwrap().to_vec()).unwrap();
        // The last base64 character before the final newline: the signature changes, the text
        // stays a well-formed note.
        let mut bytes = note.into_bytes();
        let at = bytes.len() - 2;
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        t.insert(&key, bytes).unwrap();
    });
    let log = open(dir.path());
    let result = verify_store(&log, log.verifier(), |_| {});
    let Err(VerifyStoreError::Integrity(problem)) = result else {
        panic!("a forged checkpoint signature went unnoticed: {result:?}");
    };
    assert_eq!(problem.seq, 24, "{}", problem.reason);
    assert!(
        problem.reason.contains("stored checkpoint for size 25"),
        "{}",
        problem.reason
    );
    let unkeyed = verify_store(&log, None, |_| {}).unwrap();
    assert_eq!(unkeyed.checkpoints, 8);
}

/// Verification checks chunks of 4,096 entries across the cores and links them in order; across
/// chunks, the first problem in seq order is still the one reported, and checkpoints in every
/// chunk are counted.
#[test]
fn problems_in_later_chunks_are_found_at_the_first_bad_seq() {
    let dir = tempfile::tempdir().unwrap();
    build_in_commits(dir.path(), 20, 500);
    let log = open(dir.path());
    let report = verify_store(&log, log.verifier(), |_| {}).unwrap();
    assert_eq!((report.entries, report.checkpoints), (10_000, 20));
    log.close();
    let change = |seq: u64| move |t: &sled::Tree| edit_entries(t, change_a_byte(seq));
    tamper(dir.path(), change(9_000));
    let (seq, reason) = first_bad_seq(dir.path());
    assert_eq!(seq, 9_000, "{reason}");
    // A second change, earlier, in another chunk: full verification names it. (The tail check
    // on open looks at the tail only, so it still names 9,000.)
    tamper(dir.path(), change(5_000));
    let log = open(dir.path());
    let result = verify_store(&log, log.verifier(), |_| {});
    let Err(VerifyStoreError::Integrity(problem)) = result else {
        panic!("tampering went unnoticed: {result:?}");
    };
    assert_eq!(problem.seq, 5_000, "{}", problem.reason);
}

/// An entry given another entry's event id, with its index record made to agree (so the entry
/// alone looks consistent): rebuilding the id index on open finds the repeated id, full
/// verification reports it at that seq, and the log refuses writes.
#[test]
fn a_repeated_event_id_is_found_at_the_second_entry() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let id_of = |bytes: &[u8]| {
        let entry: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        entry["id"].as_str().unwrap().to_owned()
    };
    let mut forged = None;
    tamper(dir.path(), |t| {
        edit_entries(t, |entries| {
            let (theirs, mine) = (id_of(&entries[&28]), id_of(&entries[&29]));
            let text = String::from_utf8(entries[&29].clone()).unwrap();
            let bytes = text.replace(&mine, &theirs).into_bytes();
            forged = Some((uuid::Uuid::parse_str(&theirs).unwrap(), bytes.clone()));
            entries.insert(29, bytes);
        });
        let (id, bytes) = forged.clone().unwrap();
        let mut leaf_28 = None;
        edit_index_record(t, 28, |record| leaf_28 = Some(record.leaf));
        edit_index_record(t, 29, |record| {
            record.id = id;
            record.leaf = events::merkle::leaf_hash(&bytes);
            // Leaf 29 (0b11101) completes one subtree: leaves 28 and 29.
            record.nodes = events::merkle::node_hash(&leaf_28.unwrap(), &record.leaf)
                .0
                .to_vec();
        });
    });
    let (seq, reason) = first_bad_seq(dir.path());
    assert_eq!(seq, 29, "{reason}");
    assert!(reason.contains("repeats event id"), "{reason}");
    // Reads by id on the refused log still find the first entry with that id.
    let log = open(dir.path());
    let (id, _) = forged.unwrap();
    assert_eq!(log.get_by_id(&id).unwrap().unwrap().seq, 28);
}
