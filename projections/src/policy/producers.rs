//! Evidence producers and signed evidence: the CI systems whose SSH keys sign evidence packages,
//! and the check every package passes before it is recorded on a log that requires signatures.
//! A producer is set directly by an admin only until the CAB first votes; from then on only by a
//! CAB change proposal (`changes.rs`). Revoking a producer only tightens, so an admin may.

use super::*;
use crate::evidence_signature;
use crate::vote_statement::{self, SignatureProblem};

/// Decides this module's commands.
pub(super) fn decide(state: &GovernanceState, command: &Command) -> Result<Decision, Rejection> {
    match command {
        Command::SetEvidenceProducer { producer, ssh_key } => {
            if state.signed_votes_required && state.cab_has_voted {
                return Err(Rejection::NotAllowed(
                    "the CAB has voted: evidence producers are now set only by a proposal (POST /api/v1/cab/proposals, kind set_evidence_producer) that three other members approve with signed votes".into(),
                ));
            }
            Ok(Decision::one(
                producer_subject(producer),
                Payload::EvidenceProducerSet(EvidenceProducerSet {
                    producer: producer.clone(),
                    ssh_key: producer_key(state, producer, ssh_key)?,
                    approvers: Vec::new(),
                    proposal_id: None,
                }),
            ))
        }
        Command::RevokeEvidenceProducer { producer, reason } => {
            check_text("reason", reason, TEXT_BYTES_MAX, true)?;
            if !state.evidence_producers.contains_key(producer) {
                return Err(Rejection::Unknown {
                    kind: "evidence producer",
                    id: producer.clone(),
                });
            }
            Ok(Decision::one(
                producer_subject(producer),
                Payload::EvidenceProducerRevoked(EvidenceProducerRevoked {
                    producer: producer.clone(),
                    reason: reason.clone(),
                }),
            ))
        }
        _ => unreachable!("policy::decide dispatches only this module's commands here"),
    }
}

/// The stream a producer's entries belong to.
pub(super) fn producer_subject(producer: &str) -> String {
    format!("evidence_producer/{producer}")
}

/// Checks a producer's name and the key it is to sign with: a visible name, an Ed25519 key that
/// was never revoked and is no other producer's, and a change from the key in force.
pub(super) fn producer_key(
    state: &GovernanceState,
    producer: &str,
    line: &str,
) -> Result<MemberKey, Rejection> {
    names::check_name("producer", producer, NAME_BYTES_MAX)?;
    if line.len() > NAME_BYTES_MAX * 4 {
        return Err(invalid("ssh_key", "is longer than any Ed25519 key line"));
    }
    let key = vote_statement::parse_member_key(line).map_err(|e| invalid("ssh_key", e))?;
    if state.revoked_producer_keys.contains(&key.fingerprint) {
        return Err(Rejection::Forbidden(format!(
            "key {} was revoked and is never registered again",
            key.fingerprint
        )));
    }
    match state
        .evidence_producers
        .iter()
        .find(|(_, k)| k.fingerprint == key.fingerprint)
    {
        Some((other, _)) if other == producer => Err(Rejection::Conflict(format!(
            "{} is already {producer}'s key in force",
            key.fingerprint
        ))),
        Some((other, _)) => Err(Rejection::Conflict(format!(
            "key {} is {other}'s: each producer signs with a key of its own",
            key.fingerprint
        ))),
        None => Ok(key),
    }
}

/// Checks the producer's signature an evidence package carries (required when the log requires
/// signed evidence) over `canonical`, the document's canonical bytes, and returns what to record
/// of it: the signature as this crate armours it.
pub(super) fn check_signed_evidence(
    state: &GovernanceState,
    document: &EvidenceDocument,
    canonical: &[u8],
    signature: Option<&str>,
) -> Result<Option<String>, Rejection> {
    let Some(sshsig) = signature else {
        if state.signed_evidence_required {
            return Err(invalid(
                "signature",
                format!(
                    "this log requires evidence signed by a registered producer: an SSH signature over the document's canonical JSON (ssh-keygen -Y sign -n {})",
                    evidence_signature::NAMESPACE
                ),
            ));
        }
        return Ok(None);
    };
    if state.signed_evidence_required && document.requires_admin.is_none() {
        return Err(invalid(
            "requires_admin",
            "signed evidence states the install scope: whether the artifact installs with admin rights",
        ));
    }
    let key = state
        .evidence_producers
        .get(&document.generated_by)
        .ok_or_else(|| {
            Rejection::Forbidden(format!(
                "{} is not an evidence producer with a key in force: generated_by names the registered producer whose key signed the evidence",
                document.generated_by
            ))
        })?;
    evidence_signature::verify(key, canonical, sshsig)
        .map(Some)
        .map_err(|e| match e {
            SignatureProblem::Malformed(_) => invalid("signature", e.to_string()),
            _ => Rejection::Forbidden(e.to_string()),
        })
}

/// `document` signed by the key [`crate::vote_statement::key_from_label`] derives from the
/// producer it names, as a command: for the simulation, tests and benches only, whose producer
/// signs reproducibly (anyone can derive that key; never register one on a real log).
pub fn record_evidence_signed_by_label(evidence_id: Uuid, document: EvidenceDocument) -> Command {
    let key = crate::vote_statement::key_from_label(&document.generated_by);
    let signature = evidence_signature::sign(&document, &key).ok();
    Command::RecordEvidence {
        evidence_id,
        document,
        signature,
    }
}

/// Sets producer `producer` with the key [`crate::vote_statement::key_from_label`] derives from
/// its name: for the simulation, tests and benches only.
pub fn set_producer_by_label(producer: &str) -> Command {
    Command::SetEvidenceProducer {
        producer: producer.to_owned(),
        ssh_key: crate::vote_statement::key_from_label(producer)
            .public_key()
            .to_openssh()
            .expect("an Ed25519 key encodes"),
    }
}
