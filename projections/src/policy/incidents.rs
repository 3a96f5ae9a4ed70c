//! Incidents: reports (with regression) and corrections.

use super::*;

/// Decides this module's commands.
pub(super) fn decide(
    state: &GovernanceState,
    at: Timestamp,
    command: &Command,
) -> Result<Decision, Rejection> {
    match command {
        Command::ReportIncident(report) => decide_incident(state, at, report),
        Command::UpdateIncident(update) => {
            let incident =
                state
                    .incidents
                    .get(&update.incident_id)
                    .ok_or_else(|| Rejection::Unknown {
                        kind: "incident",
                        id: update.incident_id.to_string(),
                    })?;
            if let Some(money) = &update.business_impact_usd {
                check_money("business_impact_usd", money)?;
            }
            if let Some(notes) = &update.notes {
                check_text("notes", notes, TEXT_BYTES_MAX, false)?;
            }
            let nothing = update.severity.is_none()
                && update.affected_user_count.is_none()
                && update.downtime_minutes.is_none()
                && update.business_impact_usd.is_none()
                && update.preventable.is_none()
                && update.notes.is_none();
            if nothing {
                return Err(invalid("update", "names no field to change"));
            }
            let mut events = vec![(
                format!("incident/{}", update.incident_id),
                Payload::IncidentUpdated(update.clone()),
            )];
            // Raising an incident to P1 is as serious as reporting one.
            if update.severity == Some(Severity::P1) && incident.current.severity != Severity::P1 {
                events.extend(regression_event(
                    state,
                    format!("REGRESSION: incident {} raised to P1", update.incident_id),
                ));
            }
            Ok(Decision {
                events,
                replay_of: None,
            })
        }
        _ => unreachable!("policy::decide dispatches only this module's commands here"),
    }
}

fn decide_incident(
    state: &GovernanceState,
    at: Timestamp,
    r: &IncidentReport,
) -> Result<Decision, Rejection> {
    check_money("business_impact_usd", &r.business_impact_usd)?;
    check_text(
        "preventability_notes",
        &r.preventability_notes,
        TEXT_BYTES_MAX,
        false,
    )?;
    if r.control_improvements.len() > 32 {
        return Err(invalid("control_improvements", "at most 32 items"));
    }
    for item in &r.control_improvements {
        check_text("control_improvements", item, TEXT_BYTES_MAX, true)?;
    }
    for (field, value) in [
        ("affected_user_count", r.affected_user_count),
        ("downtime_minutes", r.downtime_minutes),
    ] {
        if value > canonical::INTEGER_MAGNITUDE_MAX {
            return Err(invalid(field, "is too large"));
        }
    }
    let d = deployment(state, &r.deployment_id)?;
    let Some(released_at) = d.released_at else {
        return Err(Rejection::NotAllowed(format!(
            "deployment {} was never released, so it caused no incident",
            r.deployment_id
        )));
    };
    if r.incident_date > at {
        return Err(invalid(
            "incident_date",
            format!("{} is after the log's time {at}", r.incident_date),
        ));
    }
    if r.incident_date < released_at {
        return Err(invalid(
            "incident_date",
            format!(
                "{} is before the deployment was released ({released_at})",
                r.incident_date
            ),
        ));
    }
    let context = IncidentContext {
        auto_approved: d.auto_approved,
        score_centi: d.submitted.score_centi,
        class: d.class,
        evidence_id: d.submitted.evidence_id,
        cab_approvers: d
            .approval
            .as_ref()
            .map(|(a, _)| a.clone())
            .unwrap_or_default(),
        model_version: d.submitted.model_version.clone(),
        maturity_level: d.gate.as_ref().map_or(0, |g| g.maturity_level),
        breakglass: d.breakglass.is_some(),
    };
    let reported = IncidentReported {
        incident_id: r.incident_id,
        deployment_id: r.deployment_id,
        severity: r.severity,
        incident_date: r.incident_date.to_string(),
        affected_user_count: r.affected_user_count,
        downtime_minutes: r.downtime_minutes,
        business_impact_usd: r.business_impact_usd.clone(),
        preventable: r.preventable,
        preventability_notes: r.preventability_notes.clone(),
        control_improvements: r.control_improvements.clone(),
        context,
    };
    if let Some(existing) = state.incidents.get(&r.incident_id) {
        if existing.original == reported {
            return Ok(Decision::default());
        }
        return Err(Rejection::Conflict(format!(
            "incident {} was already reported with different content",
            r.incident_id
        )));
    }
    let mut events = vec![(
        format!("incident/{}", r.incident_id),
        Payload::IncidentReported(reported),
    )];
    // Tightening is immediate: a P1 above level 0 takes the level back one step at once.
    if r.severity == Severity::P1 {
        events.extend(regression_event(
            state,
            format!("REGRESSION: P1 incident {}", r.incident_id),
        ));
    }
    Ok(Decision {
        events,
        replay_of: None,
    })
}

fn check_money(field: &'static str, value: &str) -> Result<(), Rejection> {
    let (whole, cents) = value.split_once('.').unwrap_or((value, "00"));
    let ok = !whole.is_empty()
        && whole.len() <= 15
        && whole.bytes().all(|b| b.is_ascii_digit())
        && (whole == "0" || !whole.starts_with('0'))
        && cents.len() == 2
        && cents.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return Err(invalid(
            field,
            "must be a non-negative decimal string with two decimals, e.g. 12500.00",
        ));
    }
    Ok(())
}
