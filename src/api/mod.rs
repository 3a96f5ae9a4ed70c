//! The HTTP API (axum): `app(state) -> Router`, one `routes()` per resource.
//!
//! Errors are RFC 9457 `application/problem+json` with a stable `type` per kind. Every route
//! but `/healthz` and the log's checkpoint and key needs a bearer token; commands carry the
//! token's principal as the entries' `actor` (never a field of the body), and the service checks
//! each command's roles. Commands run on the blocking pool because an append waits for fsync.

mod error;
mod extract;
mod follower;
mod guard;
mod limits;
mod metrics;
mod openapi;
mod routes;
pub mod server;

pub use error::ApiError;
pub use extract::{ApiJson, Caller};
pub use guard::Permissions;
pub use limits::{Limits, STREAMS_PER_PRINCIPAL_MAX};
pub use metrics::Metrics;
use metrics::{count_requests, metrics};
use openapi::{op, route};
pub use openapi::{Op, RouteEntry};

use crate::governance::{AsOf, Governance, Outcome, Principal, Role};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use events::payloads::*;
use events::Timestamp;
use futures_util::StreamExt as _;
use projections::policy::{self, Command, IncidentReport, PresentedRelease, SubmitDeployment};
use projections::state::{DeploymentRecord, GovernanceState};
use projections::{calibration, maturity, views};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;
use tower_http::set_header::SetResponseHeaderLayer;
use uuid::Uuid;

/// Largest JSON request body.
pub const JSON_BODY_BYTES_MAX: usize = 256 * 1024;
/// Largest page of a list or of events.
pub const PAGE_MAX: usize = 1000;
/// Most past states (`as_of`) rebuilt at once; more get a 503.
pub const PAST_FOLDS_MAX: usize = 2;
/// Most concurrent SSE streams.
pub const STREAMS_MAX: usize = 256;

/// What the handlers share.
pub struct AppState {
    /// The service.
    pub gov: Arc<Governance>,
    pub(crate) streams: Arc<Semaphore>,
    pub(crate) past_folds: Arc<Semaphore>,
    metrics: Metrics,
    /// The live maturity status, by (last folded seq, strict).
    status_cache: Mutex<Option<CachedStatus>>,
    /// The roles each route needs, from the route table.
    permissions: Permissions,
    limits: Limits,
    rates: limits::Rates,
    streams_by_principal: limits::StreamsByPrincipal,
    /// The log's witnesses, when it has any: what is published is what they cosigned.
    witnessing: Option<Arc<crate::witnessing::Witnessing>>,
    /// Browser sessions (`crate::web`).
    pub(crate) sessions: crate::web::session::Sessions,
    /// The overview's trends, per log head.
    pub(crate) overview_trends: crate::web::TrendsCache,
    /// The origin the pages are served at (`serve --web-origin`), which passkeys are bound to.
    pub(crate) web_origin: std::sync::OnceLock<String>,
    /// The scheduled evaluation's cadence in hours of log time, when `serve` runs it.
    pub(crate) evaluation_cadence_hours: std::sync::OnceLock<u32>,
}

impl AppState {
    /// State over a service, with the default [`Limits`].
    pub fn new(gov: Arc<Governance>) -> Arc<Self> {
        Self::with_limits(gov, Limits::default())
    }

    /// State over a service, with these limits.
    pub fn with_limits(gov: Arc<Governance>, limits: Limits) -> Arc<Self> {
        Self::with_witnessing(gov, limits, None)
    }

