//! The log's append, read and subscription behaviour (the pinned format and the event-log issue).

mod common;

use common::{clock, config, draft, Kind, TestStore};
use events::canonical::CanonicalError;
use events::verify::verify_store;
use events::{
    AppendError, Digest, Durability, Entry, EventDraft, ExpectedVersion, InvalidDraft, Log,
    LogConfig, Timestamp,
};
use proptest::prelude::*;
use serde_json::json;
use std::collections::HashSet;
use uuid::Uuid;

on_both_stores! {
#[test]
fn appends_assign_contiguous_positions_and_chain_hashes(store) {
    let log = store.open();
    let first = log.append_blocking(draft(0, "deployment/a")).unwrap();
    let batch = log
        .append_batch_blocking(vec![draft(1, "deployment/b"), draft(2, "deployment/a")])
        .unwrap();
    assert_eq!((first.seq, first.stream_version), (0, 0));
    assert_eq!((batch[0].seq, batch[0].stream_version), (1, 0));
    assert_eq!((batch[1].seq, batch[1].stream_version), (2, 1));

    let entries = log.read_range(0, 10).unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].prev_hash, Digest::ZERO);
    for pair in entries.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash());
    }
    assert_eq!(entries[2].hash(), batch[1].hash);
    assert_eq!(log.head().last_hash, batch[1].hash);
    // The stored bytes are the canonical bytes: re-parsing and re-encoding changes nothing.
    for e in &entries {
        assert_eq!(Entry::parse(e.bytes()).unwrap(), *e);
        assert!(e
            .bytes()
            .starts_with(b"{\"actor\":\"alice\",\"correlationid\":"));
    }
    assert_eq!(
        log.read_stream("deployment/a", 0, 10)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        vec![0, 2]
    );
    assert_eq!(log.read_stream("deployment/a", 1, 10).unwrap()[0].seq, 2);
    assert!(
        log.read_stream("deployment/", 0, 10).unwrap().is_empty(),
        "a subject prefix is not the subject"
    );
    assert_eq!(log.get_by_id(&draft(1, "x").id).unwrap().unwrap().seq, 1);
    assert_eq!(log.get_by_id(&Uuid::from_u128(999)).unwrap(), None);
    assert_eq!(log.get(3).unwrap(), None);
}

#[test]
fn same_id_same_content_returns_the_original_and_different_content_conflicts(store) {
    let log = store.open();
    let original = log.append_blocking(draft(7, "deployment/a")).unwrap();
    log.append_blocking(draft(8, "deployment/a")).unwrap();
    let again = log.append_blocking(draft(7, "deployment/a")).unwrap();
    assert!(again.duplicate);
    assert_eq!((again.seq, again.hash), (original.seq, original.hash));

    let mut changed = draft(7, "deployment/a");
    changed.data = json!({"n": 7, "note": "something else"});
    assert_eq!(
        log.append_blocking(changed),
        Err(AppendError::IdConflict {
            id: draft(7, "x").id,
            seq: 0
        })
    );
    let mut other_actor = draft(7, "deployment/a");
    other_actor.actor = "mallory".into();
    assert!(matches!(
        log.append_blocking(other_actor),
        Err(AppendError::IdConflict { .. })
    ));
    assert_eq!(log.head().size, 2, "conflicts write nothing");

    // Idempotency has no time window: it holds after a reopen too.
    let head = log.head();
    log.close();
    let log = store.open();
    assert_eq!(log.head(), head);
    assert!(
        log.append_blocking(draft(7, "deployment/a"))
            .unwrap()
            .duplicate
    );
    assert_eq!(log.head().size, 2);
}

