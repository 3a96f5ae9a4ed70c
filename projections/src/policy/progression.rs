//! Maturity: scheduled evaluations and progression votes.

use super::*;

/// Decides this module's commands.
pub(super) fn decide(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    command: &Command,
) -> Result<Decision, Rejection> {
    match command {
        Command::EvaluateMaturity { strict } => {
            let evaluation = crate::maturity::evaluate(state, at, *strict);
            let regression = evaluation.outcome == crate::maturity::REGRESSION_REQUIRED;
            let mut events = vec![(
                "maturity/level".to_owned(),
                Payload::MaturityEvaluated(evaluation),
            )];
            if regression {
                events.extend(regression_event(
                    state,
                    "REGRESSION: incident rate or P1 count above the level's cap".into(),
                ));
            }
            Ok(Decision {
                events,
                replay_of: None,
            })
        }
        Command::VoteProgression {
            to_level,
            approve,
            rationale,
            signature,
        } => decide_progression(
            state,
            actor,
            at,
            *to_level,
            (*approve, rationale),
            signature.as_ref(),
        ),
        _ => unreachable!("policy::decide dispatches only this module's commands here"),
    }
}

fn decide_progression(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    to_level: u32,
    (approve, rationale): (bool, &str),
    signature: Option<&SignedVote>,
) -> Result<Decision, Rejection> {
    check_text("rationale", rationale, TEXT_BYTES_MAX, true)?;
    require_member(state, actor)?;
    if to_level != state.level + 1 {
        return Err(Rejection::NotAllowed(format!(
            "the level is {}; only progression to {} can be approved",
            state.level,
            state.level + 1
        )));
    }
    let evaluation = state
        .last_evaluation
        .as_ref()
        .filter(|e| {
            e.evaluation.level == state.level && state.level_since.is_none_or(|since| e.at >= since)
        })
        .ok_or_else(|| Rejection::NotAllowed("no evaluation at the current level yet".into()))?;
    if evaluation.evaluation.outcome != crate::maturity::READY_TO_PROGRESS
        || evaluation.evaluation.target_level != Some(to_level)
    {
        return Err(Rejection::NotAllowed(format!(
            "the latest evaluation (seq {}) is {}, not READY_TO_PROGRESS",
            evaluation.seq, evaluation.evaluation.outcome
        )));
    }
    let voted = state
        .progression_votes
        .get(&to_level)
        .cloned()
        .unwrap_or_default();
    if voted.contains(actor) {
        return Err(Rejection::Conflict(format!(
            "{actor} already approved progression to {to_level}"
        )));
    }
    let signature = signed_votes::check(
        state,
        actor,
        at,
        signed_votes::VoteSubject {
            kind: crate::vote_statement::Kind::MaturityProgression,
            subject: to_level.to_string(),
            digest: crate::vote_statement::canonical_digest(&evaluation.evaluation),
            approve,
            rationale,
        },
        signature,
    )?;
    let subject = "maturity/level".to_owned();
    let mut events = vec![(
        subject.clone(),
        Payload::CabVoteCast(CabVoteCast {
            target: VoteTarget::MaturityProgression { to_level },
            approve,
            rationale: rationale.to_owned(),
            signature: signature.ssh,
            passkey_signature: signature.passkey,
        }),
    )];
    let approvers: Vec<String> = voted
        .iter()
        .filter(|m| state.cab_members.contains(*m))
        .cloned()
        .chain(approve.then(|| actor.to_owned()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if approve && approvers.len() >= PROGRESSION_QUORUM {
        events.push((
            subject.clone(),
            Payload::MaturityProgressionApproved(MaturityProgressionApproved {
                from: state.level,
                to: to_level,
                approvers,
                evaluation_seq: evaluation.seq,
            }),
        ));
        events.push((
            subject,
            Payload::MaturityLevelChanged(MaturityLevelChanged {
                from: state.level,
                to: to_level,
                reason: "PROGRESSION_APPROVED".into(),
            }),
        ));
    }
    Ok(Decision {
        events,
        replay_of: None,
    })
}
