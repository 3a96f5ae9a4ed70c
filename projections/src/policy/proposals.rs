//! What every CAB proposal shares: it takes votes for a while, its proposer never counts, one
//! rejection closes it, and its quorum counts distinct current members who approved.

use super::*;
use crate::state::Proposal;

/// When a proposal made at `at` stops taking votes.
pub(super) fn expiry(at: Timestamp) -> Timestamp {
    Timestamp::from_unix_micros(at.unix_micros() + PROPOSAL_MICROS)
}

/// Whether `actor` may vote on `proposal` at `at`.
pub(super) fn check_open<P>(
    proposal: &Proposal<P>,
    actor: &str,
    at: Timestamp,
) -> Result<(), Rejection> {
    if proposal.proposed_by == actor {
        return Err(Rejection::Forbidden(
            "the proposer never approves their own proposal".into(),
        ));
    }
    if proposal.applied {
        return Err(Rejection::NotAllowed(
            "the proposal was already carried out".into(),
        ));
    }
    if proposal.votes.values().any(|approved| !approved) {
        return Err(Rejection::NotAllowed("the proposal was rejected".into()));
    }
    if at >= proposal.proposal_expires_at {
        return Err(Rejection::NotAllowed(format!(
            "the proposal expired at {}",
            proposal.proposal_expires_at
        )));
    }
    if proposal.votes.contains_key(actor) {
        return Err(Rejection::Conflict(format!(
            "{actor} already voted on this proposal"
        )));
    }
    Ok(())
}

/// The distinct current members who approve `proposal` once `actor`'s vote is counted.
pub(super) fn approvers<P>(
    state: &GovernanceState,
    proposal: &Proposal<P>,
    actor: &str,
    approve: bool,
) -> Vec<String> {
    proposal
        .votes
        .iter()
        .filter(|(m, a)| **a && state.cab_members.contains(*m))
        .map(|(m, _)| m.clone())
        .chain(approve.then(|| actor.to_owned()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A member's vote on `proposal`: checks it may be cast now and its signature, and returns the
/// vote's entry and the distinct current members who approve once it counts.
pub(super) fn cast<P: serde::Serialize>(
    state: &GovernanceState,
    (actor, at): (&str, Timestamp),
    proposal: &Proposal<P>,
    (kind, target): (crate::vote_statement::Kind, VoteTarget),
    (approve, rationale): (bool, &str),
    signature: Option<&SignedVote>,
) -> Result<(Payload, Vec<String>), Rejection> {
    check_text("rationale", rationale, TEXT_BYTES_MAX, true)?;
    require_member(state, actor)?;
    check_open(proposal, actor, at)?;
    let subject = match &target {
        VoteTarget::Exception { exception_id } => exception_id.to_string(),
        VoteTarget::RegistryChange { proposal_id } | VoteTarget::Change { proposal_id } => {
            proposal_id.to_string()
        }
        other => unreachable!("not a proposal: {other:?}"),
    };
    let signature = signed_votes::check(
        state,
        actor,
        at,
        signed_votes::VoteSubject {
            kind,
            subject,
            digest: crate::vote_statement::canonical_digest(&proposal.proposal),
            approve,
            rationale,
        },
        signature,
    )?;
    let vote = Payload::CabVoteCast(CabVoteCast {
        target,
        approve,
        rationale: rationale.to_owned(),
        signature: signature.ssh,
        passkey_signature: signature.passkey,
    });
    Ok((vote, approvers(state, proposal, actor, approve)))
}