#[test]
fn expected_stream_version_conflicts_write_nothing(store) {
    let log = store.open();
    let mut d = draft(0, "deployment/a");
    d.expected = ExpectedVersion::NoStream;
    log.append_blocking(d).unwrap();

    let mut stale = draft(1, "deployment/a");
    stale.expected = ExpectedVersion::NoStream;
    assert_eq!(
        log.append_blocking(stale),
        Err(AppendError::VersionConflict {
            subject: "deployment/a".into(),
            expected: ExpectedVersion::NoStream,
            actual: Some(0)
        })
    );
    let mut wrong = draft(2, "deployment/a");
    wrong.expected = ExpectedVersion::Exactly(5);
    assert!(matches!(
        log.append_blocking(wrong),
        Err(AppendError::VersionConflict {
            actual: Some(0),
            ..
        })
    ));
    assert_eq!(log.head().size, 1);

    let mut right = draft(3, "deployment/a");
    right.expected = ExpectedVersion::Exactly(0);
    assert_eq!(log.append_blocking(right).unwrap().stream_version, 1);

    // Inside one batch, expectations see the entries before them in the batch.
    let mut a = draft(4, "deployment/b");
    a.expected = ExpectedVersion::NoStream;
    let mut b = draft(5, "deployment/b");
    b.expected = ExpectedVersion::Exactly(0);
    assert_eq!(
        log.append_batch_blocking(vec![a, b]).unwrap()[1].stream_version,
        1
    );
}

#[test]
fn a_batch_is_all_or_nothing(store) {
    let log = store.open();
    log.append_blocking(draft(0, "deployment/a")).unwrap();
    let mut bad = draft(2, "deployment/a");
    bad.data = json!({"score": 42.5});
    let result = log.append_batch_blocking(vec![
        draft(1, "deployment/a"),
        bad,
        draft(3, "deployment/a"),
    ]);
    assert_eq!(
        result,
        Err(AppendError::Invalid {
            index: 1,
            source: InvalidDraft::Data(CanonicalError::Float {
                path: "/score".into()
            })
        })
    );
    assert_eq!(log.head().size, 1);
    assert_eq!(
        log.get_by_id(&draft(1, "x").id).unwrap(),
        None,
        "the valid draft before the bad one was not written"
    );
    assert_eq!(log.append_batch_blocking(vec![]), Err(AppendError::Empty));
    let too_many: Vec<_> = (10..10 + events::limits::APPEND_ENTRIES_MAX as u64 + 1)
        .map(|n| draft(n, "s/1"))
        .collect();
    assert!(matches!(
        log.append_batch_blocking(too_many),
        Err(AppendError::TooMany { .. })
    ));
    assert_eq!(log.head().size, 1);
}

#[test]
fn invalid_drafts_get_typed_errors_and_write_nothing(store) {
    let log = store.open();
    let cases: Vec<(EventDraft, &str)> = vec![
        (
            EventDraft {
                data: json!({"big": 9_007_199_254_740_992u64}),
                ..draft(1, "s/1")
            },
            "integer",
        ),
        (
            EventDraft {
                data: json!([1, 2]),
                ..draft(2, "s/1")
            },
            "object",
        ),
        (
            EventDraft {
                data: json!({"blob": "x".repeat(70_000)}),
                ..draft(3, "s/1")
            },
            "limit",
        ),
        (
            EventDraft {
                subject: String::new(),
                ..draft(4, "s/1")
            },
            "subject",
        ),
        (
            EventDraft {
                subject: "a\u{0}b".into(),
                ..draft(5, "s/1")
            },
            "subject",
        ),
        (
            EventDraft {
                subject: "s".repeat(257),
                ..draft(6, "s/1")
            },
            "subject",
        ),
        (
            EventDraft {
                event_type: "Trustledger.X".into(),
                ..draft(7, "s/1")
            },
            "type",
        ),
        (
            EventDraft {
                actor: String::new(),
                ..draft(8, "s/1")
            },
            "actor",
        ),
    ];
    for (d, needle) in cases {
        let err = log.append_blocking(d).unwrap_err();
        assert!(matches!(err, AppendError::Invalid { .. }), "{err}");
        assert!(
            err.to_string().contains(needle),
            "{err} should mention {needle}"
        );
    }
    assert_eq!(log.head().size, 0);
}

