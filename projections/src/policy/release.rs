//! The release gate and SBOM presentation.

use super::*;

/// Decides this module's commands.
pub(super) fn decide(
    state: &GovernanceState,
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
        _ => unreachable!("policy::decide dispatches only this module's commands here"),
    }
}

/// The deployment, if it exists and has not been released yet.
pub(super) fn unreleased<'a>(
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
