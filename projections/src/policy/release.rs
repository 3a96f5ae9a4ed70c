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

/// Runs the release checks for `presented` at time `at`.
pub fn release_checks(
    state: &GovernanceState,
    presented: &PresentedRelease,
    at: Timestamp,
    require_approval: bool,
) -> Result<Vec<GateCheck>, Rejection> {
    let d = deployment(state, &presented.deployment_id)?;
    let app = d.submitted.app_name.to_lowercase();
    let scope_deployment = format!("deployment:{}", presented.deployment_id);
    let waived = |control: Control| {
        state.exceptions.values().find(|e| {
            e.granted.control == control.as_str()
                && (e.granted.scope.to_lowercase() == app || e.granted.scope == scope_deployment)
                && e.in_force_at(at)
        })
    };
    let evidence = state.evidence.get(&d.submitted.evidence_id);
    let evidence = evidence.as_deref();
    let mut checks = Vec::new();
    // `result`: Some(pass) for a check that ran, None for one that does not apply.
    let mut record = |check: Control, result: Option<bool>, code: &str, detail: String| {
        let pass = result.unwrap_or(true);
        let exception = if pass || !check.is_waivable() {
            None
        } else {
            waived(check)
        };
        checks.push(GateCheck {
            check,
            outcome: match result {
                None => CheckOutcome::Skipped,
                Some(true) => CheckOutcome::Pass,
                Some(false) if exception.is_some() => CheckOutcome::Waived,
                Some(false) => CheckOutcome::Fail,
            },
            reason_code: (!pass).then(|| code.to_owned()),
            detail: match exception {
                Some(e) => format!(
                    "{detail}; waived by exception {} until {}",
                    e.granted.exception_id, e.granted.expires_at
                ),
                None => detail,
            },
        });
    };
    let expected_artifact = evidence.and_then(|e| e.first_artifact.as_ref());
    let artifact_ok = expected_artifact.is_some_and(|a| {
        a.sha256.is(&presented.artifact_sha256) && a.size == presented.artifact_size
    });
    record(
        Control::ArtifactHash,
        Some(artifact_ok),
        "ARTIFACT_HASH_MISMATCH",
        format!(
            "presented {} ({} bytes), evidence lists {}",
            presented.artifact_sha256,
            presented.artifact_size,
            expected_artifact.map_or("nothing".to_owned(), |a| format!(
                "{} ({} bytes)",
                a.sha256, a.size
            ))
        ),
    );
    // A stored document with no canonical form cannot match its recorded hash: tampered.
    let evidence_ok = evidence.is_some_and(|e| {
        e.hash_matches_document() && e.evidence_hash.digest() == Some(d.submitted.evidence_hash)
    });
    let recomputed = evidence
        .and_then(|e| e.recomputed_hash)
        .map(|digest| Digest(digest).to_hex());
    record(
        Control::EvidenceImmutability,
        Some(evidence_ok),
        "EVIDENCE_TAMPERED",
        format!(
            "evidence hash at submission {}, recomputed {}",
            events::Digest(d.submitted.evidence_hash),
            recomputed.unwrap_or_default()
        ),
    );
    let sbom = evidence.and_then(|e| e.sbom.as_ref());
    match sbom {
        None => {
            // A class whose policy requires an SBOM fails both SBOM checks without one.
            let required = state.blast_policy.as_ref().is_some_and(|p| {
                p.classes
                    .iter()
                    .any(|c| c.class == d.class && c.sbom_required)
            });
            let (outcome, detail) = if required {
                (
                    Some(false),
                    format!(
                        "evidence lists no SBOM, and the policy requires one for {}",
                        d.class.as_str()
                    ),
                )
            } else {
                (None, "evidence lists no SBOM".to_owned())
            };
            record(Control::SbomHash, outcome, "SBOM_REQUIRED", detail.clone());
            record(Control::SbomSignature, outcome, "SBOM_REQUIRED", detail);
        }
        Some(sbom) => {
            let hash_ok = presented
                .sbom_sha256
                .as_deref()
                .is_some_and(|presented| sbom.sha256.is(presented));
            record(
                Control::SbomHash,
                Some(hash_ok),
                "SBOM_HASH_MISMATCH",
                format!(
                    "presented {}, evidence lists {}",
                    presented.sbom_sha256.as_deref().unwrap_or("no SBOM"),
                    sbom.sha256
                ),
            );
            let (sig_ok, detail) =
                verify_sbom_signature(state, sbom, presented.sbom_sha256.as_deref(), at);
            record(
                Control::SbomSignature,
                Some(sig_ok),
                "SBOM_SIGNATURE_INVALID",
                detail,
            );
        }
    }
    let policy_classes: Vec<BlastRadiusClass> = state
        .blast_policy
        .iter()
        .flat_map(|p| p.classes.iter().map(|c| c.class))
        .collect();
    record(
        Control::BlastRadius,
        Some(policy_classes.contains(&d.class)),
        "BLAST_RADIUS_MISSING",
        format!("class {}", d.class.as_str()),
    );
    if require_approval {
        let (ok, code, detail) = match (d.status, &d.approval) {
            (DeploymentStatus::AutoApproved, _) => {
                (true, "", "auto-approved by the gate".to_owned())
            }
            (DeploymentStatus::Approved, Some((approvers, expires))) if at < *expires => (
                true,
                "",
                format!("approved by {approvers:?} until {expires}"),
            ),
            (DeploymentStatus::Approved, Some((_, expires))) => (
                false,
                "APPROVAL_EXPIRED",
                format!("approval expired at {expires}"),
            ),
            (status, _) => (false, "NOT_APPROVED", format!("status {}", status.as_str())),
        };
        record(Control::Approval, Some(ok), code, detail);
    }
    Ok(checks)
}

fn verify_sbom_signature(
    state: &GovernanceState,
    sbom: &SbomSummary,
    presented: Option<&str>,
    at: Timestamp,
) -> (bool, String) {
    let Some(sig) = &sbom.signature else {
        return (false, "the SBOM is unsigned".into());
    };
    let Some(key) = state.signing_keys.get(&sig.key_id) else {
        return (false, format!("key {} was never trusted", sig.key_id));
    };
    if !key.trusted_at(at) {
        return (
            false,
            format!(
                "key {} is not trusted at {at} (revoked {:?})",
                sig.key_id,
                key.revoked_at.map(|t| t.to_string())
            ),
        );
    }
    let Some(digest) = presented else {
        return (false, "no SBOM bytes were presented".into());
    };
    if sbom_signature_verifies(&key.public_key_hex, &sig.signature.to_string(), digest) {
        (true, format!("signed by trusted key {}", sig.key_id))
    } else {
        (
            false,
            format!("signature does not verify under key {}", sig.key_id),
        )
    }
}
