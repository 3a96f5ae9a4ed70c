//! `trustledger monitor` run as a user would: it follows a log through its tiles, keeps its state
//! between runs, and exits 1 with an alarm for a rollback, a rewritten history re-signed with
//! the log's own key (caught by its kept checkpoint, or, by a fresh monitor, through a witness
//! that holds the earlier checkpoint), a damaged entry or tile, and a checkpoint without the
//! cosignatures it requires.

use events::checkpoint::NoteSigner;
use events::Log;
use std::path::{Path, PathBuf};

mod tlog;
use tlog::*;

/// A data directory holding a log signed by `signer` (entry `fork_at` changed when given), its
/// tiles exported to `DIR-tiles`.
struct Exported {
    log: Log,
    tiles: PathBuf,
}

fn exported(dir: &Path, signer: &NoteSigner, entries: u64, fork_at: Option<u64>) -> Exported {
    std::fs::create_dir_all(dir).unwrap();
    let key_file = dir.join("signing-key");
    if !key_file.exists() {
        trustledger::data_dir::write_key_file(&key_file, &signer.to_private_string(), false)
            .unwrap();
    }
    drop(log_with(
        &trustledger::data_dir::sled_dir(dir),
        signer,
        entries,
        fork_at,
    ));
    let tiles = dir.with_extension("tiles");
    trustledger::export_tiles::export_tiles(dir, &tiles, |_| {}).unwrap();
    let log = log_with(&trustledger::data_dir::sled_dir(dir), signer, 0, None);
    Exported { log, tiles }
}

fn monitor(tiles: &Path, key: &str, state: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec![
        "monitor",
        "--once",
        "--url",
        tiles.to_str().unwrap(),
        "--key",
        key,
        "--state",
        state.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = trustledger(&args);
    (o.status.code(), output(&o))
}

#[test]
fn the_monitor_follows_a_growing_log_and_alarms_on_a_rollback() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = NoteSigner::from_seed(ORIGIN, [7; 32]).unwrap();
    let key = signer.verifier().to_string();
    let state = tmp.path().join("state.json");
    let small = exported(&tmp.path().join("small"), &signer, 300, None);
    let (code, out) = monitor(&small.tiles, &key, &state, &["--entries"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("300 new entries checked"), "{out}");
    // The same log grown: consistent with the kept checkpoint; only the new entries are read.
    let grown = exported(&tmp.path().join("grown"), &signer, 700, None);
    let (code, out) = monitor(&grown.tiles, &key, &state, &["--entries"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("consistent with the checkpoint kept from last time (size 300)")
            && out.contains("400 new entries checked"),
        "{out}"
    );
    let kept = std::fs::read_to_string(&state).unwrap();
    // Shown the smaller log again: a rollback, and the state is left as it was.
    let (code, out) = monitor(&small.tiles, &key, &state, &["--entries"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("ALARM: rollback"), "{out}");
    assert_eq!(std::fs::read_to_string(&state).unwrap(), kept);
    drop((small.log, grown.log));
}

#[test]
fn a_rewritten_history_resigned_with_the_log_key_is_caught_by_the_monitor_or_a_witness() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = NoteSigner::from_seed(ORIGIN, [7; 32]).unwrap();
    let key = signer.verifier().to_string();
    let honest = exported(&tmp.path().join("honest"), &signer, 40, None);
    // A witness holds the honest checkpoint.
    let (w, wkey) = witness(&tmp.path().join("witness"), &key);
    assert_eq!(add(&w, &request(&honest.log, 0, 40)).0, 200);
    let _ = wkey;
    let watched = ["--witness-view", w.url.as_str()];
    let state = tmp.path().join("state.json");
    let (code, out) = monitor(&honest.tiles, &key, &state, &watched);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("consistent with the witness at {}", w.url)),
        "{out}"
    );

    // The operator rewrites entry 6 onwards, re-signs with the log's key, and serves that.
    let rewritten = exported(&tmp.path().join("rewritten"), &signer, 60, Some(6));
    let (code, out) = monitor(&rewritten.tiles, &key, &state, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("ALARM: fork: the checkpoint kept from last time"),
        "{out}"
    );
    // A monitor that never saw the honest log accepts the rewrite on its own ...
    let fresh = tmp.path().join("fresh.json");
    let (code, out) = monitor(&rewritten.tiles, &key, &fresh, &["--entries"]);
    assert_eq!(code, Some(0), "{out}");
    // ... but not while a witness holds the honest checkpoint.
    let fresh = tmp.path().join("fresh-watching.json");
    let (code, out) = monitor(&rewritten.tiles, &key, &fresh, &watched);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("ALARM: fork: the witness at {}", w.url)),
        "{out}"
    );
    drop((honest.log, rewritten.log));
}

#[test]
fn damaged_entries_and_tiles_and_missing_cosignatures_are_alarms_and_unreachable_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = NoteSigner::from_seed(ORIGIN, [7; 32]).unwrap();
    let key = signer.verifier().to_string();
    let log = exported(&tmp.path().join("log"), &signer, 600, None);
    let state = |name: &str| tmp.path().join(name);
    // An edited entry is named where it is: one whose successor is in the same bundle, and one
    // whose successor opens the next bundle.
    let bundle = log.tiles.join("tile/entries/001");
    let original = std::fs::read(&bundle).unwrap();
    for seq in [256u64, 510] {
        let mut damaged = original.clone();
        let value = format!("\"answer\":{}}}", seq + 1);
        let at = damaged
            .windows(value.len())
            .position(|w| w == value.as_bytes())
            .unwrap();
        damaged[at + 9] = b'9';
        std::fs::write(&bundle, &damaged).unwrap();
        let (code, out) = monitor(
            &log.tiles,
            &key,
            &state(&format!("{seq}.json")),
            &["--entries"],
        );
        assert_eq!(code, Some(1), "{out}");
        assert!(
            out.contains(&format!("ALARM: seq {seq}: entry {seq} was altered")),
            "{out}"
        );
    }
    std::fs::write(&bundle, &original).unwrap();
    // A damaged hash tile: the consistency proof computed from it fails.
    let (code, out) = monitor(&log.tiles, &key, &state("b.json"), &[]);
    assert_eq!(code, Some(0), "{out}");
    let grown = exported(&tmp.path().join("grown"), &signer, 700, None);
    // The leaves between the two sizes: every hash of the partial level-0 tile changed.
    let tile = grown.tiles.join("tile/0/002.p/188");
    let mut hashes = std::fs::read(&tile).unwrap();
    for hash in hashes.chunks_mut(32) {
        hash[0] ^= 1;
    }
    std::fs::write(&tile, &hashes).unwrap();
    let (code, out) = monitor(&grown.tiles, &key, &state("b.json"), &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("ALARM: fork"), "{out}");
    // A checkpoint that lacks the cosignature required.
    let stranger = events::cosignature::Cosigner::from_seed("w.example/x", [1; 32])
        .unwrap()
        .verifier()
        .to_string();
    let (code, out) = monitor(
        &grown.tiles,
        &key,
        &state("c.json"),
        &["--witness", &stranger],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("0 valid witness cosignatures, 1 required"),
        "{out}"
    );
    // Nothing listening: an error (2), not an alarm.
    let (code, out) = monitor(
        Path::new("http://127.0.0.1:9/tlog"),
        &key,
        &state("d.json"),
        &[],
    );
    assert_eq!(code, Some(2), "{out}");
    drop((log.log, grown.log));
}
