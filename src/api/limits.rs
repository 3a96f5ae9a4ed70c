//! Limits an operator can set: upload sizes, request rates per client address and per
//! principal (governor's GCRA limiters), and streams per principal.

use super::error::ApiError;
use super::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};

/// Requests per second from one client address, unless configured otherwise (bursts of twice).
pub const RATE_PER_ADDRESS_DEFAULT: u32 = 1000;
/// Requests per second by one principal, unless configured otherwise (bursts of twice).
pub const RATE_PER_PRINCIPAL_DEFAULT: u32 = 500;
/// Concurrent SSE streams one principal may hold.
pub const STREAMS_PER_PRINCIPAL_MAX: usize = 16;
/// Keys a keyed limiter holds before it forgets those that have recovered their burst.
const LIMITER_KEYS_MAX: usize = 100_000;

/// What an operator configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest artifact upload, in bytes.
    pub artifact_bytes_max: u64,
    /// Largest SBOM upload, in bytes.
    pub sbom_bytes_max: u64,
    /// Requests per second per client address (0: no limit).
    pub rate_per_address: u32,
    /// Requests per second per authenticated principal (0: no limit).
    pub rate_per_principal: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            artifact_bytes_max: crate::governance::ARTIFACT_BYTES_MAX,
            sbom_bytes_max: crate::governance::SBOM_BYTES_MAX,
            rate_per_address: RATE_PER_ADDRESS_DEFAULT,
            rate_per_principal: RATE_PER_PRINCIPAL_DEFAULT,
        }
    }
}

/// A keyed rate limiter, or none.
pub(super) struct Rate<K: std::hash::Hash + Eq + Clone>(Option<DefaultKeyedRateLimiter<K>>);

impl<K: std::hash::Hash + Eq + Clone> Rate<K> {
    pub(super) fn per_second(rate: u32) -> Self {
        Self(NonZeroU32::new(rate).map(|per_second| {
            let burst = per_second.saturating_mul(NonZeroU32::MIN.saturating_add(1));
            RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst))
        }))
    }

    /// Admits one request for `key`, or says in how many seconds to retry (a 429 problem).
    pub(super) fn admit(&self, key: &K, who: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.0 else {
            return Ok(());
        };
        if limiter.len() > LIMITER_KEYS_MAX {
            limiter.retain_recent();
        }
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let secs = u32::try_from(wait.as_secs()).unwrap_or(u32::MAX).max(1);
            ApiError::too_many_requests(format!("too many requests from {who}; retry"), secs)
        })
    }
}

/// Refuses a client address over its rate, before anything else is done for it.
pub(super) async fn per_address(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    if let Some(address) = address {
        if let Err(problem) = state.rates.per_address.admit(&address, "this address") {
            return problem.into_response();
        }
    }
    next.run(request).await
}

/// The request rate limiters.
pub(super) struct Rates {
    pub(super) per_address: Rate<IpAddr>,
    pub(super) per_principal: Rate<String>,
}

impl Rates {
    pub(super) fn new(limits: &Limits) -> Self {
        Self {
            per_address: Rate::per_second(limits.rate_per_address),
            per_principal: Rate::per_second(limits.rate_per_principal),
        }
    }
}

/// Open streams by principal.
#[derive(Debug, Default)]
pub(super) struct StreamsByPrincipal(Mutex<HashMap<String, usize>>);

/// One principal's open stream; closing it (dropping this) frees the slot.
pub(super) struct StreamSlot {
    owner: Arc<AppState>,
    principal: String,
}

impl StreamsByPrincipal {
    /// A slot for one more stream of `principal`, unless they hold the most already.
    pub(super) fn open(state: &Arc<AppState>, principal: &str) -> Result<StreamSlot, ApiError> {
        let mut open = state
            .streams_by_principal
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let held = open.entry(principal.to_owned()).or_default();
        if *held >= STREAMS_PER_PRINCIPAL_MAX {
            return Err(ApiError::too_many_requests(
                format!("{principal} holds {STREAMS_PER_PRINCIPAL_MAX} streams already"),
                5,
            ));
        }
        *held += 1;
        Ok(StreamSlot {
            owner: Arc::clone(state),
            principal: principal.to_owned(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .owner
            .streams_by_principal
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = open.get_mut(&self.principal) {
            *held -= 1;
            if *held == 0 {
                open.remove(&self.principal);
            }
        }
    }
}
