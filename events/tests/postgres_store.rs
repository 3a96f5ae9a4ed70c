//! What only the PostgreSQL store has: the same bytes as sled for the same appends, a head row
//! that fences a second writer, and an insider with SQL access who edits rows.

mod common;

use common::{clock, config, draft, postgres_cluster, Kind, TestStore};
use events::verify::{verify_store, VerifyStoreError};
use events::{AppendError, Log};

fn pg_store(test: &str) -> Option<(TestStore, &'static postgres_cluster::Cluster)> {
    let store = TestStore::new(Kind::Postgres, test)?;
    Some((store, postgres_cluster::cluster(test)?))
}

fn database(store: &TestStore) -> String {
    match &store.location {
        events::StoreLocation::Postgres(url) => url.rsplit('/').next().unwrap().to_owned(),
        events::StoreLocation::Directory(_) => unreachable!(),
    }
}

/// The same appends, in the same commits, at the same times: byte for byte the same log.
#[test]
fn the_same_appends_give_identical_bytes_roots_checkpoints_and_tiles_in_both_stores() {
    let Some(pg) = TestStore::new(Kind::Postgres, "differential") else {
        return;
    };
    let sled = TestStore::new(Kind::Sled, "differential").unwrap();
    let logs: Vec<(Log, events::ManualClock)> = [&sled, &pg]
        .into_iter()
        .map(|store| {
            let clock = clock();
            (store.open_with(config(&clock)).unwrap(), clock)
        })
        .collect();
    let mut n = 0u64;
    for commit in 0..90u64 {
        let drafts: Vec<_> = (0..1 + commit % 7)
            .map(|_| {
                n += 1;
                draft(n, &format!("s/{}", n % 5))
            })
            .collect();
        for (log, clock) in &logs {
            clock.advance_micros(1_234);
            log.append_batch_blocking(drafts.clone()).unwrap();
        }
    }
    let (sled_log, pg_log) = (&logs[0].0, &logs[1].0);
    assert_eq!(sled_log.head(), pg_log.head());
    let size = sled_log.head().size;
    assert!(size > 256, "enough entries for a full tile ({size})");
    let bytes = |log: &Log| -> Vec<Vec<u8>> {
        log.iter_bytes(0)
            .map(|item| item.unwrap().1.to_vec())
            .collect()
    };
    assert_eq!(bytes(sled_log), bytes(pg_log));
    let checkpoints =
        |log: &Log| -> Vec<(u64, String)> { log.iter_checkpoints().map(Result::unwrap).collect() };
    assert_eq!(checkpoints(sled_log).len(), 90);
    assert_eq!(checkpoints(sled_log), checkpoints(pg_log));
    for tile in events::tiles::tiles_of(size) {
        assert_eq!(sled_log.tile(&tile).unwrap(), pg_log.tile(&tile).unwrap());
    }
    for (seq, at) in [(0, 1), (100, size), (size - 1, size)] {
        assert_eq!(
            sled_log.inclusion_proof(seq, at).unwrap(),
            pg_log.inclusion_proof(seq, at).unwrap()
        );
    }
    let reports = [sled_log, pg_log].map(|log| verify_store(log, log.verifier(), |_| {}).unwrap());
    assert_eq!(reports[0].root, reports[1].root);
    assert_eq!(reports[1].entries, size);
}

/// A writer whose head another writer moved (a leader that lost its lock and does not know) can
/// never commit: the head row's compare and set refuses it, it stops taking appends, and the log
/// has one history.
#[test]
fn a_stale_writer_is_fenced_by_the_head_row_and_nothing_forks() {
    let Some(store) = TestStore::new(Kind::Postgres, "stale writer") else {
        return;
    };
    let leader = store.open();
    for n in 0..10 {
        leader.append_blocking(draft(n, "s/1")).unwrap();
    }
    let stale = store.open();
    assert_eq!(stale.head(), leader.head());
    let acknowledged = leader.append_blocking(draft(10, "s/1")).unwrap();
    let refused = stale.append_blocking(draft(11, "s/2")).unwrap_err();
    assert!(
        matches!(&refused, AppendError::Fenced(reason) if reason.contains("another writer")),
        "{refused}"
    );
    // And every later append of the stale writer, even one that would fit its old head.
    assert!(stale.append_blocking(draft(12, "s/3")).is_err());
    assert_eq!(
        stale.head().size,
        10,
        "the stale writer's view did not move"
    );
    leader.append_blocking(draft(13, "s/1")).unwrap();
    let report = verify_store(&leader, leader.verifier(), |_| {}).unwrap();
    assert_eq!(report.entries, 12);
    assert_eq!(
        leader.get(10).unwrap().unwrap().hash(),
        acknowledged.hash,
        "the acknowledged entry is the one stored"
    );
    assert_eq!(leader.get_by_id(&draft(11, "s/2").id).unwrap(), None);
    // A writer opened now starts from the true head.
    stale.close();
    let fresh = store.open();
    assert_eq!(fresh.head(), leader.head());
}

fn build(store: &TestStore) {
    let log = store.open();
    for commit in 0..8u64 {
        log.append_batch_blocking(
            (commit * 5..commit * 5 + 5)
                .map(|n| draft(n, "s/1"))
                .collect(),
        )
        .unwrap();
    }
    log.close();
}

/// Verification names the first bad seq, and the log opened on the edited rows refuses writes.
fn first_bad_seq(store: &TestStore) -> (u64, String) {
    let log = store.open();
    let result = verify_store(&log, log.verifier(), |_| {});
    let Err(VerifyStoreError::Integrity(problem)) = result else {
        panic!("tampering went unnoticed: {result:?}");
    };
    assert!(
        matches!(
            log.append_blocking(draft(1000, "s/9")),
            Err(AppendError::ChainBroken { .. })
        ),
        "a tampered log accepted a write"
    );
    (problem.seq, problem.reason)
}

