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
    let mut tally = Tally::default();
    for d in state.deployments.values() {
        if filter.selects(&d) {
            observe(&d);
            tally.add(state, &d);
        }
    }
    tally.finish()
}

/// [`calibrate_observing`] split across `parts` threads by deployment id, each with an observer
/// of its own (returned in part order). The report is the same as one pass gives: its counts
/// are sums and its rates and percentiles are taken over the merged samples. On a long history
/// the pass is bound by reading each deployment record once, which the parts share.
pub fn calibrate_observing_in_parts<O: Default + Send>(
    state: &GovernanceState,
    filter: &CalibrationFilter,
    parts: usize,
    observe: impl Fn(&mut O, &crate::state::DeploymentRecord) + Sync,
) -> (CalibrationReport, Vec<O>) {
    let parts = parts.max(1) as u64;
    let part = |n: u64| {
        let mut observer = O::default();
        let mut tally = Tally::default();
        let mine = |id: uuid::Uuid| (id.as_u128() as u64) % parts == n;
        for (_, d) in state.deployments.iter_where(mine) {
            if filter.selects(&d) {
                observe(&mut observer, &d);
                tally.add(state, &d);
            }
        }
        (tally, observer)
    };
    let done: Vec<(Tally, O)> = std::thread::scope(|scope| {
        let others: Vec<_> = (1..parts).map(|n| scope.spawn(move || part(n))).collect();
        let mut done = vec![part(0)];
        done.extend(
            others
                .into_iter()
                .map(|h| h.join().expect("a calibration part")),
        );
        done
    });
    let mut tally = Tally::default();
    let mut observers = Vec::new();
    for (part, observer) in done {
        tally.merge(part);
        observers.push(observer);
    }
    (tally.finish(), observers)
}

impl CalibrationFilter {
    fn selects(&self, d: &crate::state::DeploymentRecord) -> bool {
        let level = d.gate.as_ref().map(|g| g.maturity_level);
        self.class.is_none_or(|c| c == d.class)
            && self.level.is_none_or(|l| Some(l) == level)
            && self.from.is_none_or(|t| d.submitted_at >= t)
            && self.to.is_none_or(|t| d.submitted_at <= t)
    }
}

/// A calibration pass under way: the report's counts, and the samples its AUC and review-time
/// percentiles are taken from at the end.
#[derive(Default)]
struct Tally {
    report: CalibrationReport,
    samples: Vec<(u32, bool)>,
    review_minutes: Vec<i64>,
}

impl Tally {
    fn add(&mut self, state: &GovernanceState, d: &crate::state::DeploymentRecord) {
        let report = &mut self.report;
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
            self.review_minutes
                .push((decided.unix_micros() - d.submitted_at.unix_micros()) / 60_000_000);
        }
        let released = matches!(
            d.status,
            DeploymentStatus::Released | DeploymentStatus::BreakglassReleased
        );
        if !released {
            return;
        }
        report.released += 1;
        let had_incident = !d.incidents.is_empty();
        if had_incident {
            report.failed += 1;
        }
        self.samples.push((d.submitted.score_centi, had_incident));
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

    fn merge(&mut self, other: Self) {
        let (a, b) = (&mut self.report, other.report);
        a.deployments += b.deployments;
        a.gated += b.gated;
        a.auto_approved += b.auto_approved;
        a.released += b.released;
        a.failed += b.failed;
        for (n, m) in a.score_histogram.iter_mut().zip(b.score_histogram) {
            *n += m;
        }
        a.confusion.true_positive += b.confusion.true_positive;
        a.confusion.false_positive += b.confusion.false_positive;
        a.confusion.true_negative += b.confusion.true_negative;
        a.confusion.false_negative += b.confusion.false_negative;
        a.preventable += b.preventable;
        a.incidents += b.incidents;
        for (severity, n) in b.severity_mix {
            *a.severity_mix.entry(severity).or_default() += n;
        }
        for (week, n) in b.weekly_incidents {
            *a.weekly_incidents.entry(week).or_default() += n;
        }
        for (control, n) in b.control_gaps {
            *a.control_gaps.entry(control).or_default() += n;
        }
        self.samples.extend(other.samples);
        self.review_minutes.extend(other.review_minutes);
    }

    fn finish(mut self) -> CalibrationReport {
        let mut report = self.report;
        report.auto_approval_rate_bp = rate_bp(report.auto_approved, report.gated);
        report.change_failure_rate_bp = rate_bp(report.failed, report.released);
        report.change_failure_wilson_bp = wilson_bp(report.failed, report.released);
        report.auc_bp = auc_bp(&self.samples);
        report.review_minutes_median = percentile(&mut self.review_minutes, 50);
        report.review_minutes_p90 = percentile(&mut self.review_minutes, 90);
        report
    }
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
