//! The browser interface, served at `/` beside the JSON API: sign-in with a token once (then a
//! server-side session in an HttpOnly, SameSite=Strict cookie), and server-rendered pages for
//! the overview, the CAB queue, deployments with their history, incidents (with a report form)
//! and the audit view. Forms post without scripts and carry the session's CSRF token; what a
//! page offers follows the principal's roles, and the commands it posts go through the same
//! sequencer, with the same role checks, as the API's.

pub mod ballots;
pub mod bundle;
pub mod charts;
pub mod pages;
pub mod session;
pub mod voting;

use crate::api::AppState;
use crate::governance::Role;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::Markup;
use pages::IncidentForm;
use projections::policy::{Command, IncidentReport};
use session::SignedIn;
use std::sync::Arc;

/// The stylesheet, served with the pages.
const STYLE: &str = include_str!("assets/style.css");
/// The live-update script.
const LIVE_JS: &str = include_str!("assets/live.js");

/// What a page may load: only this server's own stylesheet and script (no inline script or
/// style), and it may not be framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The pages' routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(overview))
        .route("/sign-in", get(sign_in_form).post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/queue", get(queue))
        .route("/deployments/{id}", get(deployment))
        .route("/incidents", get(incidents).post(report_incident))
        .route("/models", get(models))
        .route("/models/{version}/backtest", get(backtest))
        .route("/audit", get(audit))
        .route("/audit/bundle.tar", get(download_bundle))
        .route("/assets/style.css", get(style))
        .route("/assets/live.js", get(live_js))
        .route("/live", get(live))
        .merge(voting::router())
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                header::CONTENT_SECURITY_POLICY,
                header::HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
        )
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                header::X_FRAME_OPTIONS,
                header::HeaderValue::from_static("DENY"),
            ),
        )
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                header::REFERRER_POLICY,
                header::HeaderValue::from_static("same-origin"),
            ),
        )
}

/// A page, or why it is not shown.
type Page = Result<Response, NotShown>;

/// Why a page is not shown: the browser must sign in first, or a page says why.
enum NotShown {
    SignIn,
    Page(StatusCode, Markup),
}

impl NotShown {
    /// A page titled `title` that says `why`, with `status`.
    fn message(status: StatusCode, title: &str, who: Option<&SignedIn>, why: &str) -> Self {
        Self::Page(
            status,
            pages::layout(title, who, &maud::html! { p { (why) } }),
        )
    }
}

impl IntoResponse for NotShown {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn => Redirect::to("/sign-in").into_response(),
            Self::Page(status, markup) => (status, Html(markup.0)).into_response(),
        }
    }
}

fn html(markup: &Markup) -> Response {
    Html(markup.0.clone()).into_response()
}

/// The signed-in principal, or a redirect to the sign-in page.
fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<SignedIn, NotShown> {
    state
        .sessions
        .find(headers, |digest| {
            state
                .gov
                .with_state(|s| crate::governance::authenticate_digest(s, digest))
        })
        .ok_or(NotShown::SignIn)
}

/// A posted form's CSRF token must be the session's.
fn check_csrf(who: &SignedIn, posted: &str) -> Result<(), NotShown> {
    if session::csrf_matches(who, posted) {
        Ok(())
    } else {
        Err(NotShown::message(
            StatusCode::FORBIDDEN,
            "Refused",
            Some(who),
            "The form did not carry this session's token: reload the page and try again.",
        ))
    }
}

/// A file the pages load, cacheable for an hour.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

async fn live_js() -> Response {
    asset("text/javascript; charset=utf-8", LIVE_JS)
}

/// Server-Sent Events for the pages (an `EventSource` sends the session cookie, not a bearer
/// header): one `head` event with the log's size whenever it grows.
async fn live(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Page {
    let _who = signed_in(&state, &headers)?;
    let permit = Arc::clone(&state.streams)
        .try_acquire_owned()
        .map_err(|_| {
            NotShown::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy",
                None,
                "Too many live pages are open.",
            )
        })?;
    let heads = state.gov.log().watch_head();
    let stream = futures_util::stream::unfold((heads, permit), |(mut heads, permit)| async move {
        heads.changed().await.ok()?;
        let size = heads.borrow_and_update().size;
        let event = axum::response::sse::Event::default()
            .event("head")
            .data(size.to_string());
        Some((Ok::<_, std::convert::Infallible>(event), (heads, permit)))
    });
    Ok(axum::response::sse::Sse::new(stream)
        .keep_alive(axum::response::sse::KeepAlive::default())
        .into_response())
}

async fn sign_in_form() -> Response {
    html(&pages::sign_in(None))
}

#[derive(serde::Deserialize)]
struct SignInForm {
    #[serde(default)]
    token: String,
}