/// An insider with SQL access edits rows; every edit is found at the seq it touched.
#[test]
fn rows_edited_with_sql_are_found_at_their_seq() {
    let edits: [(&str, u64); 5] = [
        // One changed byte inside an entry (still valid JSON).
        (
            "UPDATE tl_entries SET bytes = overlay(bytes placing 'j'::bytea from position('hello'::bytea in bytes) for 1) WHERE seq = 17",
            17,
        ),
        // An entry deleted.
        ("DELETE FROM tl_entries WHERE seq = 23", 23),
        // Two entries' bytes swapped.
        (
            "UPDATE tl_entries e SET bytes = o.bytes FROM tl_entries o WHERE (e.seq, o.seq) IN ((12, 13), (13, 12))",
            12,
        ),
        // A forged Merkle leaf in an index record: entry 20's (its record starts after the count
        // and the four nodes entries 20–24 complete, at byte 132; the leaf after the 16-byte id).
        (
            "UPDATE tl_chunks SET index_record = overlay(index_record placing '\\xff'::bytea from 150 for 1) WHERE first_seq = 20",
            20,
        ),
        // The tail cut off and the head row moved back to it, checkpoints left alone.
        (
            "BEGIN; DELETE FROM tl_entries WHERE seq >= 35; DELETE FROM tl_chunks WHERE first_seq >= 35; \
             UPDATE tl_head SET size = 35, last_hash = (SELECT hash FROM tl_entries WHERE seq = 34); COMMIT",
            35,
        ),
    ];
    for (sql, expected) in edits {
        let Some((store, cluster)) = pg_store("sql edits") else {
            return;
        };
        build(&store);
        cluster.psql(&database(&store), sql);
        let (seq, reason) = first_bad_seq(&store);
        assert_eq!(seq, expected, "{sql}: {reason}");
    }
}

/// The head row is written in the same transaction as the entries: rows added or removed around
/// it are noticed when the log opens.
#[test]
fn a_head_row_that_disagrees_with_the_entries_refuses_writes() {
    let Some((store, cluster)) = pg_store("head row") else {
        return;
    };
    build(&store);
    cluster.psql(&database(&store), "UPDATE tl_head SET size = 41");
    let log = store.open();
    let refused = log.append_blocking(draft(100, "s/1")).unwrap_err();
    assert!(
        matches!(&refused, AppendError::ChainBroken { seq: 40, .. }),
        "{refused}"
    );
}

/// A database that would not keep an acknowledged commit is refused when the log opens.
#[test]
fn a_database_running_without_synchronous_commit_is_refused() {
    let Some((store, cluster)) = pg_store("synchronous_commit") else {
        return;
    };
    let name = database(&store);
    cluster.psql(
        "postgres",
        &format!("ALTER DATABASE {name} SET synchronous_commit = off"),
    );
    let refused = store.open_with(config(&clock())).unwrap_err();
    assert!(
        refused.to_string().contains("synchronous_commit"),
        "{refused}"
    );
}

/// A second handle follows what the first commits: same head, entries, proofs and subscribers;
/// a fenced writer that follows is current again; rows that do not verify are not taken in.
#[test]
fn a_follower_takes_in_exactly_what_the_leader_committed_and_refuses_what_does_not_verify() {
    let Some((store, cluster)) = pg_store("follow") else {
        return;
    };
    let leader = store.open();
    let follower = store.open();
    let mut live = follower.subscribe(0);
    for commit in 0..20u64 {
        leader
            .append_batch_blocking(
                (commit * 3..commit * 3 + 3)
                    .map(|n| draft(n, "s/1"))
                    .collect(),
            )
            .unwrap();
    }
    assert_eq!(follower.head().size, 0);
    assert_eq!(follower.follow().unwrap(), 60);
    assert_eq!(follower.head(), leader.head());
    assert_eq!(
        follower
            .get_by_id(&draft(42, "s/1").id)
            .unwrap()
            .unwrap()
            .seq,
        42
    );
    assert_eq!(follower.read_stream("s/1", 59, 10).unwrap()[0].seq, 59);
    // A retry sent to the follower (as to a new leader) gets the original answer.
    let retried = follower.append_blocking(draft(42, "s/1")).unwrap();
    assert!(retried.duplicate);
    assert_eq!(retried.seq, 42);
    assert_eq!(
        follower.consistency_proof(10, 60).unwrap(),
        leader.consistency_proof(10, 60).unwrap()
    );
    assert_eq!(
        live.try_next().unwrap().unwrap().seq,
        0,
        "subscribers see followed entries"
    );

    // The follower was fenced when it tried to write behind the leader; following heals it.
    leader.append_blocking(draft(60, "s/1")).unwrap();
    assert!(follower.append_blocking(draft(501, "s/2")).is_err());
    follower.follow().unwrap();
    let written = follower.append_blocking(draft(502, "s/2")).unwrap();
    assert_eq!(written.seq, 61, "a follower that caught up can lead");

    // A row changed past the follower's head is refused, and the head stays where it was.
    leader.follow().unwrap();
    leader.append_blocking(draft(62, "s/1")).unwrap();
    cluster.psql(
        &database(&store),
        "UPDATE tl_entries SET bytes = overlay(bytes placing 'j'::bytea from position('hello'::bytea in bytes) for 1) WHERE seq = 62",
    );
    let head = follower.head();
    let refused = follower.follow().unwrap_err();
    assert!(refused.to_string().contains("62"), "{refused}");
    assert_eq!(follower.head(), head);
}
