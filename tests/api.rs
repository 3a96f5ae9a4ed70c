//! The HTTP API: routes driven through `app().oneshot(...)` (no socket) for the role matrix and
//! bad input, and a real bound server for the workflow, proofs and the resumable SSE stream.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use events::catalogue::access::{AccessGranted, AccessRevoked};
use events::checkpoint::{Checkpoint, NoteSigner};
use events::{Log, LogConfig, ManualClock, Timestamp};
use http_body_util::BodyExt as _;
use projections::policy::{self, Command};
use projections::vote_statement::{key_from_label, Kind};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use tower::ServiceExt as _;
use trustledger::api::{app, AppState};
use trustledger::governance::{new_token, Governance, IdSource, Principal, Role, CLI_ADMIN};

mod http_client;
use http_client::{http, json_of};

const ARTIFACT: &[u8] = b"MZ... installer";

struct Api {
    _dir: tempfile::TempDir,
    gov: Arc<Governance>,
    tokens: BTreeMap<&'static str, String>,
    clock: ManualClock,
}

fn grant(gov: &Governance, principal: &str, roles: &[&str]) -> String {
    let (token, token_sha256) = new_token();
    let cli = Principal::new(CLI_ADMIN, &[Role::Admin]);
    let g = AccessGranted {
        principal: principal.into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        token_sha256,
    };
    gov.execute(&cli, &Command::GrantAccess(g)).unwrap();
    token
}

fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::parse("2026-02-10T09:00:00.000000Z").unwrap());
    let signer = NoteSigner::from_seed("api-test", [4; 32]).unwrap();
    let config = LogConfig {
        clock: Arc::new(clock.clone()),
        signer: Some(signer),
        durability: events::Durability::FlushOnlyMayLoseOnPowerFailure,
        ..LogConfig::default()
    };
    let gov = Arc::new(
        Governance::open(
            Log::open(dir.path(), config).unwrap(),
            Arc::new(clock.clone()),
            IdSource::Seeded(5),
        )
        .unwrap(),
    );
    let mut tokens = BTreeMap::new();
    for (name, roles) in [
        ("ada", &["admin", "auditor"][..]),
        ("dev", &["submitter"]),
        ("agent", &["deployer"]),
        ("carol", &["cab"]),
        ("irene", &["incident-reporter"]),
        ("ops", &["operator"]),
        (
            "revoked",
            &[
                "admin",
                "submitter",
                "cab",
                "deployer",
                "incident-reporter",
                "operator",
            ],
        ),
    ] {
        tokens.insert(name, grant(&gov, name, roles));
    }
    let revoked = tokens["revoked"].clone();
    let r = AccessRevoked {
        principal: "revoked".into(),
        token_sha256: hex::encode(Sha256::digest(revoked.as_bytes())),
        reason: "left".into(),
    };
    gov.execute(
        &Principal::new(CLI_ADMIN, &[Role::Admin]),
        &Command::RevokeAccess(r),
    )
    .unwrap();
    gov.execute(
        &Principal::new("ada", &[Role::Admin]),
        &Command::AddCabMember {
            member: "carol".into(),
            ssh_key: Some(key_line("carol")),
        },
    )
    .unwrap();
    gov.execute(
        &Principal::new("ada", &[Role::Admin]),
        &projections::policy::set_producer_by_label("ci-bot"),
    )
    .unwrap();
    Api {
        _dir: dir,
        gov,
        tokens,
        clock,
    }
}

impl Api {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Body,
        json: bool,
    ) -> (StatusCode, Value, String) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if json {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let response = app(AppState::new(Arc::clone(&self.gov)))
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            content_type,
        )
    }
    async fn post(&self, uri: &str, who: &str, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self
            .call(
                Method::POST,
                uri,
                Some(&self.tokens[who]),
                Body::from(body.to_string()),
                true,
            )
            .await;
        (s, v)
    }
    async fn get(&self, uri: &str, who: &str) -> (StatusCode, Value) {
        let (s, v, _) = self
            .call(
                Method::GET,
                uri,
                Some(&self.tokens[who]),
                Body::empty(),
                false,
            )
            .await;
        (s, v)
    }
    fn size(&self) -> u64 {
        self.gov.log().head().size
    }
    /// A vote's body, signed now by `member` (with their key, derived from their name).
    fn vote_body(
        &self,
        member: &str,
        target: (Kind, &str),
        approve: bool,
        rationale: &str,
    ) -> Value {
        let at = self.gov.current_time();
        let signed = self
            .gov
            .with_state(|s| {
                policy::sign_vote(s, &key_from_label(member), target, (approve, rationale), at)
            })
            .unwrap();
        json!({"approve": approve, "rationale": rationale,
               "signature": {"signed_at": signed.signed_at, "sshsig": signed.sshsig()}})
    }
    async fn as_token(
        &self,
        token: &str,
        method: Method,
        uri: &str,
        body: Value,
    ) -> (StatusCode, Value, String) {
        self.call(method, uri, Some(token), Body::from(body.to_string()), true)
            .await
    }
}

