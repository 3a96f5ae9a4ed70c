//! The application registry: its entries, and changes proposed and voted on by the CAB.

use crate::api::*;

/// This resource's routes.
pub(super) fn routes() -> Vec<RouteEntry> {
    vec![
        route(
            "/api/v1/registry",
            get(list_registry),
            vec![op(
                "get",
                "The application registry and its open change proposals",
                ANY_READER,
            )
            .query(AS_OF)
            .returns::<Registry>(200, "The registry")],
        ),
        route(
            "/api/v1/registry/proposals",
            post(propose_change),
            vec![op(
                "post",
                "Propose a registry entry (new or replacing one); three other CAB members apply it with signed votes",
                &[Role::Cab],
            )
            .body::<AppEntry>()
            .returns::<RegistryProposalView>(201, "Proposed")],
        ),
        route(
            "/api/v1/registry/proposals/{id}/votes",
            post(vote_change),
            vec![op(
                "post",
                "A CAB member's signed vote on a registry change",
                &[Role::Cab],
            )
            .body::<VoteBody>()
            .returns::<RegistryProposalView>(200, "The proposal now")],
        ),
    ]
}

/// The registry.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Registry {
    /// Entries by app id.
    entries: Vec<AppEntry>,
    /// Proposals still taking votes.
    open_proposals: Vec<RegistryProposalView>,
}

/// A proposed registry change and its votes.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct RegistryProposalView {
    proposal_id: Uuid,
    /// The entry proposed.
    entry: AppEntry,
    /// Who proposed it.
    proposed_by: String,
    /// Members who approved.
    approvals: Vec<String>,
    /// Approvals it needs (the proposer never counts).
    quorum: usize,
    /// `OPEN`, `APPLIED`, `REJECTED` or `EXPIRED`.
    status: &'static str,
}

impl RegistryProposalView {
    fn of(r: &projections::state::RegistryProposal, at: Timestamp) -> Self {
        let status = if r.applied {
            "APPLIED"
        } else if r.votes.values().any(|a| !a) {
            "REJECTED"
        } else if at >= r.proposal_expires_at {
            "EXPIRED"
        } else {
            "OPEN"
        };
        Self {
            proposal_id: r.proposal.proposal_id,
            entry: r.proposal.entry.clone(),
            proposed_by: r.proposed_by.clone(),
            approvals: r
                .votes
                .iter()
                .filter(|(_, a)| **a)
                .map(|(m, _)| m.clone())
                .collect(),
            quorum: policy::registry::REGISTRY_QUORUM,
            status,
        }
    }
}

async fn list_registry(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<Registry>, ApiError> {
    caller.require(ANY_READER)?;
    let (s, at) = state_and_time(&state, q.as_of.as_deref()).await?;
    Ok(axum::Json(Registry {
        entries: s.app_registry.values().cloned().collect(),
        open_proposals: s
            .registry_proposals
            .values()
            .map(|r| RegistryProposalView::of(r, at))
            .filter(|v| v.status == "OPEN")
            .collect(),
    }))
}

/// The proposal `id` as it stands now.
fn proposal_view(state: &AppState, id: Uuid) -> Result<RegistryProposalView, ApiError> {
    let at = state.gov.current_time();
    state
        .gov
        .with_state(|s| {
            s.registry_proposals
                .get(&id)
                .map(|r| RegistryProposalView::of(r, at))
        })
        .ok_or_else(|| ApiError::not_found(format!("unknown registry proposal {id}")))
}

async fn propose_change(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(entry): ApiJson<AppEntry>,
) -> Result<Response, ApiError> {
    let proposal_id = state.gov.new_id();
    let command = Command::ProposeRegistryChange { proposal_id, entry };
    execute(&state, caller.0, command).await?;
    let view = proposal_view(&state, proposal_id)?;
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

async fn vote_change(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<VoteBody>,
) -> Result<axum::Json<RegistryProposalView>, ApiError> {
    let command = Command::VoteRegistryChange {
        proposal_id: id,
        approve: b.approve,
        rationale: b.rationale,
        signature: b.signature.map(SignatureBody::into_signed_vote),
    };
    execute(&state, caller.0, command).await?;
    Ok(axum::Json(proposal_view(&state, id)?))
}