#[test]
fn time_never_decreases_even_when_the_clock_does(store) {
        let clock = clock();
    let log = store.open_with(config(&clock)).unwrap();
    let a = log.append_blocking(draft(0, "s/1")).unwrap();
    clock.advance_micros(-3_600_000_000);
    let b = log.append_blocking(draft(1, "s/1")).unwrap();
    assert_eq!(b.time, a.time);
    clock.advance_micros(7_200_000_123);
    let c = log.append_blocking(draft(2, "s/1")).unwrap();
    assert_eq!(c.time.to_string(), "2026-02-10T10:00:00.000123Z");
}

#[test]
fn reopening_restores_the_head_and_refuses_another_origin(store) {
    let log = store.open();
    for n in 0..20 {
        log.append_blocking(draft(n, "s/1")).unwrap();
    }
    let head = log.head();
    log.close();
    let log = store.open();
    assert_eq!(log.head(), head);
    assert_eq!(log.append_blocking(draft(20, "s/1")).unwrap().seq, 20);
    assert_eq!(log.read_range(20, 1).unwrap()[0].prev_hash, head.last_hash);
    log.close();
    let mut other = config(&clock());
    other.origin = Some("somewhere.else/log".into());
    assert!(matches!(
        store.open_with(other),
        Err(events::OpenLogError::OriginMismatch { .. })
    ));
}

#[test]
fn every_commit_is_signed_and_proofs_come_from_the_store(store) {
    let log = store.open();
    for n in 0..9 {
        log.append_blocking(draft(n, "s/1")).unwrap();
    }
    let verifier = log.verifier().unwrap().clone();
    let note = log.latest_checkpoint().unwrap().unwrap();
    let checkpoint = events::checkpoint::Checkpoint::verify(&note, &verifier).unwrap();
    assert_eq!(
        (checkpoint.size, checkpoint.root, checkpoint.origin.as_str()),
        (9, log.head().root, "trustledger.test/log")
    );
    let mut memory = events::merkle::MemoryTree::new();
    for e in log.read_range(0, 100).unwrap() {
        memory.push_entry(e.bytes());
    }
    assert_eq!(memory.root(), log.head().root);
    for size in 1..=9 {
        assert_eq!(
            log.root_at(size).unwrap(),
            events::merkle::root(&memory, size).unwrap()
        );
        let earlier = events::checkpoint::Checkpoint::verify(
            &log.checkpoint_at(size).unwrap().unwrap(),
            &verifier,
        )
        .unwrap();
        assert_eq!(earlier.root, log.root_at(size).unwrap());
        for seq in 0..size {
            let proof = log.inclusion_proof(seq, size).unwrap();
            let leaf = events::merkle::leaf_hash(log.get(seq).unwrap().unwrap().bytes());
            events::merkle::verify_inclusion(&leaf, seq, size, &proof, &earlier.root).unwrap();
        }
        let consistency = log.consistency_proof(size, 9).unwrap();
        events::merkle::verify_consistency(size, 9, &earlier.root, &log.head().root, &consistency)
            .unwrap();
    }
    assert!(log.inclusion_proof(9, 9).is_err());
    assert!(log.inclusion_proof(0, 10).is_err());
    assert!(log.consistency_proof(5, 4).is_err());
    assert!(log.consistency_proof(1, 10).is_err());
}

