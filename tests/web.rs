//! The browser interface over the real server and a simulated history: sign-in with a token
//! sets an HttpOnly, SameSite=Strict session cookie; every page renders for a signed-in
//! principal and redirects otherwise; the incident form refuses a post without the session's
//! CSRF token, shows each field's error beside it and writes nothing until it is valid; and a
//! session ends at sign-out.

mod http_client;
mod web_pages;
use std::process::Command;
use web_pages::{agent, csrf_of, get, post, served, sign_in};

#[test]
fn pages_need_a_session_and_render_for_a_signed_in_principal() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, gov, rita, _) = served(tmp.path());
    let port = server.port;
    for path in ["/", "/queue", "/incidents", "/models", "/audit"] {
        let page = get(port, path, None);
        assert_eq!(
            (page.status, page.location.as_deref()),
            (303, Some("/sign-in")),
            "{path}"
        );
        assert_eq!(get(port, path, Some("forged")).status, 303, "{path}");
    }
    let refused = post(port, "/sign-in", None, &[("token", "tl_nothing")]);
    assert_eq!(refused.status, 401);
    assert!(
        refused.body.contains("id=\"token-error\""),
        "{}",
        refused.body
    );
    let session = sign_in(port, &rita);
    let overview = get(port, "/", Some(&session));
    assert_eq!(overview.status, 200);
    // Only the server's own script and style; no inline style or script to allow.
    let policy = overview.policy.as_deref().unwrap_or_default();
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"));
    assert!(!overview.body.contains(" style=") && !overview.body.contains("<script>"));
    for expected in [
        "Maturity level",
        "Progression criteria",
        "CRITICAL_INFRASTRUCTURE",
        "Signed in as <strong>rita</strong>",
    ] {
        assert!(
            overview.body.contains(expected),
            "{expected}: {}",
            overview.body
        );
    }
    let queue = get(port, "/queue", Some(&session)).body;
    assert!(queue.contains("<h1>CAB queue</h1>"));
    let pending = gov.with_state(|s| {
        s.deployments
            .iter()
            .any(|(_, d)| d.status == projections::state::DeploymentStatus::PendingCab)
    });
    assert!(
        pending,
        "the simulated history leaves deployments waiting for the CAB"
    );
    assert!(
        queue.contains("missing") && queue.contains("model ") && queue.contains("tests "),
        "{queue}"
    );
    let audit = get(port, "/audit", Some(&session)).body;
    assert!(
        audit.contains(gov.log().origin()) && audit.contains(&gov.log().head().last_hash.to_hex())
    );
    // A deployment's page lists its history, each entry linked to its receipt.
    let (id, first_seq) = gov.with_state(|s| {
        let (id, d) = s.deployments.iter().next().unwrap();
        (id, d.history[0])
    });
    let page = get(port, &format!("/deployments/{id}"), Some(&session));
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(&format!("/api/v1/log/receipt?seq={first_seq}")),
        "{}",
        page.body
    );
    assert_eq!(
        get(port, "/deployments/not-an-id", Some(&session)).status,
        404
    );
    let style = get(port, "/assets/style.css", None);
    assert_eq!(style.status, 200);
}

