//! The server attacked as an outsider and a careless client would, on loopback, each case bounded
//! in time: the hardened server (`api::server::serve`) in front of the real app.

use events::catalogue::access::AccessGranted;
use events::checkpoint::NoteSigner;
use events::{Durability, Log, LogConfig, SystemClock};
use projections::policy::Command;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use trustledger::api::server::ServerLimits;
use trustledger::api::{app, AppState, Limits, STREAMS_PER_PRINCIPAL_MAX};
use trustledger::governance::{new_token, Governance, IdSource, Principal, Role, CLI_ADMIN};

mod http_client;
use http_client::{http_with_head, json_of, serve_with};

struct Running {
    _served: http_client::Served,
    _dir: tempfile::TempDir,
    gov: Arc<Governance>,
    port: u16,
    admin: String,
    dev: String,
    auditor: String,
}

fn token(gov: &Governance, principal: &str, roles: &[&str]) -> String {
    let (token, token_sha256) = new_token();
    let grant = AccessGranted {
        principal: principal.into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        token_sha256,
    };
    gov.execute(
        &Principal::new(CLI_ADMIN, &[Role::Admin]),
        &Command::GrantAccess(grant),
    )
    .unwrap();
    token
}

fn running(limits: Limits, server_limits: ServerLimits) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        signer: Some(NoteSigner::from_seed("abuse", [3; 32]).unwrap()),
        durability: Durability::FlushOnlyMayLoseOnPowerFailure,
        ..LogConfig::default()
    };
    let gov = Arc::new(
        Governance::open(
            Log::open(dir.path(), config).unwrap(),
            Arc::new(SystemClock),
            IdSource::Random,
        )
        .unwrap(),
    );
    let admin = token(&gov, "ada", &["admin"]);
    let dev = token(&gov, "dev", &["submitter"]);
    let auditor = token(&gov, "audrey", &["auditor"]);
    gov.execute(
        &Principal::new(CLI_ADMIN, &[Role::Admin]),
        &projections::policy::set_producer_by_label("ci"),
    )
    .unwrap();
    let served = serve_with(
        app(AppState::with_limits(Arc::clone(&gov), limits)),
        server_limits,
    );
    Running {
        port: served.port,
        _served: served,
        _dir: dir,
        gov,
        admin,
        dev,
        auditor,
    }
}

fn default_server() -> Running {
    running(Limits::default(), ServerLimits::default())
}

