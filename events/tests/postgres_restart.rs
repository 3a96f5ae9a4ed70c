//! PostgreSQL stopped (as a crash: `pg_ctl stop -m immediate`) and started again under a write
//! load: appends fail with a storage error while it is down, nothing acknowledged is lost, and
//! the same log handle takes appends again once it is back, without being reopened. A binary of
//! its own, because it stops the cluster its process shares.

mod common;

use common::{draft, postgres_cluster, Kind, TestStore};
use events::verify::verify_store;
use events::AppendError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn appends_fail_while_postgres_is_down_and_resume_without_a_restart_losing_nothing() {
    let Some(store) = TestStore::new(Kind::Postgres, "restart") else {
        return;
    };
    let cluster = postgres_cluster::cluster("restart").unwrap();
    let log = store.open();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..4u64)
        .map(|p| {
            let (log, acknowledged, refused, stop) = (
                log.clone(),
                Arc::clone(&acknowledged),
                Arc::clone(&refused),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                for i in 0..100_000u64 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let d = draft(p * 1_000_000 + i, &format!("producer/{p}"));
                    match log.append_blocking(d.clone()) {
                        Ok(appended) => acknowledged.lock().unwrap().push((d.id, appended.seq)),
                        Err(AppendError::Unavailable(reason)) => {
                            refused.lock().unwrap().push(reason);
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        Err(other) => panic!("unexpected refusal: {other}"),
                    }
                }
            })
        })
        .collect();
    let wait_for_acks = |at_least: usize| {
        let started = Instant::now();
        while acknowledged.lock().unwrap().len() < at_least {
            assert!(started.elapsed() < Duration::from_secs(60), "no progress");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for_acks(200);
    cluster.stop();
    std::thread::sleep(Duration::from_secs(2));
    let during_outage = refused.lock().unwrap().len();
    cluster.launch();
    let after_restart = acknowledged.lock().unwrap().len();
    wait_for_acks(after_restart + 200);
    stop.store(true, Ordering::SeqCst);
    for p in producers {
        p.join().unwrap();
    }
    assert!(
        during_outage > 0,
        "appends were refused while PostgreSQL was down"
    );
    let acknowledged = acknowledged.lock().unwrap();
    for (id, seq) in acknowledged.iter() {
        let entry = log
            .get_by_id(id)
            .unwrap()
            .expect("an acknowledged entry was lost");
        assert_eq!(entry.seq, *seq);
    }
    let report = verify_store(&log, log.verifier(), |_| {}).unwrap();
    assert!(report.entries >= acknowledged.len() as u64);
    eprintln!(
        "{} acknowledged, {} refused while PostgreSQL was down, {} entries stored",
        acknowledged.len(),
        refused.lock().unwrap().len(),
        report.entries
    );
    // A reopened handle agrees with the one that lived through the outage.
    let head = log.head();
    log.close();
    assert_eq!(store.open().head(), head);
}
