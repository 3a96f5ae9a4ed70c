//! Proposals the CAB votes on (exceptions, registry changes, changes to the CAB and its policy)
//! as the state keeps them, and how a carried-out change closes its proposal.

use crate::state::GovernanceState;
use events::payloads::*;
use events::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A proposal the CAB votes on, and the votes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal<P> {
    /// The proposal as recorded.
    pub proposal: P,
    /// Who proposed it (never counts towards its quorum).
    pub proposed_by: String,
    /// Votes after this are refused.
    pub proposal_expires_at: Timestamp,
    /// Votes by CAB member: approve?
    pub votes: BTreeMap<String, bool>,
    /// Whether its quorum approved it and it took effect.
    pub applied: bool,
}

impl<P> Proposal<P> {
    pub(crate) fn new(proposal: P, proposed_by: String, proposal_expires_at: Timestamp) -> Self {
        Self {
            proposal,
            proposed_by,
            proposal_expires_at,
            votes: BTreeMap::new(),
            applied: false,
        }
    }
}

/// A proposed registry change and the votes on it.
pub type RegistryProposal = Proposal<RegistryChangeProposed>;
/// A proposed change to the CAB or its policy and the votes on it.
pub type ChangeProposal = Proposal<ChangeProposed>;

/// A proposed exception and the votes on it (`applied` once granted).
pub type ExceptionProposal = Proposal<ExceptionProposed>;

impl GovernanceState {
    /// Marks the open change proposals that `payload` carries out as applied.
    pub(crate) fn mark_applied(&mut self, payload: &Payload) {
        let carried_out = |change: &ProposedChange| match (payload, change) {
            (Payload::CabMemberAdded(p), ProposedChange::AddMember { member, .. }) => {
                p.member == *member
            }
            (Payload::CabMemberRemoved(p), ProposedChange::RemoveMember { member }) => {
                p.member == *member
            }
            (Payload::BlastRadiusPolicySet(p), ProposedChange::BlastRadiusPolicy(q)) => {
                p.version == q.version
            }
            _ => false,
        };
        for proposal in self.change_proposals.values_mut() {
            if !proposal.applied && carried_out(&proposal.proposal.change) {
                proposal.applied = true;
            }
        }
        if let Payload::ExceptionGranted(p) = payload {
            if let Some(proposal) = self.exception_proposals.get_mut(&p.exception_id) {
                proposal.applied = true;
            }
        }
    }
}
