//! Leading and following at the service's level (`Governance`, two nodes' worth on one
//! PostgreSQL database): a follower decides nothing, catches up to what the leader decided, and
//! once promoted answers a submission retried with its idempotency key (`correlation_id`) with
//! the original deployment, and decides new commands against the whole log.

mod common;
#[path = "../events/tests/common/postgres_cluster.rs"]
mod postgres_cluster;

use common::{world_at, world_clock};
use events::{LogConfig, StoreLocation};
use projections::policy::Command;
use std::sync::Arc;
use trustledger::governance::{CommandError, Governance, IdSource, Outcome};

#[test]
fn a_submission_retried_after_failover_gets_the_original_answer_from_the_new_leader() {
    let Some(pg) = postgres_cluster::cluster("failover") else {
        return;
    };
    let location = StoreLocation::Postgres(pg.new_database());
    let w = world_at(&location, None);
    let (_, config) = world_clock();
    let config = LogConfig {
        clock: Arc::new(w.clock.clone()),
        ..config
    };
    let follower = Governance::open_following(
        events::Log::open_at(&location, config).unwrap(),
        Arc::new(w.clock.clone()),
        IdSource::Seeded(8),
    )
    .unwrap();
    assert!(!follower.role().leading());

    let request = w.request("notepad", false, 10, w.evidence(true));
    // Recorded now, while the first leader runs, for a submission after it is gone.
    let another = w.request("notepad", false, 11, w.evidence(true));
    let dev = w.dev.clone();
    let original = w.gov.new_id();
    let submit = |gov: &Governance, deployment_id| {
        gov.execute(
            &dev,
            &Command::Submit {
                deployment_id,
                request: request.clone(),
            },
        )
    };
    assert!(matches!(
        submit(&w.gov, original).unwrap(),
        Outcome::Appended(_)
    ));
    let refused = submit(&follower, follower.new_id()).unwrap_err();
    assert!(matches!(refused, CommandError::NotLeader(_)), "{refused}");

    // The follower catches up to exactly what the leader published.
    follower.catch_up().unwrap();
    assert_eq!(follower.fingerprint(), w.gov.fingerprint());

    // The leader goes; the follower leads.
    let leader = w.gov;
    let size = leader.log().head().size;
    drop(leader);
    assert_eq!(follower.promote().unwrap(), size);
    let retried = submit(&follower, follower.new_id()).unwrap();
    assert_eq!(
        retried,
        Outcome::Replayed {
            deployment_id: original
        },
        "the retry gets the original deployment"
    );
    // And it decides new commands against the whole log.
    let outcome = follower
        .execute(
            &dev,
            &Command::Submit {
                deployment_id: follower.new_id(),
                request: another,
            },
        )
        .unwrap();
    assert!(matches!(outcome, Outcome::Appended(_)));
    let report = events::verify::verify_store(follower.log(), None, |_| {}).unwrap();
    assert!(report.entries > size);
}
