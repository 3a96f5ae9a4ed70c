//! The HTTP API (axum): `app(state) -> Router`, one `routes()` per resource.
//!
//! Errors are RFC 9457 `application/problem+json` with a stable `type` per kind. Every route
//! but `/healthz` and the log's checkpoint and key needs a bearer token; commands carry the
//! token's principal as the entries' `actor` (never a field of the body), and the service checks
//! each command's roles. Commands run on the blocking pool because an append waits for fsync.

mod error;
mod extract;
mod guard;
mod limits;
mod metrics;
pub mod server;

pub use error::ApiError;
pub use extract::{ApiJson, Caller};
pub use guard::Permissions;
pub use limits::{Limits, STREAMS_PER_PRINCIPAL_MAX};
pub use metrics::Metrics;
use metrics::{count_requests, metrics};

use crate::governance::{AsOf, Governance, Outcome, Principal, Role};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put, MethodRouter};
use axum::Router;
use events::payloads::*;
use events::Timestamp;
use futures_util::StreamExt as _;
use projections::policy::{self, Command, IncidentReport, PresentedRelease, SubmitDeployment};
use projections::state::{DeploymentRecord, GovernanceState};
use projections::{calibration, maturity, views};
use serde::Deserialize;
use serde_json::{json, Value};
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
    streams: Arc<Semaphore>,
    past_folds: Arc<Semaphore>,
    metrics: Metrics,
    /// The live maturity status, by (last folded seq, strict).
    status_cache: Mutex<Option<CachedStatus>>,
    /// The roles each route needs, from the route table.
    permissions: Permissions,
    limits: Limits,
    rates: limits::Rates,
    streams_by_principal: limits::StreamsByPrincipal,
}

impl AppState {
    /// State over a service, with the default [`Limits`].
    pub fn new(gov: Arc<Governance>) -> Arc<Self> {
        Self::with_limits(gov, Limits::default())
    }

    /// State over a service, with these limits.
    pub fn with_limits(gov: Arc<Governance>, limits: Limits) -> Arc<Self> {
        Arc::new(Self {
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
}

/// A rendered live status: (last folded seq, strict) and the JSON body.
type CachedStatus = ((Option<u64>, bool), Arc<str>);

const READERS: &[Role] = &[
    Role::Auditor,
    Role::Operator,
    Role::Cab,
    Role::Admin,
    Role::Submitter,
    Role::Deployer,
    Role::IncidentReporter,
];
const LOG_READERS: &[Role] = &[Role::Auditor, Role::Operator, Role::Admin];

async fn execute(
    state: &Arc<AppState>,
    caller: Principal,
    command: Command,
) -> Result<Outcome, ApiError> {
    state
        .gov
        .submit(&caller, command)
        .await
        .map_err(ApiError::from)
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
async fn readyz(State(state): State<Arc<AppState>>) -> Result<axum::Json<Value>, ApiError> {
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
    Ok(axum::Json(
        json!({"status": "ready", "entries": entries, "projection_lag": lag}),
    ))
}

// ----- log: checkpoint, key, proofs -----

async fn checkpoint(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let note = state
        .gov
        .log()
        .latest_checkpoint()?
        .ok_or_else(|| ApiError::not_found("no signed checkpoint yet"))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

async fn key(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let key = state
        .gov
        .log()
        .verifier()
        .ok_or_else(|| ApiError::not_found("this log has no signing key"))?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{key}\n"),
    )
        .into_response())
}

#[derive(Deserialize)]
struct InclusionQuery {
    seq: u64,
    size: u64,
}

async fn inclusion(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<InclusionQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(LOG_READERS)?;
    let log = state.gov.log();
    let proof = log.inclusion_proof(q.seq, q.size)?;
    let entry = log
        .get(q.seq)?
        .ok_or_else(|| ApiError::not_found("no such entry"))?;
    Ok(axum::Json(json!({
        "seq": q.seq,
        "size": q.size,
        "leaf_hash": events::merkle::leaf_hash(entry.bytes()).to_hex(),
        "root": log.root_at(q.size)?.to_hex(),
        "proof": proof.iter().map(|d| d.to_hex()).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    from: u64,
    to: u64,
}

async fn consistency(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<ConsistencyQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(LOG_READERS)?;
    let log = state.gov.log();
    let proof = log.consistency_proof(q.from, q.to)?;
    Ok(axum::Json(json!({
        "from": q.from,
        "to": q.to,
        "from_root": log.root_at(q.from)?.to_hex(),
        "to_root": log.root_at(q.to)?.to_hex(),
        "proof": proof.iter().map(|d| d.to_hex()).collect::<Vec<_>>(),
    })))
}

/// The projection fingerprint (a hash of the canonical folded state) as of a seq, or now, so an
/// auditor can compare an independent rebuild with what this service serves.
async fn projection_fingerprint(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(LOG_READERS)?;
    let s = state_as_of(&state, q.as_of.as_deref()).await?;
    Ok(axum::Json(json!({
        "seq": s.last_seq,
        "fingerprint": projections::snapshot::fingerprint(&s).to_hex(),
        "projection_version": projections::snapshot::PROJECTION_VERSION,
    })))
}

// ----- events: pages and the SSE stream -----

#[derive(Deserialize)]
struct EventsQuery {
    after: Option<u64>,
    limit: Option<usize>,
    #[serde(rename = "type")]
    type_prefix: Option<String>,
    subject: Option<String>,
}

fn wanted(q: &EventsQuery, entry: &events::Entry) -> bool {
    q.type_prefix
        .as_ref()
        .is_none_or(|p| entry.event_type.starts_with(p.as_str()))
        && q.subject.as_ref().is_none_or(|s| entry.subject == *s)
}

/// The stored bytes of entries after `after`, one per line (JSON Lines).
async fn events_page(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    caller.require(LOG_READERS)?;
    let limit = q.limit.unwrap_or(100).min(PAGE_MAX);
    let from = q.after.map_or(0, |a| a.saturating_add(1));
    let mut body = Vec::new();
    for entry in state.gov.log().read_range(from, limit)? {
        if wanted(&q, &entry) {
            body.extend_from_slice(entry.bytes());
            body.push(b'\n');
        }
    }
    Ok(([(header::CONTENT_TYPE, "application/jsonl")], body).into_response())
}

/// Server-Sent Events: `id:` = seq, `data:` = the stored entry bytes; resumes after
/// `Last-Event-ID` (or `?after=`) with no gap and no duplicate.
async fn events_stream(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    caller.require(LOG_READERS)?;
    let slot = limits::StreamsByPrincipal::open(&state, &caller.0.name)?;
    let permit = Arc::clone(&state.streams)
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too-many-streams",
                format!("at most {STREAMS_MAX} concurrent streams"),
            )
        })?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request("Last-Event-ID must be a seq"))
        });
    let after = match resume {
        Some(parsed) => Some(parsed?),
        None => q.after,
    };
    let subscription = state
        .gov
        .log()
        .subscribe(after.map_or(0, |a| a.saturating_add(1)));
    let stream = futures_util::stream::unfold(
        (subscription, (permit, slot), q),
        |(mut sub, permit, q)| async move {
            loop {
                match sub.next().await {
                    Ok(entry) if wanted(&q, &entry) => {
                        let event = Event::default()
                            .id(entry.seq.to_string())
                            .data(String::from_utf8_lossy(entry.bytes()));
                        return Some((Ok::<_, std::convert::Infallible>(event), (sub, permit, q)));
                    }
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

// ----- evidence -----

async fn record_evidence(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(document): ApiJson<EvidenceDocument>,
) -> Result<Response, ApiError> {
    let evidence_id = state.gov.new_id();
    execute(
        &state,
        caller.0,
        Command::RecordEvidence {
            evidence_id,
            document,
        },
    )
    .await?;
    let hash = state.gov.with_state(|s| {
        s.evidence
            .get(&evidence_id)
            .map(|e| e.evidence_hash.to_string())
    });
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"evidence_id": evidence_id, "evidence_hash": hash})),
    )
        .into_response())
}

async fn get_evidence(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(READERS)?;
    // The state keeps what decisions read; the document is read back from its entry, after the
    // state is released (log reads must not hold up commands).
    let seq = state_as_of(&state, q.as_of.as_deref())
        .await?
        .evidence
        .get(&id)
        .map(|e| e.seq)
        .ok_or_else(|| ApiError::not_found(format!("unknown evidence {id}")))?;
    let entry = state.gov.log().get(seq)?;
    match entry.as_ref().map(Payload::decode) {
        Some(Ok(Some(Payload::EvidenceRecorded(recorded)))) if recorded.evidence_id == id => {
            Ok(axum::Json(json!({
                "evidence_id": id,
                "document": recorded.document,
                "evidence_hash": recorded.evidence_hash,
                "recorded_by": entry.as_ref().map(|e| &e.actor),
            })))
        }
        _ => {
            tracing::error!(%id, seq, "the state names an entry that does not record this evidence");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("evidence {id} could not be read back from seq {seq}"),
            ))
        }
    }
}