#[test]
fn concurrent_appenders_form_one_chain_with_every_acknowledged_id_once(store) {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap().block_on(async move {
    let log = store.open();
    let mut tasks = Vec::new();
    for producer in 0..32u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..40u64 {
                let n = producer * 1000 + i;
                let appended = log
                    .append(draft(n, &format!("producer/{producer}")))
                    .await
                    .unwrap();
                acked.push((draft(n, "x").id, appended.seq));
                if i % 8 == 0 {
                    // A refused batch inside a shared group: its first (valid) entry must vanish
                    // with it, and must not disturb the other producers' requests.
                    let fresh = draft(500_000 + n, &format!("producer/{producer}"));
                    let conflicting = EventDraft {
                        data: json!({"other": true}),
                        ..draft(n, "x")
                    };
                    let refused = log.append_batch(vec![fresh.clone(), conflicting]).await;
                    assert!(
                        matches!(refused, Err(AppendError::IdConflict { .. })),
                        "{refused:?}"
                    );
                    assert_eq!(log.get_by_id(&fresh.id).unwrap(), None);
                }
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert_eq!(log.head().size, 32 * 40);
    let seqs: HashSet<u64> = acked.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        seqs.len(),
        acked.len(),
        "no two acknowledgements share a seq"
    );
    for (id, seq) in &acked {
        assert_eq!(log.get_by_id(id).unwrap().unwrap().seq, *seq);
    }
    let report = verify_store(&log, log.verifier(), |_| {}).unwrap();
    assert_eq!(report.entries, 32 * 40);
    assert!(
        report.checkpoints < 32 * 40,
        "group commit batched concurrent appends ({} commits)",
        report.checkpoints
    );
    // Each producer's stream is in its own order.
    for producer in 0..32u64 {
        let stream = log
            .read_stream(&format!("producer/{producer}"), 0, 100)
            .unwrap();
        assert!(stream
            .windows(2)
            .all(|w| w[0].seq < w[1].seq && w[1].stream_version == w[0].stream_version + 1));
    }
    })
}

#[test]
fn subscribers_catch_up_then_follow_live_without_gap_or_duplicate(store) {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async move {
    let log = store.open();
    for n in 0..300 {
        log.append(draft(n, "s/1")).await.unwrap();
    }
    let mut from_start = log.subscribe(0);
    let mut from_middle = log.subscribe(150);
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            for n in 300..600 {
                log.append(draft(n, "s/2")).await.unwrap();
            }
        })
    };
    for expected in 0..600u64 {
        let e = tokio::time::timeout(std::time::Duration::from_secs(10), from_start.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.seq, expected);
    }
    for expected in 150..600u64 {
        assert_eq!(from_middle.next().await.unwrap().seq, expected);
    }
    writer.await.unwrap();
    assert_eq!(from_start.lag(), 0);
    assert_eq!(from_start.try_next().unwrap(), None);
    // A subscriber resumes from where it stopped.
    let mut resumed = log.subscribe(from_middle.next_seq());
    log.append(draft(600, "s/2")).await.unwrap();
    assert_eq!(resumed.next().await.unwrap().seq, 600);
    })
}

#[test]
fn timestamps_in_entries_use_the_pinned_spelling(store) {
    let log = store.open();
    log.append_blocking(draft(0, "s/1")).unwrap();
    let e = log.get(0).unwrap().unwrap();
    assert_eq!(
        e.time,
        Timestamp::parse("2026-02-10T09:00:00.000000Z").unwrap()
    );
    assert!(std::str::from_utf8(e.bytes())
        .unwrap()
        .contains("\"time\":\"2026-02-10T09:00:00.000000Z\""));
}
}

