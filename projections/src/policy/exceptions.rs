//! Exceptions: proposed by one CAB member, granted by the signed votes of others, within
//! limits; revoked. (Logs begun before signed votes also record direct grants naming approvers.)

use super::*;

/// Decides this module's commands.
pub(super) fn decide(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    command: &Command,
) -> Result<Decision, Rejection> {
    match command {
        Command::GrantException {
            exception_id,
            control,
            scope,
            reason,
            approvers,
            expires_at,
        } => {
            if state.signed_votes_required {
                return Err(Rejection::NotAllowed(
                    "on this log an exception is proposed (no approvers named) and granted by its approvers' own signed votes".into(),
                ));
            }
            check_terms(control, scope, reason, *expires_at, at)?;
            let approvers = distinct_members(state, actor, approvers, 2)?;
            check_new(state, exception_id)?;
            Ok(Decision::one(
                format!("exception/{exception_id}"),
                Payload::ExceptionGranted(ExceptionGranted {
                    exception_id: *exception_id,
                    control: control.clone(),
                    scope: scope.clone(),
                    reason: reason.clone(),
                    approvers,
                    expires_at: expires_at.to_string(),
                }),
            ))
        }
        Command::ProposeException {
            exception_id,
            control,
            scope,
            reason,
            expires_at,
        } => {
            check_terms(control, scope, reason, *expires_at, at)?;
            require_member(state, actor)?;
            check_new(state, exception_id)?;
            let proposal_expires_at =
                Timestamp::from_unix_micros(at.unix_micros() + PROPOSAL_MICROS).min(*expires_at);
            Ok(Decision::one(
                format!("exception/{exception_id}"),
                Payload::ExceptionProposed(ExceptionProposed {
                    exception_id: *exception_id,
                    control: control.clone(),
                    scope: scope.clone(),
                    reason: reason.clone(),
                    expires_at: expires_at.to_string(),
                    proposal_expires_at: proposal_expires_at.to_string(),
                }),
            ))
        }
        Command::VoteException {
            exception_id,
            approve,
            rationale,
            signature,
        } => decide_vote(
            state,
            actor,
            at,
            *exception_id,
            (*approve, rationale),
            signature.as_ref(),
        ),
        Command::RevokeException {
            exception_id,
            reason,
        } => {
            check_text("reason", reason, TEXT_BYTES_MAX, true)?;
            match state.exceptions.get(exception_id) {
                None => Err(Rejection::Unknown {
                    kind: "exception",
                    id: exception_id.to_string(),
                }),
                Some(e) if !e.in_force_at(at) => Err(Rejection::NotAllowed(
                    "the exception is no longer in force".into(),
                )),
                Some(_) => Ok(Decision::one(
                    format!("exception/{exception_id}"),
                    Payload::ExceptionRevoked(ExceptionRevoked {
                        exception_id: *exception_id,
                        reason: reason.clone(),
                    }),
                )),
            }
        }
        _ => unreachable!("policy::decide dispatches only this module's commands here"),
    }
}

/// The terms any exception must keep: a waivable control, a scope, a reason, an expiry in the
/// future and at most 90 days away.
fn check_terms(
    control: &str,
    scope: &str,
    reason: &str,
    expires_at: Timestamp,
    at: Timestamp,
) -> Result<(), Rejection> {
    check_text("reason", reason, TEXT_BYTES_MAX, true)?;
    check_text("scope", scope, NAME_BYTES_MAX, true)?;
    match Control::parse(control) {
        None => return Err(invalid("control", format!("unknown control {control:?}; waivable: sbom_hash, sbom_signature, blast_radius, approval"))),
        Some(c) if !c.is_waivable() => {
            return Err(invalid(
                "control",
                format!("{control} is never waivable (artifact and evidence integrity)"),
            ))
        }
        Some(_) => {}
    }
    if expires_at <= at {
        return Err(invalid("expires_at", "must be in the future"));
    }
    if expires_at.unix_micros() - at.unix_micros() > EXCEPTION_DAYS_MAX * 86_400_000_000 {
        return Err(invalid(
            "expires_at",
            format!("exceptions run at most {EXCEPTION_DAYS_MAX} days"),
        ));
    }
    Ok(())
}

fn check_new(state: &GovernanceState, exception_id: &Uuid) -> Result<(), Rejection> {
    if state.exceptions.contains_key(exception_id)
        || state.exception_proposals.contains_key(exception_id)
    {
        return Err(Rejection::Conflict(format!(
            "exception {exception_id} exists"
        )));
    }
    Ok(())
}

/// The deployment an exception's scope names, if it names one.
fn scoped_deployment(scope: &str) -> Option<Uuid> {
    scope
        .strip_prefix("deployment:")
        .and_then(|id| Uuid::parse_str(id.trim()).ok())
}

fn decide_vote(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    exception_id: Uuid,
    (approve, rationale): (bool, &str),
    signature: Option<&SignedVote>,
) -> Result<Decision, Rejection> {
    let proposal = state
        .exception_proposals
        .get(&exception_id)
        .ok_or_else(|| Rejection::Unknown {
            kind: "exception proposal",
            id: exception_id.to_string(),
        })?;
    let (vote, approvers) = proposals::cast(
        state,
        (actor, at),
        proposal,
        (
            crate::vote_statement::Kind::Exception,
            VoteTarget::Exception { exception_id },
        ),
        (approve, rationale),
        signature,
    )?;
    let submitter = scoped_deployment(&proposal.proposal.scope)
        .and_then(|id| state.deployments.get(&id).map(|d| d.submitter.clone()));
    if submitter.as_deref() == Some(actor) {
        return Err(Rejection::Forbidden(
            "separation of duties: the submitter never approves an exception for their own deployment".into(),
        ));
    }
    let subject = format!("exception/{exception_id}");
    let mut events = vec![(subject.clone(), vote)];
    if approve && approvers.len() >= EXCEPTION_QUORUM {
        let p = &proposal.proposal;
        events.push((
            subject,
            Payload::ExceptionGranted(ExceptionGranted {
                exception_id,
                control: p.control.clone(),
                scope: p.scope.clone(),
                reason: p.reason.clone(),
                approvers,
                expires_at: p.expires_at.clone(),
            }),
        ));
    }
    Ok(Decision {
        events,
        replay_of: None,
    })
}