// ----- deployments -----

/// A deployment as the API shows it. The state keeps what decisions read; the submission's other
/// details and the types of the history's entries are read back from the log by seq, so callers
/// render a copied record after releasing the state (log reads must not hold up commands).
fn deployment_json(log: &events::Log, id: &Uuid, d: &DeploymentRecord) -> Value {
    let history: Vec<events::Entry> = d
        .history
        .iter()
        .filter_map(|seq| log.get(*seq).ok().flatten())
        .collect();
    let submitted = history.first().and_then(|e| match Payload::decode(e) {
        Ok(Some(Payload::DeploymentSubmitted(p))) => Some(p),
        _ => None,
    });
    json!({
        "deployment_id": id,
        "status": d.status.as_str(),
        "app_name": d.submitted.app_name,
        "app_version": submitted.as_ref().map(|p| &p.app_version),
        "submitter": d.submitter,
        "submitted_at": d.submitted_at.to_string(),
        "class": d.class.as_str(),
        "classification_rule": submitted.as_ref().map(|p| &p.classification.rule),
        "score": submitted.as_ref().map(|p| &p.score),
        "factors": submitted.as_ref().map(|p| &p.factors),
        "model_version": d.submitted.model_version,
        "gate": d.gate,
        "votes": d.votes.iter().map(|(m, (a, r))| json!({"member": m, "approve": a, "rationale": r})).collect::<Vec<_>>(),
        "approval_expires_at": d.approval.as_ref().map(|(_, t)| t.to_string()),
        "released_at": d.released_at.map(|t| t.to_string()),
        "blocked_releases": d.blocked_releases,
        "incidents": d.incidents,
        "history": history.iter().map(|e| json!({"seq": e.seq, "type": e.event_type})).collect::<Vec<_>>(),
    })
}

/// The live record of a deployment, rendered once the state lock is released (`Null` if unknown).
fn current_deployment_json(state: &AppState, id: &Uuid) -> Value {
    let record = state
        .gov
        .with_state(|s| s.deployments.get(id).map(Cow::into_owned));
    record.map_or(Value::Null, |d| deployment_json(state.gov.log(), id, &d))
}

async fn submit(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<SubmitDeployment>,
) -> Result<Response, ApiError> {
    let deployment_id = state.gov.new_id();
    let (status, id) = match execute(
        &state,
        caller.0,
        Command::Submit {
            deployment_id,
            request,
        },
    )
    .await?
    {
        Outcome::Replayed { deployment_id } => (StatusCode::OK, deployment_id),
        Outcome::Appended(_) => (StatusCode::CREATED, deployment_id),
    };
    let body = current_deployment_json(&state, &id);
    Ok((status, axum::Json(body)).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<usize>,
    as_of: Option<String>,
}

async fn list_deployments(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(READERS)?;
    let (records, cab_queue) = {
        let s = state_as_of(&state, q.as_of.as_deref()).await?;
        let records: Vec<(Uuid, DeploymentRecord)> = s
            .deployments
            .iter()
            .filter(|(_, d)| q.status.as_ref().is_none_or(|st| d.status.as_str() == st))
            .take(q.limit.unwrap_or(100).min(PAGE_MAX))
            .map(|(id, d)| (id, d.into_owned()))
            .collect();
        (records, views::cab_queue(&s, now_of(&s)).len())
    };
    let items: Vec<Value> = records
        .iter()
        .map(|(id, d)| deployment_json(state.gov.log(), id, d))
        .collect();
    Ok(axum::Json(
        json!({"deployments": items, "cab_queue": cab_queue}),
    ))
}

async fn get_deployment(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(READERS)?;
    let record = state_as_of(&state, q.as_of.as_deref())
        .await?
        .deployments
        .get(&id)
        .map(Cow::into_owned)
        .ok_or_else(|| ApiError::not_found(format!("unknown deployment {id}")))?;
    Ok(axum::Json(deployment_json(state.gov.log(), &id, &record)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VoteBody {
    approve: bool,
    rationale: String,
}

async fn vote(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<VoteBody>,
) -> Result<axum::Json<Value>, ApiError> {
    execute(
        &state,
        caller.0,
        Command::Vote {
            deployment_id: id,
            approve: b.approve,
            rationale: b.rationale,
        },
    )
    .await?;
    Ok(axum::Json(current_deployment_json(&state, &id)))
}

/// The SBOM digest presented for the deployment's next release attempt, if any.
fn presented_sbom(state: &AppState, id: &Uuid) -> Option<String> {
    state.gov.with_state(|s| s.presented_sboms.get(id).cloned())
}

/// The seqs a command appended (empty for an idempotent retry).
fn appended_seqs(outcome: &Outcome) -> Vec<u64> {
    match outcome {
        Outcome::Appended(appended) => appended.iter().map(|a| a.seq).collect(),
        Outcome::Replayed { .. } => Vec::new(),
    }
}

/// A 404 problem for an unknown deployment, before an upload to it is read.
fn require_deployment(state: &AppState, id: &Uuid) -> Result<(), ApiError> {
    if state.gov.with_state(|s| s.deployments.contains_key(id)) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("unknown deployment {id}")))
    }
}

/// Streams a body into SHA-256 under a size limit, never holding it in memory.
async fn digest_body(body: axum::body::Body, limit: u64) -> Result<(String, u64), ApiError> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the upload: {e}")))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                format!("uploads are limited to {limit} bytes"),
            ));
        }
        hasher.update(&chunk);
    }
    Ok((hex::encode(hasher.finalize()), size))
}

