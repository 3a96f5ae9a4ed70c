//! Weekly trends for the overview's charts: per week (its Monday, UTC, by submission time) the
//! deployments submitted, auto-approved, released, blocked at the release gate and released
//! then followed by an incident, with the change-failure rate's Wilson 95% interval and the
//! CAB's review time (median and 90th percentile). A pure function of the folded state.

use crate::calibration::{
    calibrate_observing_in_parts, week_of, CalibrationFilter, CalibrationReport,
};
use crate::state::{DeploymentRecord, DeploymentStatus, GovernanceState};
use crate::stats::{percentile, rate_bp, wilson_bp};
use events::Timestamp;
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
    let mut accumulator = Weekly::default();
    for d in state.deployments.values() {
        accumulator.add(&d);
    }
    accumulator.finish(weeks)
}

/// [`weekly`] and the calibration report of every deployment, in one pass over them (the
/// overview shows both; each pass is most of its time on a long history).
pub fn weekly_with_calibration(
    state: &GovernanceState,
    weeks: usize,
) -> (Vec<Week>, CalibrationReport) {
    // Two parts: reading each deployment record once is most of the time on a long history,
    // and the records are shared out between two cores.
    weekly_with_calibration_in_parts(state, weeks, 2)
}

/// [`weekly_with_calibration`] with the pass split in `parts` (the same figures for any).
pub fn weekly_with_calibration_in_parts(
    state: &GovernanceState,
    weeks: usize,
    parts: usize,
) -> (Vec<Week>, CalibrationReport) {
    let (report, parts) = calibrate_observing_in_parts(
        state,
        &CalibrationFilter::default(),
        parts,
        |weekly: &mut Weekly, d| weekly.add(d),
    );
    let mut weekly = Weekly::default();
    for part in parts {
        weekly.merge(part);
    }
    (weekly.finish(weeks), report)
}

/// Weeks being counted, keyed by the week's number since the epoch's Monday: named only once,
/// at the end (a name per deployment was most of the time on a long history).
#[derive(Default)]
struct Weekly(BTreeMap<i64, (Week, Vec<i64>)>);

impl Weekly {
    fn add(&mut self, d: &DeploymentRecord) {
        let (week, reviews) = self.0.entry(week_number(d.submitted_at)).or_default();
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

    fn merge(&mut self, other: Self) {
        for (number, (week, reviews)) in other.0 {
            let (mine, my_reviews) = self.0.entry(number).or_default();
            mine.submitted += week.submitted;
            mine.auto_approved += week.auto_approved;
            mine.blocked += week.blocked;
            mine.released += week.released;
            mine.failed += week.failed;
            my_reviews.extend(reviews);
        }
    }

    fn finish(self, weeks: usize) -> Vec<Week> {
        let skip = self.0.len().saturating_sub(weeks);
        self.0
            .into_iter()
            .skip(skip)
            .map(|(number, (mut week, mut reviews))| {
                week.week = week_of(Timestamp::from_unix_micros(
                    number * WEEK_MICROS + MONDAY_OFFSET,
                ));
                week.change_failure_bp = rate_bp(week.failed, week.released);
                week.change_failure_wilson_bp = wilson_bp(week.failed, week.released);
                week.review_minutes_median = percentile(&mut reviews, 50);
                week.review_minutes_p90 = percentile(&mut reviews, 90);
                week
            })
            .collect()
    }
}

const WEEK_MICROS: i64 = 7 * 86_400_000_000;
/// 1970-01-05, the first Monday after the epoch, in microseconds.
const MONDAY_OFFSET: i64 = 4 * 86_400_000_000;

/// The number of the Monday-to-Sunday week (UTC) holding `at`.
fn week_number(at: Timestamp) -> i64 {
    (at.unix_micros() - MONDAY_OFFSET).div_euclid(WEEK_MICROS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn week_numbers_name_the_same_mondays_as_calibration() {
        for micros in [
            0,
            345_600_000_000,
            1_780_000_000_000_000,
            1_780_099_999_999_999,
        ] {
            let at = Timestamp::from_unix_micros(micros);
            let named = week_of(Timestamp::from_unix_micros(
                week_number(at) * WEEK_MICROS + MONDAY_OFFSET,
            ));
            assert_eq!(named, week_of(at), "{at}");
        }
    }
}
