//! Read models over [`GovernanceState`] for the questions operators, CAB members and auditors
//! ask: the CAB queue, exceptions and break-glass reviews as of a time, incidents by filter.
//! All are pure functions of the state and a time taken from the log.

use crate::state::{DeploymentStatus, ExceptionRecord, GovernanceState, IncidentRecord};
use events::payloads::{BlastRadiusClass, Severity};
use events::Timestamp;
use uuid::Uuid;

/// One deployment waiting for the CAB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueItem {
    /// Deployment.
    pub deployment_id: Uuid,
    /// App name.
    pub app_name: String,
    /// Class.
    pub class: BlastRadiusClass,
    /// Approvals it has.
    pub approvals: u32,
    /// Approvals it needs.
    pub quorum: u32,
    /// How long it has waited, in minutes (as of `at`).
    pub age_minutes: i64,
}

/// Deployments pending the CAB, oldest first.
pub fn cab_queue(state: &GovernanceState, at: Timestamp) -> Vec<QueueItem> {
    let mut queue: Vec<QueueItem> = state
        .deployments
        .iter()
        .filter(|(_, d)| d.status == DeploymentStatus::PendingCab)
        .map(|(id, d)| QueueItem {
            deployment_id: id,
            app_name: d.submitted.app_name.clone(),
            class: d.class,
            approvals: u32::try_from(d.votes.values().filter(|(approve, _)| *approve).count())
                .unwrap_or(u32::MAX),
            quorum: state.quorum(d.class),
            age_minutes: (at.unix_micros() - d.submitted_at.unix_micros()) / 60_000_000,
        })
        .collect();
    queue.sort_by(|a, b| {
        b.age_minutes
            .cmp(&a.age_minutes)
            .then(a.deployment_id.cmp(&b.deployment_id))
    });
    queue
}

/// Where an exception stands at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExceptionStanding {
    /// In force, more than `expiring_within` left.
    Open,
    /// In force, expiring within the given window.
    Expiring,
    /// Past its expiry.
    Expired,
    /// Revoked.
    Revoked,
}

/// Every exception with its standing at `at`; `expiring_within_micros` sets what counts as expiring.
pub fn exceptions(
    state: &GovernanceState,
    at: Timestamp,
    expiring_within_micros: i64,
) -> Vec<(&ExceptionRecord, ExceptionStanding)> {
    state
        .exceptions
        .values()
        .map(|e| {
            let standing = if e.revoked_at.is_some_and(|r| r <= at) {
                ExceptionStanding::Revoked
            } else if e.expires_at <= at {
                ExceptionStanding::Expired
            } else if e.expires_at.unix_micros() - at.unix_micros() <= expiring_within_micros {
                ExceptionStanding::Expiring
            } else {
                ExceptionStanding::Open
            };
            (e, standing)
        })
        .collect()
}

/// Break-glass releases whose review is still open at `at`: (deployment, due, overdue?).
pub fn open_breakglass_reviews(
    state: &GovernanceState,
    at: Timestamp,
) -> Vec<(Uuid, Timestamp, bool)> {
    state
        .deployments
        .iter()
        .filter_map(|(id, d)| match d.breakglass {
            Some((due, None)) => Some((id, due, due < at)),
            _ => None,
        })
        .collect()
}

/// The seed's incident filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentFilter {
    /// Only this severity.
    pub severity: Option<Severity>,
    /// Only incidents of deployments in this class.
    pub blast_radius: Option<BlastRadiusClass>,
    /// Incident date at or after.
    pub from: Option<Timestamp>,
    /// Incident date at or before.
    pub to: Option<Timestamp>,
}

/// Incidents matching `filter`, oldest first.
pub fn incidents<'a>(
    state: &'a GovernanceState,
    filter: &IncidentFilter,
) -> Vec<&'a IncidentRecord> {
    let mut found: Vec<&IncidentRecord> = state
        .incidents
        .values()
        .filter(|i| filter.severity.is_none_or(|s| i.current.severity == s))
        .filter(|i| {
            filter
                .blast_radius
                .is_none_or(|c| i.current.context.class == c)
        })
        .filter(|i| filter.from.is_none_or(|t| i.incident_date >= t))
        .filter(|i| filter.to.is_none_or(|t| i.incident_date <= t))
        .collect();
    found.sort_by_key(|i| (i.incident_date, i.current.incident_id));
    found
}