/// `member`'s public key line: their key is derived from their name (`key_from_label`).
fn key_line(member: &str) -> String {
    key_from_label(member).public_key().to_openssh().unwrap()
}

fn evidence_document() -> Value {
    json!({
        "artifacts": [{"name": "app.msi", "sha256": hex::encode(Sha256::digest(ARTIFACT)), "size": ARTIFACT.len()}],
        "sbom": null, "tests_passed": 10, "tests_failed": 0, "scan_critical_findings": 0,
        "generated_by": "ci-bot", "packaged_by": "packager", "requires_admin": false
    })
}

/// The evidence document, signed by its producer.
fn evidence_body() -> Value {
    http_client::signed_evidence_body(evidence_document())
}

async fn submitted(a: &Api) -> String {
    let (s, e) = a.post("/api/v1/evidence", "dev", evidence_body()).await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    let body = json!({"correlation_id": format!("c-{}", a.size()), "app_name": "PDF reader", "app_version": "1", "requires_admin": false, "target_user_count": 5, "evidence_id": e["evidence_id"]});
    let (s, d) = a.post("/api/v1/deployments", "dev", body).await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    // What the state no longer holds is read back from the log: the submission's details and
    // the types of the history's entries.
    assert_eq!(d["app_version"], "1", "{d}");
    assert_eq!(d["factors"].as_array().map(Vec::len), Some(5), "{d}");
    assert!(d["classification_rule"].is_string(), "{d}");
    assert_eq!(
        d["history"][0]["type"], "trustledger.deployment.submitted",
        "{d}"
    );
    d["deployment_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutating_route_refuses_missing_wrong_revoked_and_wrongly_roled_callers() {
    let a = tokio::task::block_in_place(api);
    let id = submitted(&a).await;
    let routes: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::POST,
            "/api/v1/evidence".into(),
            evidence_body(),
            "dev",
        ),
        (
            Method::POST,
            "/api/v1/deployments".into(),
            json!({"correlation_id": "x", "app_name": "a", "app_version": "1", "requires_admin": false, "target_user_count": 1, "evidence_id": id}),
            "dev",
        ),
        (
            Method::POST,
            format!("/api/v1/deployments/{id}/votes"),
            json!({"approve": true, "rationale": "ok"}),
            "carol",
        ),
        (
            Method::POST,
            format!("/api/v1/deployments/{id}/release"),
            Value::Null,
            "agent",
        ),
        (
            Method::PUT,
            format!("/api/v1/deployments/{id}/sbom"),
            Value::Null,
            "agent",
        ),
        (
            Method::POST,
            "/api/v1/incidents/".into(),
            json!({"deployment_id": id, "severity": "P3", "affected_user_count": 1, "downtime_minutes": 1, "business_impact_usd": "0.00", "preventable": false}),
            "irene",
        ),
        (
            Method::POST,
            "/api/v1/maturity/evaluate/".into(),
            json!({}),
            "ops",
        ),
        (
            Method::POST,
            "/api/v1/cab/members".into(),
            json!({"member": "zed"}),
            "ada",
        ),
    ];
    let before = a.size();
    for (method, uri, body, allowed) in &routes {
        let wrong_role = ["dev", "agent", "carol", "irene", "ops", "ada"]
            .into_iter()
            .find(|w| {
                w != allowed
                    && !(uri.contains("evaluate") && *w == "ada")
                    && !(uri.contains("evaluate") && *w == "carol")
            })
            .unwrap();
        let cases = [
            (None, StatusCode::UNAUTHORIZED),
            (Some("tl_not-a-token".to_owned()), StatusCode::UNAUTHORIZED),
            (Some(a.tokens["revoked"].clone()), StatusCode::UNAUTHORIZED),
            (Some(a.tokens[wrong_role].clone()), StatusCode::FORBIDDEN),
        ];
        for (token, expected) in cases {
            let (status, problem, content_type) = a
                .call(
                    method.clone(),
                    uri,
                    token.as_deref(),
                    Body::from(body.to_string()),
                    true,
                )
                .await;
            assert_eq!(status, expected, "{method} {uri} as {token:?}: {problem}");
            assert_eq!(content_type, "application/problem+json");
            assert!(problem["type"]
                .as_str()
                .unwrap()
                .starts_with("https://trustledger.dev/problems/"));
        }
    }
    assert_eq!(a.size(), before, "no refused call wrote anything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_precise_problem_and_writes_nothing() {
    let a = tokio::task::block_in_place(api);
    let id = submitted(&a).await;
    let before = a.size();
    let raw = |body: &str| Body::from(body.to_owned());
    let dev = Some(a.tokens["dev"].as_str());
    let (s, p, _) = a
        .call(
            Method::POST,
            "/api/v1/deployments",
            dev,
            raw("{not json"),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{p}");
    let (s, p, _) = a
        .call(
            Method::POST,
            "/api/v1/deployments",
            dev,
            raw(r#"{"correlation_id": 5}"#),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("correlation_id"),
        "{p}"
    );
    let (s, p, _) = a
        .call(
            Method::POST,
            "/api/v1/deployments",
            dev,
            raw(r#"{"correlation_id": "c", "app_name": "a"}"#),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "missing fields: {p}");
    let (s, _) = a.post("/api/v1/deployments", "dev", json!({"correlation_id": "c", "app_name": "a", "app_version": "1", "requires_admin": false, "target_user_count": 1, "evidence_id": id, "risk_score": 1})).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a declared risk score is refused, not ignored"
    );
    let (s, p, _) = a
        .call(
            Method::POST,
            "/api/v1/deployments",
            dev,
            Body::from(vec![b' '; 300 * 1024]),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{p}");
    let (s, p) = a
        .post(
            "/api/v1/deployments/00000000-0000-0000-0000-000000000001/votes",
            "carol",
            json!({"approve": true, "rationale": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{p}");
    let (s, _) = a
        .post(
            "/api/v1/deployments/not-a-uuid/votes",
            "carol",
            json!({"approve": true, "rationale": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, p) = a.get("/api/v1/incidents/?severity=P9", "ada").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let (s, p) = a
        .get("/api/v1/log/proof/inclusion?seq=5&size=2", "ada")
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    // Found by schemathesis: integers beyond ±(2^53−1) have no canonical form. They were hashed
    // before being range-checked, and the panic surfaced as a 500.
    let (s, p) = a.post("/api/v1/deployments", "dev", json!({"correlation_id": "huge", "app_name": "a", "app_version": "1", "requires_admin": false, "target_user_count": 23_701_598_002_830_340u64, "evidence_id": id})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let mut huge = evidence_body();
    huge["document"]["tests_passed"] = json!(u64::MAX);
    let (s, p) = a.post("/api/v1/evidence", "dev", huge).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(a.size(), before, "bad input wrote nothing");

    // A conflicting retry of a submission is a 409; an identical one returns the original.
    let (_, e) = a.post("/api/v1/evidence", "dev", evidence_body()).await;
    let body = json!({"correlation_id": "retry", "app_name": "Slack", "app_version": "1", "requires_admin": false, "target_user_count": 9, "evidence_id": e["evidence_id"]});
    let (s, first) = a.post("/api/v1/deployments", "dev", body.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, again) = a.post("/api/v1/deployments", "dev", body.clone()).await;
    assert_eq!(
        (s, &again["deployment_id"]),
        (StatusCode::OK, &first["deployment_id"])
    );
    let mut changed = body;
    changed["target_user_count"] = json!(10);
    let (s, p) = a.post("/api/v1/deployments", "dev", changed).await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    // The submitter cannot vote on their own deployment, even holding the cab role.
    let both = tokio::task::block_in_place(|| {
        let admin = Principal::new("ada", &[Role::Admin]);
        a.gov
            .execute(
                &admin,
                &Command::AddCabMember {
                    member: "dev".into(),
                    ssh_key: Some(key_line("dev")),
                },
            )
            .unwrap();
        // One token in force per principal: dev's is replaced by one with both roles.
        let revoke = AccessRevoked {
            principal: "dev".into(),
            token_sha256: hex::encode(Sha256::digest(a.tokens["dev"].as_bytes())),
            reason: "roles change".into(),
        };
        a.gov
            .execute(
                &Principal::new(CLI_ADMIN, &[Role::Admin]),
                &Command::RevokeAccess(revoke),
            )
            .unwrap();
        grant(&a.gov, "dev", &["submitter", "cab"])
    });
    let (s, p, _) = a
        .call(
            Method::POST,
            &format!("/api/v1/deployments/{id}/votes"),
            Some(&both),
            Body::from(
                a.vote_body("dev", (Kind::Deployment, &id), true, "mine")
                    .to_string(),
            ),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_endpoints_answer_with_and_without_the_trailing_slash() {
    let a = tokio::task::block_in_place(api);
    for uri in [
        "/api/v1/maturity/status",
        "/api/v1/maturity/status/",
        "/api/v1/incidents",
        "/api/v1/incidents/",
        "/api/v1/blast-radius/classify?app_name=SAP%20GUI",
        "/api/v1/blast-radius/classify/?app_name=Slack",
        "/api/v1/calibration/",
    ] {
        let (s, v) = a.get(uri, "ada").await;
        assert_eq!(s, StatusCode::OK, "{uri}: {v}");
    }
    let (_, c) = a
        .get("/api/v1/blast-radius/classify/?app_name=SAP%20GUI", "ada")
        .await;
    assert_eq!(
        (
            c["class"].as_str(),
            c["rule"].as_str(),
            c["quorum"].as_u64()
        ),
        (Some("BUSINESS_CRITICAL"), Some("registry:sap"), Some(2))
    );
    // The second insider attack: the submitter's word (no admin rights, ten users) cannot move
    // a registered OS update out of its class; an unregistered app is classified by the rules
    // and said to be unregistered.
    let (_, c) = a
        .get(
            "/api/v1/blast-radius/classify/?app_name=Windows%20Update&requires_admin=false&target_user_count=10",
            "ada",
        )
        .await;
    assert_eq!(c["class"], "CRITICAL_INFRASTRUCTURE", "{c}");
    assert_eq!(c["registered_app"], "windows-update", "{c}");
    let (_, c) = a
        .get(
            "/api/v1/blast-radius/classify/?app_name=Wind%D0%BEws%20%20UPDATE&requires_admin=false&target_user_count=10",
            "ada",
        )
        .await;
    assert_eq!(
        c["class"], "CRITICAL_INFRASTRUCTURE",
        "a look-alike name matches: {c}"
    );
    let (_, c) = a
        .get("/api/v1/blast-radius/classify/?app_name=Tetris", "ada")
        .await;
    assert_eq!(
        (c["class"].as_str(), c["registered_app"].is_null()),
        (Some("NON_CRITICAL"), true),
        "{c}"
    );
    assert!(
        c["sources"].as_str().unwrap().contains("unregistered"),
        "{c}"
    );
    let (_, status) = a.get("/api/v1/maturity/status/", "ada").await;
    assert_eq!(status["level"], 0);
    assert_eq!(
        status["thresholds"]["CRITICAL_INFRASTRUCTURE"]["effective"],
        0
    );
    assert_eq!(status["criteria"][0]["name"], "min_weeks");
    let before = a.size();
    let (s, _) = a
        .get("/api/v1/blast-radius/classify/?app_name=x", "ada")
        .await;
    assert_eq!(
        (s, a.size()),
        (StatusCode::OK, before),
        "classification writes nothing"
    );
    let (s, v) = a
        .post("/api/v1/maturity/evaluate", "ops", json!({"strict": true}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["evaluation"]["strict"], true);
    // The status is cached per log head: a new entry must show at once.
    let (_, after) = a.get("/api/v1/maturity/status/", "ada").await;
    assert_eq!(after["as_of_seq"].as_u64(), Some(a.size() - 1), "{after}");
    assert_eq!(
        after["last_evaluation"]["outcome"],
        v["evaluation"]["outcome"]
    );
    let (s, _) = a.get("/api/v1/maturity/status/?as_of=3", "ada").await;
    assert_eq!(s, StatusCode::OK);
}

/// A minimal HTTP/1.1 client over a socket (requests with `Connection: close`).
/// Reads SSE `id:` lines from a stream until `count` events or the deadline.
fn read_sse(port: u16, token: &str, last_event_id: Option<u64>, count: usize) -> Vec<u64> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let resume = last_event_id
        .map(|id| format!("Last-Event-ID: {id}\r\n"))
        .unwrap_or_default();
    write!(stream, "GET /api/v1/events/stream HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n{resume}\r\n").unwrap();
    let mut ids = Vec::new();
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        if let Some(id) = line.strip_prefix("id:") {
            ids.push(id.trim().parse().unwrap());
            if ids.len() == count {
                break;
            }
        }
    }
    ids
}

#[test]
fn a_real_server_runs_the_workflow_serves_verifiable_proofs_and_resumable_streams() {
    let a = api();
    let state = AppState::new(Arc::clone(&a.gov));
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                axum::serve(listener, app(state)).await.unwrap();
            });
    });
    let port = port_rx.recv().unwrap();
    let t = |who: &str| a.tokens[who].clone();

    // Evidence → submission → vote → SBOM-less release with the real bytes → incident → evaluation.
    let (s, e) = http(
        port,
        "POST",
        "/api/v1/evidence",
        Some(&t("dev")),
        evidence_body().to_string().as_bytes(),
    );
    assert_eq!(s, 201, "{}", String::from_utf8_lossy(&e));
    let submit = json!({"correlation_id": "real-1", "app_name": "PDF reader", "app_version": "2", "requires_admin": false, "target_user_count": 4, "evidence_id": json_of(&e)["evidence_id"]});
    let (s, d) = http(
        port,
        "POST",
        "/api/v1/deployments",
        Some(&t("dev")),
        submit.to_string().as_bytes(),
    );
    assert_eq!(s, 201);
    let id = json_of(&d)["deployment_id"].as_str().unwrap().to_owned();
    assert_eq!(json_of(&d)["status"], "PENDING_CAB");
    let (s, _) = http(
        port,
        "POST",
        &format!("/api/v1/deployments/{id}/votes"),
        Some(&t("carol")),
        a.vote_body("carol", (Kind::Deployment, &id), true, "reviewed")
            .to_string()
            .as_bytes(),
    );
    assert_eq!(s, 200);
    let (s, r) = http(
        port,
        "POST",
        &format!("/api/v1/deployments/{id}/release"),
        Some(&t("agent")),
        b"MZ... swapped",
    );
    assert_eq!(
        (s, json_of(&r)["released"].clone()),
        (200, json!(false)),
        "a swapped artifact is blocked"
    );
    let (s, r) = http(
        port,
        "POST",
        &format!("/api/v1/deployments/{id}/release"),
        Some(&t("agent")),
        ARTIFACT,
    );
    assert_eq!(
        (s, json_of(&r)["released"].clone()),
        (200, json!(true)),
        "{}",
        String::from_utf8_lossy(&r)
    );
    a.clock.advance_micros(3_600_000_000);
    let incident = json!({"deployment_id": id, "severity": "P3", "affected_user_count": 12, "downtime_minutes": 30, "business_impact_usd": "1200.00", "preventable": true});
    let (s, i) = http(
        port,
        "POST",
        "/api/v1/incidents/",
        Some(&t("irene")),
        incident.to_string().as_bytes(),
    );
    assert_eq!(s, 201, "{}", String::from_utf8_lossy(&i));
    let incident_id = json_of(&i)["incident"]["incident_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, got) = http(
        port,
        "GET",
        &format!("/api/v1/incidents/{incident_id}/"),
        Some(&t("ada")),
        b"",
    );
    assert_eq!(s, 200);
    assert_eq!(
        json_of(&got)["incident"]["context"]["cab_approvers"],
        json!(["carol"])
    );
    let (s, _) = http(
        port,
        "POST",
        "/api/v1/maturity/evaluate/",
        Some(&t("ops")),
        b"",
    );
    assert_eq!(s, 200);

    // Proofs fetched over HTTP verify against the served, signed checkpoint.
    let (_, note) = http(port, "GET", "/api/v1/log/checkpoint", None, b"");
    let (_, key) = http(port, "GET", "/api/v1/log/key", None, b"");
    let verifier =
        events::checkpoint::NoteVerifier::parse(String::from_utf8(key).unwrap().trim()).unwrap();
    let checkpoint = Checkpoint::verify(&String::from_utf8(note).unwrap(), &verifier).unwrap();
    let (s, p) = http(
        port,
        "GET",
        &format!("/api/v1/log/proof/inclusion?seq=3&size={}", checkpoint.size),
        Some(&t("ada")),
        b"",
    );
    assert_eq!(s, 200);
    let p = json_of(&p);
    let path: Vec<events::Digest> = p["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| events::Digest::from_hex(h.as_str().unwrap()).unwrap())
        .collect();
    let (_, page) = http(
        port,
        "GET",
        "/api/v1/events?after=2&limit=1",
        Some(&t("ada")),
        b"",
    );
    let entry3 = page.split(|b| *b == b'\n').next().unwrap().to_vec();
    events::merkle::verify_inclusion(
        &events::merkle::leaf_hash(&entry3),
        3,
        checkpoint.size,
        &path,
        &checkpoint.root,
    )
    .unwrap();
    let (s, c) = http(
        port,
        "GET",
        &format!(
            "/api/v1/log/proof/consistency?from=5&to={}",
            checkpoint.size
        ),
        Some(&t("ada")),
        b"",
    );
    assert_eq!(s, 200);
    let c = json_of(&c);
    let path: Vec<events::Digest> = c["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| events::Digest::from_hex(h.as_str().unwrap()).unwrap())
        .collect();
    let from_root = events::Digest::from_hex(c["from_root"].as_str().unwrap()).unwrap();
    events::merkle::verify_consistency(5, checkpoint.size, &from_root, &checkpoint.root, &path)
        .unwrap();

    // SSE: read part of the stream, disconnect, keep appending, resume with Last-Event-ID.
    let first = read_sse(port, &t("ada"), None, 10);
    assert_eq!(first, (0..10).collect::<Vec<u64>>());
    let writer = {
        let (port, dev) = (port, t("dev"));
        std::thread::spawn(move || {
            for k in 0..15 {
                let (s, _) = http(
                    port,
                    "POST",
                    "/api/v1/evidence",
                    Some(&dev),
                    evidence_body().to_string().as_bytes(),
                );
                assert_eq!(s, 201, "append {k}");
            }
        })
    };
    let head_now = a.gov.log().head().size;
    let rest = read_sse(
        port,
        &t("ada"),
        Some(9),
        usize::try_from(head_now - 10 + 15).unwrap(),
    );
    writer.join().unwrap();
    let mut all = first.clone();
    all.extend(&rest);
    assert_eq!(
        all,
        (0..a.gov.log().head().size).collect::<Vec<u64>>(),
        "every entry exactly once, in order, across the reconnect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_of_the_workflow_models_exceptions_tokens_queue_and_metrics() {
    let a = tokio::task::block_in_place(|| {
        let a = api();
        let admin = Principal::new("ada", &[Role::Admin]);
        for m in ["chen", "cyril"] {
            a.gov
                .execute(
                    &admin,
                    &Command::AddCabMember {
                        member: m.into(),
                        ssh_key: Some(key_line(m)),
                    },
                )
                .unwrap();
        }
        a
    });
    let chen = tokio::task::block_in_place(|| grant(&a.gov, "chen", &["cab"]));
    let cyril = tokio::task::block_in_place(|| grant(&a.gov, "cyril", &["cab"]));

    // A looser model: proposed by an admin, three distinct CAB approvals, then activated.
    let mut model = serde_json::to_value(projections::genesis::risk_model_v1_1()).unwrap();
    model["version"] = json!("1.2");
    model["thresholds"]["NON_CRITICAL"] = json!(30);
    // Loosening needs its backtest: none cited, or a digest the service's re-run does not give,
    // is refused and writes nothing.
    let size = a.size();
    let (s, p) = a.post("/api/v1/risk-models", "ada", model.clone()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("backtest"), "{p}");
    let log_size = a.size();
    model["backtest"] = json!({"log_size": log_size, "report_sha256": "ab".repeat(32)});
    let (s, p) = a.post("/api/v1/risk-models", "ada", model.clone()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("gives report sha256"),
        "{p}"
    );
    assert_eq!(a.size(), size, "refused proposals wrote nothing");
    let candidate: events::payloads::RiskModelProposed =
        serde_json::from_value(model.clone()).unwrap();
    let report = tokio::task::block_in_place(|| {
        let entries = a
            .gov
            .log()
            .iter_bytes_until(0, log_size)
            .map(|item| item.map(|(_, bytes)| bytes));
        replay::backtest::rerun(entries, &candidate).unwrap()
    });
    model["backtest"]["report_sha256"] = json!(report.sha256());
    let (s, p) = a.post("/api/v1/risk-models", "ada", model).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let (s, p) = a
        .post("/api/v1/risk-models/1.2/activate", "ada", json!({}))
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "loosening needs the CAB first: {p}"
    );
    for (member, token) in [
        ("carol", a.tokens["carol"].clone()),
        ("chen", chen.clone()),
        ("cyril", cyril.clone()),
    ] {
        let body = a.vote_body(member, (Kind::RiskModel, "1.2"), true, "backtest reviewed");
        let (s, v, _) = a
            .as_token(&token, Method::POST, "/api/v1/risk-models/1.2/votes", body)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    assert_eq!(
        a.post("/api/v1/risk-models/1.2/activate", "ada", json!({}))
            .await
            .0,
        StatusCode::OK
    );
    let (_, models) = a.get("/api/v1/risk-models", "ada").await;
    assert_eq!(models["active"], "1.2");

    // An exception, listed with its standing; an unwaivable one refused.
    let expires = Timestamp::from_unix_micros(
        events::Clock::now(&a.clock).unix_micros() + 24 * 3_600_000_000,
    )
    .to_string();
    // Proposed by carol, granted by chen's and cyril's signed votes.
    let (s, v, _) = a.as_token(&a.tokens["carol"], Method::POST, "/api/v1/exceptions", json!({"control": "sbom_signature", "scope": "slack", "reason": "vendor", "expires_at": expires})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "PROPOSED", "{v}");
    let exception_id = v["exception_id"].as_str().unwrap().to_owned();
    let (_, list) = a.get("/api/v1/exceptions", "ada").await;
    assert_eq!(list["open_proposals"][0]["proposed_by"], "carol", "{list}");
    let (s, v, _) = a.as_token(&a.tokens["carol"], Method::POST, "/api/v1/exceptions", json!({"control": "sbom_signature", "scope": "slack", "reason": "vendor", "approvers": ["carol", "chen"], "expires_at": expires})).await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "naming approvers grants nothing: {v}"
    );
    for (member, token) in [("chen", chen.clone()), ("cyril", cyril.clone())] {
        let body = a.vote_body(
            member,
            (Kind::Exception, &exception_id),
            true,
            "vendor confirmed",
        );
        let path = format!("/api/v1/exceptions/{exception_id}/votes");
        let (s, v, _) = a.as_token(&token, Method::POST, &path, body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (_, list) = a.get("/api/v1/exceptions", "ada").await;
    assert_eq!(list["open_proposals"], json!([]), "{list}");
    assert_eq!(
        list["exceptions"][0]["exception"]["approvers"],
        json!(["chen", "cyril"]),
        "{list}"
    );
    let (s, _, _) = a.as_token(&a.tokens["carol"], Method::POST, "/api/v1/exceptions", json!({"control": "artifact_hash", "scope": "slack", "reason": "x", "expires_at": expires})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Found by schemathesis: a huge window overflowed into a dropped connection.
    let (s, p) = a
        .get("/api/v1/exceptions?expiring_within_hours=2562047789", "ada")
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let (_, list) = a
        .get("/api/v1/exceptions?expiring_within_hours=48", "ada")
        .await;
    assert_eq!(list["exceptions"][0]["standing"], "EXPIRING");

    // The CAB queue, and a token made over the API that works, then is revoked.
    let _ = submitted(&a).await;
    // Every projection read takes as_of: at seq 0 (genesis) there were no CAB members.
    let (_, then) = a.get("/api/v1/cab/members?as_of=0", "ada").await;
    assert_eq!(then["members"], json!([]));
    let (_, now) = a.get("/api/v1/cab/members", "ada").await;
    assert!(now["members"].as_array().unwrap().len() >= 3);
    let (_, queue) = a.get("/api/v1/cab/queue", "carol").await;
    assert_eq!(queue["pending"].as_array().unwrap().len(), 1);
    let (s, made) = a
        .post(
            "/api/v1/access/tokens",
            "ada",
            json!({"principal": "auditor-2", "roles": ["auditor"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let token = made["token"].as_str().unwrap().to_owned();
    let (s, _, _) = a
        .call(
            Method::GET,
            "/api/v1/events?limit=1",
            Some(&token),
            Body::empty(),
            false,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        made["token_sha256"].as_str().unwrap(),
        hex::encode(Sha256::digest(token.as_bytes())),
        "the token's id is its SHA-256"
    );
    // One token in force per principal: a second grant under the same name is refused.
    let (s, p) = a
        .post(
            "/api/v1/access/tokens",
            "ada",
            json!({"principal": "auditor-2", "roles": ["admin"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    // Revoked by its principal alone: the raw token is never needed again.
    let (s, _) = a
        .post(
            "/api/v1/access/tokens/revoke",
            "ada",
            json!({"principal": "auditor-2", "reason": "rotated"}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = a
        .call(
            Method::GET,
            "/api/v1/events?limit=1",
            Some(&token),
            Body::empty(),
            false,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, p) = a
        .post(
            "/api/v1/access/tokens/revoke",
            "ada",
            json!({"principal": "auditor-2", "reason": "again"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{p}");

    // Metrics in Prometheus text format (a fresh router per call here, so it counts itself).
    let response = app(AppState::new(Arc::clone(&a.gov)))
        .oneshot(
            Request::builder()
                .uri("/metrics")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let text = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(text.contains("trustledger_log_entries "), "{text}");
    assert!(
        text.contains("# TYPE trustledger_http_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains("trustledger_projection_lag_entries 0"),
        "{text}"
    );
    assert!(text.contains("trustledger_command_queue_depth 0"), "{text}");
    assert!(
        text.contains("trustledger_log_commit_seconds_count "),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_served_route_and_only_those() {
    let a = tokio::task::block_in_place(api);
    let (s, doc, _) = a
        .call(Method::GET, "/openapi.json", None, Body::empty(), false)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 40, "{} paths", paths.len());
    for seed_path in [
        "/api/v1/incidents/",
        "/api/v1/incidents/{id}/",
        "/api/v1/maturity/evaluate/",
        "/api/v1/maturity/status/",
        "/api/v1/blast-radius/classify/",
    ] {
        assert!(paths.contains_key(seed_path), "{seed_path}");
    }
    let mut operation_ids = std::collections::BTreeSet::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            assert!(
                operation_ids.insert(operation["operationId"].as_str().unwrap().to_owned()),
                "duplicate operationId at {method} {path}"
            );
            assert!(operation["responses"]["default"].is_object());
            let uri = path
                .replace("{id}", "00000000-0000-0000-0000-000000000000")
                .replace("{version}", "9.9")
                .replace("{key_id}", "k")
                .replace("{member}", "m");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            if path == "/api/v1/events/stream" {
                // A live stream never ends: check that it is served, without reading it.
                let request = Request::builder()
                    .method(m)
                    .uri(&uri)
                    .header(header::AUTHORIZATION, format!("Bearer {}", a.tokens["ada"]))
                    .body(Body::empty())
                    .unwrap();
                let response = app(AppState::new(Arc::clone(&a.gov)))
                    .oneshot(request)
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                continue;
            }
            let (status, problem, _) = a
                .call(m, &uri, Some(&a.tokens["ada"]), Body::empty(), false)
                .await;
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not served"
            );
            assert!(
                problem["detail"] != "no such route",
                "{method} {path} is documented but not served"
            );
        }
    }
    // And an undocumented route is not served.
    let (s, _, _) = a
        .call(
            Method::GET,
            "/api/v1/not-a-route",
            Some(&a.tokens["ada"]),
            Body::empty(),
            false,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Every operation documents its success responses, and every JSON body (request or response)
/// is a schema generated from a Rust type, kept in the document's components.
#[test]
fn every_operation_documents_its_bodies_with_generated_schemas() {
    let document = trustledger::api::openapi_document();
    let components = document["components"]["schemas"].as_object().unwrap();
    let resolve = |schema: &Value| {
        let reference = schema["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("not a $ref: {schema}"));
        let name = reference.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            components.contains_key(name),
            "{reference} is not in the components"
        );
    };
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|status| status.starts_with('2')),
                "{method} {path} documents no success response"
            );
            resolve(&responses["default"]["content"]["application/problem+json"]["schema"]);
            let bodies = responses
                .values()
                .chain(operation.get("requestBody"))
                .filter_map(|r| r["content"].get("application/json"));
            for body in bodies {
                if path != "/openapi.json" {
                    resolve(&body["schema"]);
                }
            }
        }
    }
    // A response schema names the fields the handler's type has.
    let deployment = &components["DeploymentView"]["properties"];
    for field in [
        "deployment_id",
        "status",
        "class",
        "score",
        "factors",
        "votes",
        "history",
    ] {
        assert!(
            deployment.get(field).is_some(),
            "DeploymentView has no {field}"
        );
    }
}

/// The state keeps only what decisions read of an evidence package; the API reads the document
/// back from its entry, live and as of any point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_reads_back_as_recorded_live_and_as_of_a_point() {
    let a = tokio::task::block_in_place(api);
    let before = a.size() - 1;
    let (s, recorded) = a.post("/api/v1/evidence", "dev", evidence_body()).await;
    assert_eq!(s, StatusCode::CREATED, "{recorded}");
    let id = recorded["evidence_id"].as_str().unwrap();
    let now = a.size() - 1;
    for uri in [
        format!("/api/v1/evidence/{id}"),
        format!("/api/v1/evidence/{id}?as_of={now}"),
    ] {
        let (s, got) = a.get(&uri, "ada").await;
        assert_eq!(s, StatusCode::OK, "{uri}: {got}");
        assert_eq!(got["document"], evidence_document(), "{uri}");
        assert_eq!(got["signature"], evidence_body()["signature"], "{uri}");
        assert_eq!(got["evidence_hash"], recorded["evidence_hash"], "{uri}");
        assert_eq!(got["recorded_by"], "dev", "{uri}");
        assert_eq!(got["evidence_id"], id, "{uri}");
    }
    let (s, _) = a
        .get(&format!("/api/v1/evidence/{id}?as_of={before}"), "ada")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = a
        .get(&format!("/api/v1/evidence/{}", uuid::Uuid::nil()), "ada")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
