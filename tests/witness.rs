//! Witnessing over real HTTP: `trustledger witness serve` cosigns consistent checkpoints and
//! refuses rollbacks and forks (keeping them as evidence, across restarts), and a served log
//! publishes only what its witnesses cosigned, saying how far each lags.

use events::checkpoint::NoteSigner;
use events::cosignature::WitnessPolicy;

mod tlog;
use tlog::*;

#[test]
fn a_witness_cosigns_what_extends_what_it_holds_and_refuses_rollbacks_and_forks() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = NoteSigner::from_seed(ORIGIN, [7; 32]).unwrap();
    let log = log_with(&tmp.path().join("log"), &signer, 12, None);
    let fork = log_with(&tmp.path().join("fork"), &signer, 14, Some(6));
    let key = signer.verifier().to_string();
    let witness_dir = tmp.path().join("witness");
    let (w, wkey) = witness(&witness_dir, &key);
    let policy = WitnessPolicy {
        witnesses: vec![wkey.clone()],
        required: 1,
    };

    // The first checkpoint, from nothing: a cosignature that verifies over it.
    let (status, _, line) = add(&w, &request(&log, 0, 5));
    assert_eq!(status, 200, "{line}");
    let cosigned = format!("{}{line}", log.checkpoint_at(5).unwrap().unwrap());
    assert_eq!(
        policy.verify(&cosigned, &signer.verifier()).unwrap().0.size,
        5
    );
    // A log that forgot what the witness holds is told its size.
    assert_eq!(
        add(&w, &request(&log, 0, 10)),
        (409, "text/x.tlog.size".into(), "5\n".into())
    );
    assert_eq!(add(&w, &request(&log, 5, 10)).0, 200);
    // Rollbacks: an old size beyond the checkpoint, or the smaller checkpoint as if new.
    let mut rollback = request(&log, 0, 5);
    rollback = rollback.replacen("old 0\n", "old 10\n", 1);
    assert_eq!(add(&w, &rollback).0, 400);
    assert_eq!(add(&w, &request(&log, 0, 5)).0, 409);
    // A fork signed with the log's own key: entry 6 differs.
    let (status, _, why) = add(&w, &request(&fork, 10, 14));
    assert_eq!(status, 422, "{why}");
    // Another key, another origin, a malformed body.
    let stranger = NoteSigner::from_seed(ORIGIN, [8; 32]).unwrap();
    let other = log_with(&tmp.path().join("other"), &stranger, 11, None);
    assert_eq!(add(&w, &request(&other, 10, 11)).0, 403);
    let unknown = request(&log, 10, 12).replace(ORIGIN, "elsewhere.example/log");
    assert_eq!(add(&w, &unknown).0, 404);
    assert_eq!(add(&w, "old x\n\n").0, 400);
    // A body over the limit, and one that is not UTF-8: refused, nothing held changes.
    let huge = "x".repeat(events::witness::REQUEST_BYTES_MAX + 1);
    assert_eq!(add(&w, &huge).0, 413);
    let not_utf8 = ureq::post(&format!("{}/add-checkpoint", w.url)).send_bytes(&[0xff, 0xfe]);
    assert!(
        matches!(not_utf8, Err(ureq::Error::Status(400, _))),
        "{not_utf8:?}"
    );
    assert_eq!(add(&w, &request(&log, 10, 12)).0, 200);

    // The monitoring checkpoint: the latest it cosigned, with both signatures.
    let origin_hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(ORIGIN.as_bytes()));
    let served = ureq::get(&format!("{}/{origin_hash}/checkpoint", w.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let (checkpoint, by) = policy.verify(&served, &signer.verifier()).unwrap();
    assert_eq!((checkpoint.size, by.len()), (12, 1));
    assert_eq!(
        ureq::get(&format!("{}/{}/checkpoint", w.url, "0".repeat(64)))
            .call()
            .unwrap_err()
            .kind(),
        ureq::ErrorKind::HTTP
    );

    // What it holds survives a restart, and so does the evidence of the fork and rollback.
    w.stop();
    {
        let reopened = trustledger::witness::Witness::open(&witness_dir, "x", vec![]).unwrap();
        let refused = reopened.refused().unwrap();
        assert!(
            refused.iter().any(|r| r.contains("\n14\n")),
            "the forked checkpoint is kept: {refused:?}"
        );
        assert_eq!(reopened.verifier(), wkey, "the key is kept");
    }
    let (w, _) = witness(&witness_dir, &key);
    assert_eq!(add(&w, &request(&log, 0, 12)).2, "12\n");
    assert_eq!(add(&w, &request(&fork, 12, 14)).0, 422);
}

#[test]
fn the_witness_is_atomic_under_concurrent_submissions() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = NoteSigner::from_seed(ORIGIN, [7; 32]).unwrap();
    let log = log_with(&tmp.path().join("log"), &signer, 40, None);
    let (w, _) = witness(&tmp.path().join("witness"), &signer.verifier().to_string());
    assert_eq!(add(&w, &request(&log, 0, 10)).0, 200);
    // Many requests from size 10 at once: exactly one may move the head, the rest conflict.
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (11..=40)
            .map(|size| {
                let (log, w) = (&log, &w);
                s.spawn(move || add(w, &request(log, 10, size)).0)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(statuses.iter().all(|s| *s == 200 || *s == 409));
}

fn witnessing(url: &str) -> serde_json::Value {
    serde_json::from_str(&get(&format!("{url}/api/v1/log/witnesses"), None)).unwrap()
}

#[test]
fn a_served_log_publishes_only_what_its_witnesses_cosigned_and_says_how_far_each_lags() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    let o = trustledger(&["simulate", "--data", d, "--weeks", "1", "--per-week", "20"]);
    assert!(o.status.success(), "{}", output(&o));
    let (origin, key) = {
        let log = trustledger::data_dir::open_existing(&data).unwrap();
        (log.origin().to_owned(), log.verifier().unwrap().to_string())
    };
    let o = trustledger(&[
        "token",
        "create",
        "--data",
        d,
        "--principal",
        "ines",
        "--role",
        "auditor",
        "--role",
        "operator",
    ]);
    assert!(o.status.success(), "{}", output(&o));
    let token = String::from_utf8(o.stdout).unwrap().trim().to_owned();
    let (w1, k1) = witness_on(None, &tmp.path().join("w1"), &origin, &key);
    let (w2, k2) = witness_on(None, &tmp.path().join("w2"), &origin, &key);
    let w2_port: u16 = w2.url.rsplit(':').next().unwrap().parse().unwrap();
    let server = Running::start(&[
        "serve",
        "--data",
        d,
        "--witness",
        &format!("{}={k1}", w1.url),
        "--witness",
        &format!("{}={k2}", w2.url),
    ]);
    let url = server.url.clone();
    let log_key = events::checkpoint::NoteVerifier::parse(&key).unwrap();
    let both = WitnessPolicy {
        witnesses: vec![k1.clone(), k2.clone()],
        required: 2,
    };
    eventually(
        "a checkpoint cosigned by both witnesses is published",
        || {
            ureq::get(&format!("{url}/tlog/checkpoint"))
                .call()
                .ok()
                .and_then(|r| r.into_string().ok())
                .is_some_and(|note| both.verify(&note, &log_key).is_ok())
        },
    );
    let status = witnessing(&url);
    assert_eq!(status["required"], 2);
    assert_eq!(status["witnesses"][0]["lag_entries"], 0, "{status}");
    assert_eq!(status["witnesses"][1]["lag_entries"], 0, "{status}");

    // Outside tools check the cosignatures: tiles, a receipt, an audit.
    let (k1s, k2s) = (k1.to_string(), k2.to_string());
    let tiles = format!("{url}/tlog");
    let o = trustledger(&[
        "verify",
        "--tiles",
        &tiles,
        "--key",
        &key,
        "--witness",
        &k1s,
        "--witness",
        &k2s,
    ]);
    assert!(o.status.success(), "{}", output(&o));
    assert!(
        output(&o).contains("cosigned by auditor.example/witness"),
        "{}",
        output(&o)
    );
    let stranger = events::cosignature::Cosigner::from_seed("stranger.example/w", [3; 32])
        .unwrap()
        .verifier()
        .to_string();
    let o = trustledger(&[
        "verify",
        "--tiles",
        &tiles,
        "--key",
        &key,
        "--witness",
        &stranger,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", output(&o));
    assert!(
        output(&o).contains("0 valid witness cosignatures, 1 required"),
        "{}",
        output(&o)
    );
    let receipt_checks = |seq: u64| {
        let dir = tmp.path().join(format!("receipt-{seq}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (receipt, entry) = (dir.join("receipt"), dir.join("entry"));
        let text = get(&format!("{url}/api/v1/log/receipt?seq={seq}"), Some(&token));
        std::fs::write(&receipt, text).unwrap();
        let after = seq
            .checked_sub(1)
            .map_or(String::new(), |a| format!("after={a}&"));
        let page = get(&format!("{url}/api/v1/events?{after}limit=1"), Some(&token));
        std::fs::write(&entry, page).unwrap();
        let (r, e) = (receipt.to_str().unwrap(), entry.to_str().unwrap());
        trustledger(&[
            "verify",
            "--receipt",
            r,
            "--entry",
            e,
            "--key",
            &key,
            "--witness",
            &k1s,
            "--witness",
            &k2s,
        ])
    };
    let o = receipt_checks(3);
    assert!(o.status.success(), "{}", output(&o));
    let o = trustledger(&[
        "audit",
        "--url",
        &url,
        "--token",
        &token,
        "--key",
        &key,
        "--witness",
        &k1s,
        "--witness",
        &k2s,
    ]);
    assert!(o.status.success(), "{}", output(&o));

    // One witness goes away: the log grows, publishing stops at what both cosigned, and the
    // lag is reported.
    let published = witnessing(&url)["published_size"].as_u64().unwrap();
    w2.stop();
    let evaluated = ureq::post(&format!("{url}/api/v1/maturity/evaluate"))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    // The response names the seq it appended, for its receipt.
    let appended: u64 = evaluated
        .header("trustledger-seqs")
        .expect("a command names the seqs it appended")
        .parse()
        .unwrap();
    assert!(appended >= published, "{appended} {published}");
    eventually("the missing witness's lag is reported", || {
        let s = witnessing(&url);
        s["witnesses"][1]["lag_entries"].as_u64() > Some(0)
            && s["witnesses"][1]["last_error"].is_string()
    });
    assert_eq!(witnessing(&url)["published_size"].as_u64(), Some(published));
    let metrics = get(&format!("{url}/metrics"), None);
    assert!(
        metrics.contains("trustledger_witness_lag_entries{witness=\"auditor.example/witness\"} 0")
            && metrics.contains(&format!(
                "trustledger_published_checkpoint_size {published}"
            )),
        "{metrics}"
    );
    let ready: serde_json::Value =
        serde_json::from_str(&get(&format!("{url}/readyz"), None)).unwrap();
    assert!(
        ready["witnessing"]["witnesses"][1]["lag_entries"].as_u64() > Some(0),
        "{ready}"
    );
    // It comes back: the log catches it up with a consistency proof, and publishes again.
    let (_w2, _) = witness_on(Some(w2_port), &tmp.path().join("w2"), &origin, &key);
    eventually("publishing resumes", || {
        witnessing(&url)["published_size"].as_u64() > Some(appended)
    });
    // The appended entry's receipt, checked offline against both witnesses.
    let o = receipt_checks(appended);
    assert!(o.status.success(), "{}", output(&o));
    // A monitor follows the live log's public tiles and both witnesses' views.
    let state = tmp.path().join("monitor.json");
    let o = trustledger(&[
        "monitor",
        "--once",
        "--entries",
        "--url",
        &tiles,
        "--key",
        &key,
        "--state",
        state.to_str().unwrap(),
        "--witness",
        &k1s,
        "--witness",
        &k2s,
        "--witness-view",
        &w1.url,
    ]);
    assert!(o.status.success(), "{}", output(&o));
    assert!(
        output(&o).contains(&format!("consistent with the witness at {}", w1.url)),
        "{}",
        output(&o)
    );
}