/// Sends `raw` and reads the response head (and what of the body came with it) until the
/// server closes or a second passes without more.
fn raw(port: u16, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(raw).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.windows(4).any(|w| w == b"\r\n\r\n") {
            stream
                .set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn assert_problem(head: &str, status: u16) {
    assert!(
        head.starts_with(&format!("HTTP/1.1 {status}")),
        "expected {status}: {head}"
    );
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/problem+json"),
        "not a problem: {head}"
    );
    assert!(lower.contains("x-content-type-options: nosniff"), "{head}");
}

#[test]
fn made_up_methods_never_become_metric_labels() {
    let s = default_server();
    for n in 0..40 {
        let method = format!("X{}", "M".repeat(1000 + n));
        let answer = raw(
            s.port,
            format!(
                "{method} /api/v1/deployments HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_problem(&answer, 405);
        assert!(answer.to_ascii_lowercase().contains("allow:"), "{answer}");
    }
    let (status, _, metrics) = http_with_head(s.port, "GET", "/metrics", None, b"");
    assert_eq!(status, 200);
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        !metrics.contains("MMMM"),
        "a client's method became a label"
    );
    assert!(
        metrics.contains(r#"method="other",route="/api/v1/deployments",status="405""#),
        "{metrics}"
    );
}

#[test]
fn idle_sockets_are_closed_and_cannot_starve_healthz() {
    let s = running(
        Limits::default(),
        ServerLimits {
            connections_max: 8,
            header_timeout: Duration::from_millis(500),
            ..ServerLimits::default()
        },
    );
    // Twice the cap of connections that never send a byte.
    let idle: Vec<TcpStream> = (0..16)
        .map(|_| TcpStream::connect(("127.0.0.1", s.port)).unwrap())
        .collect();
    let started = Instant::now();
    let (status, _, _) = http_with_head(s.port, "GET", "/healthz", None, b"");
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "/healthz waited {:?} behind idle sockets",
        started.elapsed()
    );
    // A half-sent header is cut off too.
    let mut slow = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(
        !String::from_utf8_lossy(&rest).contains("200 OK"),
        "a header that never ended was served"
    );
    drop(idle);
}

#[test]
fn one_principal_cannot_hold_every_stream() {
    let s = default_server();
    let open = |token: &str| {
        let mut stream = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        write!(stream, "GET /api/v1/events/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n").unwrap();
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).unwrap();
        (stream, String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    let mut held = Vec::new();
    for _ in 0..STREAMS_PER_PRINCIPAL_MAX {
        let (stream, head) = open(&s.auditor);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        held.push(stream);
    }
    let (_, refused) = open(&s.auditor);
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(
        refused.to_ascii_lowercase().contains("retry-after:"),
        "{refused}"
    );
    // Another principal still gets one.
    let (_, other) = open(&s.admin);
    assert!(
        other.starts_with("HTTP/1.1 403") || other.starts_with("HTTP/1.1 200"),
        "{other}"
    );
}

#[test]
fn an_upload_to_an_unknown_deployment_is_refused_before_its_body_is_read() {
    let s = default_server();
    let agent = token(&s.gov, "agent", &["deployer"]);
    let id = uuid::Uuid::new_v4();
    // A gigabyte announced, nothing sent: the answer comes at once.
    let started = Instant::now();
    let answer = raw(
        s.port,
        format!("POST /api/v1/deployments/{id}/release HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {agent}\r\nContent-Length: 1000000000\r\n\r\n").as_bytes(),
    );
    assert_problem(&answer, 404);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn bodies_must_be_objects_and_roles_are_checked_before_bodies() {
    let s = default_server();
    let size = s.gov.log().head().size;
    let (status, head, body) = http_with_head(
        s.port,
        "POST",
        "/api/v1/evidence",
        Some(&s.dev),
        br#"[true,"x"]"#,
    );
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    assert_problem(&head, 422);
    assert!(json_of(&body)["detail"]
        .as_str()
        .unwrap()
        .contains("JSON object"));
    // A caller without the role gets 403 for an invalid body, not 422.
    let (status, head, _) = http_with_head(
        s.port,
        "POST",
        "/api/v1/risk-models",
        Some(&s.dev),
        b"{not json",
    );
    assert_eq!(status, 403);
    assert_problem(&head, 403);
    assert_eq!(s.gov.log().head().size, size, "a refusal wrote something");
}

#[test]
fn every_framework_rejection_is_a_problem_naming_what_is_wrong() {
    let s = default_server();
    let (status, head, body) = http_with_head(
        s.port,
        "GET",
        "/api/v1/events?limit=many",
        Some(&s.auditor),
        b"",
    );
    assert_eq!(status, 400);
    assert_problem(&head, 400);
    assert!(
        String::from_utf8_lossy(&body).contains("limit"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, head, _) = http_with_head(
        s.port,
        "GET",
        "/api/v1/deployments/not-a-uuid",
        Some(&s.auditor),
        b"",
    );
    assert_eq!(status, 400);
    assert_problem(&head, 400);
    let (status, head, _) = http_with_head(s.port, "GET", "/nowhere", None, b"");
    assert_eq!(status, 404);
    assert_problem(&head, 404);
    let huge = vec![b' '; 300 * 1024];
    let (status, head, _) = http_with_head(s.port, "POST", "/api/v1/evidence", Some(&s.dev), &huge);
    assert_eq!(status, 413);
    assert_problem(&head, 413);
}

#[test]
fn as_of_takes_any_rfc_3339_time() {
    let s = default_server();
    for time in [
        "2030-01-01T00:00:00Z",
        "2030-01-01T01:00:00+01:00",
        "2030-01-01T00:00:00.123456789Z",
        "2030-01-01T00:00:00.5-05:00",
    ] {
        let (status, _, body) = http_with_head(
            s.port,
            "GET",
            &format!(
                "/api/v1/maturity/status/?as_of={}",
                time.replace('+', "%2B")
            ),
            Some(&s.auditor),
            b"",
        );
        assert_eq!(status, 200, "{time}: {}", String::from_utf8_lossy(&body));
    }
    let (status, head, _) = http_with_head(
        s.port,
        "GET",
        "/api/v1/maturity/status/?as_of=yesterday",
        Some(&s.auditor),
        b"",
    );
    assert_eq!(status, 422);
    assert_problem(&head, 422);
}

#[test]
fn readyz_says_503_while_the_log_refuses_writes_and_healthz_stays_200() {
    let s = default_server();
    let (status, _, _) = http_with_head(s.port, "GET", "/readyz", None, b"");
    assert_eq!(status, 200);
    s.gov.log().inject_commit_failure();
    let (status, _, _) = http_with_head(
        s.port,
        "POST",
        "/api/v1/maturity/evaluate/",
        Some(&s.admin),
        b"{}",
    );
    assert_eq!(status, 503);
    let (status, head, _) = http_with_head(s.port, "GET", "/readyz", None, b"");
    assert_eq!(status, 503);
    assert_problem(&head, 503);
    let (status, _, _) = http_with_head(s.port, "GET", "/healthz", None, b"");
    assert_eq!(status, 200);
}

#[test]
fn a_principal_over_its_rate_gets_429_with_retry_after() {
    let s = running(
        Limits {
            rate_per_principal: 1,
            ..Limits::default()
        },
        ServerLimits::default(),
    );
    let statuses: Vec<(u16, String)> = (0..4)
        .map(|_| {
            let (status, head, _) =
                http_with_head(s.port, "GET", "/api/v1/deployments", Some(&s.auditor), b"");
            (status, head)
        })
        .collect();
    let limited = statuses
        .iter()
        .find(|(status, _)| *status == 429)
        .expect("four requests at once within a rate of one a second");
    assert_problem(&limited.1, 429);
    assert!(limited.1.to_ascii_lowercase().contains("retry-after:"));
}

#[test]
fn tokens_are_never_cached() {
    let s = default_server();
    let (status, head, body) = http_with_head(
        s.port,
        "POST",
        "/api/v1/access/tokens",
        Some(&s.admin),
        br#"{"principal":"newbie","roles":["auditor"]}"#,
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    assert!(
        head.to_ascii_lowercase()
            .contains("cache-control: no-store"),
        "{head}"
    );
}

#[test]
fn a_stream_whose_reader_stopped_reading_is_closed_and_its_slot_freed() {
    let s = running(
        Limits::default(),
        ServerLimits {
            write_stall_timeout: Duration::from_millis(500),
            ..ServerLimits::default()
        },
    );
    // A reader that subscribes and then never reads again.
    let mut stalled = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    write!(
        stalled,
        "GET /api/v1/events/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        s.auditor
    )
    .unwrap();
    let subscribers = || {
        let (_, _, metrics) = http_with_head(s.port, "GET", "/metrics", None, b"");
        let metrics = String::from_utf8_lossy(&metrics).into_owned();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("trustledger_stream_subscribers "))
            .map(|n| n.trim().parse::<u64>().unwrap())
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while subscribers() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(subscribers(), 1);
    // About 20 MB of entries, more than the socket buffers on both sides hold.
    let artifacts: Vec<serde_json::Value> = (0..170)
        .map(|n| serde_json::json!({"name": format!("{n:0>250}"), "sha256": "ab".repeat(32), "size": 1}))
        .collect();
    let body = http_client::signed_evidence_body(serde_json::json!({
        "artifacts": artifacts, "sbom": null, "tests_passed": 1, "tests_failed": 0,
        "scan_critical_findings": 0, "generated_by": "ci", "packaged_by": "packager"
    }))
    .to_string();
    let server_side_closed = || subscribers() == 0;
    for _ in 0..400 {
        let (status, _, answer) = http_with_head(
            s.port,
            "POST",
            "/api/v1/evidence",
            Some(&s.dev),
            body.as_bytes(),
        );
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));
        if server_side_closed() {
            break;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server_side_closed() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        server_side_closed(),
        "the stalled stream still holds its slot"
    );
    drop(stalled);
}
