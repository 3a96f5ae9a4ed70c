//! Deployments: submission, votes, classification, SBOM and artifact uploads, the release gate,
//! break-glass and its review.

use crate::api::*;

/// This resource's routes.
pub(super) fn routes() -> Vec<RouteEntry> {
    vec![
        route(
            "/api/v1/deployments",
            post(submit).get(list_deployments),
            vec![
                op(
                    "post",
                    "Submit a deployment (classified, scored and gated)",
                    &[Role::Submitter],
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
            vec![op("post", "A CAB member's vote", &[Role::Cab]).json(vote_schema())],
        ),
        route(
            "/api/v1/deployments/{id}/sbom",
            put(upload_sbom).layer(DefaultBodyLimit::disable()),
            vec![op(
                "put",
                "Upload the SBOM bytes ahead of the release",
                &[Role::Deployer],
            )
            .bytes()],
        ),
        route(
            "/api/v1/deployments/{id}/release",
            post(release).layer(DefaultBodyLimit::disable()),
            vec![op(
                "post",
                "The release gate: stream the artifact bytes",
                &[Role::Deployer],
            )
            .bytes()],
        ),
        route(
            "/api/v1/deployments/{id}/breakglass",
            post(breakglass).layer(DefaultBodyLimit::disable()),
            vec![op(
                "post",
                "Emergency release without quorum (integrity still checked)",
                &[Role::Cab],
            )
            .query(&[("justification", "string"), ("approvers", "string")])
            .bytes()],
        ),
        route(
            "/api/v1/deployments/{id}/breakglass/review",
            post(review_breakglass),
            vec![
                op("post", "Post-review of a break-glass release", &[Role::Cab]).json(obj(
                    &[("justified", "boolean"), ("findings", "string")],
                    &["justified", "findings"],
                )),
            ],
        ),
        route(
            "/api/v1/deployments/{id}/classification",
            post(raise_classification),
            vec![
                op("post", "Raise the blast-radius class", &[Role::Cab]).json(obj(
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
    ]
}

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
    caller.require(ANY_READER)?;
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
    caller.require(ANY_READER)?;
    let record = state_as_of(&state, q.as_of.as_deref())
        .await?
        .deployments
        .get(&id)
        .map(Cow::into_owned)
        .ok_or_else(|| ApiError::not_found(format!("unknown deployment {id}")))?;
    Ok(axum::Json(deployment_json(state.gov.log(), &id, &record)))
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
    caller.require(ANY_READER)?;
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
