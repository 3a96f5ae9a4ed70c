//! `migrate`: a log copied from sled to PostgreSQL and back holds the same bytes, root,
//! checkpoints and cosigned checkpoint, verifies, and takes appends; a non-empty target is
//! refused; the source is left as it was.

mod common;

use common::{clock, config, draft, Kind, TestStore};
use events::{migrate, Log, MigrateError};

/// What a log holds: head, every entry's bytes, the signed checkpoints, the cosigned one.
type Listing = (
    events::Head,
    Vec<Vec<u8>>,
    Vec<(u64, String)>,
    Option<String>,
);

fn listing(log: &Log) -> Listing {
    (
        log.head(),
        log.iter_bytes(0)
            .map(|item| item.unwrap().1.to_vec())
            .collect(),
        log.iter_checkpoints().map(Result::unwrap).collect(),
        log.latest_cosigned_checkpoint().unwrap(),
    )
}

#[test]
fn a_log_moved_to_postgres_and_back_is_the_same_log() {
    let Some(pg) = TestStore::new(Kind::Postgres, "migrate") else {
        return;
    };
    let sled = TestStore::new(Kind::Sled, "migrate").unwrap();
    let original = {
        let log = sled.open();
        let mut n = 0;
        for commit in 0..700u64 {
            let drafts: Vec<_> = (0..1 + commit % 5)
                .map(|_| {
                    n += 1;
                    draft(n, &format!("s/{}", n % 7))
                })
                .collect();
            log.append_batch_blocking(drafts).unwrap();
        }
        let note = log.latest_checkpoint().unwrap().unwrap();
        log.put_cosigned_checkpoint(
            log.head().size,
            &format!("{note}— witness.example/w AAAA\n"),
        )
        .unwrap();
        let listed = listing(&log);
        log.close();
        listed
    };
    assert!(original.1.len() > 2000, "several commits of the migration");
    let mut reported = Vec::new();
    let migration = migrate(&sled.location, &pg.location, |n| reported.push(n)).unwrap();
    assert_eq!(migration.entries, original.0.size);
    assert_eq!(migration.checkpoints, 700);
    assert_eq!(migration.root, original.0.root);
    assert_eq!(reported.last(), Some(&original.0.size));
    assert!(reported.len() > 1, "progress is reported per commit");
    let in_postgres = pg.open();
    assert_eq!(listing(&in_postgres), original);
    in_postgres.close();
    assert_eq!(listing(&sled.open()), original, "the source is unchanged");

    let back = TestStore::new(Kind::Sled, "migrate back").unwrap();
    migrate(&pg.location, &back.location, |_| {}).unwrap();
    let returned = back.open_with(config(&clock())).unwrap();
    assert_eq!(listing(&returned), original);
    let next = returned.append_blocking(draft(1_000_000, "s/1")).unwrap();
    assert_eq!(next.seq, original.0.size, "the copy takes appends");

    let refused = migrate(&sled.location, &pg.location, |_| {}).unwrap_err();
    assert!(
        matches!(refused, MigrateError::TargetNotEmpty(_)),
        "{refused}"
    );
    let missing = TestStore::new(Kind::Sled, "migrate missing").unwrap();
    let refused = migrate(&missing.location, &back.location, |_| {}).unwrap_err();
    assert!(matches!(refused, MigrateError::NoSource(_)), "{refused}");
}
