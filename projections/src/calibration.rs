//! Calibration statistics: the evidence a CAB needs before changing thresholds.
//!
//! Definitions (all over deployments *submitted* in the window and matching the filter):
//! - **auto-approval rate**: auto-approved ÷ gated.
//! - **change failure rate**: released deployments with ≥ 1 linked incident ÷ released, with its
//!   Wilson 95% interval.
//! - **score histogram**: submitted deployments per 10-point score bucket (0–9.99, …, 90–100).
//! - **AUC**: how well the risk score ranks released deployments that later had an incident above
//!   those that did not (0.5 = no signal, 1.0 = perfect), by Mann–Whitney.
//! - **confusion matrix** at the thresholds in force when each was gated, over released
//!   deployments: auto-approved and then an incident = false negative; sent to the CAB and
//!   nothing happened = false positive; auto-approved and nothing = true negative; sent to the
//!   CAB and an incident = true positive.
//! - **severity mix** and **preventable share** of incidents linked to them.
//! - **CAB review time**: submission to the CAB's decision, median and p90, in minutes.
//! - **weekly incidents**: those incidents by the week they happened (the Monday, UTC, that
//!   starts it), so a trend shows.
//! - **control gaps**: the controls incident reports named as improvements, counted.

use crate::state::{DeploymentStatus, GovernanceState};
use crate::stats::{auc_bp, percentile, rate_bp, wilson_bp};
use events::payloads::{BlastRadiusClass, Severity};
use events::Timestamp;
use std::collections::BTreeMap;

/// Which deployments to include.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalibrationFilter {
    /// Only this class.
    pub class: Option<BlastRadiusClass>,
    /// Only those gated at this maturity level.
    pub level: Option<u32>,
    /// Submitted at or after.
    pub from: Option<Timestamp>,
    /// Submitted at or before.
    pub to: Option<Timestamp>,
}

/// The confusion matrix of the gate against outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confusion {
    /// Sent to the CAB, had an incident.
    pub true_positive: u64,
    /// Sent to the CAB, no incident.
    pub false_positive: u64,
    /// Auto-approved, no incident.
    pub true_negative: u64,
    /// Auto-approved, had an incident.
    pub false_negative: u64,
}

/// The statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalibrationReport {
    /// Deployments submitted in the window.
    pub deployments: u64,
    /// Of those, gated.
    pub gated: u64,
    /// Auto-approved.
    pub auto_approved: u64,
    /// Auto-approval rate, bp.
    pub auto_approval_rate_bp: u32,
    /// Released.
    pub released: u64,
    /// Released with ≥ 1 incident.
    pub failed: u64,
    /// Change failure rate, bp.
    pub change_failure_rate_bp: u32,
    /// Its Wilson 95% interval, bp.
    pub change_failure_wilson_bp: (u32, u32),
    /// Deployments per 10-point score bucket.
    pub score_histogram: [u64; 10],
    /// AUC in bp, if there are both outcomes.
    pub auc_bp: Option<u32>,
    /// Confusion matrix over released deployments.
    pub confusion: Confusion,
    /// Incidents by severity.
    pub severity_mix: BTreeMap<Severity, u64>,
    /// Incidents judged preventable.
    pub preventable: u64,
    /// Incidents in all.
    pub incidents: u64,
    /// Median CAB review time, minutes.
    pub review_minutes_median: Option<i64>,
    /// 90th percentile CAB review time, minutes.
    pub review_minutes_p90: Option<i64>,
    /// Incidents by the week they happened: its Monday (UTC), `YYYY-MM-DD`.
    pub weekly_incidents: BTreeMap<String, u64>,
    /// Controls named as improvements by those incidents' reports, counted.
    pub control_gaps: BTreeMap<String, u64>,
}