    /// State over a service, with these limits, publishing what `witnessing` collects.
    pub fn with_witnessing(
        gov: Arc<Governance>,
        limits: Limits,
        witnessing: Option<Arc<crate::witnessing::Witnessing>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            witnessing,
            sessions: crate::web::session::Sessions::default(),
            overview_trends: crate::web::TrendsCache::default(),
            web_origin: std::sync::OnceLock::new(),
            evaluation_cadence_hours: std::sync::OnceLock::new(),
            limits,
            rates: limits::Rates::new(&limits),
            streams_by_principal: limits::StreamsByPrincipal::default(),
            gov,
            streams: Arc::new(Semaphore::new(STREAMS_MAX)),
            past_folds: Arc::new(Semaphore::new(PAST_FOLDS_MAX)),
            metrics: Metrics::default(),
            status_cache: Mutex::new(None),
            permissions: Permissions::from_table(&route_table()),
        })
    }

    /// Sets the origin the pages are served at (`https://cab.example.com`, or
    /// `http://localhost:PORT`): passkeys registered through the pages are scoped to its host.
    /// Only the first call counts.
    pub fn set_web_origin(&self, origin: &str) {
        let _ = self.web_origin.set(origin.trim_end_matches('/').to_owned());
    }

    /// Says the scheduler evaluates maturity every `hours` of log time (the overview shows when
    /// next). Only the first call counts.
    pub fn set_evaluation_cadence(&self, hours: u32) {
        let _ = self.evaluation_cadence_hours.set(hours);
    }

    /// The checkpoint the log publishes: with witnesses, the latest one enough of them
    /// cosigned; without, the latest signed one.
    pub(crate) fn published_checkpoint(&self) -> Result<Option<String>, ApiError> {
        match &self.witnessing {
            Some(witnessing) => Ok(witnessing.published()),
            None => Ok(self.gov.log().latest_checkpoint()?),
        }
    }
}

/// A rendered live status: (last folded seq, strict) and the JSON body.
type CachedStatus = ((Option<u64>, bool), Arc<str>);

/// Every role: reads of the projections are open to any principal.
const ANY_READER: &[Role] = &Role::ALL;
/// The raw log (entries, stream, proofs) is for auditors, operators and admins.
const LOG_READER: &[Role] = &[Role::Auditor, Role::Operator, Role::Admin];

/// The response header naming the seqs a command appended (`41,42`), so a client can fetch
/// their receipts (`GET /api/v1/log/receipt?seq=N`).
pub const APPENDED_SEQS_HEADER: &str = "trustledger-seqs";

tokio::task_local! {
    /// The seqs the commands of the request being handled appended.
    static APPENDED: std::cell::RefCell<Vec<u64>>;
}

async fn execute(
    state: &Arc<AppState>,
    caller: Principal,
    command: Command,
) -> Result<Outcome, ApiError> {
    let outcome = state
        .gov
        .submit(&caller, command)
        .await
        .map_err(ApiError::from)?;
    if let Outcome::Appended(appended) = &outcome {
        let _ = APPENDED.try_with(|seqs| seqs.borrow_mut().extend(appended.iter().map(|a| a.seq)));
    }
    Ok(outcome)
}

/// Names in [`APPENDED_SEQS_HEADER`] what the request's commands appended.
async fn name_appended_seqs(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    APPENDED
        .scope(std::cell::RefCell::new(Vec::new()), async move {
            let mut response = next.run(request).await;
            let seqs = APPENDED.with(|seqs| seqs.take());
            if !seqs.is_empty() {
                let list = seqs
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                if let Ok(value) = header::HeaderValue::from_str(&list) {
                    response.headers_mut().insert(APPENDED_SEQS_HEADER, value);
                }
            }
            response
        })
        .await
}

/// Any RFC 3339 time (`Z` or an offset, 0–9 fractional digits), to the microsecond (finer
/// digits are dropped, as the log records microseconds).
fn parse_time(field: &str, text: &str) -> Result<Timestamp, ApiError> {
    let invalid = || {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            format!("{field} must be an RFC 3339 time, like 2026-02-10T09:00:00Z or 2026-02-10T10:00:00.5+01:00"),
        )
    };
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| invalid())?;
    let micros = parsed.unix_timestamp_nanos().div_euclid(1000);
    i64::try_from(micros)
        .map(Timestamp::from_unix_micros)
        .map_err(|_| invalid())
}

/// The state as of `as_of` (a seq or a time), or now.
/// The live state (borrowed, never copied) or a past one (folded from the log).
enum StateRef<'a> {
    Live(crate::governance::StateGuard<'a>),
    Past(Box<GovernanceState>),
}

