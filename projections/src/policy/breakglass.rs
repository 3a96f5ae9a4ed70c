//! Break-glass: an emergency release by one member with a justification (integrity still
//! checked), and its post-release review by a quorum of other members' signed votes within the
//! review window. (Logs begun before signed votes name two approvers at release and record a
//! single member's review.)

use super::*;

/// Decides this module's commands.
pub(super) fn decide(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    command: &Command,
) -> Result<Decision, Rejection> {
    match command {
        Command::Breakglass {
            presented,
            justification,
            approvers,
        } => {
            check_text("justification", justification, TEXT_BYTES_MAX, true)?;
            check_hex64("artifact_sha256", &presented.artifact_sha256)?;
            let d = release::unreleased(state, &presented.deployment_id)?;
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
            let approvers = if state.signed_votes_required {
                // One member and a justification release at once; the quorum reviews after.
                if !approvers.is_empty() {
                    return Err(invalid(
                        "approvers",
                        "break-glass names no approvers on this log: a quorum of other members reviews it, each with a signed vote",
                    ));
                }
                if d.submitter == actor {
                    return Err(Rejection::Forbidden(
                        "the submitter may not break the glass for their own deployment".into(),
                    ));
                }
                Vec::new()
            } else {
                let approvers = distinct_members(state, actor, approvers, 2)?;
                if approvers.contains(&d.submitter) {
                    return Err(Rejection::Forbidden(
                        "the submitter may not approve their own break-glass release".into(),
                    ));
                }
                approvers
            };
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
            if state.signed_votes_required {
                return Err(Rejection::NotAllowed(
                    "on this log a break-glass release is reviewed by a quorum of signed votes (POST /api/v1/deployments/{id}/breakglass/votes)".into(),
                ));
            }
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
        Command::VoteBreakglassReview {
            deployment_id,
            justified,
            findings,
            signature,
        } => decide_review_vote(
            state,
            actor,
            at,
            *deployment_id,
            (*justified, findings),
            signature.as_ref(),
        ),
        _ => unreachable!("policy::decide dispatches only this module's commands here"),
    }
}

fn decide_review_vote(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    deployment_id: Uuid,
    (justified, findings): (bool, &str),
    signature: Option<&SignedVote>,
) -> Result<Decision, Rejection> {
    check_text("findings", findings, TEXT_BYTES_MAX, true)?;
    let d = deployment(state, &deployment_id)?;
    require_member(state, actor)?;
    let Some((due, None)) = d.breakglass else {
        return Err(match d.breakglass {
            None => Rejection::NotAllowed("deployment was not released by break-glass".into()),
            Some(_) => Rejection::Conflict("break-glass release already reviewed".into()),
        });
    };
    let (by, approvers) = state
        .unreviewed_breakglass
        .get(&deployment_id)
        .cloned()
        .unwrap_or_default();
    if by == actor || approvers.iter().any(|a| a == actor) || d.submitter == actor {
        return Err(Rejection::Forbidden(format!(
            "{actor} took part in this break-glass release and may not review it"
        )));
    }
    if at > due {
        return Err(Rejection::NotAllowed(format!(
            "the review window closed at {due}: the release stays unreviewed, a finding, and {by} may not break the glass again"
        )));
    }
    let votes = state
        .breakglass_review_votes
        .get(&deployment_id)
        .cloned()
        .unwrap_or_default();
    if votes.contains_key(actor) {
        return Err(Rejection::Conflict(format!(
            "{actor} already reviewed this break-glass release"
        )));
    }
    let signature = signed_votes::check(
        state,
        actor,
        at,
        signed_votes::VoteSubject {
            kind: crate::vote_statement::Kind::BreakglassReview,
            subject: deployment_id.to_string(),
            digest: hex::encode(d.submitted.evidence_hash),
            approve: justified,
            rationale: findings,
        },
        signature,
    )?;
    let subject = deployment_subject(&deployment_id);
    let mut events = vec![(
        subject.clone(),
        Payload::CabVoteCast(CabVoteCast {
            target: VoteTarget::BreakglassReview { deployment_id },
            approve: justified,
            rationale: findings.to_owned(),
            signature: signature.ssh,
            passkey_signature: signature.passkey,
        }),
    )];
    // The review is complete once the class's quorum of distinct current members has voted.
    let mut reviewers: BTreeMap<String, bool> = votes
        .into_iter()
        .filter(|(m, _)| state.cab_members.contains(m))
        .collect();
    reviewers.insert(actor.to_owned(), justified);
    if reviewers.len() >= state.quorum(d.class) as usize {
        let unjustified: Vec<&str> = reviewers
            .iter()
            .filter(|(_, j)| !**j)
            .map(|(m, _)| m.as_str())
            .collect();
        let names: Vec<&str> = reviewers.keys().map(String::as_str).collect();
        events.push((
            subject,
            Payload::BreakglassReviewed(BreakglassReviewed {
                deployment_id,
                justified: unjustified.is_empty(),
                findings: if unjustified.is_empty() {
                    format!("reviewed by {}: justified", names.join(", "))
                } else {
                    format!(
                        "reviewed by {}: judged unjustified by {}",
                        names.join(", "),
                        unjustified.join(", ")
                    )
                },
            }),
        ));
    }
    Ok(Decision {
        events,
        replay_of: None,
    })
}
