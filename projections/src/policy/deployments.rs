//! Evidence and submissions: the score and the class derived from facts.

use super::*;

/// Decides this module's commands.
pub(super) fn decide(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    command: &Command,
) -> Result<Decision, Rejection> {
    match command {
        Command::RecordEvidence {
            evidence_id,
            document,
            signature,
        } => decide_evidence(state, *evidence_id, document, signature.as_deref()),
        Command::Submit {
            deployment_id,
            request,
        } => decide_submit(state, actor, at, *deployment_id, request),
        _ => unreachable!("policy::decide dispatches only this module's commands here"),
    }
}

fn decide_evidence(
    state: &GovernanceState,
    evidence_id: Uuid,
    document: &EvidenceDocument,
    signature: Option<&str>,
) -> Result<Decision, Rejection> {
    if document.artifacts.is_empty() {
        return Err(invalid("artifacts", "at least one artifact is required"));
    }
    for a in &document.artifacts {
        check_text("artifacts.name", &a.name, NAME_BYTES_MAX, true)?;
        check_hex64("artifacts.sha256", &a.sha256)?;
    }
    if let Some(sbom) = &document.sbom {
        check_text("sbom.format", &sbom.format, NAME_BYTES_MAX, true)?;
        check_hex64("sbom.sha256", &sbom.sha256)?;
        if let Some(sig) = &sbom.signature {
            check_text("sbom.signature.key_id", &sig.key_id, NAME_BYTES_MAX, true)?;
            if hex::decode(&sig.signature_hex).map(|b| b.len()) != Ok(64) {
                return Err(invalid(
                    "sbom.signature.signature_hex",
                    "must be 64 bytes in hex",
                ));
            }
        }
    }
    check_text("generated_by", &document.generated_by, NAME_BYTES_MAX, true)?;
    check_text("packaged_by", &document.packaged_by, NAME_BYTES_MAX, true)?;
    if document.generated_by == document.packaged_by {
        return Err(Rejection::Forbidden(
            "separation of duties: the evidence generator may not also package the artifact".into(),
        ));
    }
    if state.evidence.contains_key(&evidence_id) {
        return Err(Rejection::Conflict(format!(
            "evidence {evidence_id} exists (evidence is immutable)"
        )));
    }
    // The canonical bytes are both what the producer signed and what the evidence hash is of.
    let canonical =
        crate::evidence_signature::signed_bytes(document).map_err(|e| invalid("document", e))?;
    let signature = producers::check_signed_evidence(state, document, &canonical, signature)?;
    let evidence_hash = Digest::of(&canonical).to_hex();
    Ok(Decision::one(
        format!("evidence/{evidence_id}"),
        Payload::EvidenceRecorded(EvidenceRecorded {
            evidence_id,
            document: document.clone(),
            evidence_hash,
            signature,
        }),
    ))
}

fn decide_submit(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    deployment_id: Uuid,
    request: &SubmitDeployment,
) -> Result<Decision, Rejection> {
    check_text("correlation_id", &request.correlation_id, 128, true)?;
    if request.target_user_count > canonical::INTEGER_MAGNITUDE_MAX {
        return Err(invalid("target_user_count", "is too large"));
    }
    let request_sha256 = canonical_sha256("request", request)?;
    if let Some(existing) = state.by_correlation.get(&request.correlation_id) {
        let d = deployment(state, existing)?;
        if d.submitted.request_sha256_is(&request_sha256) && d.submitter == actor {
            return Ok(Decision {
                events: Vec::new(),
                replay_of: Some(*existing),
            });
        }
        return Err(Rejection::Conflict(format!(
            "correlation id {} was already used for deployment {existing} with different content",
            request.correlation_id
        )));
    }
    names::check_name("app_name", &request.app_name, NAME_BYTES_MAX)?;
    check_text("app_version", &request.app_version, NAME_BYTES_MAX, true)?;
    if request.cmdb.len() > 64
        || request
            .cmdb
            .iter()
            .any(|(k, v)| k.len() > NAME_BYTES_MAX || v.len() > NAME_BYTES_MAX)
    {
        return Err(invalid("cmdb", "at most 64 entries of at most 256 bytes"));
    }
    if request.target_user_count > canonical::INTEGER_MAGNITUDE_MAX {
        return Err(invalid("target_user_count", "is too large"));
    }
    let evidence = state
        .evidence
        .get(&request.evidence_id)
        .ok_or_else(|| Rejection::Unknown {
            kind: "evidence",
            id: request.evidence_id.to_string(),
        })?;
    if state.deployments.contains_key(&deployment_id) {
        return Err(Rejection::Conflict(format!(
            "deployment {deployment_id} exists"
        )));
    }
    let policy = state
        .blast_policy
        .as_ref()
        .ok_or_else(|| Rejection::NotAllowed("no blast-radius policy in force".into()))?;
    let model = state
        .active_model()
        .ok_or_else(|| Rejection::NotAllowed("no active risk model".into()))?;
    let input = ClassifyInput {
        app_name: request.app_name.clone(),
        requires_admin: request.requires_admin,
        target_user_count: request.target_user_count,
        cmdb: request.cmdb.clone(),
    };
    let classification =
        registry::classify_submission(state, policy, &input, evidence.requires_admin);
    let factors = derive_factors(
        state,
        &model.proposal.weights_bp,
        &input,
        classification.class,
        &evidence,
        at,
    );
    let score = score_centi(&factors);
    let (auto, mut decision) = gate(
        state,
        (deployment_id, at),
        classification.class,
        score,
        &model.proposal,
    );
    // An application the registry does not know is classified by the rules but never
    // auto-approved: its class rests on the submitter's word alone. (The submission records
    // why: its classification names no registered app, and its sources say so.)
    let unregistered = !state.app_registry.is_empty() && classification.registered_app.is_none();
    let auto = auto && !unregistered;
    if unregistered {
        decision.quorum = state.quorum(classification.class);
    }
    let subject = deployment_subject(&deployment_id);
    let submitted = DeploymentSubmitted {
        deployment_id,
        correlation_id: request.correlation_id.clone(),
        request_sha256,
        app_name: request.app_name.clone(),
        app_version: request.app_version.clone(),
        requires_admin: request.requires_admin,
        target_user_count: request.target_user_count,
        cmdb: request.cmdb.clone(),
        evidence_id: request.evidence_id,
        evidence_hash: evidence.evidence_hash.to_string(),
        classification,
        factors,
        score_centi: score,
        score: centi_to_decimal(score),
        model_version: model.proposal.version.clone(),
    };
    let gate_event = if auto {
        Payload::DeploymentAutoApproved(DeploymentAutoApproved(decision))
    } else {
        Payload::DeploymentRoutedToCab(DeploymentRoutedToCab(decision))
    };
    Ok(Decision {
        events: vec![
            (subject.clone(), Payload::DeploymentSubmitted(submitted)),
            (subject, gate_event),
        ],
        replay_of: None,
    })
}
