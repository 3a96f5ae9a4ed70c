//! Exceptions: grants, revocations, standing.

use crate::api::*;

/// This resource's routes.
pub(super) fn routes() -> Vec<RouteEntry> {
    vec![
        route(
            "/api/v1/exceptions",
            get(list_exceptions).post(grant_exception),
            vec![
                op("get", "Exceptions with their standing", ANY_READER)
                    .query(&[("expiring_within_hours", "integer"), ("as_of", "string")])
                    .returns::<Exceptions>(200, "The exceptions"),
                op(
                    "post",
                    "Propose an exception (at most 90 days); two other CAB members grant it with their signed votes",
                    &[Role::Cab],
                )
                .body::<ExceptionBody>()
                .returns::<Granted>(201, "Proposed (or, on a log begun before signed votes, granted)"),
            ],
        ),
        route(
            "/api/v1/exceptions/{id}/votes",
            post(vote_exception),
            vec![op(
                "post",
                "A CAB member's signed vote on a proposed exception",
                &[Role::Cab],
            )
            .body::<VoteBody>()
            .returns::<ProposalView>(200, "The proposal now")],
        ),
        route(
            "/api/v1/exceptions/{id}/revoke",
            post(revoke_exception),
            vec![op("post", "Revoke an exception", &[Role::Cab])
                .body::<ReasonBody>()
                .no_content()],
        ),
    ]
}

#[derive(Deserialize)]
struct ExceptionsQuery {
    expiring_within_hours: Option<u32>,
    as_of: Option<String>,
}

/// Exceptions and where each stands.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Exceptions {
    /// The time they are judged at.
    as_of: String,
    exceptions: Vec<ExceptionView>,
    /// Proposals still taking votes.
    open_proposals: Vec<ProposalView>,
}

/// A proposed exception and its votes.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct ProposalView {
    /// As proposed.
    proposal: ExceptionProposed,
    /// Who proposed it.
    proposed_by: String,
    /// Members who approved.
    approvals: Vec<String>,
    /// Approvals it needs (the proposer never counts).
    quorum: usize,
    /// `OPEN`, `GRANTED`, `REJECTED` or `EXPIRED`.
    status: &'static str,
}

impl ProposalView {
    fn of(s: &GovernanceState, e: &projections::state::ExceptionProposal, at: Timestamp) -> Self {
        let id = e.proposal.exception_id;
        let status = if s.exceptions.contains_key(&id) {
            "GRANTED"
        } else if e.votes.values().any(|a| !a) {
            "REJECTED"
        } else if at >= e.proposal_expires_at {
            "EXPIRED"
        } else {
            "OPEN"
        };
        Self {
            proposal: e.proposal.clone(),
            proposed_by: e.proposed_by.clone(),
            approvals: e
                .votes
                .iter()
                .filter(|(_, a)| **a)
                .map(|(m, _)| m.clone())
                .collect(),
            quorum: policy::EXCEPTION_QUORUM,
            status,
        }
    }
}

/// One exception.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct ExceptionView {
    /// As granted.
    exception: ExceptionGranted,
    /// `ACTIVE`, `EXPIRING`, `EXPIRED` or `REVOKED`.
    standing: String,
}

/// A new exception's id.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Granted {
    exception_id: Uuid,
    /// `PROPOSED` (it takes votes) or `GRANTED` (a log begun before signed votes).
    status: &'static str,
}

async fn list_exceptions(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<ExceptionsQuery>,
) -> Result<axum::Json<Exceptions>, ApiError> {
    caller.require(ANY_READER)?;
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
    let exceptions = views::exceptions(&s, at, within)
        .into_iter()
        .map(|(e, standing)| ExceptionView {
            exception: e.granted.clone(),
            standing: format!("{standing:?}").to_uppercase(),
        })
        .collect();
    let open_proposals = s
        .exception_proposals
        .values()
        .map(|e| ProposalView::of(&s, e, at))
        .filter(|p| p.status == "OPEN")
        .collect();
    Ok(axum::Json(Exceptions {
        as_of: at.to_string(),
        exceptions,
        open_proposals,
    }))
}

/// An exception to propose.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ExceptionBody {
    /// The control to waive: `sbom_hash`, `sbom_signature`, `blast_radius` or `approval`.
    control: String,
    /// An app name, or `deployment:<id>`.
    scope: String,
    reason: String,
    /// Only on a log begun before signed votes: the approvers a direct grant names (the caller
    /// among them). On every other log, omit it: each approver votes.
    #[serde(default)]
    approvers: Option<Vec<String>>,
    expires_at: String,
}

async fn grant_exception(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(b): ApiJson<ExceptionBody>,
) -> Result<Response, ApiError> {
    let exception_id = state.gov.new_id();
    let expires_at = parse_time("expires_at", &b.expires_at)?;
    let (command, status) = match b.approvers {
        Some(approvers) => (
            Command::GrantException {
                exception_id,
                control: b.control,
                scope: b.scope,
                reason: b.reason,
                approvers,
                expires_at,
            },
            "GRANTED",
        ),
        None => (
            Command::ProposeException {
                exception_id,
                control: b.control,
                scope: b.scope,
                reason: b.reason,
                expires_at,
            },
            "PROPOSED",
        ),
    };
    execute(&state, caller.0, command).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Granted {
            exception_id,
            status,
        }),
    )
        .into_response())
}

async fn vote_exception(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<VoteBody>,
) -> Result<axum::Json<ProposalView>, ApiError> {
    let command = Command::VoteException {
        exception_id: id,
        approve: b.approve,
        rationale: b.rationale,
        signature: b.signature.map(SignatureBody::into_signed_vote),
    };
    execute(&state, caller.0, command).await?;
    let at = state.gov.current_time();
    state
        .gov
        .with_state(|s| {
            s.exception_proposals
                .get(&id)
                .map(|e| ProposalView::of(s, e, at))
        })
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found(format!("unknown exception proposal {id}")))
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
