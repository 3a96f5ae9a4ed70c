//! Risk models and the blast-radius policy: proposals, votes, activation.

use super::*;

/// Decides this module's commands.
pub(super) fn decide(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    command: &Command,
) -> Result<Decision, Rejection> {
    match command {
        Command::ProposeRiskModel(p) => {
            check_model(p)?;
            check_backtest(state, p)?;
            if state.models.contains_key(&p.version) {
                return Err(Rejection::Conflict(format!(
                    "model version {} was already proposed",
                    p.version
                )));
            }
            Ok(Decision::one(
                format!("risk_model/{}", p.version),
                Payload::RiskModelProposed(p.clone()),
            ))
        }
        Command::VoteRiskModel {
            version,
            approve,
            rationale,
            signature,
        } => {
            check_text("rationale", rationale, TEXT_BYTES_MAX, true)?;
            let model = state
                .models
                .get(version)
                .ok_or_else(|| Rejection::Unknown {
                    kind: "risk model",
                    id: version.clone(),
                })?;
            require_member(state, actor)?;
            if model.proposed_by == actor {
                return Err(Rejection::Forbidden(
                    "the proposer may not approve their own model".into(),
                ));
            }
            if model.votes.contains_key(actor) {
                return Err(Rejection::Conflict(format!(
                    "{actor} already voted on model {version}"
                )));
            }
            if model.approved_by.is_some() {
                return Err(Rejection::NotAllowed(format!(
                    "model {version} is already approved"
                )));
            }
            let signature = signed_votes::check(
                state,
                actor,
                at,
                signed_votes::VoteSubject {
                    kind: crate::vote_statement::Kind::RiskModel,
                    subject: version.clone(),
                    digest: vote_digest(state, crate::vote_statement::Kind::RiskModel, version)?,
                    approve: *approve,
                    rationale,
                },
                signature.as_ref(),
            )?;
            let subject = format!("risk_model/{version}");
            let mut events = vec![(
                subject.clone(),
                Payload::CabVoteCast(CabVoteCast {
                    target: VoteTarget::RiskModel {
                        version: version.clone(),
                    },
                    approve: *approve,
                    rationale: rationale.clone(),
                    signature: signature.ssh,
                    passkey_signature: signature.passkey,
                }),
            )];
            let approvers: Vec<String> = model
                .votes
                .iter()
                .filter(|(m, a)| **a && state.cab_members.contains(*m))
                .map(|(m, _)| m.clone())
                .chain(approve.then(|| actor.to_owned()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if *approve && approvers.len() >= MODEL_APPROVAL_QUORUM {
                events.push((
                    subject,
                    Payload::RiskModelApproved(RiskModelApproved {
                        version: version.clone(),
                        approvers,
                    }),
                ));
            }
            Ok(Decision {
                events,
                replay_of: None,
            })
        }
        Command::ActivateRiskModel { version } => {
            let model = state
                .models
                .get(version)
                .ok_or_else(|| Rejection::Unknown {
                    kind: "risk model",
                    id: version.clone(),
                })?;
            if state.active_model.as_deref() == Some(version.as_str()) {
                return Err(Rejection::Conflict(format!(
                    "model {version} is already active"
                )));
            }
            let all_zero = model.proposal.thresholds.values().all(|t| *t == 0);
            let basis = if model.approved_by.is_some() {
                "CAB_APPROVED"
            } else if all_zero {
                // Tightening is immediate: a model that auto-approves nothing needs no quorum.
                "ALL_THRESHOLDS_ZERO"
            } else {
                return Err(Rejection::NotAllowed(format!(
                    "model {version} has non-zero thresholds and needs the approval of {MODEL_APPROVAL_QUORUM} CAB members first"
                )));
            };
            if format!("{}T00:00:00.000000Z", model.proposal.effective_date) > at.to_string() {
                return Err(Rejection::NotAllowed(format!(
                    "model {version} is not effective before {}",
                    model.proposal.effective_date
                )));
            }
            Ok(Decision::one(
                format!("risk_model/{version}"),
                Payload::RiskModelActivated(RiskModelActivated {
                    version: version.clone(),
                    previous_version: state.active_model.clone(),
                    basis: basis.into(),
                }),
            ))
        }
        Command::SetBlastRadiusPolicy(p) => decide_blast_policy(state, actor, p),
        _ => unreachable!("policy::decide dispatches only this module's commands here"),
    }
}

fn decide_blast_policy(
    state: &GovernanceState,
    actor: &str,
    p: &BlastRadiusPolicySet,
) -> Result<Decision, Rejection> {
    if state.signed_votes_required {
        return Err(Rejection::NotAllowed(
            "on this log a blast-radius policy is proposed (POST /api/v1/cab/proposals) and put in force by three other members' signed votes".into(),
        ));
    }
    check_blast_policy(state, p)?;
    let approvers = distinct_members(state, actor, &p.approvers, POLICY_APPROVAL_QUORUM)?;
    let mut policy = p.clone();
    policy.approvers = approvers;
    Ok(Decision::one(
        "blast_radius/policy".into(),
        Payload::BlastRadiusPolicySet(policy),
    ))
}

/// A policy's own rules: the next version, each class once with a quorum of 1–9, distinct rule
/// ids with real keywords, an approval validity within bounds.
pub(super) fn check_blast_policy(
    state: &GovernanceState,
    p: &BlastRadiusPolicySet,
) -> Result<(), Rejection> {
    let current = state.blast_policy.as_ref().map_or(0, |c| c.version);
    if p.version != current + 1 {
        return Err(invalid(
            "version",
            format!("must be {} (the next version)", current + 1),
        ));
    }
    for class in BlastRadiusClass::ALL {
        let specs: Vec<_> = p.classes.iter().filter(|c| c.class == class).collect();
        match specs.as_slice() {
            [spec] if (1..=9).contains(&spec.quorum) => check_text(
                "classes.description",
                &spec.description,
                TEXT_BYTES_MAX,
                false,
            )?,
            [spec] => {
                return Err(invalid(
                    "classes",
                    format!("{} quorum {} is outside 1–9", class.as_str(), spec.quorum),
                ))
            }
            _ => {
                return Err(invalid(
                    "classes",
                    format!("{} must appear exactly once", class.as_str()),
                ))
            }
        }
    }
    if p.rules.len() > 256 {
        return Err(invalid("rules", "at most 256 rules"));
    }
    let mut ids = BTreeSet::new();
    for rule in &p.rules {
        check_text("rules.id", &rule.id, 64, true)?;
        if rule.id == "default" || !ids.insert(rule.id.as_str()) {
            return Err(invalid(
                "rules.id",
                format!("{:?} is reserved or used twice", rule.id),
            ));
        }
        if rule.keywords.iter().any(|k| words(k).is_empty()) {
            return Err(invalid(
                "rules.keywords",
                format!("rule {} has a keyword without letters or digits", rule.id),
            ));
        }
    }
    if !(1..=APPROVAL_VALIDITY_HOURS_MAX).contains(&p.approval_validity_hours) {
        return Err(invalid(
            "approval_validity_hours",
            format!("must be 1–{APPROVAL_VALIDITY_HOURS_MAX}"),
        ));
    }
    Ok(())
}

/// Whether `candidate` loosens `active`: raises any class's threshold, or moves weight away from
/// any factor. (Any factor, not only those that predicted incidents: how well a factor predicts
/// is itself an estimate, so every weight taken away needs the backtest.)
pub fn loosens(active: &RiskModelProposed, candidate: &RiskModelProposed) -> bool {
    let raised = candidate
        .thresholds
        .iter()
        .any(|(class, t)| *t > active.thresholds.get(class).copied().unwrap_or(0));
    let moved = active
        .weights_bp
        .iter()
        .any(|(factor, w)| candidate.weights_bp.get(factor).copied().unwrap_or(0) < *w);
    raised || moved
}

/// A model's backtest citation: well formed and within the log as it is now, and present when the
/// model loosens the one in force (on a log that requires signed votes; older logs are judged by
/// the rules they were written under). That the digest is the report's is checked by the service
/// before it decides (it re-runs the backtest) and by the audit.
fn check_backtest(state: &GovernanceState, p: &RiskModelProposed) -> Result<(), Rejection> {
    if !state.signed_votes_required {
        return Ok(());
    }
    match (&p.backtest, state.active_model()) {
        (Some(cited), _) => {
            check_hex64("backtest.report_sha256", &cited.report_sha256)?;
            let size = state.last_seq.map_or(0, |seq| seq + 1);
            if cited.log_size == 0 || cited.log_size > size {
                return Err(invalid(
                    "backtest.log_size",
                    format!("must be 1–{size}: the backtest runs over entries the log holds"),
                ));
            }
            Ok(())
        }
        (None, Some(active)) if loosens(&active.proposal, p) => Err(invalid(
            "backtest",
            format!(
                "model {} raises a threshold or lowers a weight of model {}: cite the backtest of this model over the log ({{\"log_size\": N, \"report_sha256\": \"...\"}}, as trustledger backtest prints them)",
                p.version, active.proposal.version
            ),
        )),
        (None, _) => Ok(()),
    }
}

fn check_model(p: &RiskModelProposed) -> Result<(), Rejection> {
    check_text("version", &p.version, 32, true)?;
    if !p
        .version
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(invalid("version", "use letters, digits, '.' and '-'"));
    }
    check_text("mode", &p.mode, 64, true)?;
    check_text(
        "calibration_evidence",
        &p.calibration_evidence,
        TEXT_BYTES_MAX,
        false,
    )?;
    for class in BlastRadiusClass::ALL {
        match p.thresholds.get(&class) {
            None => return Err(invalid("thresholds", format!("missing {}", class.as_str()))),
            Some(t) if *t > 100 => {
                return Err(invalid(
                    "thresholds",
                    format!("{} is {t}, outside 0–100", class.as_str()),
                ))
            }
            _ => {}
        }
    }
    if p.thresholds.get(&BlastRadiusClass::CriticalInfrastructure) != Some(&0) {
        return Err(invalid(
            "thresholds",
            "CRITICAL_INFRASTRUCTURE must be 0 in every model: it is never auto-approved",
        ));
    }
    let unknown: Vec<_> = p
        .weights_bp
        .keys()
        .filter(|k| !FACTORS.contains(&k.as_str()))
        .collect();
    if !unknown.is_empty() {
        return Err(invalid(
            "weights_bp",
            format!("unknown factors {unknown:?}; known: {FACTORS:?}"),
        ));
    }
    let sum: u64 = p.weights_bp.values().map(|v| u64::from(*v)).sum();
    if sum != 10_000 {
        return Err(invalid(
            "weights_bp",
            format!("weights sum to {sum} basis points, not exactly 10000"),
        ));
    }
    for (field, date) in [
        ("effective_date", &p.effective_date),
        ("review_date", &p.review_date),
    ] {
        if Timestamp::parse(&format!("{date}T00:00:00.000000Z")).is_err() {
            return Err(invalid(field, "must be a date YYYY-MM-DD"));
        }
    }
    if p.review_date <= p.effective_date {
        return Err(invalid("review_date", "must be after effective_date"));
    }
    Ok(())
}
