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
                .body::<SubmitDeployment>()
                .returns::<DeploymentView>(201, "Submitted")
                .returns::<DeploymentView>(200, "A retry of an earlier submission"),
                op("get", "Deployments", ANY_READER)
                    .query(&[
                        ("status", "string"),
                        ("limit", "integer"),
                        ("as_of", "string"),
                    ])
                    .returns::<Deployments>(200, "A page of deployments"),
            ],
        ),
        route(
            "/api/v1/deployments/{id}",
            get(get_deployment),
            vec![op("get", "A deployment with its history", ANY_READER)
                .query(&[("as_of", "string")])
                .returns::<DeploymentView>(200, "The deployment")],
        ),
        route(
            "/api/v1/deployments/{id}/votes",
            post(vote),
            vec![op("post", "A CAB member's vote", &[Role::Cab])
                .body::<VoteBody>()
                .returns::<DeploymentView>(200, "The deployment after the vote")],
        ),
        route(
            "/api/v1/deployments/{id}/sbom",
            put(upload_sbom).layer(DefaultBodyLimit::disable()),
            vec![op(
                "put",
                "Upload the SBOM bytes ahead of the release",
                &[Role::Deployer],
            )
            .bytes()
            .returns::<SbomAccepted>(202, "Recorded for the next release attempt")],
        ),
        route(
            "/api/v1/deployments/{id}/release",
            post(release).layer(DefaultBodyLimit::disable()),
            vec![op(
                "post",
                "The release gate: stream the artifact bytes",
                &[Role::Deployer],
            )
            .bytes()
            .returns::<ReleaseOutcome>(200, "The verdict, released or blocked")],
        ),
        route(
            "/api/v1/deployments/{id}/breakglass",
            post(breakglass).layer(DefaultBodyLimit::disable()),
            vec![op(
                "post",
                "Emergency release without quorum (integrity still checked); a quorum of other members reviews it within 72 hours",
                &[Role::Cab],
            )
            .query(&[("justification", "string"), ("approvers", "string")])
            .bytes()
            .returns::<DeploymentView>(200, "Released by break-glass")],
        ),
        route(
            "/api/v1/deployments/{id}/breakglass/review",
            post(review_breakglass),
            vec![
                op("post", "Post-review of a break-glass release", &[Role::Cab])
                    .body::<ReviewBody>()
                    .no_content(),
            ],
        ),
        route(
            "/api/v1/deployments/{id}/breakglass/votes",
            post(vote_breakglass_review),
            vec![op(
                "post",
                "A CAB member's signed review of a break-glass release (approve: it was justified)",
                &[Role::Cab],
            )
            .body::<VoteBody>()
            .returns::<DeploymentView>(200, "The deployment")],
        ),
        route(
            "/api/v1/deployments/{id}/classification",
            post(raise_classification),
            vec![op("post", "Raise the blast-radius class", &[Role::Cab])
                .body::<RaiseBody>()
                .returns::<DeploymentView>(200, "The deployment, back to the CAB")],
        ),
        route(
            "/api/v1/breakglass/reviews",
            get(breakglass_reviews),
            vec![
                op("get", "Open and overdue break-glass reviews", ANY_READER)
                    .query(AS_OF)
                    .returns::<OpenReviews>(200, "The open reviews"),
            ],
        ),
    ]
}

/// A deployment: its submission, class, score with every factor, gate, votes and history. The
/// state keeps what decisions read; the submission's other details and the types of the
/// history's entries are read back from the log by seq, so handlers render a copied record
/// after releasing the state (log reads must not hold up commands).
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct DeploymentView {
    deployment_id: Uuid,
    status: &'static str,
    app_name: String,
    app_version: Option<String>,
    submitter: String,
    submitted_at: String,
    /// Its blast-radius class.
    class: &'static str,
    /// The classification rule that gave the class at submission.
    classification_rule: Option<String>,
    /// The score (0–100, two decimals), derived from the factors.
    score: Option<String>,
    factors: Option<Vec<RiskFactor>>,
    model_version: String,
    gate: Option<GateDecision>,
    votes: Vec<VoteView>,
    approval_expires_at: Option<String>,
    released_at: Option<String>,
    blocked_releases: u32,
    incidents: Vec<Uuid>,
    /// Its entries, in order.
    history: Vec<HistoryItem>,
}

/// A CAB member's vote.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct VoteView {
    member: String,
    approve: bool,
    rationale: String,
}

/// One entry of a deployment's history.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct HistoryItem {
    seq: u64,
    /// The entry's type.
    r#type: String,
}

/// A page of deployments, and how many wait for the CAB.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Deployments {
    deployments: Vec<DeploymentView>,
    cab_queue: usize,
}

/// An SBOM upload, recorded for the next release attempt.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct SbomAccepted {
    /// SHA-256 of the bytes received.
    sbom_sha256: String,
    size: u64,
    /// The seqs of the entries that record it.
    seqs: Vec<u64>,
}

/// The release gate's verdict.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct ReleaseOutcome {
    released: bool,
    /// Every check, as recorded (absent for a retry that recorded nothing).
    checks: Option<Vec<GateCheck>>,
    deployment: DeploymentView,
}

/// Break-glass releases waiting for their review.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct OpenReviews {
    as_of: String,
    open: Vec<OpenReview>,
}

/// One break-glass release waiting for its review.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct OpenReview {
    deployment_id: Uuid,
    /// When the review is due.
    due: String,
    overdue: bool,
}