impl std::ops::Deref for StateRef<'_> {
    type Target = GovernanceState;
    fn deref(&self) -> &GovernanceState {
        match self {
            Self::Live(guard) => guard,
            Self::Past(state) => state,
        }
    }
}

/// The published state, if it already covers `point` (a point at or after its last entry is
/// the live state: borrow it rather than have the service copy it).
fn live_if_covered(state: &Arc<AppState>, point: AsOf) -> Option<StateRef<'_>> {
    let live = state.gov.read();
    let covered = match (point, live.last_seq, live.last_time) {
        (AsOf::Seq(seq), Some(last), _) => last <= seq,
        (AsOf::Time(time), _, Some(last)) => last <= time,
        _ => false,
    };
    covered.then_some(StateRef::Live(live))
}

async fn state_as_of<'a>(
    state: &'a Arc<AppState>,
    as_of: Option<&str>,
) -> Result<StateRef<'a>, ApiError> {
    let Some(as_of) = as_of else {
        return Ok(StateRef::Live(state.gov.read()));
    };
    let point = match as_of.parse::<u64>() {
        Ok(seq) => AsOf::Seq(seq),
        Err(_) => AsOf::Time(parse_time("as_of", as_of)?),
    };
    if let Some(live) = live_if_covered(state, point) {
        return Ok(live);
    }
    // A past state is folded from the nearest retained snapshot on the blocking pool, a few at
    // once, so that time travel never holds up the async workers that serve everything else.
    let permit = Arc::clone(&state.past_folds)
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::unavailable(
                "busy",
                format!("at most {PAST_FOLDS_MAX} past states are rebuilt at once; retry"),
                1,
            )
        })?;
    let gov = Arc::clone(&state.gov);
    let past = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        gov.state_as_of(point)
    })
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    })??;
    Ok(StateRef::Past(Box::new(past)))
}

/// The common `as_of` query parameter.
#[derive(Deserialize)]
struct AsOfQuery {
    as_of: Option<String>,
}

/// The state as of `as_of` and the time to judge it at: the log's current time for the live
/// state (read before the state is borrowed, since it takes the same lock), the state's own
/// last time for a past one.
async fn state_and_time<'a>(
    state: &'a Arc<AppState>,
    as_of: Option<&str>,
) -> Result<(StateRef<'a>, Timestamp), ApiError> {
    let now = as_of.is_none().then(|| state.gov.current_time());
    let s = state_as_of(state, as_of).await?;
    let at = now.unwrap_or_else(|| now_of(&s));
    Ok((s, at))
}

fn now_of(state: &GovernanceState) -> Timestamp {
    state.last_time.unwrap_or(Timestamp::from_unix_micros(0))
}

/// Durable entries the published state may lag behind before the service says it is not ready.
pub const READY_LAG_ENTRIES_MAX: u64 = 10_000;

/// Readiness: whether the service can take commands now.
async fn readyz(State(state): State<Arc<AppState>>) -> Result<axum::Json<Ready>, ApiError> {
    let gov = Arc::clone(&state.gov);
    // The log's own refusal is known once its indexes are rebuilt after open (a wait).
    let refusal = tokio::task::spawn_blocking(move || {
        gov.failure()
            .or_else(|| gov.log().refusal().map(ToString::to_string))
    })
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    })?;
    if let Some(reason) = refusal {
        return Err(ApiError::unavailable(
            "not-ready",
            format!("the log refuses writes: {reason}"),
            30,
        ));
    }
    let entries = state.gov.log().head().size;
    let folded = state
        .gov
        .with_state(|s| s.last_seq.map_or(0, |seq| seq + 1));
    let lag = entries.saturating_sub(folded);
    if lag > READY_LAG_ENTRIES_MAX {
        return Err(ApiError::unavailable(
            "not-ready",
            format!("the projections are {lag} entries behind the log"),
            5,
        ));
    }
    Ok(axum::Json(Ready {
        status: "ready",
        entries,
        projection_lag: lag,
        witnessing: state.witnessing.as_ref().map(|w| w.status()),
        role: if state.gov.role().leading() {
            "leader"
        } else {
            "follower"
        },
        follower_lag: state.gov.lag(),
    }))
}