async fn sign_in(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let token = form.token.trim();
    let known = state
        .gov
        .with_state(|s| crate::governance::authenticate(s, token))
        .is_some();
    if !known {
        return NotShown::Page(
            StatusCode::UNAUTHORIZED,
            pages::sign_in(Some("That token grants nothing here (unknown or revoked).")),
        )
        .into_response();
    }
    let id = state.sessions.start(token);
    (
        [(header::SET_COOKIE, session::set_cookie(Some(&id), &headers))],
        Redirect::to("/"),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Page {
    let who = signed_in(&state, &headers)?;
    check_csrf(&who, &form.csrf)?;
    state.sessions.end(&who.id);
    Ok((
        [(header::SET_COOKIE, session::set_cookie(None, &headers))],
        Redirect::to("/sign-in"),
    )
        .into_response())
}

async fn overview(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Page {
    let who = signed_in(&state, &headers)?;
    Ok(html(&state.gov.with_state(|s| {
        let trends = state.overview_trends.get(s);
        pages::overview(
            s,
            &trends,
            &who,
            state.evaluation_cadence_hours.get().copied(),
        )
    })))
}

/// The overview's trends, computed once per log head: they read every deployment (the most of
/// an overview's time on a long history), and live updates make every open overview ask again
/// when the log grows.
#[derive(Default)]
pub struct TrendsCache(std::sync::Mutex<Option<(Option<u64>, Arc<pages::Trends>)>>);

impl TrendsCache {
    /// The trends of `s`, from the cache when it was computed for the same last seq.
    pub fn get(&self, s: &projections::state::GovernanceState) -> Arc<pages::Trends> {
        let mut cached = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match cached.as_ref() {
            Some((seq, trends)) if *seq == s.last_seq => Arc::clone(trends),
            _ => {
                let trends = Arc::new(projections::trends::weekly_with_calibration(
                    s,
                    pages::TREND_WEEKS,
                ));
                *cached = Some((s.last_seq, Arc::clone(&trends)));
                trends
            }
        }
    }
}

async fn queue(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Page {
    let who = signed_in(&state, &headers)?;
    let log = state.gov.log();
    Ok(html(&state.gov.with_state(|s| {
        // The rule that classed each queued deployment is in its submission entry.
        let rules = s
            .deployments
            .iter()
            .filter(|(_, d)| d.status == projections::state::DeploymentStatus::PendingCab)
            .filter_map(|(id, d)| {
                let entry = log.get(*d.history.first()?).ok()??;
                match events::payloads::Payload::decode(&entry) {
                    Ok(Some(events::payloads::Payload::DeploymentSubmitted(p))) => {
                        Some((id, p.classification.rule))
                    }
                    _ => None,
                }
            })
            .collect();
        pages::queue(s, &rules, &who)
    })))
}

async fn deployment(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Page {
    let who = signed_in(&state, &headers)?;
    let not_found = || {
        NotShown::message(
            StatusCode::NOT_FOUND,
            "Not found",
            Some(&who),
            "No such deployment.",
        )
    };
    let id = uuid::Uuid::parse_str(&id).map_err(|_| not_found())?;
    let Some(record) = state
        .gov
        .with_state(|s| s.deployments.get(&id).map(std::borrow::Cow::into_owned))
    else {
        return Err(not_found());
    };
    let log = state.gov.log();
    let history: Vec<events::Entry> = record
        .history
        .iter()
        .filter_map(|seq| log.get(*seq).ok().flatten())
        .collect();
    Ok(html(&state.gov.with_state(|s| {
        pages::deployment(s, id, &record, &history, &who)
    })))
}

async fn incidents(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(filter): Query<pages::IncidentQuery>,
) -> Page {
    let who = signed_in(&state, &headers)?;
    let form = IncidentForm::default();
    Ok(html(&state.gov.with_state(|s| {
        pages::incidents(s, &who, (&form, &[]), &filter)
    })))
}

async fn report_incident(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<IncidentForm>,
) -> Page {
    let who = signed_in(&state, &headers)?;
    check_csrf(&who, &form.csrf)?;
    let rerender = |status, errors: &[(&str, String)]| {
        NotShown::Page(
            status,
            state
                .gov
                .with_state(|s| pages::incidents(s, &who, (&form, errors), &Default::default())),
        )
    };
    if !who.holds(&[Role::IncidentReporter]) {
        return Err(rerender(
            StatusCode::FORBIDDEN,
            &[("form", "Only incident reporters report incidents.".into())],
        ));
    }
    let report = match incident_report(&state, &form) {
        Ok(report) => report,
        Err(errors) => return Err(rerender(StatusCode::UNPROCESSABLE_ENTITY, &errors)),
    };
    match state
        .gov
        .submit(&who.principal, Command::ReportIncident(report))
        .await
    {
        Ok(_) => Ok(Redirect::to("/incidents").into_response()),
        Err(e) => {
            let (status, why) = voting::refusal(e);
            Err(rerender(status, &[("form", why)]))
        }
    }
}

/// The command a form asks for, or each field's error.
fn incident_report(
    state: &AppState,
    form: &IncidentForm,
) -> Result<IncidentReport, Vec<(&'static str, String)>> {
    let mut errors = Vec::new();
    let deployment_id = uuid::Uuid::parse_str(form.deployment_id.trim());
    if deployment_id.is_err() {
        errors.push(("deployment_id", "A deployment id is a UUID.".to_owned()));
    }
    let number = |field: &'static str, text: &str, errors: &mut Vec<(&'static str, String)>| {
        text.trim().parse::<u64>().unwrap_or_else(|_| {
            errors.push((field, "A whole number, 0 or more.".to_owned()));
            0
        })
    };
    let affected_user_count = number(
        "affected_user_count",
        &form.affected_user_count,
        &mut errors,
    );
    let downtime_minutes = number("downtime_minutes", &form.downtime_minutes, &mut errors);
    let severity = events::payloads::Severity::parse(form.severity.trim());
    if severity.is_none() {
        errors.push(("severity", "Choose a severity, P1 to P4.".to_owned()));
    }
    match (deployment_id, severity) {
        (Ok(deployment_id), Some(severity)) if errors.is_empty() => Ok(IncidentReport {
            incident_id: state.gov.new_id(),
            deployment_id,
            severity,
            incident_date: state.gov.current_time(),
            affected_user_count,
            downtime_minutes,
            business_impact_usd: form.business_impact_usd.trim().to_owned(),
            preventable: form.preventable.is_some(),
            preventability_notes: form.preventability_notes.clone(),
            control_improvements: Vec::new(),
        }),
        _ => Err(errors),
    }
}

async fn models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Page {
    let who = signed_in(&state, &headers)?;
    Ok(html(&state.gov.with_state(|s| pages::models(s, &who))))
}

/// A model's backtest, re-run over the prefix its proposal cites (the whole log without one), on
/// the blocking pool, two at once at most (they share the past-state permits).
async fn backtest(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(version): Path<String>,
) -> Page {
    let who = signed_in(&state, &headers)?;
    let page = |status, why: &str| NotShown::message(status, "Backtest", Some(&who), why);
    let Some(model) = state
        .gov
        .with_state(|s| s.models.get(&version).map(|m| m.proposal.clone()))
    else {
        return Err(page(StatusCode::NOT_FOUND, "No such model version."));
    };
    let _permit = Arc::clone(&state.past_folds)
        .try_acquire_owned()
        .map_err(|_| {
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Two backtests are running; try again shortly.",
            )
        })?;
    let log = state.gov.log().clone();
    let proposal = model.clone();
    let report = tokio::task::spawn_blocking(move || {
        let size = proposal
            .backtest
            .as_ref()
            .map_or(log.head().size, |b| b.log_size);
        let entries = log
            .iter_bytes_until(0, size)
            .map(|item| item.map(|(_, bytes)| bytes));
        replay::backtest::rerun(entries, &proposal)
    })
    .await
    .map_err(|_| page(StatusCode::INTERNAL_SERVER_ERROR, "The backtest failed."))?
    .map_err(|e| {
        page(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("The backtest could not run: {e}"),
        )
    })?;
    Ok(html(&pages::backtest(&model, &report, &who)))
}

async fn audit(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Page {
    let who = signed_in(&state, &headers)?;
    let published = state.published_checkpoint().ok().flatten();
    Ok(html(&pages::audit(
        state.gov.log(),
        published.as_deref(),
        &who,
    )))
}

/// The roles that read the raw log, as in the API.
const LOG_READERS: &[Role] = &[Role::Auditor, Role::Operator, Role::Admin];

async fn download_bundle(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Page {
    let who = signed_in(&state, &headers)?;
    let refused = |status, why: &str| NotShown::message(status, "Refused", Some(&who), why);
    if !who.holds(LOG_READERS) {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "Auditors, operators and admins download the log.",
        ));
    }
    let log = state.gov.log().clone();
    let file = tokio::task::spawn_blocking(move || bundle::write_tar(&log))
        .await
        .map_err(|_| refused(StatusCode::INTERNAL_SERVER_ERROR, "The export failed."))?
        .map_err(|e| {
            tracing::warn!(error = %e, "export for download failed");
            refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "The export failed; try again.",
            )
        })?;
    let chunks =
        futures_util::stream::unfold(tokio::fs::File::from_std(file), |mut file| async move {
            use tokio::io::AsyncReadExt as _;
            let mut buffer = vec![0u8; 64 * 1024];
            match file.read(&mut buffer).await {
                Ok(0) => None,
                Ok(n) => {
                    buffer.truncate(n);
                    Some((Ok::<_, std::io::Error>(buffer), file))
                }
                Err(e) => Some((Err(e), file)),
            }
        });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"trustledger-export.tar\"",
            ),
        ],
        axum::body::Body::from_stream(chunks),
    )
        .into_response())
}