fn deployment_view(log: &events::Log, id: &Uuid, d: &DeploymentRecord) -> DeploymentView {
    let history: Vec<events::Entry> = d
        .history
        .iter()
        .filter_map(|seq| log.get(*seq).ok().flatten())
        .collect();
    let submitted = history.first().and_then(|e| match Payload::decode(e) {
        Ok(Some(Payload::DeploymentSubmitted(p))) => Some(p),
        _ => None,
    });
    DeploymentView {
        deployment_id: *id,
        status: d.status.as_str(),
        app_name: d.submitted.app_name.clone(),
        app_version: submitted.as_ref().map(|p| p.app_version.clone()),
        submitter: d.submitter.clone(),
        submitted_at: d.submitted_at.to_string(),
        class: d.class.as_str(),
        classification_rule: submitted.as_ref().map(|p| p.classification.rule.clone()),
        score: submitted.as_ref().map(|p| p.score.clone()),
        factors: submitted.map(|p| p.factors),
        model_version: d.submitted.model_version.clone(),
        gate: d.gate.clone(),
        votes: d
            .votes
            .iter()
            .map(|(member, (approve, rationale))| VoteView {
                member: member.clone(),
                approve: *approve,
                rationale: rationale.clone(),
            })
            .collect(),
        approval_expires_at: d.approval.as_ref().map(|(_, t)| t.to_string()),
        released_at: d.released_at.map(|t| t.to_string()),
        blocked_releases: d.blocked_releases,
        incidents: d.incidents.clone(),
        history: history
            .iter()
            .map(|e| HistoryItem {
                seq: e.seq,
                r#type: e.event_type.clone(),
            })
            .collect(),
    }
}

/// The live record of a deployment, rendered once the state lock is released (`Null` if unknown).
/// The deployment as it now stands; the caller's command was just decided, so it exists.
fn current_deployment(state: &AppState, id: &Uuid) -> Result<DeploymentView, ApiError> {
    state
        .gov
        .with_state(|s| s.deployments.get(id).map(Cow::into_owned))
        .map(|d| deployment_view(state.gov.log(), id, &d))
        .ok_or_else(|| ApiError::not_found(format!("unknown deployment {id}")))
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
    let body = current_deployment(&state, &id)?;
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
) -> Result<axum::Json<Deployments>, ApiError> {
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
    let deployments = records
        .iter()
        .map(|(id, d)| deployment_view(state.gov.log(), id, d))
        .collect();
    Ok(axum::Json(Deployments {
        deployments,
        cab_queue,
    }))
}

async fn get_deployment(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<DeploymentView>, ApiError> {
    caller.require(ANY_READER)?;
    let record = state_as_of(&state, q.as_of.as_deref())
        .await?
        .deployments
        .get(&id)
        .map(Cow::into_owned)
        .ok_or_else(|| ApiError::not_found(format!("unknown deployment {id}")))?;
    Ok(axum::Json(deployment_view(state.gov.log(), &id, &record)))
}

async fn vote(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<VoteBody>,
) -> Result<axum::Json<DeploymentView>, ApiError> {
    execute(
        &state,
        caller.0,
        Command::Vote {
            deployment_id: id,
            approve: b.approve,
            rationale: b.rationale,
            signature: b.signature.map(SignatureBody::into_signed_vote),
        },
    )
    .await?;
    Ok(axum::Json(current_deployment(&state, &id)?))
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
        axum::Json(SbomAccepted {
            sbom_sha256: sha256,
            size,
            seqs: appended_seqs(&outcome),
        }),
    )
        .into_response())
}

async fn release(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    body: axum::body::Body,
) -> Result<axum::Json<ReleaseOutcome>, ApiError> {
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
    let deployment = current_deployment(&state, &id)?;
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
    Ok(axum::Json(ReleaseOutcome {
        released: deployment.released_at.is_some(),
        checks,
        deployment,
    }))
}

#[derive(Deserialize)]
struct BreakglassQuery {
    justification: String,
    /// Only on a log begun before signed votes: comma-separated CAB approvers (the caller
    /// among them).
    #[serde(default)]
    approvers: String,
}

async fn breakglass(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    Query(q): Query<BreakglassQuery>,
    body: axum::body::Body,
) -> Result<axum::Json<DeploymentView>, ApiError> {
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
    Ok(axum::Json(current_deployment(&state, &id)?))
}

#[derive(Deserialize, schemars::JsonSchema)]
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

async fn vote_breakglass_review(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<VoteBody>,
) -> Result<axum::Json<DeploymentView>, ApiError> {
    let command = Command::VoteBreakglassReview {
        deployment_id: id,
        justified: b.approve,
        findings: b.rationale,
        signature: b.signature.map(SignatureBody::into_signed_vote),
    };
    execute(&state, caller.0, command).await?;
    Ok(axum::Json(current_deployment(&state, &id)?))
}

async fn breakglass_reviews(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<OpenReviews>, ApiError> {
    caller.require(ANY_READER)?;
    let (s, at) = state_and_time(&state, q.as_of.as_deref()).await?;
    let open = views::open_breakglass_reviews(&s, at);
    Ok(axum::Json(OpenReviews {
        as_of: at.to_string(),
        open: open
            .into_iter()
            .map(|(deployment_id, due, overdue)| OpenReview {
                deployment_id,
                due: due.to_string(),
                overdue,
            })
            .collect(),
    }))
}

#[derive(Deserialize, schemars::JsonSchema)]
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
) -> Result<axum::Json<DeploymentView>, ApiError> {
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
    Ok(axum::Json(current_deployment(&state, &id)?))
}
