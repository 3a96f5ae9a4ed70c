//! The trust-maturity engine: evaluation of the current level's window against the next level's
//! criteria, and the regression rule (P1s or P2s over the current level's caps, or the rate
//! above its cap).

use crate::state::{DeploymentStatus, GovernanceState};
use crate::stats::{bp_to_percent, rate_bp, wilson_bp};
use events::payloads::{Criterion, MaturityEvaluated, Severity, WindowStats};
use events::Timestamp;

/// One week in microseconds.
pub const WEEK_MICROS: i64 = 7 * 24 * 3600 * 1_000_000;

/// Outcome strings.
pub const READY_TO_PROGRESS: &str = "READY_TO_PROGRESS";
/// Criteria not met.
pub const BLOCKED: &str = "BLOCKED";
/// The current level's caps are broken: back one level, at once.
pub const REGRESSION_REQUIRED: &str = "REGRESSION_REQUIRED";

/// How many weeks the rolling evaluation window spans: the next level's minimum weeks, or its
/// zero-incident weeks if longer (4 at the top level).
pub fn window_weeks(state: &GovernanceState) -> u32 {
    state
        .levels
        .iter()
        .find(|l| l.level == state.level + 1)
        .map_or(4, |n| n.min_weeks.max(n.zero_incident_weeks))
        .max(1)
}

/// Statistics of the evaluation window ending at `at`: the last [`window_weeks`] weeks, but
/// never reaching back before the current level took effect (as the seed's roadmap: "analyze 4
/// weeks of data"). So a P1 blocks progression until it has rolled out of the window, not forever.
///
/// The level boundary is by seq (after the entry that set the level), not by time, so that
/// nothing recorded in the same microsecond as a level change lands on the wrong side of it.
/// Incidents count by when they are reported (after the level change) and when they happened
/// (inside the window): an incident reported late makes progression harder, never easier.
pub fn window_stats(state: &GovernanceState, at: Timestamp) -> WindowStats {
    let since = state.level_since.unwrap_or(at);
    let rolling = Timestamp::from_unix_micros(
        at.unix_micros() - i64::from(window_weeks(state)) * WEEK_MICROS,
    );
    let window_start = since.max(rolling);
    let after_change = |seq: u64| state.level_since_seq.is_none_or(|s| seq > s);
    // Headers, not records: every evaluation reads every deployment, most of them settled.
    let released: Vec<_> = state
        .deployments
        .headers()
        .filter(|d| {
            matches!(
                d.status,
                DeploymentStatus::Released | DeploymentStatus::BreakglassReleased
            )
        })
        .filter(|d| {
            d.released_seq.is_some_and(after_change)
                && d.released_at.is_some_and(|t| t >= window_start)
        })
        .collect();
    let with_incident = released.iter().filter(|d| d.with_incident).count() as u64;
    let since_change: Vec<_> = state
        .incidents
        .values()
        .filter(|i| after_change(i.reported_seq))
        .collect();
    let incidents: Vec<_> = since_change
        .iter()
        .filter(|i| i.incident_date >= window_start)
        .collect();
    let count = |s: Severity| incidents.iter().filter(|i| i.current.severity == s).count() as u64;
    let (wilson_low_bp, wilson_high_bp) = wilson_bp(with_incident, released.len() as u64);
    let weeks = |from: Timestamp| {
        u32::try_from((at.unix_micros() - from.unix_micros()).max(0) / WEEK_MICROS)
            .unwrap_or(u32::MAX)
    };
    let weeks_at_level = weeks(since);
    let last_incident = since_change.iter().map(|i| i.incident_date).max();
    WindowStats {
        released: released.len() as u64,
        with_incident,
        incidents: incidents.len() as u64,
        p1: count(Severity::P1),
        p2: count(Severity::P2),
        rate_bp: rate_bp(with_incident, released.len() as u64),
        wilson_low_bp,
        wilson_high_bp,
        weeks_at_level,
        zero_incident_weeks: last_incident.map_or(weeks_at_level, weeks),
    }
}

fn criterion(name: &str, required: String, actual: String, met: bool) -> Criterion {
    Criterion {
        name: name.into(),
        required,
        actual,
        met,
    }
}

/// Evaluates the current level at `at`. `strict` makes the rate criterion use the Wilson upper
/// bound, so that a small sample cannot pass on luck.
pub fn evaluate(state: &GovernanceState, at: Timestamp, strict: bool) -> MaturityEvaluated {
    let stats = window_stats(state, at);
    let rate_used = if strict {
        stats.wilson_high_bp
    } else {
        stats.rate_bp
    };
    let rate_label = if strict {
        "Wilson 95% upper bound"
    } else {
        "rate"
    };
    let current = state.current_level();
    let regression = state.level > 0
        && current.is_some_and(|c| {
            c.max_p1.is_some_and(|m| stats.p1 > u64::from(m))
                || c.max_p2.is_some_and(|m| stats.p2 > u64::from(m))
                || c.max_incident_rate_bp.is_some_and(|m| rate_used > m)
        });
    let next = state.levels.iter().find(|l| l.level == state.level + 1);
    let mut criteria = Vec::new();
    if let Some(next) = next {
        criteria.push(criterion(
            "min_weeks",
            format!("≥ {}", next.min_weeks),
            stats.weeks_at_level.to_string(),
            stats.weeks_at_level >= next.min_weeks,
        ));
        criteria.push(criterion(
            "released_deployments",
            "≥ 1".into(),
            stats.released.to_string(),
            stats.released >= 1,
        ));
        if let Some(cap) = next.max_incident_rate_bp {
            criteria.push(criterion(
                "incident_rate",
                format!("{rate_label} ≤ {}", bp_to_percent(cap)),
                format!(
                    "{} (rate {}, Wilson 95% {}–{})",
                    bp_to_percent(rate_used),
                    bp_to_percent(stats.rate_bp),
                    bp_to_percent(stats.wilson_low_bp),
                    bp_to_percent(stats.wilson_high_bp)
                ),
                rate_used <= cap,
            ));
        }
        if let Some(cap) = next.max_p1 {
            criteria.push(criterion(
                "p1_incidents",
                format!("≤ {cap}"),
                stats.p1.to_string(),
                stats.p1 <= u64::from(cap),
            ));
        }
        if let Some(cap) = next.max_p2 {
            criteria.push(criterion(
                "p2_incidents",
                format!("≤ {cap}"),
                stats.p2.to_string(),
                stats.p2 <= u64::from(cap),
            ));
        }
        if next.zero_incident_weeks > 0 {
            criteria.push(criterion(
                "zero_incident_weeks",
                format!("≥ {}", next.zero_incident_weeks),
                stats.zero_incident_weeks.to_string(),
                stats.zero_incident_weeks >= next.zero_incident_weeks,
            ));
        }
    } else {
        criteria.push(criterion(
            "next_level_exists",
            "a higher level".into(),
            "none: at the highest level".into(),
            false,
        ));
    }
    let outcome = if regression {
        REGRESSION_REQUIRED
    } else if criteria.iter().all(|c| c.met) {
        READY_TO_PROGRESS
    } else {
        BLOCKED
    };
    MaturityEvaluated {
        level: state.level,
        target_level: next.map(|n| n.level),
        window_start: state
            .level_since
            .unwrap_or(at)
            .max(Timestamp::from_unix_micros(
                at.unix_micros() - i64::from(window_weeks(state)) * WEEK_MICROS,
            ))
            .to_string(),
        window_end: at.to_string(),
        strict,
        stats,
        criteria,
        outcome: outcome.into(),
    }
}
