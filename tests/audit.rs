//! The auditor's re-derivation: a clean history audits clean, and each kind of forged decision,
//! planted in an otherwise valid bundle (re-chained and re-signed, as only a forger with the key
//! could), is reported at its seq and only there.

mod common;

use common::*;
use events::checkpoint::{Checkpoint, NoteSigner};
use events::merkle::MemoryTree;
use projections::policy::Command;
use replay::audit::audit_bundle;
use replay::bundle::BundleOptions;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::path::Path;
use trustledger::governance::{Principal, Role};
use uuid::Uuid;

struct Scripted {
    entries: Vec<Vec<u8>>,
    routed_pending: Uuid,
    blocked_unapproved: Uuid,
    half_approved: Uuid,
    submitted_by_member: Uuid,
}

/// d1 approved and released; d2 left pending; d3 released before approval (blocked);
/// d4 (quorum 2) has one approval.
fn scripted() -> Scripted {
    let w = world();
    let released = w.submit("PDF reader", false, 3);
    w.vote(0, released, true).unwrap();
    w.release(released, ARTIFACT, Some(SBOM)).unwrap();
    let routed_pending = w.submit("Slack", false, 30);
    let blocked_unapproved = w.submit("Zoom", false, 40);
    w.release(blocked_unapproved, ARTIFACT, Some(SBOM)).unwrap();
    let half_approved = w.submit("SAP GUI", false, 50);
    w.vote(0, half_approved, true).unwrap();
    // A CAB member who also submits (allowed), approved by another member.
    let carol_submits = Principal::new("carol", &[Role::Submitter, Role::Cab]);
    let evidence = w.evidence(true);
    let submitted_by_member = w.gov.new_id();
    let request = w.request("Notepad", false, 5, evidence);
    w.gov
        .execute(
            &carol_submits,
            &Command::Submit {
                deployment_id: submitted_by_member,
                request,
            },
        )
        .unwrap();
    w.vote(1, submitted_by_member, true).unwrap();
    let entries = w
        .gov
        .log()
        .iter_bytes(0)
        .map(|r| r.unwrap().1.to_vec())
        .collect();
    Scripted {
        entries,
        routed_pending,
        blocked_unapproved,
        half_approved,
        submitted_by_member,
    }
}

fn write_bundle(dir: &Path, entries: &[Vec<u8>]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut tree = MemoryTree::new();
    let mut jsonl = Vec::new();
    for e in entries {
        tree.push_entry(e);
        jsonl.extend_from_slice(e);
        jsonl.push(b'\n');
    }
    let origin = serde_json::from_slice::<Value>(&entries[0]).unwrap()["source"]
        .as_str()
        .unwrap()
        .to_owned();
    let signer = NoteSigner::from_seed("audit-test", [9; 32]).unwrap();
    std::fs::write(dir.join("entries.jsonl"), jsonl).unwrap();
    std::fs::write(
        dir.join("checkpoint"),
        Checkpoint {
            origin,
            size: entries.len() as u64,
            root: tree.root(),
        }
        .sign(&signer),
    )
    .unwrap();
    std::fs::write(dir.join("verifier-key"), format!("{}\n", signer.verifier())).unwrap();
}

/// The forger's path: edit entries as JSON, then renumber, re-chain and re-canonicalise them all.
fn forge(entries: &[Vec<u8>], edit: impl FnOnce(&mut Vec<Value>)) -> Vec<Vec<u8>> {
    let mut values: Vec<Value> = entries
        .iter()
        .map(|e| serde_json::from_slice(e).unwrap())
        .collect();
    edit(&mut values);
    let mut out: Vec<Vec<u8>> = Vec::new();
    for (seq, mut v) in values.into_iter().enumerate() {
        v["seq"] = json!(seq);
        v["prevhash"] = json!(out
            .last()
            .map_or("0".repeat(64), |prev| hex::encode(Sha256::digest(prev))));
        out.push(events::canonical::to_canonical_vec(&v).unwrap());
    }
    out
}

fn find(values: &[Value], event_type: &str, deployment: Uuid) -> usize {
    values
        .iter()
        .position(|v| {
            v["type"] == format!("trustledger.{event_type}")
                && v["subject"] == format!("deployment/{deployment}")
        })
        .unwrap_or_else(|| panic!("no {event_type} for {deployment}"))
}

