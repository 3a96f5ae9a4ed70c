//! Exceptions: granted within limits, revoked.

use super::*;

/// Decides this module's commands.
pub(super) fn decide(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    command: &Command,
) -> Result<Decision, Rejection> {
    match command {
        Command::GrantException {
            exception_id,
            control,
            scope,
            reason,
            approvers,
            expires_at,
        } => {
            check_text("reason", reason, TEXT_BYTES_MAX, true)?;
            check_text("scope", scope, NAME_BYTES_MAX, true)?;
            match Control::parse(control) {
                None => return Err(invalid("control", format!("unknown control {control:?}; waivable: sbom_hash, sbom_signature, blast_radius, approval"))),
                Some(c) if !c.is_waivable() => {
                    return Err(invalid(
                        "control",
                        format!("{control} is never waivable (artifact and evidence integrity)"),
                    ))
                }
                Some(_) => {}
            }
            if *expires_at <= at {
                return Err(invalid("expires_at", "must be in the future"));
            }
            if expires_at.unix_micros() - at.unix_micros() > EXCEPTION_DAYS_MAX * 86_400_000_000 {
                return Err(invalid(
                    "expires_at",
                    format!("exceptions run at most {EXCEPTION_DAYS_MAX} days"),
                ));
            }
            let approvers = distinct_members(state, actor, approvers, 2)?;
            if state.exceptions.contains_key(exception_id) {
                return Err(Rejection::Conflict(format!(
                    "exception {exception_id} exists"
                )));
            }
            Ok(Decision::one(
                format!("exception/{exception_id}"),
                Payload::ExceptionGranted(ExceptionGranted {
                    exception_id: *exception_id,
                    control: control.clone(),
                    scope: scope.clone(),
                    reason: reason.clone(),
                    approvers,
                    expires_at: expires_at.to_string(),
                }),
            ))
        }
        Command::RevokeException {
            exception_id,
            reason,
        } => {
            check_text("reason", reason, TEXT_BYTES_MAX, true)?;
            match state.exceptions.get(exception_id) {
                None => Err(Rejection::Unknown {
                    kind: "exception",
                    id: exception_id.to_string(),
                }),
                Some(e) if !e.in_force_at(at) => Err(Rejection::NotAllowed(
                    "the exception is no longer in force".into(),
                )),
                Some(_) => Ok(Decision::one(
                    format!("exception/{exception_id}"),
                    Payload::ExceptionRevoked(ExceptionRevoked {
                        exception_id: *exception_id,
                        reason: reason.clone(),
                    }),
                )),
            }
        }
        _ => unreachable!("policy::decide dispatches only this module's commands here"),
    }
}
