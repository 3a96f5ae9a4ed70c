//! Proposed changes to the CAB's membership and blast-radius policy, and the votes on them.

use crate::api::*;

/// This resource's routes.
pub(super) fn routes() -> Vec<RouteEntry> {
    vec![
        route(
            "/api/v1/cab/proposals",
            post(propose).get(list),
            vec![
                op(
                    "post",
                    "Propose a change to the CAB's membership or blast-radius policy; three other members carry it out with signed votes",
                    &[Role::Cab],
                )
                .body::<ProposedChange>()
                .returns::<ProposalView>(201, "Proposed"),
                op("get", "Open proposals", ANY_READER)
                    .query(AS_OF)
                    .returns::<Proposals>(200, "The open proposals"),
            ],
        ),
        route(
            "/api/v1/cab/proposals/{id}/votes",
            post(vote),
            vec![op(
                "post",
                "A CAB member's signed vote on a proposed change",
                &[Role::Cab],
            )
            .body::<VoteBody>()
            .returns::<ProposalView>(200, "The proposal now")],
        ),
    ]
}

/// Open proposals.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Proposals {
    open: Vec<ProposalView>,
}

/// A proposed change and its votes.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct ProposalView {
    proposal_id: Uuid,
    change: ProposedChange,
    proposed_by: String,
    /// Members who approved.
    approvals: Vec<String>,
    /// Approvals it needs (the proposer never counts).
    quorum: usize,
    /// `OPEN`, `APPLIED`, `REJECTED` or `EXPIRED`.
    status: &'static str,
}

impl ProposalView {
    fn of(c: &projections::state::ChangeProposal, at: Timestamp) -> Self {
        let status = if c.applied {
            "APPLIED"
        } else if c.votes.values().any(|a| !a) {
            "REJECTED"
        } else if at >= c.proposal_expires_at {
            "EXPIRED"
        } else {
            "OPEN"
        };
        Self {
            proposal_id: c.proposal.proposal_id,
            change: c.proposal.change.clone(),
            proposed_by: c.proposed_by.clone(),
            approvals: c
                .votes
                .iter()
                .filter(|(_, a)| **a)
                .map(|(m, _)| m.clone())
                .collect(),
            quorum: policy::CHANGE_QUORUM,
            status,
        }
    }
}

fn view(state: &AppState, id: Uuid) -> Result<ProposalView, ApiError> {
    let at = state.gov.current_time();
    state
        .gov
        .with_state(|s| s.change_proposals.get(&id).map(|c| ProposalView::of(c, at)))
        .ok_or_else(|| ApiError::not_found(format!("unknown proposal {id}")))
}

async fn propose(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(change): ApiJson<ProposedChange>,
) -> Result<Response, ApiError> {
    let proposal_id = state.gov.new_id();
    let command = Command::ProposeChange {
        proposal_id,
        change,
    };
    execute(&state, caller.0, command).await?;
    Ok((StatusCode::CREATED, axum::Json(view(&state, proposal_id)?)).into_response())
}

async fn list(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<Proposals>, ApiError> {
    caller.require(ANY_READER)?;
    let (s, at) = state_and_time(&state, q.as_of.as_deref()).await?;
    Ok(axum::Json(Proposals {
        open: s
            .change_proposals
            .values()
            .map(|c| ProposalView::of(c, at))
            .filter(|v| v.status == "OPEN")
            .collect(),
    }))
}

async fn vote(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<VoteBody>,
) -> Result<axum::Json<ProposalView>, ApiError> {
    let command = Command::VoteChange {
        proposal_id: id,
        approve: b.approve,
        rationale: b.rationale,
        signature: b.signature.map(SignatureBody::into_signed_vote),
    };
    execute(&state, caller.0, command).await?;
    Ok(axum::Json(view(&state, id)?))
}
