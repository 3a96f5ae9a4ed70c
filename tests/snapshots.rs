//! Determinism and snapshots: the same log always folds to the same state (same fingerprint),
//! whether from genesis or from a snapshot plus the tail; a damaged snapshot is refused and rebuilt.

mod common;

use common::*;
use projections::snapshot::{self, fingerprint};
use std::sync::Arc;
use trustledger::governance::{AsOf, Governance, IdSource, OpenedFrom, SNAPSHOT_NAME};

#[test]
fn random_histories_fold_to_the_same_fingerprint_twice_and_from_a_snapshot() {
    for seed in 1..=4u64 {
        let w = random_history(seed, 120);
        let live = w.gov.fingerprint();
        let refolded = fold_from_genesis(&w, u64::MAX);
        assert_eq!(
            (refolded.last_seq, fingerprint(&refolded)),
            live,
            "seed {seed}: a second fold differs"
        );

        let size = w.gov.log().head().size;
        let cut = size / 3 + seed;
        let at_cut = w.gov.state_as_of(AsOf::Seq(cut)).unwrap();
        w.gov
            .log()
            .put_snapshot(
                SNAPSHOT_NAME,
                &snapshot::seal(&at_cut, cut, w.gov.log().get(cut).unwrap().unwrap().hash()),
            )
            .unwrap();
        let reopened = Governance::open(
            w.gov.log().clone(),
            Arc::new(w.clock.clone()),
            IdSource::Random,
        )
        .unwrap();
        assert_eq!(reopened.opened_from(), &OpenedFrom::Snapshot { seq: cut });
        assert_eq!(
            reopened.fingerprint(),
            live,
            "seed {seed}: snapshot + tail differs from a full fold"
        );
    }
}

/// The state after `upto`, folded entry by entry from genesis, without the service.
fn fold_from_genesis(w: &World, upto: u64) -> projections::state::GovernanceState {
    let mut state = projections::state::GovernanceState::new();
    for entry in w.gov.log().read_range(0, usize::MAX).unwrap() {
        if entry.seq > upto {
            break;
        }
        state.apply(&entry);
    }
    state
}

#[test]
fn time_travel_folds_from_the_nearest_retained_snapshot() {
    let w = random_history(21, 40);
    let first = w.gov.retain_snapshot().unwrap().unwrap();
    let w = continue_history(w, 22, 40);
    let second = w.gov.retain_snapshot().unwrap().unwrap();
    let w = continue_history(w, 23, 40);
    let size = w.gov.log().head().size;
    assert!(first < second && second + 1 < size);
    for (point, expected_start) in [
        (first / 2, None),
        (first, Some(first)),
        ((first + second) / 2, Some(first)),
        (second, Some(second)),
        (second + 1, Some(second)),
        (size - 1, None), // the live state itself
    ] {
        let (state, started) = w.gov.state_as_of_traced(AsOf::Seq(point)).unwrap();
        assert_eq!(started, expected_start, "as of seq {point}");
        assert_eq!(
            fingerprint(&state),
            fingerprint(&fold_from_genesis(&w, point)),
            "as of seq {point}"
        );
    }
    // By time: the last entry at or before the second snapshot's time.
    let second_time = w.gov.log().get(second).unwrap().unwrap().time;
    let (state, started) = w.gov.state_as_of_traced(AsOf::Time(second_time)).unwrap();
    assert_eq!(started, Some(second));
    assert_eq!(state.last_time, Some(second_time));

    // A damaged retained snapshot is skipped for the one before it.
    let (name, seq, _) = w.gov.retained_snapshots().unwrap().pop().unwrap();
    assert_eq!(seq, second);
    w.gov.log().put_snapshot(&name, b"garbage").unwrap();
    let (state, started) = w.gov.state_as_of_traced(AsOf::Seq(second + 1)).unwrap();
    assert_eq!(started, Some(first));
    assert_eq!(
        fingerprint(&state),
        fingerprint(&fold_from_genesis(&w, second + 1))
    );
}

