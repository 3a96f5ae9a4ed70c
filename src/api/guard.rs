//! What every request passes before its handler: the caller is authenticated and authorised for
//! the route from the route table (so a caller without the role is refused before a body is
//! read), every framework rejection leaves as a problem, and every response carries the
//! security headers.

use super::error::ApiError;
use super::extract::Caller;
use super::AppState;
use crate::governance::Role;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use std::collections::HashMap;
use std::sync::Arc;

/// The roles each (method, route) needs, from the route table; a route absent from it, or with
/// no roles, is public.
#[derive(Debug, Default)]
pub struct Permissions(HashMap<&'static str, Vec<(Method, Vec<Role>)>>);

impl Permissions {
    /// From the route table.
    pub fn from_table(table: &[super::RouteEntry]) -> Self {
        let mut map: HashMap<&'static str, Vec<(Method, Vec<Role>)>> = HashMap::new();
        for entry in table {
            for op in &entry.ops {
                let method = Method::from_bytes(op.method.to_ascii_uppercase().as_bytes())
                    .expect("the route table names HTTP methods");
                let roles = op.roles.to_vec();
                map.entry(entry.path).or_default().push((method, roles));
            }
        }
        Self(map)
    }

    fn needed(&self, method: &Method, route: &str) -> Option<&[Role]> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        self.0
            .get(route)?
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, roles)| roles.as_slice())
            .filter(|roles| !roles.is_empty())
    }
}

/// Authenticates and authorises the caller of a route that needs roles, before the handler
/// extracts anything else; the handler's `Caller` then reads the principal found here.
pub(super) async fn authorize(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let needed = route
        .as_deref()
        .and_then(|route| state.permissions.needed(request.method(), route));
    let Some(needed) = needed else {
        return next.run(request).await;
    };
    let (mut parts, body) = request.into_parts();
    let caller = match Caller::authenticate(&parts, &state) {
        Ok(caller) => caller,
        Err(problem) => return problem.into_response(),
    };
    if let Err(problem) = caller.require(needed) {
        return problem.into_response();
    }
    if let Err(problem) = state
        .rates
        .per_principal
        .admit(&caller.0.name, &caller.0.name)
    {
        return problem.into_response();
    }
    parts.extensions.insert(caller.0);
    next.run(Request::from_parts(parts, body)).await
}

/// The most of a framework rejection's plain-text body kept as the problem's detail.
const REJECTION_TEXT_BYTES_MAX: usize = 4096;

/// Turns every error response that is not already a problem (the framework's 404, 405 with its
/// `Allow`, path and query rejections, body limits) into one, keeping its status and headers.
pub(super) async fn problems_only(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE);
    // A problem already, or a page (the browser interface answers its errors as pages).
    let answered = content_type.is_some_and(|v| {
        v.as_bytes().starts_with(b"application/problem+json")
            || v.as_bytes().starts_with(b"text/html")
    });
    if !(status.is_client_error() || status.is_server_error()) || answered {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match http_body_util::Limited::new(body, REJECTION_TEXT_BYTES_MAX)
        .collect()
        .await
    {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    let (kind, detail) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method-not-allowed",
            format!(
                "method not allowed here; allowed: {}",
                parts
                    .headers
                    .get(header::ALLOW)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
            ),
        ),
        StatusCode::NOT_FOUND => ("not-found", or(text, "no such route")),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload-too-large", or(text, "the body is too large")),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported-media-type", text),
        s if s.is_server_error() => ("internal", "internal error".to_owned()),
        _ => ("bad-request", text),
    };
    let problem = ApiError::new(status, kind, detail).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    Response::from_parts(parts, problem.into_body())
}

fn or(text: String, default: &str) -> String {
    if text.trim().is_empty() {
        default.to_owned()
    } else {
        text
    }
}
