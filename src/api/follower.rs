//! A follower's answer to commands (see [`crate::cluster`]): every request that is not a read
//! (anything but GET and HEAD) is redirected, method and body kept (307), to the same path on
//! the leader's advertised URL, before its body is read; with no leader known it is a 503.
//! Reads, proofs, tiles and streams are served here.

use super::error::ApiError;
use super::AppState;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub(super) async fn send_commands_to_the_leader(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let role = state.gov.role();
    if role.leading() || matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let Some(leader) = role.leader() else {
        return ApiError::unavailable(
            "not-leader",
            "this node follows, and no leader is known yet: retry shortly",
            1,
        )
        .into_response();
    };
    let target = format!(
        "{}{}",
        leader.trim_end_matches('/'),
        request.uri().path_and_query().map_or("/", |p| p.as_str())
    );
    let mut response = ApiError::new(
        StatusCode::TEMPORARY_REDIRECT,
        "not-leader",
        format!("this node follows; send commands to the leader at {leader}"),
    )
    .into_response();
    if let Ok(location) = header::HeaderValue::from_str(&target) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}
