//! Changes to the CAB itself (who is a member), to its blast-radius policy and to the evidence
//! producers whose signed evidence classifies deployments: once the CAB has
//! voted on anything, each is a proposal that three members other than the proposer approve with
//! signed votes. (Before the CAB's first vote an admin seats its first members directly; a log
//! begun before signed votes records policies naming their approvers.)

use super::*;
use crate::vote_statement::Kind;

/// Approvers, other than its proposer, a change to the CAB or its policy needs.
pub const CHANGE_QUORUM: usize = POLICY_APPROVAL_QUORUM;

/// Decides this module's commands.
pub(super) fn decide(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    command: &Command,
) -> Result<Decision, Rejection> {
    match command {
        Command::ProposeChange {
            proposal_id,
            change,
        } => {
            require_member(state, actor)?;
            check_change(state, change)?;
            if state.change_proposals.contains_key(proposal_id) {
                return Err(Rejection::Conflict(format!(
                    "proposal {proposal_id} exists"
                )));
            }
            Ok(Decision::one(
                "cab/proposals".into(),
                Payload::ChangeProposed(ChangeProposed {
                    proposal_id: *proposal_id,
                    change: change.clone(),
                    proposal_expires_at: proposals::expiry(at).to_string(),
                }),
            ))
        }
        Command::VoteChange {
            proposal_id,
            approve,
            rationale,
            signature,
        } => {
            let proposal =
                state
                    .change_proposals
                    .get(proposal_id)
                    .ok_or_else(|| Rejection::Unknown {
                        kind: "proposal",
                        id: proposal_id.to_string(),
                    })?;
            let change = &proposal.proposal.change;
            if matches!(change, ProposedChange::RemoveMember { member } if member == actor) {
                return Err(Rejection::Forbidden(
                    "a member does not vote on their own removal".into(),
                ));
            }
            let target = VoteTarget::Change {
                proposal_id: *proposal_id,
            };
            let (vote, approvers) = proposals::cast(
                state,
                (actor, at),
                proposal,
                (Kind::Change, target),
                (*approve, rationale),
                signature.as_ref(),
            )?;
            let mut events = vec![("cab/proposals".to_owned(), vote)];
            if *approve && approvers.len() >= CHANGE_QUORUM {
                // Checked again against the state as it is now: another change may have landed.
                check_change(state, change)?;
                events.push(carry_out(state, (*proposal_id, change), approvers)?);
            }
            Ok(Decision {
                events,
                replay_of: None,
            })
        }
        _ => unreachable!("policy::decide dispatches only this module's commands here"),
    }
}

/// Whether `change` can be made to the state as it is now.
fn check_change(state: &GovernanceState, change: &ProposedChange) -> Result<(), Rejection> {
    match change {
        ProposedChange::AddMember { member, ssh_key } => {
            cab::check_new_member(state, member)?;
            signed_votes::member_key(state, member, ssh_key).map(drop)
        }
        ProposedChange::RemoveMember { member } => {
            if state.cab_members.contains(member) {
                Ok(())
            } else {
                Err(Rejection::Unknown {
                    kind: "CAB member",
                    id: member.clone(),
                })
            }
        }
        ProposedChange::BlastRadiusPolicy(p) => models::check_blast_policy(state, p),
        ProposedChange::SetEvidenceProducer { producer, ssh_key } => {
            producers::producer_key(state, producer, ssh_key).map(drop)
        }
    }
}

/// The event that carries out `change`, approved by `approvers`.
fn carry_out(
    state: &GovernanceState,
    (proposal_id, change): (Uuid, &ProposedChange),
    approvers: Vec<String>,
) -> Result<(String, Payload), Rejection> {
    Ok(match change {
        ProposedChange::AddMember { member, ssh_key } => (
            "cab/members".into(),
            Payload::CabMemberAdded(CabMemberAdded {
                member: member.clone(),
                ssh_key: Some(signed_votes::member_key(state, member, ssh_key)?),
            }),
        ),
        ProposedChange::RemoveMember { member } => (
            "cab/members".into(),
            Payload::CabMemberRemoved(CabMemberRemoved {
                member: member.clone(),
            }),
        ),
        ProposedChange::BlastRadiusPolicy(p) => (
            "blast_radius/policy".into(),
            Payload::BlastRadiusPolicySet(BlastRadiusPolicySet {
                approvers,
                ..p.clone()
            }),
        ),
        ProposedChange::SetEvidenceProducer { producer, ssh_key } => (
            producers::producer_subject(producer),
            Payload::EvidenceProducerSet(EvidenceProducerSet {
                producer: producer.clone(),
                ssh_key: producers::producer_key(state, producer, ssh_key)?,
                approvers,
                proposal_id: Some(proposal_id),
            }),
        ),
    })
}
