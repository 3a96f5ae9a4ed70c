//! The release gate, SBOM presentation, break-glass and its review.

use super::*;

/// Decides this module's commands.
pub(super) fn decide(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    command: &Command,
) -> Result<Decision, Rejection> {
    match command {
        Command::PresentSbom(sbom) => {
            unreleased(state, &sbom.deployment_id)?;
            check_hex64("sbom_sha256", &sbom.sbom_sha256)?;
            Ok(Decision::one(
                deployment_subject(&sbom.deployment_id),
                Payload::SbomPresented(sbom.clone()),
            ))
        }
        Command::Release(presented) => {
            unreleased(state, &presented.deployment_id)?;
            check_hex64("artifact_sha256", &presented.artifact_sha256)?;
            let checks = release_checks(state, presented, at, true)?;
            let verdict = ReleaseVerdict {
                deployment_id: presented.deployment_id,
                checks,
                artifact_sha256: presented.artifact_sha256.clone(),
                artifact_size: presented.artifact_size,
                sbom_sha256: presented.sbom_sha256.clone(),
            };
            let blocked = verdict
                .checks
                .iter()
                .any(|c| c.outcome == CheckOutcome::Fail);
            let payload = if blocked {
                Payload::DeploymentReleaseBlocked(DeploymentReleaseBlocked(verdict))
            } else {
                Payload::DeploymentReleased(DeploymentReleased(verdict))
            };
            Ok(Decision::one(
                deployment_subject(&presented.deployment_id),
                payload,
            ))
        }
        Command::Breakglass {
            presented,
            justification,
            approvers,
        } => {
            check_text("justification", justification, TEXT_BYTES_MAX, true)?;
            check_hex64("artifact_sha256", &presented.artifact_sha256)?;
            let d = unreleased(state, &presented.deployment_id)?;
            // Whoever broke the glass and has not had it reviewed may not break it again.
            if let Some((pending, _)) = state
                .unreviewed_breakglass
                .iter()
                .find(|(_, (by, _))| by == actor)
            {
                return Err(Rejection::NotAllowed(format!(
                    "{actor}'s break-glass release of deployment {pending} awaits its review"
                )));
            }
            let approvers = distinct_members(state, actor, approvers, 2)?;
            if approvers.contains(&d.submitter) {
                return Err(Rejection::Forbidden(
                    "the submitter may not approve their own break-glass release".into(),
                ));
            }
            let checks = release_checks(state, presented, at, false)?;
            // Break-glass waives the approval, never integrity: not the artifact's, the
            // evidence's, nor the SBOM's hash or signature (even where an exception would).
            if let Some(failed) = checks.iter().find(|c| {
                c.check.is_integrity()
                    && matches!(c.outcome, CheckOutcome::Fail | CheckOutcome::Waived)
            }) {
                return Err(Rejection::NotAllowed(format!(
                    "break-glass cannot bypass {}: {}",
                    failed.check, failed.detail
                )));
            }
            Ok(Decision::one(
                deployment_subject(&presented.deployment_id),
                Payload::BreakglassReleased(BreakglassReleased {
                    deployment_id: presented.deployment_id,
                    justification: justification.clone(),
                    approvers,
                    artifact_sha256: presented.artifact_sha256.clone(),
                    artifact_size: presented.artifact_size,
                    sbom_sha256: presented.sbom_sha256.clone(),
                    checks,
                    review_due_at: Timestamp::from_unix_micros(
                        at.unix_micros() + BREAKGLASS_REVIEW_MICROS,
                    )
                    .to_string(),
                }),
            ))
        }
        Command::ReviewBreakglass {
            deployment_id,
            justified,
            findings,
        } => {
            check_text("findings", findings, TEXT_BYTES_MAX, true)?;
            require_member(state, actor)?;
            // The review is someone else's: not the one who broke the glass, nor an approver.
            if let Some((by, approvers)) = state.unreviewed_breakglass.get(deployment_id) {
                if by == actor || approvers.iter().any(|a| a == actor) {
                    return Err(Rejection::Forbidden(format!(
                        "{actor} took part in this break-glass release and may not review it"
                    )));
                }
            }
            let d = deployment(state, deployment_id)?;
            match d.breakglass {
                None => Err(Rejection::NotAllowed(
                    "deployment was not released by break-glass".into(),
                )),
                Some((_, Some(_))) => Err(Rejection::Conflict(
                    "break-glass release already reviewed".into(),
                )),
                Some(_) => Ok(Decision::one(
                    deployment_subject(deployment_id),
                    Payload::BreakglassReviewed(BreakglassReviewed {
                        deployment_id: *deployment_id,
                        justified: *justified,
                        findings: findings.clone(),
                    }),
                )),
            }
        }
        _ => unreachable!("policy::decide dispatches only this module's commands here"),
    }
}

/// The deployment, if it exists and has not been released yet.
fn unreleased<'a>(
    state: &'a GovernanceState,
    id: &Uuid,
) -> Result<std::borrow::Cow<'a, crate::state::DeploymentRecord>, Rejection> {
    let d = deployment(state, id)?;
    if matches!(
        d.status,
        DeploymentStatus::Released | DeploymentStatus::BreakglassReleased
    ) {
        return Err(Rejection::Conflict(
            "deployment was already released".into(),
        ));
    }
    Ok(d)
}