async fn upload_sbom(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Deployer])?;
    require_deployment(&state, &id)?;
    let (sha256, size) = digest_body(body, state.limits.sbom_bytes_max).await?;
    // Recorded in the log, so a restart before the release loses nothing.
    let presented = SbomPresented {
        deployment_id: id,
        sbom_sha256: sha256.clone(),
        size,
    };
    let outcome = execute(&state, caller.0, Command::PresentSbom(presented)).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"sbom_sha256": sha256, "size": size, "seqs": appended_seqs(&outcome)})),
    )
        .into_response())
}

async fn release(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    body: axum::body::Body,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(&[Role::Deployer])?;
    require_deployment(&state, &id)?;
    let (artifact_sha256, artifact_size) =
        digest_body(body, state.limits.artifact_bytes_max).await?;
    let sbom_sha256 = presented_sbom(&state, &id);
    let outcome = execute(
        &state,
        caller.0,
        Command::Release(PresentedRelease {
            deployment_id: id,
            artifact_sha256,
            artifact_size,
            sbom_sha256,
        }),
    )
    .await?;
    let record = state
        .gov
        .with_state(|s| s.deployments.get(&id).map(Cow::into_owned))
        .ok_or_else(|| ApiError::not_found(format!("unknown deployment {id}")))?;
    let verdict = json!({"released": record.released_at.is_some(), "deployment": deployment_json(state.gov.log(), &id, &record)});
    // The verdict is the entry this request appended (others may have appended since).
    let seq = match outcome {
        Outcome::Appended(appended) => appended.first().map(|a| a.seq),
        Outcome::Replayed { .. } => None,
    };
    let recorded = match seq {
        Some(seq) => state.gov.log().get(seq)?,
        None => None,
    };
    let checks = recorded
        .and_then(|e| Payload::decode(&e).ok().flatten())
        .and_then(|p| match p {
            Payload::DeploymentReleased(DeploymentReleased(v))
            | Payload::DeploymentReleaseBlocked(DeploymentReleaseBlocked(v)) => Some(v.checks),
            _ => None,
        });
    Ok(axum::Json(
        json!({"released": verdict["released"], "checks": checks, "deployment": verdict["deployment"]}),
    ))
}

// ----- incidents (the seed's endpoints, with and without the trailing slash) -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentBody {
    deployment_id: Uuid,
    severity: Severity,
    incident_date: Option<String>,
    affected_user_count: u64,
    downtime_minutes: u64,
    business_impact_usd: String,
    preventable: bool,
    #[serde(default)]
    preventability_notes: String,
    #[serde(default)]
    control_improvements: Vec<String>,
    incident_id: Option<Uuid>,
}

async fn report_incident(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(b): ApiJson<IncidentBody>,
) -> Result<Response, ApiError> {
    let incident_date = match &b.incident_date {
        Some(t) => parse_time("incident_date", t)?,
        // Not given: it happened now, by the log's clock.
        None => state.gov.current_time(),
    };
    let incident_id = b.incident_id.unwrap_or_else(|| state.gov.new_id());
    let report = IncidentReport {
        incident_id,
        deployment_id: b.deployment_id,
        severity: b.severity,
        incident_date,
        affected_user_count: b.affected_user_count,
        downtime_minutes: b.downtime_minutes,
        business_impact_usd: b.business_impact_usd,
        preventable: b.preventable,
        preventability_notes: b.preventability_notes,
        control_improvements: b.control_improvements,
    };
    execute(&state, caller.0, Command::ReportIncident(report)).await?;
    let body = state
        .gov
        .with_state(|s| s.incidents.get(&incident_id).map(incident_json))
        .unwrap_or(Value::Null);
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

fn incident_json(i: &projections::state::IncidentRecord) -> Value {
    json!({"incident": i.current, "reporter": i.reporter, "reported_at": i.reported_at.to_string(), "updates": i.updates.len()})
}

#[derive(Deserialize)]
struct IncidentQuery {
    severity: Option<String>,
    blast_radius: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
    as_of: Option<String>,
}

async fn list_incidents(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<IncidentQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(READERS)?;
    let invalid = |f: &str, m: &str| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            format!("{f}: {m}"),
        )
    };
    let filter = views::IncidentFilter {
        severity: q
            .severity
            .as_deref()
            .map(|s| Severity::parse(s).ok_or_else(|| invalid("severity", "one of P1, P2, P3, P4")))
            .transpose()?,
        blast_radius: q
            .blast_radius
            .as_deref()
            .map(|c| {
                BlastRadiusClass::parse(c).ok_or_else(|| invalid("blast_radius", "a class name"))
            })
            .transpose()?,
        from: q
            .from
            .as_deref()
            .map(|t| parse_time("from", t))
            .transpose()?,
        to: q.to.as_deref().map(|t| parse_time("to", t)).transpose()?,
    };
    let s = state_as_of(&state, q.as_of.as_deref()).await?;
    let all = views::incidents(&s, &filter);
    let page: Vec<Value> = all
        .iter()
        .skip(q.offset.unwrap_or(0))
        .take(q.limit.unwrap_or(100).min(PAGE_MAX))
        .map(|i| incident_json(i))
        .collect();
    Ok(axum::Json(json!({"total": all.len(), "incidents": page})))
}

async fn get_incident(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(READERS)?;
    let s = state_as_of(&state, q.as_of.as_deref()).await?;
    s.incidents
        .get(&id)
        .map(incident_json)
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found(format!("unknown incident {id}")))
}

// ----- maturity -----

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EvaluateBody {
    #[serde(default)]
    strict: bool,
}

async fn evaluate(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    body: axum::body::Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    // The body is optional: empty means the defaults.
    let strict = if body.is_empty() {
        false
    } else {
        serde_json::from_slice::<EvaluateBody>(&body)
            .map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-body",
                    e.to_string(),
                )
            })?
            .strict
    };
    execute(&state, caller.0, Command::EvaluateMaturity { strict }).await?;
    let (evaluation, level) = state
        .gov
        .with_state(|s| (s.last_evaluation.clone().map(|e| e.evaluation), s.level));
    Ok(axum::Json(
        json!({"evaluation": evaluation, "level_now": level}),
    ))
}

