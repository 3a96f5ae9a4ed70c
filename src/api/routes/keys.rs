//! SBOM signing keys: trusted and revoked.

use crate::api::*;

/// This resource's routes.
pub(super) fn routes() -> Vec<RouteEntry> {
    vec![
        route(
            "/api/v1/signing-keys",
            post(trust_key),
            vec![op("post", "Trust an SBOM signing key", &[Role::Admin])
                .body::<SigningKeyTrusted>()
                .empty(201, "Trusted")],
        ),
        route(
            "/api/v1/signing-keys/{key_id}/revoke",
            post(revoke_key),
            vec![op("post", "Revoke an SBOM signing key", &[Role::Admin])
                .body::<ReasonBody>()
                .no_content()],
        ),
    ]
}

async fn trust_key(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(k): ApiJson<SigningKeyTrusted>,
) -> Result<Response, ApiError> {
    execute(&state, caller.0, Command::TrustSigningKey(k)).await?;
    Ok(StatusCode::CREATED.into_response())
}

async fn revoke_key(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(key_id): Path<String>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> Result<StatusCode, ApiError> {
    execute(
        &state,
        caller.0,
        Command::RevokeSigningKey(SigningKeyRevoked {
            key_id,
            reason: b.reason,
        }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
