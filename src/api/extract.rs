//! Extractors whose rejections are problems: JSON bodies, and the authenticated caller.

use super::error::ApiError;
use super::{AppState, JSON_BODY_BYTES_MAX};
use crate::governance::{authenticate, Principal, Role};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use std::sync::Arc;

/// `Json` whose rejections are problems too, and which takes only a JSON object (serde would
/// accept an array for a struct, field by field in order).
pub struct ApiJson<T>(pub T);

fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(mime) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "the body must be sent as Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload-too-large",
                        format!("bodies are limited to {JSON_BODY_BYTES_MAX} bytes"),
                    )
                } else {
                    ApiError::bad_request(e.body_text())
                }
            })?;
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|b| *b != b'{')
            && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok()
        {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-body",
                "the body must be a JSON object",
            ));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-body",
                e.body_text(),
            )),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::bad_request(e.body_text())),
            Err(JsonRejection::MissingJsonContentType(e)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                e.body_text(),
            )),
            Err(JsonRejection::BytesRejection(e))
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload-too-large",
                    format!("bodies are limited to {JSON_BODY_BYTES_MAX} bytes"),
                ))
            }
            Err(other) => Err(ApiError::bad_request(other.body_text())),
        }
    }
}

/// The authenticated caller.
pub struct Caller(pub Principal);

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        // Routes that need a role were authenticated before their handler ran.
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(Self(principal.clone()));
        }
        Self::authenticate(parts, state)
    }
}

impl Caller {
    /// The principal the request's bearer token authenticates.
    ///
    /// # Errors
    /// A 401 problem for a missing, malformed, unknown or revoked token.
    pub(crate) fn authenticate(parts: &Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let unauthorized = |d: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", d);
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("a bearer token is required"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("use Authorization: Bearer <token>"))?;
        state
            .gov
            .with_state(|s| authenticate(s, token))
            .map(Caller)
            .ok_or_else(|| unauthorized("unknown or revoked token"))
    }

    pub(crate) fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.iter().any(|r| self.0.roles.contains(r)) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden-role",
                format!("{} needs one of the roles {roles:?}", self.0.name),
            ))
        }
    }
}
