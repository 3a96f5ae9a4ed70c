//! Browser sessions: a bearer token is presented once, at sign-in; the browser then holds only a
//! random session id in an HttpOnly, SameSite=Strict cookie. Sessions live on the server, expire
//! (idle and absolute), end at sign-out, and carry a CSRF token every form must post back. Each
//! request re-reads the principal from the log's access records, so a revoked token ends its
//! sessions at once.

use crate::governance::{Principal, Role};
use axum::http::{header, HeaderMap, HeaderValue};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "tl_session";
/// A session unused this long ends.
pub const IDLE_MAX: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after sign-in, used or not.
pub const LIFETIME_MAX: Duration = Duration::from_secs(12 * 3600);
/// Most sessions held at once (the oldest ends first).
pub const SESSIONS_MAX: usize = 10_000;

/// One signed-in browser.
#[derive(Debug, Clone)]
struct Session {
    /// SHA-256 (hex) of the token signed in with: the principal is looked up by it each time.
    token_sha256: String,
    csrf: String,
    started: Instant,
    last_used: Instant,
}

/// The sessions, by id.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

/// A session found for a request: who, and the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The principal, as the log grants it now.
    pub principal: Principal,
    /// The CSRF token of the session.
    pub csrf: String,
    /// The session id (to end it).
    pub id: String,
}

impl SignedIn {
    /// Whether the principal holds any of `roles`.
    pub fn holds(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.principal.roles.contains(r))
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the operating system's random generator");
    hex::encode(bytes)
}

impl Sessions {
    /// Starts a session for `token` (already authenticated); returns its id.
    pub fn start(&self, token: &str) -> String {
        let id = random_token();
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, s| alive(s, now));
        if sessions.len() >= SESSIONS_MAX {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.started)
                .map(|(id, _)| id.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            id.clone(),
            Session {
                token_sha256: hex::encode(Sha256::digest(token.as_bytes())),
                csrf: random_token(),
                started: now,
                last_used: now,
            },
        );
        id
    }

    /// The session a request's cookie names, if it is alive; `principal_of` maps its token's
    /// SHA-256 to the principal the log grants now (`None` once revoked, which ends it).
    pub fn find(
        &self,
        headers: &HeaderMap,
        principal_of: impl FnOnce(&str) -> Option<Principal>,
    ) -> Option<SignedIn> {
        let id = cookie(headers, COOKIE)?;
        let now = Instant::now();
        let mut sessions = self.lock();
        let session = sessions.get_mut(id)?;
        if !alive(session, now) {
            sessions.remove(id);
            return None;
        }
        let Some(principal) = principal_of(&session.token_sha256) else {
            sessions.remove(id);
            return None;
        };
        session.last_used = now;
        Some(SignedIn {
            principal,
            csrf: session.csrf.clone(),
            id: id.to_owned(),
        })
    }

    /// Ends a session.
    pub fn end(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn alive(session: &Session, now: Instant) -> bool {
    now.duration_since(session.last_used) < IDLE_MAX
        && now.duration_since(session.started) < LIFETIME_MAX
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

/// The `Set-Cookie` value that gives the browser a session (or, with `None`, takes it away);
/// `Secure` when the request came over TLS (a TLS-terminating proxy says so in
/// `X-Forwarded-Proto`: the attribute only ever makes the cookie stricter).
pub fn set_cookie(id: Option<&str>, request: &HeaderMap) -> HeaderValue {
    let secure = request
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let attributes = format!(
        "Path=/; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    );
    let value = match id {
        Some(id) => format!(
            "{COOKIE}={id}; {attributes}; Max-Age={}",
            LIFETIME_MAX.as_secs()
        ),
        None => format!("{COOKIE}=; {attributes}; Max-Age=0"),
    };
    HeaderValue::from_str(&value).expect("a cookie of hex digits")
}

/// Whether a posted CSRF token is the session's (compared in constant time).
pub fn csrf_matches(session: &SignedIn, posted: &str) -> bool {
    let (a, b) = (session.csrf.as_bytes(), posted.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
