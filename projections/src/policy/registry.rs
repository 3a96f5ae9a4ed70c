//! The application registry: the facts that classify an application, changed only by a CAB
//! proposal that three other members approve with signed votes, and the classification that
//! takes the strictest of the registry, the rules on the facts (the registry's, and the install
//! scope signed evidence states), and the rules on what the submitter declares (a submitter can
//! raise a class, never lower it).

use super::*;
use crate::vote_statement::Kind;

/// Approvers, other than its proposer, a registry change needs (any change can lower a class).
pub const REGISTRY_QUORUM: usize = POLICY_APPROVAL_QUORUM;
/// Service tiers a registry entry may name.
pub const SERVICE_TIERS: [&str; 4] = ["Tier0", "Tier1", "Tier2", "Tier3"];

/// The registry entry `app_name` names, if any.
pub fn registered<'a>(state: &'a GovernanceState, app_name: &str) -> Option<&'a AppEntry> {
    state
        .app_names
        .get(&names::app_key(app_name))
        .and_then(|id| state.app_registry.get(id))
}

/// Classifies a submission: on a log with a registry, the strictest of the registered
/// criticality, the rules applied to the facts (the registry's tier and reach, and the install
/// scope the producer's signed evidence states), and the rules applied to the submitter's inputs;
/// on a log without one (begun before it), the rules on the inputs alone. `evidence_admin` is
/// the evidence's `requires_admin` (`None` when the evidence states none, or for `classify`).
pub fn classify_submission(
    state: &GovernanceState,
    policy: &BlastRadiusPolicySet,
    input: &ClassifyInput,
    evidence_admin: Option<bool>,
) -> Classification {
    let declared = classify(policy, input);
    if state.app_registry.is_empty() {
        return declared;
    }
    let evidence_says = evidence_admin
        .map(|admin| format!("the evidence's install scope (admin: {admin}) and "))
        .unwrap_or_default();
    let registered = registered(state, &input.app_name);
    let facts = ClassifyInput {
        app_name: input.app_name.clone(),
        requires_admin: evidence_admin.unwrap_or(input.requires_admin),
        target_user_count: input
            .target_user_count
            .max(registered.map_or(0, |e| e.expected_reach)),
        cmdb: match registered {
            Some(entry) => [("service_tier".to_owned(), entry.service_tier.clone())].into(),
            None => input.cmdb.clone(),
        },
    };
    let by_facts = classify(policy, &facts);
    let Some(entry) = registered else {
        let evidence_clause = if evidence_admin.is_some() {
            format!(
                "rules on {evidence_says}the submitter's other inputs: {} ({}); ",
                by_facts.class.as_str(),
                by_facts.rule
            )
        } else {
            String::new()
        };
        let (class, rule) = strictest(&[
            (by_facts.class, by_facts.rule.clone()),
            (declared.class, declared.rule.clone()),
        ]);
        return Classification {
            class,
            rule,
            registered_app: None,
            sources: Some(format!(
                "unregistered application: never auto-approved ({UNREGISTERED_APPLICATION}); {evidence_clause}rules on the submitter's inputs: {} ({})",
                declared.class.as_str(),
                declared.rule
            )),
            ..declared
        };
    };
    // The strictest; on a tie, the first: the registry before rules, facts before declarations.
    let (class, rule) = strictest(&[
        (entry.criticality, format!("registry:{}", entry.app_id)),
        (by_facts.class, by_facts.rule.clone()),
        (declared.class, declared.rule.clone()),
    ]);
    Classification {
        class,
        rule,
        policy_version: policy.version,
        registered_app: Some(entry.app_id.clone()),
        sources: Some(format!(
            "registry {}: {}; rules on {evidence_says}the registry's tier and reach: {} ({}); rules on the submitter's inputs: {} ({})",
            entry.app_id,
            entry.criticality.as_str(),
            by_facts.class.as_str(),
            by_facts.rule,
            declared.class.as_str(),
            declared.rule
        )),
    }
}

/// The strictest class of `candidates` and the rule that gave it; on a tie, the first.
fn strictest(candidates: &[(BlastRadiusClass, String)]) -> (BlastRadiusClass, String) {
    candidates
        .iter()
        .fold(None::<&(BlastRadiusClass, String)>, |best, c| match best {
            Some(b) if b.0 >= c.0 => Some(b),
            _ => Some(c),
        })
        .cloned()
        .expect("at least one candidate")
}

/// Decides this module's commands.
pub(super) fn decide(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    command: &Command,
) -> Result<Decision, Rejection> {
    match command {
        Command::ProposeRegistryChange { proposal_id, entry } => {
            require_member(state, actor)?;
            check_entry(state, entry)?;
            if state.registry_proposals.contains_key(proposal_id) {
                return Err(Rejection::Conflict(format!(
                    "proposal {proposal_id} exists"
                )));
            }
            Ok(Decision::one(
                format!("app_registry/{}", entry.app_id),
                Payload::RegistryChangeProposed(RegistryChangeProposed {
                    proposal_id: *proposal_id,
                    entry: entry.clone(),
                    proposal_expires_at: proposals::expiry(at).to_string(),
                }),
            ))
        }
        Command::VoteRegistryChange {
            proposal_id,
            approve,
            rationale,
            signature,
        } => {
            let proposal =
                state
                    .registry_proposals
                    .get(proposal_id)
                    .ok_or_else(|| Rejection::Unknown {
                        kind: "registry proposal",
                        id: proposal_id.to_string(),
                    })?;
            let target = VoteTarget::RegistryChange {
                proposal_id: *proposal_id,
            };
            let (vote, approvers) = proposals::cast(
                state,
                (actor, at),
                proposal,
                (Kind::RegistryChange, target),
                (*approve, rationale),
                signature.as_ref(),
            )?;
            let subject = format!("app_registry/{}", proposal.proposal.entry.app_id);
            let mut events = vec![(subject.clone(), vote)];
            if *approve && approvers.len() >= REGISTRY_QUORUM {
                // The entry is checked again against the registry as it is now.
                check_entry(state, &proposal.proposal.entry)?;
                events.push((
                    subject,
                    Payload::AppRegistered(AppRegistered {
                        entry: proposal.proposal.entry.clone(),
                        approvers,
                        proposal_id: Some(*proposal_id),
                    }),
                ));
            }
            Ok(Decision {
                events,
                replay_of: None,
            })
        }
        _ => unreachable!("policy::decide dispatches only this module's commands here"),
    }
}

/// An entry's own rules: an id, visible names that no other entry uses, a known tier.
fn check_entry(state: &GovernanceState, entry: &AppEntry) -> Result<(), Rejection> {
    names::check_name("app_id", &entry.app_id, NAME_BYTES_MAX)?;
    if entry.display_names.is_empty() || entry.display_names.len() > 16 {
        return Err(invalid("display_names", "one to sixteen names"));
    }
    for name in &entry.display_names {
        names::check_name("display_names", name, NAME_BYTES_MAX)?;
        if let Some(other) = state
            .app_names
            .get(&names::app_key(name))
            .filter(|id| **id != entry.app_id)
        {
            return Err(Rejection::Conflict(format!(
                "{name} (or a name that looks like it) already names {other}"
            )));
        }
    }
    if !SERVICE_TIERS.contains(&entry.service_tier.as_str()) {
        return Err(invalid("service_tier", "one of Tier0, Tier1, Tier2, Tier3"));
    }
    if entry.expected_reach > canonical::INTEGER_MAGNITUDE_MAX {
        return Err(invalid("expected_reach", "is too large"));
    }
    Ok(())
}