fn findings(entries: &[Vec<u8>]) -> Vec<(u64, String)> {
    let dir = tempfile::tempdir().unwrap();
    write_bundle(dir.path(), entries);
    let report = audit_bundle(dir.path(), &BundleOptions::default(), |_| {}).unwrap();
    assert!(
        report.integrity.is_ok(),
        "the forged bundle is intact: {:?}",
        report.integrity
    );
    report
        .decisions
        .unwrap()
        .findings
        .into_iter()
        .map(|f| (f.seq, f.message))
        .collect()
}

#[test]
fn a_clean_history_audits_clean() {
    let s = scripted();
    assert_eq!(findings(&s.entries), vec![]);
    let w = world();
    let _ = w; // the random histories of the snapshot tests audit clean too:
    for seed in [3u64, 8] {
        let entries = random_history(seed, 100)
            .gov
            .log()
            .iter_bytes(0)
            .map(|r| r.unwrap().1.to_vec())
            .collect::<Vec<_>>();
        assert_eq!(findings(&entries), vec![], "seed {seed}");
    }
}

#[test]
fn an_auto_approval_above_the_threshold_is_found() {
    let s = scripted();
    let mut at = 0;
    let forged = forge(&s.entries, |v| {
        at = find(v, "deployment.routed_to_cab", s.routed_pending);
        v[at]["type"] = json!("trustledger.deployment.auto_approved");
        v[at]["dataschema"] = json!("urn:trustledger:schema:deployment.auto_approved:v1");
    });
    let found = findings(&forged);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, at as u64);
    assert!(
        found[0].1.contains("routed to the CAB (score"),
        "{}",
        found[0].1
    );
}

#[test]
fn a_release_without_quorum_is_found() {
    let s = scripted();
    let mut at = 0;
    let forged = forge(&s.entries, |v| {
        at = find(v, "deployment.release_blocked", s.blocked_unapproved);
        v[at]["type"] = json!("trustledger.deployment.released");
        v[at]["dataschema"] = json!("urn:trustledger:schema:deployment.released:v1");
        for check in v[at]["data"]["checks"].as_array_mut().unwrap() {
            check["outcome"] = json!("PASS");
            check["reason_code"] = Value::Null;
        }
    });
    let found = findings(&forged);
    assert_eq!(
        found.iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![at as u64],
        "{found:?}"
    );
    assert!(found[0].1.contains("NOT_APPROVED"), "{}", found[0].1);
}

/// The release gate's signature check is re-derived for real: the auditor's worker threads verify
/// SBOM signatures ahead of the releases, and what they worked out must be what the policy would.
#[test]
fn a_release_passed_on_a_signature_that_does_not_verify_is_found() {
    let s = scripted();
    let mut releases = Vec::new();
    let forged = forge(&s.entries, |v| {
        let key = v
            .iter()
            .position(|e| e["type"] == "trustledger.signing_key.trusted")
            .unwrap();
        // Another valid Ed25519 key trusted under the same id: the evidence's signature (by the
        // real key) no longer verifies, yet both releases recorded a PASS for it.
        let other = ed25519_dalek::SigningKey::from_bytes(&[12; 32]);
        v[key]["data"]["public_key_hex"] = json!(hex::encode(other.verifying_key().as_bytes()));
        releases = v
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                e["type"]
                    .as_str()
                    .unwrap()
                    .starts_with("trustledger.deployment.release")
            })
            .map(|(seq, _)| seq as u64)
            .collect();
    });
    let found = findings(&forged);
    assert_eq!(
        releases.len(),
        2,
        "the scripted history has two release attempts"
    );
    assert_eq!(
        found.iter().map(|f| f.0).collect::<Vec<_>>(),
        releases,
        "{found:?}"
    );
    for (_, message) in &found {
        assert!(message.contains("SBOM_SIGNATURE_INVALID"), "{message}");
    }
}

