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
                    "Grant an exception (at most 90 days, two CAB approvers)",
                    &[Role::Cab],
                )
                .body::<ExceptionBody>()
                .returns::<Granted>(201, "Granted"),
            ],
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
    Ok(axum::Json(Exceptions {
        as_of: at.to_string(),
        exceptions,
    }))
}

#[derive(Deserialize, schemars::JsonSchema)]
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
    Ok((StatusCode::CREATED, axum::Json(Granted { exception_id })).into_response())
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
