//! The CAB: membership, votes on deployments, raised classifications.

use super::*;
use crate::vote_statement::Kind;

/// Decides this module's commands.
pub(super) fn decide(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    command: &Command,
) -> Result<Decision, Rejection> {
    match command {
        Command::AddCabMember { member, ssh_key } => {
            require_seating(state)?;
            check_new_member(state, member)?;
            let ssh_key = match ssh_key {
                Some(line) => Some(signed_votes::member_key(state, member, line)?),
                None if state.signed_votes_required => {
                    return Err(invalid(
                        "ssh_key",
                        "required: this log requires signed votes, so a member joins with the OpenSSH Ed25519 public key they sign with",
                    ))
                }
                None => None,
            };
            Ok(Decision::one(
                "cab/members".into(),
                Payload::CabMemberAdded(CabMemberAdded {
                    member: member.clone(),
                    ssh_key,
                }),
            ))
        }
        Command::RemoveCabMember { member } => {
            require_seating(state)?;
            if !state.cab_members.contains(member) {
                return Err(Rejection::Unknown {
                    kind: "CAB member",
                    id: member.clone(),
                });
            }
            Ok(Decision::one(
                "cab/members".into(),
                Payload::CabMemberRemoved(CabMemberRemoved {
                    member: member.clone(),
                }),
            ))
        }
        Command::Vote {
            deployment_id,
            approve,
            rationale,
            signature,
        } => decide_vote(
            state,
            actor,
            at,
            *deployment_id,
            *approve,
            rationale,
            signature.as_ref(),
        ),
        Command::RaiseClassification {
            deployment_id,
            to,
            reason,
        } => {
            check_text("reason", reason, TEXT_BYTES_MAX, true)?;
            require_member(state, actor)?;
            let d = deployment(state, deployment_id)?;
            if *to <= d.class {
                return Err(Rejection::NotAllowed(format!(
                    "a classification can only be raised: {} is not above {}",
                    to.as_str(),
                    d.class.as_str()
                )));
            }
            if !matches!(
                d.status,
                DeploymentStatus::PendingCab | DeploymentStatus::AutoApproved
            ) {
                return Err(Rejection::NotAllowed(format!(
                    "deployment is {}",
                    d.status.as_str()
                )));
            }
            let model = state
                .active_model()
                .ok_or_else(|| Rejection::NotAllowed("no active risk model".into()))?;
            let subject = deployment_subject(deployment_id);
            let (_, mut decision) = gate(
                state,
                (*deployment_id, at),
                *to,
                d.submitted.score_centi,
                &model.proposal,
            );
            // Raising never loosens: whatever the new threshold says, a raised deployment goes to the CAB.
            decision.quorum = state.quorum(*to);
            Ok(Decision {
                events: vec![
                    (
                        subject.clone(),
                        Payload::ClassificationRaised(ClassificationRaised {
                            deployment_id: *deployment_id,
                            from: d.class,
                            to: *to,
                            reason: reason.clone(),
                        }),
                    ),
                    (
                        subject,
                        Payload::DeploymentRoutedToCab(DeploymentRoutedToCab(decision)),
                    ),
                ],
                replay_of: None,
            })
        }
        _ => unreachable!("policy::decide dispatches only this module's commands here"),
    }
}

/// An admin seats the CAB directly only until it first votes (on a log that requires signed
/// votes); from then on its membership changes only by its own signed votes.
fn require_seating(state: &GovernanceState) -> Result<(), Rejection> {
    if state.signed_votes_required && state.cab_has_voted {
        return Err(Rejection::NotAllowed(
            "the CAB has voted: its membership now changes only by a proposal (POST /api/v1/cab/proposals) that three other members approve with signed votes".into(),
        ));
    }
    Ok(())
}

/// Whether `member` can join: a visible NFC name, not a look-alike of a known principal, not a
/// member already.
pub(super) fn check_new_member(state: &GovernanceState, member: &str) -> Result<(), Rejection> {
    names::check_name("member", member, NAME_BYTES_MAX)?;
    let known = state
        .cab_members
        .iter()
        .map(String::as_str)
        .chain(state.access.values().map(|a| a.principal.as_str()));
    if let Some(other) = names::confusable_with(member, known) {
        return Err(Rejection::Conflict(format!(
            "{member} looks like {other}, who is already known"
        )));
    }
    if state.cab_members.contains(member) {
        return Err(Rejection::Conflict(format!(
            "{member} is already a CAB member"
        )));
    }
    Ok(())
}

fn decide_vote(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    deployment_id: Uuid,
    approve: bool,
    rationale: &str,
    signature: Option<&SignedVote>,
) -> Result<Decision, Rejection> {
    check_text("rationale", rationale, TEXT_BYTES_MAX, true)?;
    let d = deployment(state, &deployment_id)?;
    require_member(state, actor)?;
    if d.submitter == actor {
        return Err(Rejection::Forbidden(
            "separation of duties: the submitter may not vote on their own deployment".into(),
        ));
    }
    let generated_by_actor = state
        .evidence
        .get(&d.submitted.evidence_id)
        .is_some_and(|e| e.generated_by == actor);
    if generated_by_actor {
        return Err(Rejection::Forbidden(
            "separation of duties: the evidence generator may not vote on this deployment".into(),
        ));
    }
    if d.votes.contains_key(actor) {
        return Err(Rejection::Conflict(format!(
            "{actor} already voted on this deployment"
        )));
    }
    if d.status != DeploymentStatus::PendingCab {
        return Err(Rejection::NotAllowed(format!(
            "deployment is {}, not pending CAB",
            d.status.as_str()
        )));
    }
    let signature = signed_votes::check(
        state,
        actor,
        at,
        signed_votes::VoteSubject {
            kind: Kind::Deployment,
            subject: deployment_id.to_string(),
            digest: hex::encode(d.submitted.evidence_hash),
            approve,
            rationale,
        },
        signature,
    )?;
    let subject = deployment_subject(&deployment_id);
    let mut events = vec![(
        subject.clone(),
        Payload::CabVoteCast(CabVoteCast {
            target: VoteTarget::Deployment { deployment_id },
            approve,
            rationale: rationale.to_owned(),
            signature: signature.ssh,
            passkey_signature: signature.passkey,
        }),
    )];
    if !approve {
        events.push((
            subject,
            Payload::DeploymentRejected(DeploymentRejected {
                deployment_id,
                rejected_by: actor.to_owned(),
                rationale: rationale.to_owned(),
            }),
        ));
    } else {
        // A quorum counts distinct approvers who are members now.
        let approvers: Vec<String> = d
            .votes
            .iter()
            .filter(|(m, (a, _))| *a && state.cab_members.contains(*m))
            .map(|(m, _)| m.clone())
            .chain(std::iter::once(actor.to_owned()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if approvers.len() as u64 >= u64::from(state.quorum(d.class)) {
            let validity_hours = state
                .blast_policy
                .as_ref()
                .map_or(7 * 24, |p| p.approval_validity_hours);
            let expires_at = Timestamp::from_unix_micros(
                at.unix_micros() + i64::from(validity_hours) * 3_600_000_000,
            )
            .to_string();
            events.push((
                subject,
                Payload::DeploymentApproved(DeploymentApproved {
                    deployment_id,
                    approvers,
                    expires_at,
                }),
            ));
        }
    }
    Ok(Decision {
        events,
        replay_of: None,
    })
}
