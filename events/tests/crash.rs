//! Crash safety: a child process appends in a loop (several threads, so group commit is in play)
//! and prints every acknowledged id; it is SIGKILLed at random moments. After each kill the log
//! reopens, verifies in full, and holds every acknowledged id exactly once.
//!
//! The child is this same test binary, re-run with `CRASH_CHILD_DIR` set (the sled approach).

mod common;

use events::verify::verify_store;
use events::Log;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

const KILLS: u32 = 24;

#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("CRASH_CHILD_DIR") else {
        return; // Only does anything when spawned by the parent test below.
    };
    let round: u64 = std::env::var("CRASH_ROUND").unwrap().parse().unwrap();
    let log = Log::open(&dir, common::config(&common::clock())).unwrap();
    common::append_until_killed(&log, round, "crash");
}

#[test]
fn killed_appenders_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged: HashSet<Uuid> = HashSet::new();
    let me = std::env::current_exe().unwrap();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..KILLS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let run_for = Duration::from_millis(30 + seed % 250);
        let mut child = Command::new(&me)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("CRASH_CHILD_DIR", dir.path())
            .env("CRASH_ROUND", (u64::from(round) + 1).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut ids = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(id) = line
                    .strip_prefix("ACK ")
                    .and_then(|t| Uuid::parse_str(t).ok())
                {
                    ids.push(id);
                }
            }
            ids
        });
        let started = Instant::now();
        while started.elapsed() < run_for {
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        acknowledged.extend(reader.join().unwrap());

        let log = Log::open(dir.path(), common::config(&common::clock())).unwrap();
        assert!(
            log.refusal().is_none(),
            "round {round}: {:?}",
            log.refusal()
        );
        let report = verify_store(&log, log.verifier(), |_| {})
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let mut seen = HashSet::new();
        for item in log.iter_bytes(0) {
            let (_, bytes) = item.unwrap();
            let entry = events::Entry::parse(&bytes).unwrap();
            assert!(
                seen.insert(entry.id),
                "round {round}: id {} appears twice",
                entry.id
            );
        }
        assert_eq!(seen.len() as u64, report.entries);
        let lost: Vec<_> = acknowledged.difference(&seen).collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} acknowledged ids lost, e.g. {:?}",
            lost.len(),
            lost.first()
        );
        log.close();
    }
    assert!(
        acknowledged.len() > 100,
        "the children acknowledged only {} appends",
        acknowledged.len()
    );
}