#[derive(Debug, Clone)]
enum Op {
    Single(u64, u8),
    Batch(Vec<(u64, u8)>),
    DuplicateSame(u64),
    DuplicateChanged(u64),
    Expect(u8, Option<u64>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..60, 0u8..4).prop_map(|(n, s)| Op::Single(n, s)),
        prop::collection::vec((0u64..60, 0u8..4), 1..6).prop_map(Op::Batch),
        (0u64..60).prop_map(Op::DuplicateSame),
        (0u64..60).prop_map(Op::DuplicateChanged),
        (0u8..4, prop::option::of(0u64..6)).prop_map(|(s, v)| Op::Expect(s, v)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_mix_of_operations_leaves_a_valid_log_that_reopens_identically(ops in prop::collection::vec(op(), 1..30)) {
        any_mix_of_operations(Kind::Sled, ops)?;
    }

    #[test]
    fn any_mix_of_operations_on_postgres_leaves_a_valid_log_that_reopens_identically(ops in prop::collection::vec(op(), 1..30)) {
        any_mix_of_operations(Kind::Postgres, ops)?;
    }
}

fn any_mix_of_operations(kind: Kind, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let Some(store) = TestStore::new(kind, "any_mix_of_operations") else {
        return Ok(());
    };
    let clock = clock();
    // The property is about logic, not durability; flush-only keeps 24 cases quick.
    let cfg = LogConfig {
        durability: Durability::FlushOnlyMayLoseOnPowerFailure,
        ..config(&clock)
    };
    let log = store.open_with(cfg.clone()).unwrap();
    let mut written: std::collections::HashMap<Uuid, EventDraft> = Default::default();
    let subject = |s: u8| format!("stream/{s}");
    for op in ops {
        clock.advance_micros(1_000);
        let before = log.head().size;
        let drafts: Vec<EventDraft> = match &op {
            Op::Single(n, s) => vec![draft(*n, &subject(*s))],
            Op::Batch(items) => items.iter().map(|(n, s)| draft(*n, &subject(*s))).collect(),
            Op::DuplicateSame(n) => vec![written
                .get(&draft(*n, "x").id)
                .cloned()
                .unwrap_or_else(|| draft(*n, "stream/0"))],
            Op::DuplicateChanged(n) => vec![EventDraft {
                data: json!({"changed": n}),
                ..draft(*n, "stream/0")
            }],
            Op::Expect(s, v) => {
                let mut d = draft(1000 + before, &subject(*s));
                d.expected = v.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exactly);
                vec![d]
            }
        };
        match log.append_batch_blocking(drafts.clone()) {
            Ok(results) => {
                for (d, r) in drafts.iter().zip(&results) {
                    if let Some(previous) = written.get(&d.id) {
                        prop_assert!(r.duplicate);
                        prop_assert!(previous.same_content_as(&log.get(r.seq).unwrap().unwrap()));
                    } else {
                        written.insert(d.id, d.clone());
                    }
                }
            }
            Err(AppendError::IdConflict { .. } | AppendError::VersionConflict { .. }) => {
                prop_assert_eq!(log.head().size, before, "a refused append writes nothing");
            }
            Err(other) => prop_assert!(false, "unexpected error {}", other),
        }
    }
    let head = log.head();
    prop_assert_eq!(head.size, written.len() as u64);
    let report = verify_store(&log, log.verifier(), |_| {}).unwrap();
    prop_assert_eq!(report.root, head.root);
    log.close();
    let reopened = store.open_with(cfg).unwrap();
    prop_assert_eq!(reopened.head(), head);
    Ok(())
}

/// A store written in storage layout 1 (a key per entry) is refused with an error that says what
/// to do, and is left as it was.
#[test]
fn a_layout_1_store_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        let tree = db.open_tree("log").unwrap();
        let mut key = vec![b'e'];
        key.extend_from_slice(&0u64.to_be_bytes());
        tree.insert(key, &b"{}"[..]).unwrap();
        db.flush().unwrap();
    }
    let refused = Log::open(dir.path(), LogConfig::default()).unwrap_err();
    assert!(
        matches!(refused, events::OpenLogError::Layout1),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("trustledger export"),
        "{refused}"
    );
    let db = sled::open(dir.path()).unwrap();
    let tree = db.open_tree("log").unwrap();
    assert_eq!(tree.len(), 1, "nothing was written");
}

/// An entry may be 65,535 bytes (what a C2SP tile's 16-bit length can frame), not one more.
#[test]
fn an_entry_is_at_most_65535_bytes() {
    use events::{Digest, Entry, Position, Timestamp};
    let build = |padding: usize| {
        let draft = EventDraft::new(
            uuid::Uuid::from_u128(1),
            "trustledger.test.sized",
            "sized/1",
            "tester",
            "corr",
            serde_json::json!({"p": "x".repeat(padding)}),
        );
        let position = Position {
            seq: 0,
            stream_version: 0,
            time: Timestamp::parse("2026-02-10T09:00:00.000000Z").unwrap(),
            prev_hash: Digest::ZERO,
        };
        Entry::build(&draft, "test.example/log", position)
    };
    let overhead = build(0).unwrap().bytes().len();
    let largest = build(65_535 - overhead).unwrap();
    assert_eq!(largest.bytes().len(), 65_535);
    assert_eq!(Entry::parse(largest.bytes()).unwrap(), largest);
    assert!(
        build(65_536 - overhead).is_err(),
        "65,536 bytes were accepted"
    );
}
