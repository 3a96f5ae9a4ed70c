//! Risk models: proposals, votes, activation.

use crate::api::*;

/// This resource's routes.
pub(super) fn routes() -> Vec<RouteEntry> {
    vec![
        route(
            "/api/v1/risk-models",
            get(list_models).post(propose_model),
            vec![
                op("get", "Risk model versions", ANY_READER).query(AS_OF),
                op(
                    "post",
                    "Propose a risk model version",
                    &[Role::Admin, Role::Cab],
                )
                .json(obj(
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
                op("post", "A CAB member's vote on a model", &[Role::Cab]).json(obj(
                    &[("approve", "boolean"), ("rationale", "string")],
                    &["approve", "rationale"],
                )),
            ],
        ),
        route(
            "/api/v1/risk-models/{version}/activate",
            post(activate_model),
            vec![op("post", "Put a model version in force", &[Role::Admin])],
        ),
    ]
}

async fn list_models(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(ANY_READER)?;
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