/// Evidence whose recorded hash is not its document's: the recording is found, and so is the
/// release that relied on it, even though the submission copied the forged hash consistently
/// (the release gate recomputes the hash from the document).
#[test]
fn evidence_recorded_with_another_hash_is_found_and_so_is_its_release() {
    let s = scripted();
    let mut expected = Vec::new();
    let forged = forge(&s.entries, |v| {
        let released = v
            .iter()
            .position(|e| e["type"] == "trustledger.deployment.released")
            .unwrap();
        let deployment: Uuid = v[released]["subject"].as_str().unwrap()["deployment/".len()..]
            .parse()
            .unwrap();
        let submitted = find(v, "deployment.submitted", deployment);
        let evidence_id = v[submitted]["data"]["evidence_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let recorded = v
            .iter()
            .position(|e| e["subject"] == format!("evidence/{evidence_id}"))
            .unwrap();
        let other_hash = json!("ab".repeat(32));
        v[recorded]["data"]["evidence_hash"] = other_hash.clone();
        v[submitted]["data"]["evidence_hash"] = other_hash;
        let voted = find(v, "cab.vote_cast", deployment);
        expected = vec![recorded as u64, voted as u64, released as u64];
    });
    let found = findings(&forged);
    assert_eq!(
        found.iter().map(|f| f.0).collect::<Vec<_>>(),
        expected,
        "{found:?}"
    );
    // The member signed the evidence hash they saw, not the forged one.
    assert!(found[1].1.contains("does not verify"), "{found:?}");
    assert!(found[2].1.contains("EVIDENCE_TAMPERED"), "{found:?}");
}

#[test]
fn a_level_change_without_cab_approval_is_found() {
    let s = scripted();
    let n = s.entries.len();
    let forged = forge(&s.entries, |v| {
        let mut change = v[n - 1].clone();
        change["id"] = json!(Uuid::from_u128(0xf0).to_string());
        change["type"] = json!("trustledger.maturity.level_changed");
        change["dataschema"] = json!("urn:trustledger:schema:maturity.level_changed:v1");
        change["subject"] = json!("maturity/level");
        change["actor"] = json!("mallory");
        change["data"] = json!({"from": 0, "to": 1, "reason": "PROGRESSION_APPROVED"});
        change.as_object_mut().unwrap().remove("causationid");
        v.push(change);
    });
    let found = findings(&forged);
    assert_eq!(
        found.iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![n as u64],
        "{found:?}"
    );
    assert!(found[0].1.contains("nothing caused it"), "{}", found[0].1);
}

#[test]
fn a_vote_by_a_non_member_and_an_approval_by_the_submitter_are_found() {
    let s = scripted();
    for (deployment, actor, needle) in [
        (s.half_approved, "mallory", "held no token"),
        (s.submitted_by_member, "carol", "submitter"),
    ] {
        let mut at = 0;
        let forged = forge(&s.entries, |v| {
            at = find(v, "cab.vote_cast", deployment);
            v[at]["actor"] = json!(actor);
        });
        let found = findings(&forged);
        assert_eq!(
            found.iter().map(|f| f.0).collect::<Vec<_>>(),
            vec![at as u64],
            "{actor}: {found:?}"
        );
        assert!(found[0].1.contains(needle), "{}", found[0].1);
    }
}

#[test]
fn the_cli_audits_with_exit_codes_and_json() {
    let s = scripted();
    let tmp = tempfile::tempdir().unwrap();
    let clean = tmp.path().join("clean");
    write_bundle(&clean, &s.entries);
    let run = |dir: &Path, extra: &[&str]| {
        let mut args = vec!["audit", "--bundle", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_trustledger"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&clean, &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("verdict: CLEAN"));

    let forged_dir = tmp.path().join("forged");
    let forged = forge(&s.entries, |v| {
        let at = find(v, "cab.vote_cast", s.half_approved);
        v[at]["actor"] = json!("mallory");
    });
    write_bundle(&forged_dir, &forged);
    let o = run(&forged_dir, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["verdict"], "FINDINGS");
    assert_eq!(report["findings"].as_array().unwrap().len(), 1);
    assert!(
        report["decisions"]["deployment.submitted"]
            .as_u64()
            .unwrap()
            >= 4
    );

    // A broken bundle is reported as such (and not re-derived).
    let mut bytes = std::fs::read(clean.join("entries.jsonl")).unwrap();
    bytes[10] ^= 1;
    std::fs::write(clean.join("entries.jsonl"), bytes).unwrap();
    let o = run(&clean, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("integrity: INVALID"));
    assert_eq!(run(&tmp.path().join("missing"), &[]).status.code(), Some(2));
}

/// Three PDF readers (NON_CRITICAL, score 4.00), two Slack (PRODUCTIVITY), one Antivirus
/// (CRITICAL), all released through the CAB; incidents: PDF#0 P2, PDF#1 P3, Slack#0 P1.
fn history_with_incidents() -> Vec<Vec<u8>> {
    use events::payloads::Severity;
    use projections::policy::IncidentReport;
    let w = world();
    let mut ids = Vec::new();
    for (app, admin) in [
        ("PDF reader", false),
        ("PDF reader", false),
        ("PDF reader", false),
        ("Slack", false),
        ("Slack", false),
        ("Antivirus", true),
    ] {
        let id = w.submit(app, admin, 3);
        for member in 0..3 {
            if w.gov.with_state(|s| s.deployments.get(&id).unwrap().status)
                == projections::state::DeploymentStatus::PendingCab
            {
                w.vote(member, id, true).unwrap();
            }
        }
        w.release(id, ARTIFACT, Some(SBOM)).unwrap();
        ids.push(id);
    }
    let reporter = Principal::new("irene", &[Role::IncidentReporter]);
    for (i, severity) in [(0, Severity::P2), (1, Severity::P3), (3, Severity::P1)] {
        let report = IncidentReport {
            incident_id: w.gov.new_id(),
            deployment_id: ids[i],
            severity,
            incident_date: w.gov.state().last_time.unwrap(),
            affected_user_count: 1,
            downtime_minutes: 1,
            business_impact_usd: "0.00".into(),
            preventable: false,
            preventability_notes: String::new(),
            control_improvements: vec![],
        };
        w.gov
            .execute(&reporter, &Command::ReportIncident(report))
            .unwrap();
    }
    w.gov
        .log()
        .iter_bytes(0)
        .map(|r| r.unwrap().1.to_vec())
        .collect()
}

#[test]
fn backtesting_the_active_model_reproduces_history_and_a_looser_one_shows_what_it_lets_through() {
    use events::payloads::{BlastRadiusClass, Severity};
    use replay::backtest::{backtest_bundle, Candidate};
    let entries = history_with_incidents();
    let dir = tempfile::tempdir().unwrap();
    write_bundle(dir.path(), &entries);
    let options = BundleOptions::default();

    let own = Candidate {
        model: projections::genesis::risk_model_v1_1(),
        levels: None,
    };
    // History that is not intact is not backtested (one pass: what was folded is dropped).
    let mut changed = entries.clone();
    let last = changed.len() - 1;
    let at = changed[last].len() / 2;
    changed[last][at] ^= 0x01;
    let broken = tempfile::tempdir().unwrap();
    write_bundle(broken.path(), &entries);
    let mut jsonl = Vec::new();
    for e in &changed {
        jsonl.extend_from_slice(e);
        jsonl.push(b'\n');
    }
    std::fs::write(broken.path().join("entries.jsonl"), jsonl).unwrap();
    let refused = backtest_bundle(broken.path(), &options, &own, |_| {}).unwrap();
    assert!(refused.is_err(), "a changed entry was backtested");

    let report = backtest_bundle(dir.path(), &options, &own, |_| {})
        .unwrap()
        .unwrap();
    let total = report.total();
    assert_eq!(
        (
            total.deployments,
            total.identical,
            total.auto_candidate,
            total.auto_recorded
        ),
        (6, 6, 0, 0),
        "{report}"
    );

    // A looser model: NON_CRITICAL up to 30, and a level 0 that allows it.
    let mut model = projections::genesis::risk_model_v1_1();
    model.version = "2.0-candidate".into();
    model.thresholds.insert(BlastRadiusClass::NonCritical, 30);
    model
        .thresholds
        .insert(BlastRadiusClass::ProductivityTools, 5);
    let mut levels = projections::genesis::maturity_levels();
    levels[0]
        .thresholds
        .insert(BlastRadiusClass::NonCritical, 30);
    levels[0]
        .thresholds
        .insert(BlastRadiusClass::ProductivityTools, 5);
    let loose = Candidate {
        model,
        levels: Some(levels),
    };
    let report = backtest_bundle(dir.path(), &options, &loose, |_| {})
        .unwrap()
        .unwrap();
    let non = &report.classes[&BlastRadiusClass::NonCritical];
    assert_eq!(
        (
            non.deployments,
            non.auto_candidate,
            non.cab_candidate,
            non.cab_recorded
        ),
        (3, 3, 0, 3),
        "{report}"
    );
    assert_eq!(
        non.incidents_let_through,
        [(Severity::P2, 1), (Severity::P3, 1)].into()
    );
    let prod = &report.classes[&BlastRadiusClass::ProductivityTools];
    assert_eq!(
        (prod.auto_candidate, prod.identical),
        (0, 2),
        "Slack scores 10.00, above 5"
    );
    assert!(prod.incidents_let_through.is_empty());
    assert_eq!(
        report.classes[&BlastRadiusClass::CriticalInfrastructure].auto_candidate,
        0
    );

    // The CLI prints the same, with the report's hash to cite as calibration evidence.
    let model_file = dir.path().join("model.json");
    std::fs::write(&model_file, serde_json::to_string(&loose.model).unwrap()).unwrap();
    let levels_file = dir.path().join("levels.json");
    std::fs::write(
        &levels_file,
        serde_json::to_string(loose.levels.as_ref().unwrap()).unwrap(),
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_trustledger"))
        .args([
            "backtest",
            "--bundle",
            dir.path().to_str().unwrap(),
            "--model",
            model_file.to_str().unwrap(),
            "--levels",
            levels_file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        text.contains("NON_CRITICAL") && text.contains("P2×1 P3×1"),
        "{text}"
    );
    assert!(text.contains("\"report_sha256\": \""), "{text}");
}

/// A server the test controls: it serves `entries` (paged as the real server pages them), the
/// Merkle proofs of *their* tree and a fingerprint of *their* fold, but the signed checkpoint it
/// is given, which may describe another history, and never serves entries from `hide_from` on.
/// Serves `requests` connections, then stops.
fn lying_server(
    entries: Vec<Vec<u8>>,
    checkpoint: String,
    hide_from: usize,
    requests: usize,
) -> String {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut tree = MemoryTree::new();
        let mut state = projections::state::GovernanceState::new();
        for e in &entries {
            tree.push_entry(e);
            state.apply(&events::Entry::parse(e).unwrap());
        }
        let size = tree.size();
        let key = NoteSigner::from_seed("audit-test", [9; 32])
            .unwrap()
            .verifier();
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut request_line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            reader.read_line(&mut request_line).unwrap();
            while reader.read_line(&mut String::new()).unwrap() > 2 {}
            let target = request_line.split(' ').nth(1).unwrap().to_owned();
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            let param = |name: &str| -> Option<u64> {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                    .map(|v| v.parse().unwrap())
            };
            let hexes = |proof: Vec<events::Digest>| {
                json!({"proof": proof.iter().map(|d| d.to_hex()).collect::<Vec<_>>()}).to_string()
            };
            let body = match path {
                "/api/v1/log/key" => format!("{key}\n"),
                "/api/v1/log/checkpoint" => checkpoint.clone(),
                "/api/v1/events" => {
                    let from = param("after").map_or(0, |a| a + 1) as usize;
                    let limit = param("limit").unwrap() as usize;
                    let mut page = Vec::new();
                    for e in entries.iter().take(hide_from).skip(from).take(limit) {
                        page.extend_from_slice(e);
                        page.push(b'\n');
                    }
                    String::from_utf8(page).unwrap()
                }
                "/api/v1/log/proof/inclusion" => hexes(
                    events::merkle::inclusion_proof(&tree, param("seq").unwrap(), size).unwrap(),
                ),
                "/api/v1/log/proof/consistency" => hexes(
                    events::merkle::consistency_proof(&tree, param("from").unwrap(), size).unwrap(),
                ),
                "/api/v1/projections/fingerprint" => json!({
                    "seq": size - 1,
                    "fingerprint": projections::snapshot::fingerprint(&state).to_hex(),
                })
                .to_string(),
                other => panic!("unexpected request {other}"),
            };
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
    });
    url
}

fn signed_checkpoint(entries: &[Vec<u8>]) -> String {
    let mut tree = MemoryTree::new();
    for e in entries {
        tree.push_entry(e);
    }
    let origin = serde_json::from_slice::<Value>(&entries[0]).unwrap()["source"]
        .as_str()
        .unwrap()
        .to_owned();
    Checkpoint {
        origin,
        size: entries.len() as u64,
        root: tree.root(),
    }
    .sign(&NoteSigner::from_seed("audit-test", [9; 32]).unwrap())
}

fn audit_served(url: String, kept: Option<String>) -> replay::audit::AuditReport {
    let options = replay::remote::RemoteOptions {
        url,
        token: None,
        pinned_key: Some(
            NoteSigner::from_seed("audit-test", [9; 32])
                .unwrap()
                .verifier(),
        ),
        earlier_checkpoint: kept,
        witnesses: Default::default(),
    };
    replay::remote::audit_url(&options, |_| {}).unwrap()
}

#[test]
fn a_served_log_is_checked_page_by_page_against_the_signed_checkpoint() {
    let s = scripted();
    let honest = &s.entries;
    // Requests: key is pinned, so checkpoint + one page + one inclusion proof + fingerprint
    // (+ one consistency proof when a checkpoint was kept).
    let report = audit_served(
        lying_server(honest.clone(), signed_checkpoint(honest), usize::MAX, 4),
        None,
    );
    assert!(report.clean(), "{report:?}");
    assert_eq!(report.decisions.unwrap().entries, honest.len() as u64);
    assert!(report.projection_check.unwrap().matches());

    // A kept checkpoint of a prefix of the same history: the served one extends it.
    let kept = signed_checkpoint(&honest[..honest.len() / 2]);
    let report = audit_served(
        lying_server(honest.clone(), signed_checkpoint(honest), usize::MAX, 5),
        Some(kept),
    );
    assert!(report.clean(), "{report:?}");

    // The server rewrites history (one vote's actor) and re-chains it, but cannot re-sign: the
    // page it serves is not in the signed tree.
    let rewritten = forge(honest, |v| {
        let at = find(v, "cab.vote_cast", s.half_approved);
        v[at]["actor"] = json!("mallory");
    });
    let report = audit_served(
        lying_server(rewritten.clone(), signed_checkpoint(honest), usize::MAX, 3),
        None,
    );
    let problem = report.integrity.unwrap_err();
    assert!(problem.contains("is not in the signed tree"), "{problem}");
    assert!(report.decisions.is_none());

    // Had the forger the key, its new checkpoint would still not extend the one the auditor
    // kept from before the rewrite.
    let vote = find(
        &honest
            .iter()
            .map(|e| serde_json::from_slice(e).unwrap())
            .collect::<Vec<Value>>(),
        "cab.vote_cast",
        s.half_approved,
    );
    let kept = signed_checkpoint(&honest[..=vote]);
    let report = audit_served(
        lying_server(
            rewritten.clone(),
            signed_checkpoint(&rewritten),
            usize::MAX,
            2,
        ),
        Some(kept),
    );
    let problem = report.integrity.unwrap_err();
    assert!(problem.contains("history was rewritten"), "{problem}");

    // A server that signed more than it serves.
    let report = audit_served(
        lying_server(honest.clone(), signed_checkpoint(honest), 20, 4),
        None,
    );
    let problem = report.integrity.unwrap_err();
    assert!(
        problem.contains("but /api/v1/events ends after 20"),
        "{problem}"
    );
}

/// An unreviewed break-glass release whose review fell due is a finding; one reviewed by its
/// quorum in time is not, and a review vote after the window is refused.
#[test]
fn a_break_glass_release_never_reviewed_is_found() {
    let w = world();
    let entries = |w: &World| -> Vec<Vec<u8>> {
        w.gov
            .log()
            .iter_bytes(0)
            .map(|r| r.unwrap().1.to_vec())
            .collect()
    };
    let reviewed = w.submit("Antivirus", true, 9000);
    w.breakglass(0, reviewed).unwrap();
    for member in [1, 2, 3] {
        w.review(member, reviewed, true).unwrap();
    }
    let forgotten = w.submit("VPN", true, 9000);
    w.breakglass(4, forgotten).unwrap();
    assert_eq!(findings(&entries(&w)), vec![], "not yet due");
    w.clock.advance_micros(4 * DAY);
    w.submit("PDF reader", false, 3);
    let found = findings(&entries(&w));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].1.contains("cass's break-glass release") && found[0].1.contains("never reviewed"),
        "{found:?}"
    );
    assert!(rejected(w.review(1, forgotten, true))
        .to_string()
        .contains("review window closed"));
    assert_eq!(findings(&entries(&w)).len(), 1);
}

/// Whoever holds the data directory and the log's key can re-chain and re-sign the whole log,
/// but cannot sign as a CAB member: a vote given to another member, or stripped of its
/// signature, is found at its seq.
#[test]
fn a_vote_whose_actor_was_changed_or_signature_stripped_is_found_in_a_resigned_log() {
    let s = scripted();
    for forgery in ["actor", "signature stripped", "rationale"] {
        let mut expected = 0;
        let forged = forge(&s.entries, |v| {
            let vote = v
                .iter()
                .position(|e| e["type"] == "trustledger.cab.vote_cast")
                .unwrap();
            assert_eq!(v[vote]["actor"], "carol");
            match forgery {
                "actor" => v[vote]["actor"] = json!("cyril"),
                "signature stripped" => {
                    v[vote]["data"].as_object_mut().unwrap().remove("signature");
                }
                _ => v[vote]["data"]["rationale"] = json!("rubber-stamped"),
            }
            expected = vote as u64;
        });
        let found = findings(&forged);
        assert_eq!(
            found.first().map(|f| f.0),
            Some(expected),
            "{forgery}: {found:?}"
        );
        let why = match forgery {
            "actor" => "not by the key in force",
            "signature stripped" => "requires every vote to carry",
            _ => "does not verify",
        };
        assert!(found[0].1.contains(why), "{forgery}: {found:?}");
    }
}

/// Nor can the key holder sign as the evidence producer: evidence whose install scope was flipped,
/// or whose signature was stripped, is found at its seq in a re-chained, re-signed log.
#[test]
fn evidence_whose_facts_were_changed_or_signature_stripped_is_found_in_a_resigned_log() {
    let s = scripted();
    for forgery in ["install scope", "signature stripped"] {
        let mut expected = 0;
        let forged = forge(&s.entries, |v| {
            let recorded = v
                .iter()
                .position(|e| e["type"] == "trustledger.evidence.recorded")
                .unwrap();
            match forgery {
                "install scope" => v[recorded]["data"]["document"]["requires_admin"] = json!(true),
                _ => {
                    v[recorded]["data"]
                        .as_object_mut()
                        .unwrap()
                        .remove("signature");
                }
            }
            expected = recorded as u64;
        });
        let found = findings(&forged);
        assert_eq!(
            found.first().map(|f| f.0),
            Some(expected),
            "{forgery}: {found:?}"
        );
        let why = match forgery {
            "install scope" => "does not verify over this evidence document",
            _ => "requires evidence signed",
        };
        assert!(found[0].1.contains(why), "{forgery}: {found:?}");
    }
}

/// A forged vote that reached no quorum on its own still does not count: the approval an honest
/// vote then completes with it is found short of its quorum.
#[test]
fn an_approval_reached_with_a_forged_vote_is_found_short_of_its_quorum() {
    let w = world();
    let id = w.submit("SAP GUI", false, 50); // BUSINESS_CRITICAL: quorum 2
    w.vote(0, id, true).unwrap();
    w.vote(1, id, true).unwrap();
    let entries: Vec<Vec<u8>> = w
        .gov
        .log()
        .iter_bytes(0)
        .map(|r| r.unwrap().1.to_vec())
        .collect();
    let mut expected = Vec::new();
    let forged = forge(&entries, |v| {
        let forged_vote = find(v, "cab.vote_cast", id);
        v[forged_vote]["actor"] = json!("cyril");
        let approved = find(v, "deployment.approved", id);
        v[approved]["data"]["approvers"] = json!(["chen", "cyril"]);
        expected = vec![forged_vote as u64, approved as u64];
    });
    let found = findings(&forged);
    assert_eq!(
        found.iter().map(|f| f.0).collect::<Vec<_>>(),
        expected,
        "{found:?}"
    );
    assert!(found[1].1.contains("deployment.approved"), "{found:?}");
}

/// Whoever holds the log key can record a decision under any name, but not a token: an actor
/// who held no grant with a role that may issue the command is found at its seq.
#[test]
fn an_actor_without_a_granted_role_is_found() {
    let s = scripted();
    let mut at = 0;
    let forged = forge(&s.entries, |v| {
        at = v
            .iter()
            .position(|e| e["type"] == "trustledger.deployment.released")
            .unwrap();
        v[at]["actor"] = json!("chen"); // a CAB member, not a deployer
    });
    let found = findings(&forged);
    assert_eq!(found.first().map(|f| f.0), Some(at as u64), "{found:?}");
    assert!(found[0].1.contains("chen held no token"), "{found:?}");
}

/// A looser model proposed with its backtest, approved by three signed votes and activated: the
/// entries of that history, and the seqs of the proposal and the activation.
fn looser_model_history() -> (Vec<Vec<u8>>, u64, u64) {
    let w = world();
    for users in [3, 4] {
        let id = w.submit("PDF reader", false, users);
        w.vote(0, id, true).unwrap();
    }
    let mut model = projections::genesis::risk_model_v1_1();
    model.version = "1.2".into();
    model
        .thresholds
        .insert(events::payloads::BlastRadiusClass::NonCritical, 30);
    w.cite_backtest(&mut model);
    let proposed = w.gov.log().head().size;
    w.gov
        .execute(&w.admin, &Command::ProposeRiskModel(model))
        .unwrap();
    for member in 0..3 {
        let signature = w.try_sign(
            &w.cab[member].name,
            (Kind::RiskModel, "1.2"),
            true,
            "backtest reviewed",
        );
        w.gov
            .execute(
                &w.cab[member],
                &Command::VoteRiskModel {
                    version: "1.2".into(),
                    approve: true,
                    rationale: "backtest reviewed".into(),
                    signature,
                },
            )
            .unwrap();
    }
    let activated = w.gov.log().head().size;
    w.gov
        .execute(
            &w.admin,
            &Command::ActivateRiskModel {
                version: "1.2".into(),
            },
        )
        .unwrap();
    let entries = w
        .gov
        .log()
        .iter_bytes(0)
        .map(|r| r.unwrap().1.to_vec())
        .collect();
    (entries, proposed, activated)
}

/// The audit re-runs every cited backtest: a digest the log does not give, or a looser model with
/// its citation stripped, is found where it was proposed (and activated), even in a re-signed log.
#[test]
fn a_looser_model_whose_cited_backtest_does_not_match_is_found_at_its_proposal_and_activation() {
    let (entries, proposed, activated) = looser_model_history();
    let dir = tempfile::tempdir().unwrap();
    write_bundle(dir.path(), &entries);
    let report = audit_bundle(dir.path(), &BundleOptions::default(), |_| {}).unwrap();
    let decisions = report.decisions.unwrap();
    assert!(decisions.findings.is_empty(), "{decisions}");
    assert_eq!(decisions.backtests_rerun, 1, "{decisions}");
    for forgery in ["digest", "stripped"] {
        let forged = forge(&entries, |v| {
            let data = &mut v[proposed as usize]["data"];
            assert_eq!(data["version"], "1.2");
            match forgery {
                "digest" => data["backtest"]["report_sha256"] = json!("ab".repeat(32)),
                _ => {
                    data.as_object_mut().unwrap().remove("backtest");
                }
            }
        });
        let found = findings(&forged);
        assert_eq!(
            found.first().map(|f| f.0),
            Some(proposed),
            "{forgery}: {found:?}"
        );
        let why = match forgery {
            "digest" => "re-run over them it gives",
            _ => "cite the backtest",
        };
        assert!(found[0].1.contains(why), "{forgery}: {found:?}");
        assert!(
            found.iter().any(|f| f.0 == activated),
            "{forgery}: the activation is found too: {found:?}"
        );
    }
}
