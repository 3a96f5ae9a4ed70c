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
