//! Leading and following at the service's level (`Governance`, two nodes' worth on one
//! PostgreSQL database): a follower decides nothing, catches up to what the leader decided, and
//! once promoted answers a submission retried with its idempotency key (`correlation_id`) with
//! the original deployment, and decides new commands against the whole log.

mod common;
#[path = "../events/tests/common/postgres_cluster.rs"]
mod postgres_cluster;

use common::{world_at, world_clock, World};
use events::{LogConfig, StoreLocation};
use projections::policy::Command;
use std::sync::Arc;
use trustledger::governance::{CommandError, Governance, IdSource, Outcome};

/// A world on a new PostgreSQL database (its governance leads) and a second node following it.
fn two_nodes(test: &str) -> Option<(World, Governance)> {
    let pg = postgres_cluster::cluster(test)?;
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
    Some((w, follower))
}

#[test]
fn a_submission_retried_after_failover_gets_the_original_answer_from_the_new_leader() {
    let Some((w, follower)) = two_nodes("failover") else {
        return;
    };
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

/// Two nodes that both believe they lead (a promotion racing the old leader's last commit): the
/// one whose commit finds the head moved is refused (503: retry), follows the other's entries,
/// and decides the next command against the whole log. Nothing forks.
#[test]
fn a_leader_fenced_by_another_node_follows_it_and_decides_the_next_command() {
    let Some((w, other)) = two_nodes("fenced leader") else {
        return;
    };
    let requests: Vec<_> = (0..3)
        .map(|n| w.request("notepad", false, 20 + n, w.evidence(true)))
        .collect();
    other.promote().unwrap();
    let submit = |gov: &Governance, n: usize| {
        gov.execute(
            &w.dev,
            &Command::Submit {
                deployment_id: gov.new_id(),
                request: requests[n].clone(),
            },
        )
    };
    assert!(matches!(submit(&other, 0).unwrap(), Outcome::Appended(_)));
    // The first node has not seen it: its commit is fenced, and answered as retryable.
    let fenced = submit(&w.gov, 1).unwrap_err();
    assert!(
        matches!(fenced, CommandError::Append(events::AppendError::Fenced(_))),
        "{fenced}"
    );
    // Then it follows and decides against the whole log.
    assert!(matches!(submit(&w.gov, 1).unwrap(), Outcome::Appended(_)));
    assert!(
        matches!(submit(&w.gov, 0).unwrap(), Outcome::Replayed { .. }),
        "it knows the other node's submission"
    );
    other.catch_up().unwrap();
    assert_eq!(other.fingerprint(), w.gov.fingerprint());
    let report = events::verify::verify_store(w.gov.log(), None, |_| {}).unwrap();
    assert_eq!(report.root, other.log().head().root);
}
