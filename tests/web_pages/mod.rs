//! What the page tests share: a simulated history served in-process, sign-in, and page fetches
//! and form posts that do not follow redirects.
#![allow(dead_code)] // each test binary uses its own part

use std::process::Command;
use std::sync::Arc;
use trustledger::api::{app, AppState};
use trustledger::governance::{Governance, IdSource};

use super::http_client::{serve, Served};

/// A page fetch or form post: status, headers and body, no redirect followed.
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub cookie: Option<String>,
    pub policy: Option<String>,
    pub body: String,
}

pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().redirects(0).build()
}

pub fn answer(result: Result<ureq::Response, ureq::Error>) -> Answer {
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    Answer {
        status: response.status(),
        location: response.header("location").map(str::to_owned),
        cookie: response.header("set-cookie").map(str::to_owned),
        policy: response
            .header("content-security-policy")
            .map(str::to_owned),
        body: response.into_string().unwrap(),
    }
}

pub fn get(port: u16, path: &str, session: Option<&str>) -> Answer {
    let mut request = agent().get(&format!("http://127.0.0.1:{port}{path}"));
    if let Some(session) = session {
        request = request.set("Cookie", &format!("tl_session={session}"));
    }
    answer(request.call())
}

pub fn post(port: u16, path: &str, session: Option<&str>, form: &[(&str, &str)]) -> Answer {
    let mut request = agent().post(&format!("http://127.0.0.1:{port}{path}"));
    if let Some(session) = session {
        request = request.set("Cookie", &format!("tl_session={session}"));
    }
    answer(request.send_form(form))
}

pub fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..at + 64].to_owned()
}

/// A simulated history served in-process, with a token for `rita` (incident reporter and
/// auditor) and one for `otto` (auditor only).
pub fn served(dir: &std::path::Path) -> (Served, Arc<Governance>, String, String) {
    let (server, gov, _, tokens) = served_with(
        dir,
        &[
            ("rita", &["incident-reporter", "auditor"]),
            ("otto", &["auditor"]),
        ],
    );
    let [rita, otto] = <[String; 2]>::try_from(tokens).expect("two tokens");
    (server, gov, rita, otto)
}

/// A simulated history served in-process, with a token for each (principal, roles) given.
pub fn served_with(
    dir: &std::path::Path,
    principals: &[(&str, &[&str])],
) -> (Served, Arc<Governance>, Arc<AppState>, Vec<String>) {
    let data = dir.join("data");
    let d = data.to_str().unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_trustledger"))
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap().trim().to_owned()
    };
    run(&["simulate", "--data", d, "--weeks", "2", "--per-week", "30"]);
    let tokens = principals
        .iter()
        .map(|(principal, roles)| {
            let mut args = vec!["token", "create", "--data", d, "--principal", principal];
            for role in *roles {
                args.extend(["--role", role]);
            }
            run(&args)
        })
        .collect();
    let log = trustledger::data_dir::open_existing(&data).unwrap();
    let gov =
        Arc::new(Governance::open(log, Arc::new(events::SystemClock), IdSource::Random).unwrap());
    let state = AppState::new(Arc::clone(&gov));
    let server = serve(app(Arc::clone(&state)));
    (server, gov, state, tokens)
}

pub fn sign_in(port: u16, token: &str) -> String {
    let signed = post(port, "/sign-in", None, &[("token", token)]);
    assert_eq!(
        (signed.status, signed.location.as_deref()),
        (303, Some("/"))
    );
    let cookie = signed.cookie.expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let id = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("tl_session=");
    id.to_owned()
}
