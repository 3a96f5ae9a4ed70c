//! The golden vector: a fixed sequence of entries (fixed ids, times and payloads) whose exact
//! bytes, hashes and Merkle roots are committed under `tests/data/golden/`, so that any outside
//! implementation of the format can check itself against them, and so that this one cannot drift.
//!
//! Regenerate (only for a deliberate, versioned format change) with
//! `TRUSTLEDGER_UPDATE_GOLDEN=1 cargo test --test golden`.

use events::catalogue::{self, access::AccessGranted};
use events::checkpoint::{Checkpoint, NoteSigner};
use events::{Durability, EventDraft, ExpectedVersion, Log, LogConfig, ManualClock, Timestamp};
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden")
}

fn drafts() -> Vec<(i64, EventDraft)> {
    let id = |n: u128| Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0000 + n);
    let mut access = catalogue::draft(
        id(1),
        "principal/alice",
        "bootstrap",
        "corr-0001",
        &AccessGranted {
            principal: "alice".into(),
            roles: vec!["admin".into(), "cab".into()],
            token_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        },
    )
    .unwrap();
    access.expected = ExpectedVersion::NoStream;
    let mut caused = EventDraft::new(
        id(4),
        "trustledger.deployment.submitted",
        "deployment/8f3a",
        "bob",
        "corr-0002",
        json!({
            "app": "Zoom «client» ünïcode 😀",
            "escapes": "quote\" backslash\\ tab\t newline\n bell\u{7} del\u{7f}",
            "requires_admin": false,
            "target_user_count": 1200,
            "risk_score": "12.50",
            "weights_bp": {"privilege": 2500, "reach": 2500, "class": 2000, "evidence": 3000},
            "limits": [9_007_199_254_740_991i64, -9_007_199_254_740_991i64, 0],
            "nested": {"z": null, "a": [true, false, {}], "\u{fb33}": 1, "\u{1f600}": 2},
        }),
    );
    caused.causation_id = Some(id(3).to_string());
    vec![
        (0, access),
        (
            1_500,
            EventDraft::new(
                id(2),
                "trustledger.cab.member_added",
                "cab/members",
                "alice",
                "corr-0001",
                json!({"member": "carol"}),
            ),
        ),
        (
            1_500,
            EventDraft::new(
                id(3),
                "trustledger.evidence.recorded",
                "evidence/e1",
                "bob",
                "corr-0002",
                json!({"artifacts": [{"name": "zoom.msi", "sha256": "ab".repeat(32), "size": 104_857_600}]}),
            ),
        ),
        (86_400_000_001, caused),
        (
            86_400_000_002,
            EventDraft::new(
                id(5),
                "trustledger.deployment.routed_to_cab",
                "deployment/8f3a",
                "system",
                "corr-0002",
                json!({"threshold": 0, "model_version": "1.1"}),
            ),
        ),
    ]
}

/// Writes the golden entries one commit each and returns (entries.jsonl, hashes text, checkpoint).
fn generate() -> (Vec<u8>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let start = Timestamp::parse("2026-02-10T09:00:00.000000Z").unwrap();
    let clock = ManualClock::new(start);
    let signer = NoteSigner::from_seed("trustledger-golden", [1; 32]).unwrap();
    let log = Log::open(
        dir.path(),
        LogConfig {
            origin: Some("trustledger.example/golden".into()),
            durability: Durability::FlushOnlyMayLoseOnPowerFailure,
            clock: Arc::new(clock.clone()),
            signer: Some(signer.clone()),
            cache_bytes: None,
        },
    )
    .unwrap();
    for (offset_micros, draft) in drafts() {
        clock.set(Timestamp::from_unix_micros(
            start.unix_micros() + offset_micros,
        ));
        log.append_blocking(draft).unwrap();
    }
    let mut jsonl = Vec::new();
    let mut hashes = String::from("# seq sha256(entry) merkle-root-of-entries-0..=seq\n");
    for e in log.read_range(0, 100).unwrap() {
        jsonl.extend_from_slice(e.bytes());
        jsonl.push(b'\n');
        writeln!(
            hashes,
            "{} {} {}",
            e.seq,
            e.hash(),
            log.root_at(e.seq + 1).unwrap()
        )
        .unwrap();
    }
    let checkpoint = log.latest_checkpoint().unwrap().unwrap();
    writeln!(hashes, "# verifier key: {}", signer.verifier()).unwrap();
    (jsonl, hashes, checkpoint)
}

#[test]
fn golden_entries_are_reproduced_byte_for_byte() {
    let (jsonl, hashes, checkpoint) = generate();
    let dir = golden_dir();
    if std::env::var_os("TRUSTLEDGER_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("entries.jsonl"), &jsonl).unwrap();
        std::fs::write(dir.join("hashes.txt"), &hashes).unwrap();
        std::fs::write(dir.join("checkpoint"), &checkpoint).unwrap();
    }
    assert_eq!(
        String::from_utf8(jsonl).unwrap(),
        std::fs::read_to_string(dir.join("entries.jsonl")).unwrap()
    );
    assert_eq!(
        hashes,
        std::fs::read_to_string(dir.join("hashes.txt")).unwrap()
    );
    // Ed25519 signatures are deterministic (RFC 8032), so the signed note is fixed too.
    assert_eq!(
        checkpoint,
        std::fs::read_to_string(dir.join("checkpoint")).unwrap()
    );
}

#[test]
fn golden_files_verify_with_nothing_but_sha256() {
    // An outside verifier's view: recompute every hash from the committed file alone.
    use sha2::{Digest as _, Sha256};
    let dir = golden_dir();
    let jsonl = std::fs::read(dir.join("entries.jsonl")).unwrap();
    let hashes = std::fs::read_to_string(dir.join("hashes.txt")).unwrap();
    let expected: Vec<Vec<&str>> = hashes
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(' ').collect())
        .collect();
    let mut prev = "0".repeat(64);
    let mut tree = events::merkle::MemoryTree::new();
    for (seq, line) in jsonl
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let text = std::str::from_utf8(line).unwrap();
        assert!(
            text.contains(&format!("\"prevhash\":\"{prev}\"")),
            "entry {seq} links to the previous hash"
        );
        assert!(
            text.contains(&format!("\"seq\":{seq},")),
            "entry {seq} states its seq"
        );
        prev = hex::encode(Sha256::digest(line));
        tree.push_entry(line);
        assert_eq!(expected[seq][1], prev);
        assert_eq!(expected[seq][2], tree.root().to_hex());
    }
    let key = hashes
        .lines()
        .last()
        .unwrap()
        .strip_prefix("# verifier key: ")
        .unwrap();
    let verifier = events::checkpoint::NoteVerifier::parse(key).unwrap();
    let cp = Checkpoint::verify(
        &std::fs::read_to_string(dir.join("checkpoint")).unwrap(),
        &verifier,
    )
    .unwrap();
    assert_eq!((cp.size, cp.root), (5, tree.root()));
}
