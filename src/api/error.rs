//! One error type for every route: RFC 9457 `application/problem+json`, with a stable `type` per
//! kind; internal errors are logged and leave no detail.

use crate::governance::CommandError;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use projections::policy::Rejection;
use serde_json::json;

/// An RFC 9457 problem.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    detail: String,
    /// Seconds after which a retry may succeed (`Retry-After`).
    retry_after_secs: Option<u32>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            detail: detail.into(),
            retry_after_secs: None,
        }
    }
    /// Its status: what the pages answer a refused command with, as the API does.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn too_many_requests(detail: impl Into<String>, retry_after_secs: u32) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too-many-requests", detail)
        }
    }
    pub(crate) fn unavailable(
        kind: &'static str,
        detail: impl Into<String>,
        retry_after_secs: u32,
    ) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, kind, detail)
        }
    }
    pub(crate) fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }
    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = json!({
            "type": format!("https://trustledger.dev/problems/{}", self.kind),
            "title": title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        response
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Unauthorized { .. } => {
                Self::new(StatusCode::FORBIDDEN, "forbidden-role", e.to_string())
            }
            CommandError::Rejected(r) => match r {
                Rejection::Invalid { .. } => Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-field",
                    r.to_string(),
                ),
                Rejection::Unknown { .. } => {
                    Self::new(StatusCode::NOT_FOUND, "not-found", r.to_string())
                }
                Rejection::Conflict(_) => {
                    Self::new(StatusCode::CONFLICT, "conflict", r.to_string())
                }
                Rejection::Forbidden(_) => {
                    Self::new(StatusCode::FORBIDDEN, "forbidden-by-rule", r.to_string())
                }
                Rejection::NotAllowed(_) => {
                    Self::new(StatusCode::CONFLICT, "not-allowed-now", r.to_string())
                }
                _ => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "rejected", r.to_string()),
            },
            CommandError::Append(events::AppendError::Invalid { .. }) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-field",
                e.to_string(),
            ),
            CommandError::Append(
                events::AppendError::IdConflict { .. }
                | events::AppendError::VersionConflict { .. },
            ) => Self::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            CommandError::Busy(_) => Self::unavailable("busy", e.to_string(), 1),
            CommandError::NotLeader(_) => Self::unavailable("not-leader", e.to_string(), 1),
            CommandError::Unavailable(_)
            | CommandError::Append(
                events::AppendError::Storage(_)
                | events::AppendError::Unavailable(_)
                | events::AppendError::Fenced(_)
                | events::AppendError::HeadMoved { .. }
                | events::AppendError::Diverged { .. }
                | events::AppendError::ChainBroken { .. },
            ) => {
                tracing::error!(error = %e, "command not decided");
                Self::unavailable("unavailable", e.to_string(), 5)
            }
            other => {
                tracing::error!(error = %other, "command failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

impl From<events::ReadError> for ApiError {
    fn from(e: events::ReadError) -> Self {
        match e {
            events::ReadError::Proof(p) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-proof-request",
                p.to_string(),
            ),
            events::ReadError::Storage(storage) => {
                // A store that cannot be read now (PostgreSQL down) may answer on a retry.
                tracing::error!(error = %storage, "read failed");
                Self::unavailable("unavailable", "the log's store could not be read", 5)
            }
            other => {
                tracing::error!(error = %other, "read failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}
