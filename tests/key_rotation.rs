//! `trustledger rotate-key`: the log's checkpoint key changes through an entry both keys sign,
//! and `verify`, `audit` and `monitor` follow it from the log itself, pinned to either key; a
//! server started with the retired key refuses, and an interrupted rotation is finished, not
//! repeated.

use std::path::Path;

mod tlog;
use tlog::{output as text, trustledger};

fn ok(args: &[&str]) -> String {
    let o = trustledger(args);
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    text(&o)
}

/// A write after the rotation, so that checkpoints signed by the new key exist.
fn grant(data: &str, principal: &str) {
    ok(&[
        "token",
        "create",
        "--data",
        data,
        "--principal",
        principal,
        "--role",
        "auditor",
    ]);
}

fn entries(data: &Path) -> u64 {
    trustledger::data_dir::open_existing(data)
        .unwrap()
        .head()
        .size
}

#[test]
fn verifiers_follow_a_key_rotation_from_the_log_pinned_to_either_key() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    ok(&["simulate", "--data", d, "--weeks", "1", "--per-week", "20"]);
    let first = trustledger::data_dir::open_existing(&data)
        .unwrap()
        .verifier()
        .unwrap()
        .to_string();
    let before = tmp.path().join("before");
    ok(&["export", "--data", d, "--out", before.to_str().unwrap()]);
    let state = tmp.path().join("monitor.json");
    let tiles_before = tmp.path().join("tiles-before");
    ok(&[
        "export",
        "--data",
        d,
        "--tiles",
        tiles_before.to_str().unwrap(),
    ]);
    let s = state.to_str().unwrap();
    ok(&[
        "monitor",
        "--once",
        "--entries",
        "--url",
        tiles_before.to_str().unwrap(),
        "--key",
        &first,
        "--state",
        s,
    ]);

    let o = trustledger(&["rotate-key", "--data", d]);
    assert!(o.status.success(), "{}", text(&o));
    let second = String::from_utf8(o.stdout).unwrap().trim().to_owned();
    assert_ne!(second, first);
    assert!(data.join("signing-key.retired-0").exists());
    grant(d, "after-rotation");

    // The stored log, pinned to the first key, the new one, or neither; not to a stranger's.
    let stranger = events::checkpoint::NoteSigner::from_seed("x", [5; 32])
        .unwrap()
        .verifier()
        .to_string();
    for key in [first.as_str(), second.as_str()] {
        ok(&["verify", "--data", d, "--key", key]);
    }
    ok(&["verify", "--data", d]);
    let o = trustledger(&["verify", "--data", d, "--key", &stranger]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // A bundle, its audit, and that it extends what was kept before the rotation.
    let after = tmp.path().join("after");
    let a = after.to_str().unwrap();
    ok(&["export", "--data", d, "--out", a]);
    let kept = before.join("checkpoint");
    for key in [first.as_str(), second.as_str()] {
        ok(&[
            "verify",
            "--bundle",
            a,
            "--key",
            key,
            "--from-checkpoint",
            kept.to_str().unwrap(),
        ]);
        ok(&["audit", "--bundle", a, "--key", key]);
    }
    let o = trustledger(&["verify", "--bundle", a, "--key", &stranger]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // Tiles, and a monitor that kept state from before the rotation.
    let tiles = tmp.path().join("tiles");
    let t = tiles.to_str().unwrap();
    ok(&["export", "--data", d, "--tiles", t]);
    ok(&["verify", "--tiles", t, "--key", &first]);
    let out = ok(&[
        "monitor",
        "--once",
        "--entries",
        "--url",
        t,
        "--key",
        &first,
        "--state",
        s,
    ]);
    assert!(out.contains("key rotated"), "{out}");
    // Without reading entries, a monitor pinned to the first key cannot see the rotation.
    let fresh = tmp.path().join("fresh.json");
    let o = trustledger(&[
        "monitor",
        "--once",
        "--url",
        t,
        "--key",
        &first,
        "--state",
        fresh.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("--entries follows the rotation"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_retired_key_is_refused_and_an_interrupted_rotation_is_finished_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    ok(&["simulate", "--data", d, "--weeks", "1", "--per-week", "10"]);
    ok(&["rotate-key", "--data", d]);
    let retired = data.join("signing-key.retired-0");
    let o = trustledger(&["serve", "--data", d, "--key", retired.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("latest key rotation names"),
        "{}",
        text(&o)
    );

    // A crash after the rotation was appended, before the key files moved.
    let size = entries(&data);
    std::fs::rename(data.join("signing-key"), data.join("signing-key.next")).unwrap();
    std::fs::rename(&retired, data.join("signing-key")).unwrap();
    let o = trustledger(&[
        "token",
        "create",
        "--data",
        d,
        "--principal",
        "p",
        "--role",
        "auditor",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("rotation was interrupted"),
        "{}",
        text(&o)
    );
    ok(&["rotate-key", "--data", d]);
    assert_eq!(entries(&data), size, "finished, not rotated again");
    grant(d, "after");
    ok(&["verify", "--data", d]);
    assert!(!data.join("signing-key.next").exists());
}
