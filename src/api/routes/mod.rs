//! The routes, one module per resource: each has its handlers and `routes()`, the entries of
//! the route table it serves. Each starts with `use crate::api::*`: the helpers handlers share
//! (`execute`, `state_as_of`, `parse_time`, the route-table builders) and the imports they use
//! live once in `api/mod.rs`.

use super::RouteEntry;

mod access;
mod cab;
mod deployments;
mod evidence;
mod exceptions;
mod incidents;
mod keys;
mod log;
mod maturity;
mod models;
mod producers;
mod proposals;
mod registry;
mod tlog;

/// Every resource's routes.
pub(super) fn all() -> Vec<RouteEntry> {
    [
        log::routes(),
        evidence::routes(),
        producers::routes(),
        deployments::routes(),
        incidents::routes(),
        maturity::routes(),
        models::routes(),
        exceptions::routes(),
        keys::routes(),
        cab::routes(),
        access::routes(),
        registry::routes(),
        proposals::routes(),
        tlog::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