/// The fingerprint is defined as SHA-256 of the canonical encoding; it is computed by streaming
/// the sections into the hash, and must come out the same as hashing the encoding whole.
#[test]
fn the_streamed_fingerprint_is_sha256_of_the_encoding() {
    for seed in [3, 7] {
        let state = fold_from_genesis(&random_history(seed, 400), u64::MAX);
        let encoding = snapshot::encode(&state);
        assert!(
            encoding.len() > 64 << 10,
            "the sections span several hash buffers"
        );
        assert_eq!(
            fingerprint(&state),
            events::Digest::of(&encoding),
            "seed {seed}"
        );
    }
    let empty = projections::state::GovernanceState::new();
    assert_eq!(
        fingerprint(&empty),
        events::Digest::of(&snapshot::encode(&empty))
    );
}

#[test]
fn different_histories_have_different_fingerprints() {
    let a = random_history(11, 60).gov.fingerprint();
    let b = random_history(12, 60).gov.fingerprint();
    assert_ne!(a, b);
}

#[test]
fn damaged_or_foreign_snapshots_are_discarded_and_rebuilt() {
    let w = random_history(5, 80);
    let live = w.gov.fingerprint();
    w.gov.save_snapshot().unwrap();
    let sealed = w.gov.log().get_snapshot(SNAPSHOT_NAME).unwrap().unwrap();
    let reopen = || {
        Governance::open(
            w.gov.log().clone(),
            Arc::new(w.clock.clone()),
            IdSource::Random,
        )
        .unwrap()
    };

    let mut corrupt = sealed.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x40;
    let mut other_version = sealed.clone();
    other_version[11] ^= 0x02;
    for (bytes, why) in [
        (corrupt, "checksum"),
        (other_version, "projection version"),
        (b"garbage".to_vec(), "not a trustledger snapshot"),
    ] {
        w.gov.log().put_snapshot(SNAPSHOT_NAME, &bytes).unwrap();
        let g = reopen();
        match g.opened_from() {
            OpenedFrom::Rebuilt {
                discarded: Some(reason),
            } => assert!(reason.contains(why), "{reason}"),
            other => panic!("a bad snapshot was used: {other:?}"),
        }
        assert_eq!(g.fingerprint(), live);
    }
    w.gov.log().put_snapshot(SNAPSHOT_NAME, &sealed).unwrap();
    assert!(matches!(
        reopen().opened_from(),
        OpenedFrom::Snapshot { .. }
    ));
}

/// A snapshot copied from another data directory (with a token that exists only there) is
/// refused, reported, and the state rebuilt from this log: the foreign token grants nothing.
#[test]
fn a_snapshot_from_another_log_is_refused_and_its_tokens_grant_nothing() {
    use events::catalogue::access::AccessGranted;
    use projections::policy::Command;
    use trustledger::governance::{authenticate, new_token, Principal, Role, CLI_ADMIN};
    let ours = random_history(6, 60);
    let theirs = random_history(7, 60);
    // Only the other log grants this admin token.
    let (token, token_sha256) = new_token();
    theirs
        .gov
        .execute(
            &Principal::new(CLI_ADMIN, &[Role::Admin]),
            &Command::GrantAccess(AccessGranted {
                principal: "mallory".into(),
                roles: vec!["admin".into()],
                token_sha256,
            }),
        )
        .unwrap();
    // Make the other log at least as long, so its snapshot's seq exists in ours too.
    while theirs.gov.log().head().size < ours.gov.log().head().size {
        theirs.evidence(true);
    }
    while ours.gov.log().head().size < theirs.gov.log().head().size {
        ours.evidence(true);
    }
    theirs.gov.save_snapshot().unwrap();
    let foreign = theirs
        .gov
        .log()
        .get_snapshot(SNAPSHOT_NAME)
        .unwrap()
        .unwrap();
    ours.gov
        .log()
        .put_snapshot(SNAPSHOT_NAME, &foreign)
        .unwrap();
    let live = ours.gov.fingerprint();
    let reopened = Governance::open(
        ours.gov.log().clone(),
        Arc::new(ours.clock.clone()),
        IdSource::Random,
    )
    .unwrap();
    match reopened.opened_from() {
        OpenedFrom::Rebuilt {
            discarded: Some(reason),
        } => assert!(reason.contains("another log"), "{reason}"),
        other => panic!("a foreign snapshot was used: {other:?}"),
    }
    assert_eq!(reopened.fingerprint(), live);
    assert!(reopened.with_state(|s| authenticate(s, &token)).is_none());
}
