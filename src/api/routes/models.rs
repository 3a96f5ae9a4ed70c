//! Risk models: proposals, votes, activation.

use crate::api::*;

/// This resource's routes.
pub(super) fn routes() -> Vec<RouteEntry> {
    vec![
        route(
            "/api/v1/risk-models",
            get(list_models).post(propose_model),
            vec![
                op("get", "Risk model versions", ANY_READER)
                    .query(AS_OF)
                    .returns::<Models>(200, "The versions"),
                op(
                    "post",
                    "Propose a risk model version",
                    &[Role::Admin, Role::Cab],
                )
                .body::<RiskModelProposed>()
                .empty(201, "Proposed"),
            ],
        ),
        route(
            "/api/v1/risk-models/{version}/votes",
            post(vote_model),
            vec![op("post", "A CAB member's vote on a model", &[Role::Cab])
                .body::<VoteBody>()
                .returns::<ModelVoted>(200, "The vote's effect")],
        ),
        route(
            "/api/v1/risk-models/{version}/activate",
            post(activate_model),
            vec![op("post", "Put a model version in force", &[Role::Admin])
                .returns::<ActiveModel>(200, "The version in force")],
        ),
    ]
}

/// The model versions and which is in force.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Models {
    /// The version in force.
    active: Option<String>,
    /// Every version proposed.
    models: Vec<ModelView>,
}

/// One model version.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct ModelView {
    /// The proposal as recorded.
    model: RiskModelProposed,
    proposed_by: String,
    /// Votes by CAB member: approve?
    votes: BTreeMap<String, bool>,
    /// The approvers, once a quorum approved it.
    approved_by: Option<Vec<String>>,
    /// Whether it is the version in force.
    active: bool,
}

/// A model vote's effect.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct ModelVoted {
    version: String,
    /// The approvers, once a quorum approved it.
    approved_by: Option<Vec<String>>,
}

/// The model version in force.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct ActiveModel {
    active: Option<String>,
}

async fn list_models(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<Models>, ApiError> {
    caller.require(ANY_READER)?;
    let s = state_as_of(&state, q.as_of.as_deref()).await?;
    let models = s
        .models
        .values()
        .map(|m| ModelView {
            model: m.proposal.clone(),
            proposed_by: m.proposed_by.clone(),
            votes: m.votes.clone(),
            approved_by: m.approved_by.clone(),
            active: s.active_model.as_deref() == Some(m.proposal.version.as_str()),
        })
        .collect();
    Ok(axum::Json(Models {
        active: s.active_model.clone(),
        models,
    }))
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
) -> Result<axum::Json<ModelVoted>, ApiError> {
    execute(
        &state,
        caller.0,
        Command::VoteRiskModel {
            version: version.clone(),
            approve: b.approve,
            rationale: b.rationale,
            signature: b.signature.map(SignatureBody::into_signed_vote),
        },
    )
    .await?;
    let approved_by = state
        .gov
        .with_state(|s| s.models.get(&version).and_then(|m| m.approved_by.clone()));
    Ok(axum::Json(ModelVoted {
        version,
        approved_by,
    }))
}

async fn activate_model(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(version): Path<String>,
) -> Result<axum::Json<ActiveModel>, ApiError> {
    execute(&state, caller.0, Command::ActivateRiskModel { version }).await?;
    Ok(axum::Json(ActiveModel {
        active: state.gov.with_state(|s| s.active_model.clone()),
    }))
}
