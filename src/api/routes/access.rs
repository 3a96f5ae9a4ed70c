//! Bearer tokens: granted (shown once) and revoked.

use crate::api::*;

/// This resource's routes.
pub(super) fn routes() -> Vec<RouteEntry> {
    vec![
        route(
            "/api/v1/access/tokens",
            post(create_token),
            vec![
                op("post", "Create a bearer token (shown once)", &[Role::Admin])
                    .body::<TokenBody>()
                    .returns::<CreatedToken>(201, "The token, shown once"),
            ],
        ),
        route(
            "/api/v1/access/tokens/revoke",
            post(revoke_token),
            vec![op("post", "Revoke a bearer token", &[Role::Admin])
                .body::<RevokeTokenBody>()
                .no_content()],
        ),
    ]
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    principal: String,
    roles: Vec<String>,
}

/// A new bearer token, shown this once.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct CreatedToken {
    /// Whose it is.
    principal: String,
    /// The token itself (only its SHA-256 is recorded).
    token: String,
    /// Its id: the SHA-256, by which it can be revoked.
    token_sha256: String,
}

async fn create_token(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(b): ApiJson<TokenBody>,
) -> Result<Response, ApiError> {
    let (token, token_sha256) = crate::governance::new_token();
    let grant = events::catalogue::access::AccessGranted {
        principal: b.principal.clone(),
        roles: b.roles,
        token_sha256: token_sha256.clone(),
    };
    execute(&state, caller.0, Command::GrantAccess(grant)).await?;
    // The only time the token is ever shown; no cache may keep it.
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(CreatedToken {
            principal: b.principal,
            token,
            token_sha256,
        }),
    )
        .into_response())
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RevokeTokenBody {
    /// Whose token.
    principal: String,
    /// The token's id (its SHA-256, as recorded and as shown at creation). Without it, the
    /// principal's token in force is revoked. The raw token is never needed.
    token_sha256: Option<String>,
    reason: String,
}

async fn revoke_token(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(b): ApiJson<RevokeTokenBody>,
) -> Result<StatusCode, ApiError> {
    let token_sha256 = match b.token_sha256 {
        Some(id) => id,
        None => state
            .gov
            .with_state(|s| crate::governance::token_in_force(s, &b.principal))
            .ok_or_else(|| {
                ApiError::not_found(format!("{} holds no token in force", b.principal))
            })?,
    };
    let revoke = events::catalogue::access::AccessRevoked {
        principal: b.principal,
        token_sha256,
        reason: b.reason,
    };
    execute(&state, caller.0, Command::RevokeAccess(revoke)).await?;
    Ok(StatusCode::NO_CONTENT)
}
