//! The log: signed checkpoints and the verifier key, inclusion and consistency proofs, pages of
//! entries, the live stream, the projections' fingerprint.

use crate::api::*;

/// This resource's routes.
pub(super) fn routes() -> Vec<RouteEntry> {
    vec![
        route(
            "/api/v1/log/checkpoint",
            get(checkpoint),
            vec![op(
                "get",
                "The latest signed checkpoint (C2SP signed note)",
                &[],
            )
            .returns_text(200, "The signed note", "text/plain")],
        ),
        route(
            "/api/v1/log/key",
            get(key),
            vec![op("get", "The checkpoint verifier key", &[]).returns_text(
                200,
                "The verifier key",
                "text/plain",
            )],
        ),
        route(
            "/api/v1/log/witnesses",
            get(witnesses),
            vec![op(
                "get",
                "The witness policy, the published size and each witness's cosigned size, lag and last error",
                &[],
            )
            .returns::<crate::witnessing::WitnessingStatus>(200, "The witnessing status")],
        ),
        route(
            "/api/v1/log/receipt",
            get(receipt),
            vec![op(
                "get",
                "A C2SP tlog-proof receipt that entry seq is in the log, against the published checkpoint (cosigned by the witnesses when the log has any)",
                LOG_READER,
            )
            .query(&[("seq", "integer")])
            .returns_text(200, "The receipt (.tlog-proof)", "text/plain")],
        ),
        route(
            "/api/v1/log/proof/inclusion",
            get(inclusion),
            vec![op(
                "get",
                "RFC 9162 inclusion proof of entry seq in the tree of size",
                LOG_READER,
            )
            .query(&[("seq", "integer"), ("size", "integer")])
            .returns::<InclusionProof>(200, "The proof")],
        ),
        route(
            "/api/v1/log/proof/consistency",
            get(consistency),
            vec![op(
                "get",
                "RFC 9162 consistency proof from size from to size to",
                LOG_READER,
            )
            .query(&[("from", "integer"), ("to", "integer")])
            .returns::<ConsistencyProof>(200, "The proof")],
        ),
        route(
            "/api/v1/projections/fingerprint",
            get(projection_fingerprint),
            vec![op(
                "get",
                "Fingerprint of the folded projection state as of a seq or time (default: now)",
                LOG_READER,
            )
            .query(AS_OF)
            .returns::<Fingerprint>(200, "The fingerprint")],
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
            ])
            .returns_text(
                200,
                "The entries' stored bytes, one per line",
                "application/jsonl",
            )],
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
            ])
            .returns_text(200, "One event per entry", "text/event-stream")],
        ),
    ]
}

/// An RFC 9162 inclusion proof (hashes in lowercase hex).
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct InclusionProof {
    seq: u64,
    /// The tree size it is proven against.
    size: u64,
    leaf_hash: String,
    root: String,
    proof: Vec<String>,
}

/// An RFC 9162 consistency proof (hashes in lowercase hex).
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct ConsistencyProof {
    from: u64,
    to: u64,
    from_root: String,
    to_root: String,
    proof: Vec<String>,
}

/// The fingerprint of the folded state, to compare with a rebuild.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Fingerprint {
    /// The last seq folded.
    seq: Option<u64>,
    /// SHA-256 of the state's canonical encoding.
    fingerprint: String,
    projection_version: u32,
}

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

async fn witnesses(
    State(state): State<Arc<AppState>>,
) -> Result<axum::Json<crate::witnessing::WitnessingStatus>, ApiError> {
    let witnessing = state
        .witnessing
        .as_ref()
        .ok_or_else(|| ApiError::not_found("this log has no witnesses configured"))?;
    Ok(axum::Json(witnessing.status()))
}

#[derive(Deserialize)]
struct InclusionQuery {
    seq: u64,
    size: u64,
}

#[derive(Deserialize)]
struct ReceiptQuery {
    seq: u64,
}

async fn receipt(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<ReceiptQuery>,
) -> Result<Response, ApiError> {
    caller.require(LOG_READER)?;
    let log = state.gov.log();
    let (note, verifier) = state
        .published_checkpoint()?
        .zip(log.verifier())
        .ok_or_else(|| ApiError::not_found("no published checkpoint yet"))?;
    let checkpoint = events::checkpoint::Checkpoint::verify(&note, verifier).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the stored checkpoint does not verify: {e}"),
        )
    })?;
    if q.seq >= checkpoint.size {
        return Err(ApiError::not_found(format!(
            "entry {} is not in the latest checkpoint (size {}) yet",
            q.seq, checkpoint.size
        )));
    }
    let receipt = events::receipt::Receipt {
        index: q.seq,
        proof: log.inclusion_proof(q.seq, checkpoint.size)?,
        checkpoint: note,
    };
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        receipt.to_text(),
    )
        .into_response())
}

async fn inclusion(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<InclusionQuery>,
) -> Result<axum::Json<InclusionProof>, ApiError> {
    caller.require(LOG_READER)?;
    let log = state.gov.log();
    let proof = log.inclusion_proof(q.seq, q.size)?;
    let entry = log
        .get(q.seq)?
        .ok_or_else(|| ApiError::not_found("no such entry"))?;
    Ok(axum::Json(InclusionProof {
        seq: q.seq,
        size: q.size,
        leaf_hash: events::merkle::leaf_hash(entry.bytes()).to_hex(),
        root: log.root_at(q.size)?.to_hex(),
        proof: proof.iter().map(|d| d.to_hex()).collect(),
    }))
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
) -> Result<axum::Json<ConsistencyProof>, ApiError> {
    caller.require(LOG_READER)?;
    let log = state.gov.log();
    let proof = log.consistency_proof(q.from, q.to)?;
    Ok(axum::Json(ConsistencyProof {
        from: q.from,
        to: q.to,
        from_root: log.root_at(q.from)?.to_hex(),
        to_root: log.root_at(q.to)?.to_hex(),
        proof: proof.iter().map(|d| d.to_hex()).collect(),
    }))
}

/// The projection fingerprint (a hash of the canonical folded state) as of a seq, or now, so an
/// auditor can compare an independent rebuild with what this service serves.
async fn projection_fingerprint(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<Fingerprint>, ApiError> {
    caller.require(LOG_READER)?;
    let s = state_as_of(&state, q.as_of.as_deref()).await?;
    Ok(axum::Json(Fingerprint {
        seq: s.last_seq,
        fingerprint: projections::snapshot::fingerprint(&s).to_hex(),
        projection_version: projections::snapshot::PROJECTION_VERSION,
    }))
}

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
    caller.require(LOG_READER)?;
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
    caller.require(LOG_READER)?;
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
