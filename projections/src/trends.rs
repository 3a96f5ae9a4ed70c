//! Weekly trends for the overview's charts: per week (its Monday, UTC, by submission time) the
//! deployments submitted, auto-approved, released, blocked at the release gate and released
//! then followed by an incident, with the change-failure rate's Wilson 95% interval and the
//! CAB's review time (median and 90th percentile). A pure function of the folded state.

use crate::calibration::week_of;
use crate::state::{DeploymentStatus, GovernanceState};
use crate::stats::{percentile, rate_bp, wilson_bp};
use std::collections::BTreeMap;

/// One week's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Week {
    /// Its Monday, `YYYY-MM-DD`.
    pub week: String,
    /// Deployments submitted.
    pub submitted: u64,
    /// Of those, auto-approved by the gate.
    pub auto_approved: u64,
    /// Released (through the gate or by break-glass).
    pub released: u64,
    /// Whose release the gate blocked at least once.
    pub blocked: u64,
    /// Released, and then caused an incident.
    pub failed: u64,
    /// `failed / released`, in basis points.
    pub change_failure_bp: u32,
    /// Its Wilson 95% interval, in basis points.
    pub change_failure_wilson_bp: (u32, u32),
    /// Median minutes from submission to the CAB's decision.
    pub review_minutes_median: Option<i64>,
    /// 90th percentile of the same.
    pub review_minutes_p90: Option<i64>,
}

/// The last `weeks` weeks that had submissions, oldest first.
pub fn weekly(state: &GovernanceState, weeks: usize) -> Vec<Week> {
    let mut by_week: BTreeMap<String, (Week, Vec<i64>)> = BTreeMap::new();
    for d in state.deployments.values() {
        let key = week_of(d.submitted_at);
        let (week, reviews) = by_week.entry(key.clone()).or_insert_with(|| {
            (
                Week {
                    week: key,
                    ..Week::default()
                },
                Vec::new(),
            )
        });
        week.submitted += 1;
        week.auto_approved += u64::from(d.auto_approved);
        week.blocked += u64::from(d.blocked_releases > 0);
        let released = matches!(
            d.status,
            DeploymentStatus::Released | DeploymentStatus::BreakglassReleased
        );
        week.released += u64::from(released);
        week.failed += u64::from(released && !d.incidents.is_empty());
        if let (Some(decided), false) = (d.decided_at, d.auto_approved) {
            reviews.push((decided.unix_micros() - d.submitted_at.unix_micros()) / 60_000_000);
        }
    }
    let skip = by_week.len().saturating_sub(weeks);
    by_week
        .into_values()
        .skip(skip)
        .map(|(mut week, mut reviews)| {
            week.change_failure_bp = rate_bp(week.failed, week.released);
            week.change_failure_wilson_bp = wilson_bp(week.failed, week.released);
            week.review_minutes_median = percentile(&mut reviews, 50);
            week.review_minutes_p90 = percentile(&mut reviews, 90);
            week
        })
        .collect()
}
