//! Prometheus metrics: HTTP requests by method, route and status, the log's commits, the
//! projection lag and open streams.

use super::{AppState, STREAMS_MAX};
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Request counters by (method, route, status) and total handling time by route.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, String, u16), u64>>,
    micros: Mutex<BTreeMap<String, (u64, u64)>>,
}

pub(super) async fn count_requests(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    // Labels come only from the route table and the standard methods: a client's made-up
    // method or path never becomes a new series.
    let method = match *request.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    if let Ok(mut requests) = state.metrics.requests.lock() {
        *requests
            .entry((method, route.clone(), response.status().as_u16()))
            .or_default() += 1;
    }
    if let Ok(mut totals) = state.metrics.micros.lock() {
        let entry = totals.entry(route).or_default();
        entry.0 += 1;
        entry.1 += micros;
    }
    response
}

/// Prometheus text format.
pub(super) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    use std::fmt::Write as _;
    let mut out = String::new();
    let head = state.gov.log().head();
    let _ = writeln!(out, "# HELP trustledger_log_entries Entries in the log.\n# TYPE trustledger_log_entries gauge\ntrustledger_log_entries {}", head.size);
    let commits = state.gov.log().commit_stats();
    let _ = writeln!(out, "# HELP trustledger_log_commits_total Group commits since start.\n# TYPE trustledger_log_commits_total counter\ntrustledger_log_commits_total {}", commits.commits);
    let _ = writeln!(out, "# HELP trustledger_log_committed_entries_total Entries written by them.\n# TYPE trustledger_log_committed_entries_total counter\ntrustledger_log_committed_entries_total {}", commits.entries);
    let _ = writeln!(
        out,
        "# HELP trustledger_log_commit_seconds Time spent writing and syncing commits (append latency).\n# TYPE trustledger_log_commit_seconds summary\ntrustledger_log_commit_seconds_sum {}.{:06}\ntrustledger_log_commit_seconds_count {}",
        commits.micros / 1_000_000,
        commits.micros % 1_000_000,
        commits.commits
    );
    let _ = writeln!(out, "# HELP trustledger_log_last_batch_entries Entries in the last group commit.\n# TYPE trustledger_log_last_batch_entries gauge\ntrustledger_log_last_batch_entries {}", commits.last_batch);
    let folded = state
        .gov
        .with_state(|s| s.last_seq.map_or(0, |seq| seq + 1));
    let _ = writeln!(out, "# HELP trustledger_projection_lag_entries Durable entries not yet folded into the projections.\n# TYPE trustledger_projection_lag_entries gauge\ntrustledger_projection_lag_entries {}", head.size.saturating_sub(folded));
    let leading = u8::from(state.gov.role().leading());
    let _ = writeln!(out, "# HELP trustledger_leader 1 while this node decides commands, 0 while it follows.\n# TYPE trustledger_leader gauge\ntrustledger_leader {leading}");
    let _ = writeln!(out, "# HELP trustledger_follower_lag_entries Entries the leader committed that this node has not taken in.\n# TYPE trustledger_follower_lag_entries gauge\ntrustledger_follower_lag_entries {}", state.gov.lag());
    let _ = writeln!(out, "# HELP trustledger_command_queue_depth Commands waiting for the sequencer.\n# TYPE trustledger_command_queue_depth gauge\ntrustledger_command_queue_depth {}", state.gov.queued_commands());
    let streams = STREAMS_MAX - state.streams.available_permits();
    let _ = writeln!(out, "# HELP trustledger_stream_subscribers Open SSE streams.\n# TYPE trustledger_stream_subscribers gauge\ntrustledger_stream_subscribers {streams}");
    if let Some(witnessing) = &state.witnessing {
        let status = witnessing.status();
        let _ = writeln!(out, "# HELP trustledger_published_checkpoint_size Size of the latest checkpoint the witness policy accepted.\n# TYPE trustledger_published_checkpoint_size gauge\ntrustledger_published_checkpoint_size {}", status.published_size.unwrap_or(0));
        let _ = writeln!(out, "# HELP trustledger_witness_lag_entries Entries of the latest checkpoint a witness has not cosigned.\n# TYPE trustledger_witness_lag_entries gauge");
        for w in &status.witnesses {
            let name = w.name.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(
                out,
                "trustledger_witness_lag_entries{{witness=\"{name}\"}} {}",
                w.lag_entries
            );
        }
    }
    let _ = writeln!(out, "# HELP trustledger_http_requests_total HTTP requests by route and status.\n# TYPE trustledger_http_requests_total counter");
    if let Ok(requests) = state.metrics.requests.lock() {
        for ((method, route, status), n) in requests.iter() {
            let _ = writeln!(out, "trustledger_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}");
        }
    }
    let _ = writeln!(out, "# HELP trustledger_http_request_duration_seconds Time spent handling requests, by route.\n# TYPE trustledger_http_request_duration_seconds summary");
    if let Ok(totals) = state.metrics.micros.lock() {
        for (route, (count, micros)) in totals.iter() {
            let _ = writeln!(
                out,
                "trustledger_http_request_duration_seconds_sum{{route=\"{route}\"}} {}.{:06}",
                micros / 1_000_000,
                micros % 1_000_000
            );
            let _ = writeln!(
                out,
                "trustledger_http_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

// ----- the route table: the router and /openapi.json are both built from it -----
