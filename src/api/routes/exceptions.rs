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
                    .query(&[("expiring_within_hours", "integer"), ("as_of", "string")]),
                op(
                    "post",
                    "Grant an exception (at most 90 days, two CAB approvers)",
                    &[Role::Cab],
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
            vec![op("post", "Revoke an exception", &[Role::Cab]).json(reason_schema())],
        ),
    ]
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