#[derive(Deserialize)]
struct StatusQuery {
    as_of: Option<String>,
    strict: Option<bool>,
}

async fn status(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<StatusQuery>,
) -> Result<Response, ApiError> {
    caller.require(READERS)?;
    let strict = q.strict.unwrap_or(false);
    let s = state_as_of(&state, q.as_of.as_deref()).await?;
    // The live status is a pure function of the folded state (its time is the last entry's),
    // so it is computed once per log head and strictness, not once per request.
    let live_key = q.as_of.is_none().then_some((s.last_seq, strict));
    let cache = || {
        state
            .status_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if let Some(key) = live_key {
        if let Some((cached_key, body)) = cache().as_ref() {
            if *cached_key == key {
                return Ok(json_body(body));
            }
        }
    }
    let at = now_of(&s);
    let model = s.active_model().map(|m| m.proposal.clone());
    let thresholds: BTreeMap<&str, Value> = BlastRadiusClass::ALL
        .iter()
        .map(|c| {
            let (_, g) = model.as_ref().map_or((false, None), |m| {
                let (auto, g) = policy::gate(&s, Uuid::nil(), *c, 0, m);
                (auto, Some(g))
            });
            (c.as_str(), json!({"effective": g.as_ref().map(|g| g.threshold), "model": g.as_ref().map(|g| g.model_threshold), "level": g.as_ref().map(|g| g.level_threshold), "quorum": s.quorum(*c)}))
        })
        .collect();
    // The criteria as they stand now, computed without recording an evaluation.
    let preview = maturity::evaluate(&s, at, strict);
    let value = json!({
        "level": s.level,
        "mode": s.current_level().map(|l| l.mode.clone()),
        "since": s.level_since.map(|t| t.to_string()),
        "as_of_seq": s.last_seq,
        "risk_model": model.map(|m| m.version),
        "thresholds": thresholds,
        "next_level": preview.target_level,
        "criteria": preview.criteria,
        "outcome_if_evaluated_now": preview.outcome,
        "stats": preview.stats,
        "last_evaluation": s.last_evaluation.as_ref().map(|e| json!({"seq": e.seq, "at": e.at.to_string(), "outcome": e.evaluation.outcome})),
    });
    let body: Arc<str> = value.to_string().into();
    if let Some(key) = live_key {
        *cache() = Some((key, Arc::clone(&body)));
    }
    Ok(json_body(&body))
}

fn json_body(body: &Arc<str>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

// ----- classification, calibration, CAB -----

#[derive(Deserialize)]
struct ClassifyQuery {
    app_name: String,
    #[serde(default)]
    requires_admin: bool,
    #[serde(default)]
    target_user_count: u64,
    service_tier: Option<String>,
    as_of: Option<String>,
}

async fn classify(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<ClassifyQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(READERS)?;
    let s = state_as_of(&state, q.as_of.as_deref()).await?;
    let input = policy::ClassifyInput {
        app_name: q.app_name,
        requires_admin: q.requires_admin,
        target_user_count: q.target_user_count,
        cmdb: q
            .service_tier
            .map(|t| [("service_tier".to_owned(), t)].into())
            .unwrap_or_default(),
    };
    s.blast_policy
        .as_ref()
        .map(|p| {
            let c = policy::classify(p, &input);
            json!({"class": c.class.as_str(), "rule": c.rule, "policy_version": c.policy_version, "quorum": s.quorum(c.class)})
        })
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("no blast-radius policy in force"))
}

#[derive(Deserialize)]
struct CalibrationQuery {
    class: Option<String>,
    level: Option<u32>,
    from: Option<String>,
    to: Option<String>,
    as_of: Option<String>,
}

async fn calibration_report(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<CalibrationQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(READERS)?;
    let filter = calibration::CalibrationFilter {
        class: q
            .class
            .as_deref()
            .map(|c| {
                BlastRadiusClass::parse(c).ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid-field",
                        "class: a class name",
                    )
                })
            })
            .transpose()?,
        level: q.level,
        from: q
            .from
            .as_deref()
            .map(|t| parse_time("from", t))
            .transpose()?,
        to: q.to.as_deref().map(|t| parse_time("to", t)).transpose()?,
    };
    let s = state_as_of(&state, q.as_of.as_deref()).await?;
    let r = calibration::calibrate(&s, &filter);
    let pct = projections::stats::bp_to_percent;
    Ok(axum::Json(json!({
        "deployments": r.deployments,
        "auto_approved": r.auto_approved,
        "auto_approval_rate": pct(r.auto_approval_rate_bp),
        "released": r.released,
        "change_failure_rate": pct(r.change_failure_rate_bp),
        "change_failure_wilson_95": [pct(r.change_failure_wilson_bp.0), pct(r.change_failure_wilson_bp.1)],
        "score_histogram": r.score_histogram,
        "auc": r.auc_bp.map(|bp| format!("{}.{:04}", bp / 10_000, bp % 10_000)),
        "confusion": {"true_positive": r.confusion.true_positive, "false_positive": r.confusion.false_positive, "true_negative": r.confusion.true_negative, "false_negative": r.confusion.false_negative},
        "severity_mix": r.severity_mix.iter().map(|(s, n)| (format!("{s:?}"), *n)).collect::<BTreeMap<_, _>>(),
        "preventable": r.preventable,
        "incidents": r.incidents,
        "review_minutes_median": r.review_minutes_median,
        "review_minutes_p90": r.review_minutes_p90,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    member: String,
}

async fn add_member(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(b): ApiJson<MemberBody>,
) -> Result<Response, ApiError> {
    execute(&state, caller.0, Command::AddCabMember { member: b.member }).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"members": state.gov.with_state(|s| s.cab_members.clone())})),
    )
        .into_response())
}

async fn list_members(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(READERS)?;
    let s = state_as_of(&state, q.as_of.as_deref()).await?;
    Ok(axum::Json(json!({"members": s.cab_members})))
}

// ----- the rest of the workflow -----

async fn list_models(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(READERS)?;
    let s = state_as_of(&state, q.as_of.as_deref()).await?;
    let models: Vec<Value> = s
        .models
        .values()
        .map(|m| json!({"model": m.proposal, "proposed_by": m.proposed_by, "votes": m.votes, "approved_by": m.approved_by, "active": s.active_model.as_deref() == Some(m.proposal.version.as_str())}))
        .collect();
    Ok(axum::Json(
        json!({"active": s.active_model, "models": models}),
    ))
}

async fn propose_model(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(model): ApiJson<RiskModelProposed>,
) -> Result<Response, ApiError> {
    execute(&state, caller.0, Command::ProposeRiskModel(model)).await?;
    Ok(StatusCode::CREATED.into_response())
}