/// The service takes commands.
#[derive(Serialize, schemars::JsonSchema)]
struct Ready {
    /// `ready`.
    status: &'static str,
    /// Entries in the log.
    entries: u64,
    /// Durable entries not yet folded.
    projection_lag: u64,
    /// With witnesses: the published size and how far each witness lags.
    #[serde(skip_serializing_if = "Option::is_none")]
    witnessing: Option<crate::witnessing::WitnessingStatus>,
    /// `leader` (decides commands) or `follower` (several nodes on one PostgreSQL database).
    role: &'static str,
    /// A follower: entries the leader committed that this node has not taken in.
    follower_lag: u64,
}

/// The process is up.
#[derive(Serialize, schemars::JsonSchema)]
struct Alive {
    /// `ok`.
    status: &'static str,
}

/// A CAB member's vote.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct VoteBody {
    /// `true` approves, `false` rejects.
    approve: bool,
    /// Why.
    rationale: String,
    /// The member's SSH signature over the vote's statement: required on every log that
    /// requires signed votes (every new log). `GET /api/v1/cab/vote-statement` gives the bytes.
    #[serde(default)]
    signature: Option<SignatureBody>,
}

/// A member's SSH signature over a vote's statement.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SignatureBody {
    /// The statement's `signed-at` (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, UTC).
    signed_at: String,
    /// The armored signature `ssh-keygen -Y sign -n trustledger-vote` writes.
    sshsig: String,
}

impl SignatureBody {
    fn into_signed_vote(self) -> policy::SignedVote {
        policy::SignedVote::ssh(self.signed_at, self.sshsig)
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

const AS_OF: &[(&str, &str)] = &[("as_of", "string")];

/// The service's own routes: liveness, readiness, metrics and this document.
fn service_routes() -> Vec<RouteEntry> {
    vec![
        route(
            "/healthz",
            get(|| async { axum::Json(Alive { status: "ok" }) }),
            vec![op("get", "Liveness", &[]).returns::<Alive>(200, "Up")],
        ),
        route(
            "/readyz",
            get(readyz),
            vec![op(
                "get",
                "Readiness: 503 while the log refuses writes or the projections lag",
                &[],
            )
            .returns::<Ready>(200, "Ready")],
        ),
        route(
            "/metrics",
            get(metrics),
            vec![op("get", "Prometheus metrics", &[]).returns_text(
                200,
                "Prometheus text format",
                "text/plain",
            )],
        ),
        route(
            "/openapi.json",
            get(openapi),
            vec![op("get", "This document", &[]).returns_text(
                200,
                "OpenAPI 3.1",
                "application/json",
            )],
        ),
    ]
}

/// Every route, grouped by resource.
pub fn route_table() -> Vec<RouteEntry> {
    let mut table = service_routes();
    table.extend(routes::all());
    table
}

/// The whole API, built from [`route_table`].
pub fn app(state: Arc<AppState>) -> Router {
    let mut router = Router::new();
    for entry in route_table() {
        router = router.route(entry.path, entry.handler);
    }
    router
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            guard::authorize,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            count_requests,
        ))
        .route_layer(axum::middleware::from_fn(name_appended_seqs))
        .merge(crate::web::router())
        .layer(DefaultBodyLimit::max(JSON_BODY_BYTES_MAX))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            follower::send_commands_to_the_leader,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            limits::per_address,
        ))
        .layer(axum::middleware::from_fn(guard::problems_only))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            header::HeaderValue::from_static("nosniff"),
        ))
        .with_state(state)
}

/// The OpenAPI 3.1 document, generated from [`route_table`], so it lists exactly what is served.
pub fn openapi_document() -> Value {
    openapi::document(&route_table())
}

async fn openapi() -> axum::Json<Value> {
    axum::Json(openapi_document())
}