/// The Monday (UTC) that starts `at`'s week, as `YYYY-MM-DD`.
pub fn week_of(at: Timestamp) -> String {
    const DAY_MICROS: i64 = 86_400_000_000;
    let days = at.unix_micros().div_euclid(DAY_MICROS);
    // 1970-01-01 was a Thursday: three days after a Monday.
    let monday = days - (days + 3).rem_euclid(7);
    let mut text = Timestamp::from_unix_micros(monday * DAY_MICROS).to_string();
    text.truncate("YYYY-MM-DD".len());
    text
}

/// Computes the statistics for the deployments `filter` selects.
pub fn calibrate(state: &GovernanceState, filter: &CalibrationFilter) -> CalibrationReport {
    calibrate_observing(state, filter, |_| {})
}

/// [`calibrate`], also handing `observe` every deployment it selects, so that a caller that
/// needs other figures of the same deployments reads them in the same pass.
pub fn calibrate_observing(
    state: &GovernanceState,
    filter: &CalibrationFilter,
    mut observe: impl FnMut(&crate::state::DeploymentRecord),
) -> CalibrationReport {
    let mut report = CalibrationReport::default();
    let mut samples = Vec::new();
    let mut review_minutes = Vec::new();
    for d in state.deployments.values() {
        let level = d.gate.as_ref().map(|g| g.maturity_level);
        let selected = filter.class.is_none_or(|c| c == d.class)
            && filter.level.is_none_or(|l| Some(l) == level)
            && filter.from.is_none_or(|t| d.submitted_at >= t)
            && filter.to.is_none_or(|t| d.submitted_at <= t);
        if !selected {
            continue;
        }
        observe(&d);
        report.deployments += 1;
        let bucket = usize::try_from(d.submitted.score_centi / 1000)
            .unwrap_or(9)
            .min(9);
        report.score_histogram[bucket] += 1;
        if d.gate.is_some() {
            report.gated += 1;
        }
        if d.auto_approved {
            report.auto_approved += 1;
        }
        if let Some(decided) = d.decided_at {
            review_minutes
                .push((decided.unix_micros() - d.submitted_at.unix_micros()) / 60_000_000);
        }
        let released = matches!(
            d.status,
            DeploymentStatus::Released | DeploymentStatus::BreakglassReleased
        );
        if !released {
            continue;
        }
        report.released += 1;
        let had_incident = !d.incidents.is_empty();
        if had_incident {
            report.failed += 1;
        }
        samples.push((d.submitted.score_centi, had_incident));
        let c = &mut report.confusion;
        match (d.auto_approved, had_incident) {
            (true, true) => c.false_negative += 1,
            (true, false) => c.true_negative += 1,
            (false, true) => c.true_positive += 1,
            (false, false) => c.false_positive += 1,
        }
        for incident in d.incidents.iter().filter_map(|id| state.incidents.get(id)) {
            report.incidents += 1;
            *report
                .severity_mix
                .entry(incident.current.severity)
                .or_default() += 1;
            if incident.current.preventable {
                report.preventable += 1;
            }
            *report
                .weekly_incidents
                .entry(week_of(incident.incident_date))
                .or_default() += 1;
            for control in &incident.current.control_improvements {
                *report.control_gaps.entry(control.clone()).or_default() += 1;
            }
        }
    }
    report.auto_approval_rate_bp = rate_bp(report.auto_approved, report.gated);
    report.change_failure_rate_bp = rate_bp(report.failed, report.released);
    report.change_failure_wilson_bp = wilson_bp(report.failed, report.released);
    report.auc_bp = auc_bp(&samples);
    report.review_minutes_median = percentile(&mut review_minutes, 50);
    report.review_minutes_p90 = percentile(&mut review_minutes, 90);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday() {
        let week = |text: &str| week_of(Timestamp::parse(text).unwrap());
        // 2026-02-09 is a Monday.
        assert_eq!(week("2026-02-09T00:00:00.000000Z"), "2026-02-09");
        assert_eq!(week("2026-02-15T23:59:59.999999Z"), "2026-02-09");
        assert_eq!(week("2026-02-16T00:00:00.000000Z"), "2026-02-16");
        assert_eq!(week("1970-01-01T00:00:00.000000Z"), "1969-12-29");
    }
}