#[test]
fn the_incident_form_needs_the_csrf_token_valid_fields_and_the_role() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, gov, rita, otto) = served(tmp.path());
    let port = server.port;
    let session = sign_in(port, &rita);
    let page = get(port, "/incidents", Some(&session)).body;
    let csrf = csrf_of(&page);
    let deployment = gov
        .with_state(|s| {
            s.deployments
                .iter()
                .find(|(_, d)| d.released_at.is_some() && d.incidents.is_empty())
                .expect("a released deployment")
                .0
        })
        .to_string();
    let size = || gov.log().head().size;
    let before = size();
    let incidents_seen = |page: &str| {
        // The confusion matrix's "Incident" column: released deployments followed by one.
        let cell = |row: &str| {
            let at = page.find(row).expect("the confusion matrix") + row.len();
            let rest = &page[at..];
            let value = rest.trim_start_matches("</th><td>");
            value[..value.find('<').unwrap()].parse::<u64>().unwrap()
        };
        cell("Sent to the CAB") + cell("Auto-approved")
    };
    let charted = incidents_seen(&get(port, "/", Some(&session)).body);
    let valid = [
        ("deployment_id", deployment.as_str()),
        ("severity", "P2"),
        ("affected_user_count", "120"),
        ("downtime_minutes", "15"),
        ("business_impact_usd", "2500.00"),
        ("preventable", "true"),
        ("preventability_notes", "reported from the browser"),
    ];
    // Without the session's CSRF token, or with another: refused, nothing written.
    let mut forged = valid.to_vec();
    assert_eq!(
        post(port, "/incidents", Some(&session), &forged).status,
        403
    );
    forged.push(("csrf", "0000"));
    assert_eq!(
        post(port, "/incidents", Some(&session), &forged).status,
        403
    );
    assert_eq!(size(), before);
    // Invalid fields: each error beside its field, the typed values kept, nothing written.
    let mut invalid = valid.to_vec();
    invalid[0] = ("deployment_id", "nope");
    invalid[2] = ("affected_user_count", "-3");
    invalid.push(("csrf", csrf.as_str()));
    let answer = post(port, "/incidents", Some(&session), &invalid);
    assert_eq!(answer.status, 422);
    for field in ["deployment_id", "affected_user_count"] {
        assert!(
            answer.body.contains(&format!("id=\"{field}-error\"")),
            "{field}: {}",
            answer.body
        );
    }
    assert!(answer.body.contains("value=\"nope\""));
    assert_eq!(size(), before);
    // Valid: recorded, and listed.
    let mut ok = valid.to_vec();
    ok.push(("csrf", csrf.as_str()));
    let answer = post(port, "/incidents", Some(&session), &ok);
    assert_eq!(
        (answer.status, answer.location.as_deref()),
        (303, Some("/incidents")),
        "{}",
        answer.body
    );
    assert!(size() > before);
    assert_eq!(
        incidents_seen(&get(port, "/", Some(&session)).body),
        charted + 1,
        "the overview's figures count the incident"
    );
    assert!(gov.with_state(|s| s
        .incidents
        .values()
        .any(|i| i.reporter == "rita" && i.current.affected_user_count == 120)));
    // The filters: severity and date range.
    let p2 = get(
        port,
        "/incidents?severity=P2&blast_radius=&from=&to=",
        Some(&session),
    )
    .body;
    assert!(
        p2.contains("<td>120</td>"),
        "the P2 just reported is listed: {p2}"
    );
    let p1 = get(port, "/incidents?severity=P1", Some(&session)).body;
    assert!(
        !p1.contains("<td>120</td>"),
        "a P1 filter leaves out the P2 incident"
    );
    let future = get(port, "/incidents?from=2099-01-01", Some(&session)).body;
    assert!(
        future.contains("<h2 id=\"list\">0 incidents</h2>"),
        "{future}"
    );
    let bad = get(port, "/incidents?from=yesterday", Some(&session)).body;
    assert!(bad.contains("is not a date"), "{bad}");
    // An auditor sees no form, and a post is refused.
    let auditor = sign_in(port, &otto);
    let page = get(port, "/incidents", Some(&auditor)).body;
    assert!(!page.contains("method=\"post\" action=\"/incidents\""));
    let mut by_auditor = valid.to_vec();
    let auditor_csrf = csrf_of(&page);
    by_auditor.push(("csrf", auditor_csrf.as_str()));
    let before = size();
    assert_eq!(
        post(port, "/incidents", Some(&auditor), &by_auditor).status,
        403
    );
    assert_eq!(size(), before);
}

#[test]
fn a_session_ends_at_sign_out_and_a_sign_out_needs_its_csrf_token() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, _gov, rita, _) = served(tmp.path());
    let port = server.port;
    let session = sign_in(port, &rita);
    let csrf = csrf_of(&get(port, "/", Some(&session)).body);
    assert_eq!(
        post(port, "/sign-out", Some(&session), &[("csrf", "x")]).status,
        403
    );
    assert_eq!(
        get(port, "/", Some(&session)).status,
        200,
        "still signed in"
    );
    let out = post(
        port,
        "/sign-out",
        Some(&session),
        &[("csrf", csrf.as_str())],
    );
    assert_eq!(out.status, 303);
    assert!(out.cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(
        get(port, "/", Some(&session)).status,
        303,
        "the old cookie opens nothing"
    );
}

#[test]
fn the_audit_page_downloads_a_bundle_that_verify_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, gov, rita, _) = served(tmp.path());
    let session = sign_in(server.port, &rita);
    let response = agent()
        .get(&format!(
            "http://127.0.0.1:{}/audit/bundle.tar",
            server.port
        ))
        .set("Cookie", &format!("tl_session={session}"))
        .call()
        .unwrap();
    assert_eq!(response.content_type(), "application/x-tar");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).unwrap();
    tar::Archive::new(bytes.as_slice())
        .unpack(tmp.path().join("download"))
        .unwrap();
    let bundle = tmp.path().join("download/trustledger-export");
    let key = gov.log().verifier().unwrap().to_string();
    let o = Command::new(env!("CARGO_BIN_EXE_trustledger"))
        .args([
            "verify",
            "--bundle",
            bundle.to_str().unwrap(),
            "--key",
            &key,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let lines = std::fs::read_to_string(bundle.join("entries.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(lines as u64, gov.log().head().size);
    assert_eq!(
        get(server.port, "/audit/bundle.tar", None).status,
        303,
        "signed in only"
    );
}