async fn vote_model(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(version): Path<String>,
    ApiJson(b): ApiJson<VoteBody>,
) -> Result<axum::Json<Value>, ApiError> {
    execute(
        &state,
        caller.0,
        Command::VoteRiskModel {
            version: version.clone(),
            approve: b.approve,
            rationale: b.rationale,
        },
    )
    .await?;
    Ok(axum::Json(state.gov.with_state(|s| json!({"version": version, "approved_by": s.models.get(&version).and_then(|m| m.approved_by.clone())}))))
}

async fn activate_model(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(version): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    execute(&state, caller.0, Command::ActivateRiskModel { version }).await?;
    Ok(axum::Json(
        json!({"active": state.gov.with_state(|s| s.active_model.clone())}),
    ))
}

#[derive(Deserialize)]
struct ExceptionsQuery {
    expiring_within_hours: Option<u32>,
    as_of: Option<String>,
}

async fn list_exceptions(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<ExceptionsQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(READERS)?;
    let hours = q.expiring_within_hours.unwrap_or(72);
    if hours > 24 * 3650 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "expiring_within_hours: at most 87600 (ten years)",
        ));
    }
    let within = i64::from(hours) * 3_600_000_000;
    let (s, at) = state_and_time(&state, q.as_of.as_deref()).await?;
    let items: Vec<Value> = views::exceptions(&s, at, within)
        .into_iter()
        .map(|(e, standing)| json!({"exception": e.granted, "standing": format!("{standing:?}").to_uppercase()}))
        .collect();
    Ok(axum::Json(
        json!({"as_of": at.to_string(), "exceptions": items}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptionBody {
    control: String,
    scope: String,
    reason: String,
    approvers: Vec<String>,
    expires_at: String,
}

async fn grant_exception(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(b): ApiJson<ExceptionBody>,
) -> Result<Response, ApiError> {
    let exception_id = state.gov.new_id();
    let expires_at = parse_time("expires_at", &b.expires_at)?;
    execute(
        &state,
        caller.0,
        Command::GrantException {
            exception_id,
            control: b.control,
            scope: b.scope,
            reason: b.reason,
            approvers: b.approvers,
            expires_at,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"exception_id": exception_id})),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

async fn revoke_exception(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> Result<StatusCode, ApiError> {
    execute(
        &state,
        caller.0,
        Command::RevokeException {
            exception_id: id,
            reason: b.reason,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct BreakglassQuery {
    justification: String,
    /// Comma-separated CAB approvers (the caller among them).
    approvers: String,
}

async fn breakglass(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    Query(q): Query<BreakglassQuery>,
    body: axum::body::Body,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(&[Role::Cab])?;
    require_deployment(&state, &id)?;
    let (artifact_sha256, artifact_size) =
        digest_body(body, state.limits.artifact_bytes_max).await?;
    let sbom_sha256 = presented_sbom(&state, &id);
    let approvers = q
        .approvers
        .split(',')
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    let presented = PresentedRelease {
        deployment_id: id,
        artifact_sha256,
        artifact_size,
        sbom_sha256,
    };
    execute(
        &state,
        caller.0,
        Command::Breakglass {
            presented,
            justification: q.justification,
            approvers,
        },
    )
    .await?;
    Ok(axum::Json(current_deployment_json(&state, &id)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    justified: bool,
    findings: String,
}

async fn review_breakglass(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<ReviewBody>,
) -> Result<StatusCode, ApiError> {
    execute(
        &state,
        caller.0,
        Command::ReviewBreakglass {
            deployment_id: id,
            justified: b.justified,
            findings: b.findings,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn breakglass_reviews(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(READERS)?;
    let (s, at) = state_and_time(&state, q.as_of.as_deref()).await?;
    let open = views::open_breakglass_reviews(&s, at);
    Ok(axum::Json(json!({
        "as_of": at.to_string(),
        "open": open.iter().map(|(id, due, overdue)| json!({"deployment_id": id, "due": due.to_string(), "overdue": overdue})).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RaiseBody {
    to: BlastRadiusClass,
    reason: String,
}

async fn raise_classification(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<RaiseBody>,
) -> Result<axum::Json<Value>, ApiError> {
    execute(
        &state,
        caller.0,
        Command::RaiseClassification {
            deployment_id: id,
            to: b.to,
            reason: b.reason,
        },
    )
    .await?;
    Ok(axum::Json(current_deployment_json(&state, &id)))
}

async fn trust_key(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(k): ApiJson<SigningKeyTrusted>,
) -> Result<StatusCode, ApiError> {
    execute(&state, caller.0, Command::TrustSigningKey(k)).await?;
    Ok(StatusCode::CREATED)
}

async fn revoke_key(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(key_id): Path<String>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> Result<StatusCode, ApiError> {
    execute(
        &state,
        caller.0,
        Command::RevokeSigningKey(SigningKeyRevoked {
            key_id,
            reason: b.reason,
        }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentUpdateBody {
    severity: Option<Severity>,
    affected_user_count: Option<u64>,
    downtime_minutes: Option<u64>,
    business_impact_usd: Option<String>,
    preventable: Option<bool>,
    notes: Option<String>,
}

async fn update_incident(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<IncidentUpdateBody>,
) -> Result<axum::Json<Value>, ApiError> {
    let update = IncidentUpdated {
        incident_id: id,
        severity: b.severity,
        affected_user_count: b.affected_user_count,
        downtime_minutes: b.downtime_minutes,
        business_impact_usd: b.business_impact_usd,
        preventable: b.preventable,
        notes: b.notes,
    };
    execute(&state, caller.0, Command::UpdateIncident(update)).await?;
    Ok(axum::Json(
        state
            .gov
            .with_state(|s| s.incidents.get(&id).map(incident_json))
            .unwrap_or(Value::Null),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgressionBody {
    to_level: u32,
    approve: bool,
    rationale: String,
}

async fn vote_progression(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(b): ApiJson<ProgressionBody>,
) -> Result<axum::Json<Value>, ApiError> {
    execute(
        &state,
        caller.0,
        Command::VoteProgression {
            to_level: b.to_level,
            approve: b.approve,
            rationale: b.rationale,
        },
    )
    .await?;
    Ok(axum::Json(state.gov.with_state(
        |s| json!({"level": s.level, "progression_votes": s.progression_votes}),
    )))
}

async fn remove_member(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(member): Path<String>,
) -> Result<StatusCode, ApiError> {
    execute(&state, caller.0, Command::RemoveCabMember { member }).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn cab_queue(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(READERS)?;
    let (s, at) = state_and_time(&state, q.as_of.as_deref()).await?;
    let queue = views::cab_queue(&s, at);
    Ok(axum::Json(json!({
        "as_of": at.to_string(),
        "pending": queue.iter().map(|q| json!({"deployment_id": q.deployment_id, "app_name": q.app_name, "class": q.class.as_str(), "approvals": q.approvals, "quorum": q.quorum, "age_minutes": q.age_minutes})).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    principal: String,
    roles: Vec<String>,
}

async fn create_token(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(b): ApiJson<TokenBody>,
) -> Result<Response, ApiError> {
    let (token, token_sha256) = crate::governance::new_token();
    let grant = events::catalogue::access::AccessGranted {
        principal: b.principal.clone(),
        roles: b.roles,
        token_sha256,
    };
    execute(&state, caller.0, Command::GrantAccess(grant)).await?;
    // The only time the token is ever shown; no cache may keep it.
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"principal": b.principal, "token": token})),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeTokenBody {
    principal: String,
    token: String,
    reason: String,
}

async fn revoke_token(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(b): ApiJson<RevokeTokenBody>,
) -> Result<StatusCode, ApiError> {
    let token_sha256 = hex::encode(Sha256::digest(b.token.as_bytes()));
    let revoke = events::catalogue::access::AccessRevoked {
        principal: b.principal,
        token_sha256,
        reason: b.reason,
    };
    execute(&state, caller.0, Command::RevokeAccess(revoke)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One operation's documentation.
pub struct Op {
    method: &'static str,
    summary: &'static str,
    /// Roles that may call it; empty means public.
    roles: &'static [&'static str],
    query: &'static [(&'static str, &'static str)],
    body: Option<Value>,
}

fn op(method: &'static str, summary: &'static str, roles: &'static [&'static str]) -> Op {
    Op {
        method,
        summary,
        roles,
        query: &[],
        body: None,
    }
}

impl Op {
    fn query(mut self, query: &'static [(&'static str, &'static str)]) -> Self {
        self.query = query;
        self
    }
    fn json(mut self, schema: Value) -> Self {
        self.body = Some(json!({"application/json": {"schema": schema}}));
        self
    }
    fn bytes(mut self) -> Self {
        self.body = Some(
            json!({"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}),
        );
        self
    }
}

/// A path, what serves it, and how it is documented.
pub struct RouteEntry {
    path: &'static str,
    handler: MethodRouter<Arc<AppState>>,
    ops: Vec<Op>,
}

fn route(path: &'static str, handler: MethodRouter<Arc<AppState>>, ops: Vec<Op>) -> RouteEntry {
    RouteEntry { path, handler, ops }
}

/// An object schema: (field, JSON type) pairs and the required ones.
fn obj(fields: &[(&str, &str)], required: &[&str]) -> Value {
    let properties: serde_json::Map<String, Value> = fields
        .iter()
        .map(|(name, kind)| {
            let schema = match *kind {
                "uuid" => json!({"type": "string", "format": "uuid"}),
                "strings" => json!({"type": "array", "items": {"type": "string"}}),
                "map" => json!({"type": "object", "additionalProperties": {"type": "string"}}),
                "object" => json!({"type": "object"}),
                "array" => json!({"type": "array"}),
                other => json!({"type": other}),
            };
            ((*name).to_owned(), schema)
        })
        .collect();
    json!({"type": "object", "properties": properties, "required": required})
}

const ANY_READER: &[&str] = &[
    "auditor",
    "operator",
    "cab",
    "admin",
    "submitter",
    "deployer",
    "incident-reporter",
];
const LOG_READER: &[&str] = &["auditor", "operator", "admin"];
const AS_OF: &[(&str, &str)] = &[("as_of", "string")];

fn log_routes() -> Vec<RouteEntry> {
    vec![
        route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
            vec![op("get", "Liveness", &[])],
        ),
        route(
            "/readyz",
            get(readyz),
            vec![op(
                "get",
                "Readiness: 503 while the log refuses writes or the projections lag",
                &[],
            )],
        ),
        route(
            "/api/v1/log/checkpoint",
            get(checkpoint),
            vec![op(
                "get",
                "The latest signed checkpoint (C2SP signed note)",
                &[],
            )],
        ),
        route(
            "/api/v1/log/key",
            get(key),
            vec![op("get", "The checkpoint verifier key", &[])],
        ),
        route(
            "/api/v1/log/proof/inclusion",
            get(inclusion),
            vec![op(
                "get",
                "RFC 9162 inclusion proof of entry seq in the tree of size",
                LOG_READER,
            )
            .query(&[("seq", "integer"), ("size", "integer")])],
        ),
        route(
            "/api/v1/log/proof/consistency",
            get(consistency),
            vec![op(
                "get",
                "RFC 9162 consistency proof from size from to size to",
                LOG_READER,
            )
            .query(&[("from", "integer"), ("to", "integer")])],
        ),
        route(
            "/api/v1/projections/fingerprint",
            get(projection_fingerprint),
            vec![op(
                "get",
                "Fingerprint of the folded projection state as of a seq or time (default: now)",
                LOG_READER,
            )
            .query(AS_OF)],
        ),
        route(
            "/api/v1/events",
            get(events_page),
            vec![op(
                "get",
                "Stored entries after a seq, as JSON Lines",
                LOG_READER,
            )
            .query(&[
                ("after", "integer"),
                ("limit", "integer"),
                ("type", "string"),
                ("subject", "string"),
            ])],
        ),
        route(
            "/api/v1/events/stream",
            get(events_stream),
            vec![op(
                "get",
                "Server-Sent Events, resumable with Last-Event-ID",
                LOG_READER,
            )
            .query(&[
                ("after", "integer"),
                ("type", "string"),
                ("subject", "string"),
            ])],
        ),
        route(
            "/metrics",
            get(metrics),
            vec![op("get", "Prometheus metrics", &[])],
        ),
        route(
            "/openapi.json",
            get(openapi),
            vec![op("get", "This document", &[])],
        ),
    ]
}

fn evidence_schema() -> Value {
    obj(
        &[
            ("artifacts", "array"),
            ("sbom", "object"),
            ("tests_passed", "integer"),
            ("tests_failed", "integer"),
            ("scan_critical_findings", "integer"),
            ("generated_by", "string"),
            ("packaged_by", "string"),
        ],
        &[
            "artifacts",
            "tests_passed",
            "tests_failed",
            "scan_critical_findings",
            "generated_by",
            "packaged_by",
        ],
    )
}

fn deployment_routes() -> Vec<RouteEntry> {
    let vote_schema = obj(
        &[("approve", "boolean"), ("rationale", "string")],
        &["approve", "rationale"],
    );
    vec![
        route(
            "/api/v1/evidence",
            post(record_evidence),
            vec![op(
                "post",
                "Record an evidence package",
                &["submitter", "operator"],
            )
            .json(evidence_schema())],
        ),
        route(
            "/api/v1/evidence/{id}",
            get(get_evidence),
            vec![op("get", "An evidence package", ANY_READER).query(AS_OF)],
        ),
        route(
            "/api/v1/deployments",
            post(submit).get(list_deployments),
            vec![
                op(
                    "post",
                    "Submit a deployment (classified, scored and gated)",
                    &["submitter"],
                )
                .json(obj(
                    &[
                        ("correlation_id", "string"),
                        ("app_name", "string"),
                        ("app_version", "string"),
                        ("requires_admin", "boolean"),
                        ("target_user_count", "integer"),
                        ("cmdb", "map"),
                        ("evidence_id", "uuid"),
                    ],
                    &[
                        "correlation_id",
                        "app_name",
                        "app_version",
                        "requires_admin",
                        "target_user_count",
                        "evidence_id",
                    ],
                )),
                op("get", "Deployments", ANY_READER).query(&[
                    ("status", "string"),
                    ("limit", "integer"),
                    ("as_of", "string"),
                ]),
            ],
        ),
        route(
            "/api/v1/deployments/{id}",
            get(get_deployment),
            vec![op("get", "A deployment with its history", ANY_READER)
                .query(&[("as_of", "string")])],
        ),
        route(
            "/api/v1/deployments/{id}/votes",
            post(vote),
            vec![op("post", "A CAB member's vote", &["cab"]).json(vote_schema.clone())],
        ),
        route(
            "/api/v1/deployments/{id}/sbom",
            put(upload_sbom).layer(DefaultBodyLimit::disable()),
            vec![op(
                "put",
                "Upload the SBOM bytes ahead of the release",
                &["deployer"],
            )
            .bytes()],
        ),
        route(
            "/api/v1/deployments/{id}/release",
            post(release).layer(DefaultBodyLimit::disable()),
            vec![op(
                "post",
                "The release gate: stream the artifact bytes",
                &["deployer"],
            )
            .bytes()],
        ),
        route(
            "/api/v1/deployments/{id}/breakglass",
            post(breakglass).layer(DefaultBodyLimit::disable()),
            vec![op(
                "post",
                "Emergency release without quorum (integrity still checked)",
                &["cab"],
            )
            .query(&[("justification", "string"), ("approvers", "string")])
            .bytes()],
        ),
        route(
            "/api/v1/deployments/{id}/breakglass/review",
            post(review_breakglass),
            vec![
                op("post", "Post-review of a break-glass release", &["cab"]).json(obj(
                    &[("justified", "boolean"), ("findings", "string")],
                    &["justified", "findings"],
                )),
            ],
        ),
        route(
            "/api/v1/deployments/{id}/classification",
            post(raise_classification),
            vec![
                op("post", "Raise the blast-radius class", &["cab"]).json(obj(
                    &[("to", "string"), ("reason", "string")],
                    &["to", "reason"],
                )),
            ],
        ),
        route(
            "/api/v1/breakglass/reviews",
            get(breakglass_reviews),
            vec![op("get", "Open and overdue break-glass reviews", ANY_READER).query(AS_OF)],
        ),
        route(
            "/api/v1/cab/queue",
            get(cab_queue),
            vec![op(
                "get",
                "Deployments pending the CAB, oldest first",
                ANY_READER,
            )
            .query(AS_OF)],
        ),
        route(
            "/api/v1/cab/members",
            post(add_member).get(list_members),
            vec![
                op("post", "Add a CAB member", &["admin"])
                    .json(obj(&[("member", "string")], &["member"])),
                op("get", "CAB members", ANY_READER).query(AS_OF),
            ],
        ),
        route(
            "/api/v1/cab/members/{member}",
            axum::routing::delete(remove_member),
            vec![op("delete", "Remove a CAB member", &["admin"])],
        ),
    ]
}

fn incident_routes() -> Vec<RouteEntry> {
    let report = || {
        obj(
            &[
                ("deployment_id", "uuid"),
                ("severity", "string"),
                ("incident_date", "string"),
                ("affected_user_count", "integer"),
                ("downtime_minutes", "integer"),
                ("business_impact_usd", "string"),
                ("preventable", "boolean"),
                ("preventability_notes", "string"),
                ("control_improvements", "strings"),
                ("incident_id", "uuid"),
            ],
            &[
                "deployment_id",
                "severity",
                "affected_user_count",
                "downtime_minutes",
                "business_impact_usd",
                "preventable",
            ],
        )
    };
    const FILTERS: &[(&str, &str)] = &[
        ("severity", "string"),
        ("blast_radius", "string"),
        ("from", "string"),
        ("to", "string"),
        ("limit", "integer"),
        ("offset", "integer"),
        ("as_of", "string"),
    ];
    let both = |path| {
        route(
            path,
            post(report_incident).get(list_incidents),
            vec![
                op(
                    "post",
                    "Report an incident (the deployment context is looked up)",
                    &["incident-reporter"],
                )
                .json(report()),
                op("get", "Incidents by severity, class and date", ANY_READER).query(FILTERS),
            ],
        )
    };
    vec![
        both("/api/v1/incidents"),
        both("/api/v1/incidents/"),
        route(
            "/api/v1/incidents/{id}",
            get(get_incident),
            vec![op("get", "An incident", ANY_READER).query(AS_OF)],
        ),
        route(
            "/api/v1/incidents/{id}/",
            get(get_incident),
            vec![op("get", "An incident", ANY_READER).query(AS_OF)],
        ),
        route(
            "/api/v1/incidents/{id}/updates",
            post(update_incident),
            vec![
                op("post", "Correct an incident", &["incident-reporter"]).json(obj(
                    &[
                        ("severity", "string"),
                        ("affected_user_count", "integer"),
                        ("downtime_minutes", "integer"),
                        ("business_impact_usd", "string"),
                        ("preventable", "boolean"),
                        ("notes", "string"),
                    ],
                    &[],
                )),
            ],
        ),
    ]
}

fn maturity_routes() -> Vec<RouteEntry> {
    let evaluate_op = || {
        op(
            "post",
            "Evaluate the maturity level now",
            &["operator", "admin", "cab"],
        )
        .json(obj(&[("strict", "boolean")], &[]))
    };
    let status_op = || {
        op(
            "get",
            "Level, thresholds in force and next-level criteria",
            ANY_READER,
        )
        .query(&[("as_of", "string"), ("strict", "boolean")])
    };
    const CLASSIFY: &[(&str, &str)] = &[
        ("app_name", "string"),
        ("requires_admin", "boolean"),
        ("target_user_count", "integer"),
        ("service_tier", "string"),
        ("as_of", "string"),
    ];
    const CALIBRATION: &[(&str, &str)] = &[
        ("class", "string"),
        ("level", "integer"),
        ("from", "string"),
        ("to", "string"),
        ("as_of", "string"),
    ];
    vec![
        route(
            "/api/v1/maturity/evaluate",
            post(evaluate),
            vec![evaluate_op()],
        ),
        route(
            "/api/v1/maturity/evaluate/",
            post(evaluate),
            vec![evaluate_op()],
        ),
        route("/api/v1/maturity/status", get(status), vec![status_op()]),
        route("/api/v1/maturity/status/", get(status), vec![status_op()]),
        route(
            "/api/v1/maturity/progression",
            post(vote_progression),
            vec![
                op("post", "A CAB member approves progression", &["cab"]).json(obj(
                    &[
                        ("to_level", "integer"),
                        ("approve", "boolean"),
                        ("rationale", "string"),
                    ],
                    &["to_level", "approve", "rationale"],
                )),
            ],
        ),
        route(
            "/api/v1/blast-radius/classify",
            get(classify),
            vec![op("get", "Classify without recording anything", ANY_READER).query(CLASSIFY)],
        ),
        route(
            "/api/v1/blast-radius/classify/",
            get(classify),
            vec![op("get", "Classify without recording anything", ANY_READER).query(CLASSIFY)],
        ),
        route(
            "/api/v1/calibration",
            get(calibration_report),
            vec![op("get", "Calibration statistics", ANY_READER).query(CALIBRATION)],
        ),
        route(
            "/api/v1/calibration/",
            get(calibration_report),
            vec![op("get", "Calibration statistics", ANY_READER).query(CALIBRATION)],
        ),
    ]
}

fn governance_routes() -> Vec<RouteEntry> {
    let reason = || obj(&[("reason", "string")], &["reason"]);
    vec![
        route(
            "/api/v1/risk-models",
            get(list_models).post(propose_model),
            vec![
                op("get", "Risk model versions", ANY_READER).query(AS_OF),
                op("post", "Propose a risk model version", &["admin", "cab"]).json(obj(
                    &[
                        ("version", "string"),
                        ("mode", "string"),
                        ("thresholds", "object"),
                        ("weights_bp", "object"),
                        ("effective_date", "string"),
                        ("review_date", "string"),
                        ("calibration_evidence", "string"),
                    ],
                    &[
                        "version",
                        "mode",
                        "thresholds",
                        "weights_bp",
                        "effective_date",
                        "review_date",
                        "calibration_evidence",
                    ],
                )),
            ],
        ),
        route(
            "/api/v1/risk-models/{version}/votes",
            post(vote_model),
            vec![
                op("post", "A CAB member's vote on a model", &["cab"]).json(obj(
                    &[("approve", "boolean"), ("rationale", "string")],
                    &["approve", "rationale"],
                )),
            ],
        ),
        route(
            "/api/v1/risk-models/{version}/activate",
            post(activate_model),
            vec![op("post", "Put a model version in force", &["admin"])],
        ),
        route(
            "/api/v1/exceptions",
            get(list_exceptions).post(grant_exception),
            vec![
                op("get", "Exceptions with their standing", ANY_READER)
                    .query(&[("expiring_within_hours", "integer"), ("as_of", "string")]),
                op(
                    "post",
                    "Grant an exception (at most 90 days, two CAB approvers)",
                    &["cab"],
                )
                .json(obj(
                    &[
                        ("control", "string"),
                        ("scope", "string"),
                        ("reason", "string"),
                        ("approvers", "strings"),
                        ("expires_at", "string"),
                    ],
                    &["control", "scope", "reason", "approvers", "expires_at"],
                )),
            ],
        ),
        route(
            "/api/v1/exceptions/{id}/revoke",
            post(revoke_exception),
            vec![op("post", "Revoke an exception", &["cab"]).json(reason())],
        ),
        route(
            "/api/v1/signing-keys",
            post(trust_key),
            vec![
                op("post", "Trust an SBOM signing key", &["admin"]).json(obj(
                    &[
                        ("key_id", "string"),
                        ("public_key_hex", "string"),
                        ("owner", "string"),
                    ],
                    &["key_id", "public_key_hex", "owner"],
                )),
            ],
        ),
        route(
            "/api/v1/signing-keys/{key_id}/revoke",
            post(revoke_key),
            vec![op("post", "Revoke an SBOM signing key", &["admin"]).json(reason())],
        ),
        route(
            "/api/v1/access/tokens",
            post(create_token),
            vec![
                op("post", "Create a bearer token (shown once)", &["admin"]).json(obj(
                    &[("principal", "string"), ("roles", "strings")],
                    &["principal", "roles"],
                )),
            ],
        ),
        route(
            "/api/v1/access/tokens/revoke",
            post(revoke_token),
            vec![op("post", "Revoke a bearer token", &["admin"]).json(obj(
                &[
                    ("principal", "string"),
                    ("token", "string"),
                    ("reason", "string"),
                ],
                &["principal", "token", "reason"],
            ))],
        ),
    ]
}

/// Every route, grouped by resource.
pub fn route_table() -> Vec<RouteEntry> {
    [
        log_routes(),
        deployment_routes(),
        incident_routes(),
        maturity_routes(),
        governance_routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
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
        .layer(DefaultBodyLimit::max(JSON_BODY_BYTES_MAX))
        .fallback(|| async { ApiError::not_found("no such route") })
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
    let mut paths = serde_json::Map::new();
    for entry in route_table() {
        let mut item = serde_json::Map::new();
        for o in &entry.ops {
            let mut parameters: Vec<Value> = entry
                .path
                .split('/')
                .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(|name| {
                    let schema = if name == "id" {
                        json!({"type": "string", "format": "uuid"})
                    } else {
                        json!({"type": "string"})
                    };
                    json!({"name": name, "in": "path", "required": true, "schema": schema})
                })
                .collect();
            parameters.extend(o.query.iter().map(|(name, kind)| json!({"name": name, "in": "query", "required": false, "schema": {"type": kind}})));
            let problem = json!({"description": "RFC 9457 problem", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}});
            let mut operation = json!({
                "summary": o.summary,
                "operationId": format!(
                    "{}_{}{}",
                    o.method,
                    entry.path.trim_matches('/').replace(['/', '{', '}', '-', '.'], "_"),
                    if entry.path.ends_with('/') { "_slash" } else { "" }
                ),
                "parameters": parameters,
                "responses": {"200": {"description": "OK"}, "201": {"description": "Created"}, "204": {"description": "No content"}, "default": problem},
                "x-roles": if o.roles.is_empty() { json!("public") } else { json!(o.roles) },
            });
            if !o.roles.is_empty() {
                operation["security"] = json!([{"bearer": []}]);
            }
            if let Some(body) = &o.body {
                operation["requestBody"] = json!({"required": true, "content": body});
            }
            item.insert(o.method.to_owned(), operation);
        }
        paths.insert(entry.path.to_owned(), Value::Object(item));
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "trustledger", "version": env!("CARGO_PKG_VERSION"), "description": "Tamper-evident deployment governance", "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Problem": {"type": "object", "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"}}, "required": ["type", "title", "status", "detail"]}},
        },
    })
}

async fn openapi() -> axum::Json<Value> {
    axum::Json(openapi_document())
}
