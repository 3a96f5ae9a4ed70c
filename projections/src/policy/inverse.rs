//! The inverse of [`super::decide`]: the command a decision's first event records.

use super::*;

fn parse_time(text: &str) -> Option<Timestamp> {
    Timestamp::parse(text).ok()
}

/// The command an entry records a request for, if it is a cause: the inverse of [`decide`] on a
/// decision's first event, which is how the auditor rebuilds each request it re-derives.
///
/// # Errors
/// For an entry that can only ever be a consequence (or is written only at genesis), or whose
/// recorded times do not parse.
pub fn command_of(payload: &Payload) -> Result<Option<Command>, &'static str> {
    Ok(Some(match payload {
        Payload::RiskModelProposed(p) => Command::ProposeRiskModel(p.clone()),
        Payload::RiskModelActivated(p) => Command::ActivateRiskModel {
            version: p.version.clone(),
        },
        Payload::BlastRadiusPolicySet(p) => Command::SetBlastRadiusPolicy(p.clone()),
        Payload::CabMemberAdded(p) => Command::AddCabMember {
            member: p.member.clone(),
            ssh_key: p.ssh_key.as_ref().map(|k| k.public_key.clone()),
        },
        Payload::CabMemberKeyRegistered(p) => Command::RegisterMemberKey {
            member: p.member.clone(),
            ssh_key: p.ssh_key.public_key.clone(),
        },
        Payload::CabMemberKeyRevoked(p) => Command::RevokeMemberKey {
            member: p.member.clone(),
            fingerprint: p.fingerprint.clone(),
            reason: p.reason.clone(),
        },
        Payload::CabMemberPasskeyRegistered(p) => Command::RegisterPasskey {
            member: p.member.clone(),
            requested_at: p.requested_at.clone(),
            rp_id: p.passkey.rp_id.clone(),
            credential_id: p.passkey.credential_id.clone(),
            client_data_json: p.client_data_json.clone(),
            attestation_object: p.attestation_object.clone(),
        },
        Payload::SignedVotesRequired(_) => Command::RequireSignedVotes,
        Payload::CabMemberRemoved(p) => Command::RemoveCabMember {
            member: p.member.clone(),
        },
        Payload::SigningKeyTrusted(p) => Command::TrustSigningKey(p.clone()),
        Payload::SigningKeyRevoked(p) => Command::RevokeSigningKey(p.clone()),
        Payload::EvidenceRecorded(p) => Command::RecordEvidence {
            evidence_id: p.evidence_id,
            document: p.document.clone(),
            signature: p.signature.clone(),
        },
        Payload::EvidenceProducerSet(p) if p.proposal_id.is_none() => {
            Command::SetEvidenceProducer {
                producer: p.producer.clone(),
                ssh_key: p.ssh_key.public_key.clone(),
            }
        }
        Payload::EvidenceProducerRevoked(p) => Command::RevokeEvidenceProducer {
            producer: p.producer.clone(),
            reason: p.reason.clone(),
        },
        Payload::SignedEvidenceRequired(_) => {
            return Err("signed evidence is only required at genesis")
        }
        Payload::DeploymentSubmitted(p) => Command::Submit {
            deployment_id: p.deployment_id,
            request: SubmitDeployment {
                correlation_id: p.correlation_id.clone(),
                app_name: p.app_name.clone(),
                app_version: p.app_version.clone(),
                requires_admin: p.requires_admin,
                target_user_count: p.target_user_count,
                cmdb: p.cmdb.clone(),
                evidence_id: p.evidence_id,
            },
        },
        Payload::CabVoteCast(p) => match &p.target {
            VoteTarget::Deployment { deployment_id } => Command::Vote {
                deployment_id: *deployment_id,
                approve: p.approve,
                rationale: p.rationale.clone(),
                signature: SignedVote::recorded(p),
            },
            VoteTarget::RiskModel { version } => Command::VoteRiskModel {
                version: version.clone(),
                approve: p.approve,
                rationale: p.rationale.clone(),
                signature: SignedVote::recorded(p),
            },
            VoteTarget::BreakglassReview { deployment_id } => Command::VoteBreakglassReview {
                deployment_id: *deployment_id,
                justified: p.approve,
                findings: p.rationale.clone(),
                signature: SignedVote::recorded(p),
            },
            VoteTarget::Change { proposal_id } => Command::VoteChange {
                proposal_id: *proposal_id,
                approve: p.approve,
                rationale: p.rationale.clone(),
                signature: SignedVote::recorded(p),
            },
            VoteTarget::RegistryChange { proposal_id } => Command::VoteRegistryChange {
                proposal_id: *proposal_id,
                approve: p.approve,
                rationale: p.rationale.clone(),
                signature: SignedVote::recorded(p),
            },
            VoteTarget::Exception { exception_id } => Command::VoteException {
                exception_id: *exception_id,
                approve: p.approve,
                rationale: p.rationale.clone(),
                signature: SignedVote::recorded(p),
            },
            VoteTarget::MaturityProgression { to_level } => Command::VoteProgression {
                to_level: *to_level,
                approve: p.approve,
                rationale: p.rationale.clone(),
                signature: SignedVote::recorded(p),
            },
        },
        Payload::ClassificationRaised(p) => Command::RaiseClassification {
            deployment_id: p.deployment_id,
            to: p.to,
            reason: p.reason.clone(),
        },
        Payload::SbomPresented(p) => Command::PresentSbom(p.clone()),
        Payload::DeploymentReleased(DeploymentReleased(v))
        | Payload::DeploymentReleaseBlocked(DeploymentReleaseBlocked(v)) => {
            Command::Release(PresentedRelease {
                deployment_id: v.deployment_id,
                artifact_sha256: v.artifact_sha256.clone(),
                artifact_size: v.artifact_size,
                sbom_sha256: v.sbom_sha256.clone(),
            })
        }
        Payload::ExceptionGranted(p) => Command::GrantException {
            exception_id: p.exception_id,
            control: p.control.clone(),
            scope: p.scope.clone(),
            reason: p.reason.clone(),
            approvers: p.approvers.clone(),
            expires_at: parse_time(&p.expires_at)
                .ok_or("exception.granted with an unreadable expiry")?,
        },
        Payload::ChangeProposed(p) => Command::ProposeChange {
            proposal_id: p.proposal_id,
            change: p.change.clone(),
        },
        Payload::RegistryChangeProposed(p) => Command::ProposeRegistryChange {
            proposal_id: p.proposal_id,
            entry: p.entry.clone(),
        },
        Payload::AppRegistered(p) if p.proposal_id.is_none() => {
            return Err(
                "application registry entries without a proposal are only written at genesis",
            )
        }
        Payload::ExceptionProposed(p) => Command::ProposeException {
            exception_id: p.exception_id,
            control: p.control.clone(),
            scope: p.scope.clone(),
            reason: p.reason.clone(),
            expires_at: parse_time(&p.expires_at)
                .ok_or("exception.proposed with an unreadable expiry")?,
        },
        Payload::ExceptionRevoked(p) => Command::RevokeException {
            exception_id: p.exception_id,
            reason: p.reason.clone(),
        },
        Payload::BreakglassReleased(p) => Command::Breakglass {
            presented: PresentedRelease {
                deployment_id: p.deployment_id,
                artifact_sha256: p.artifact_sha256.clone(),
                artifact_size: p.artifact_size,
                sbom_sha256: p.sbom_sha256.clone(),
            },
            justification: p.justification.clone(),
            approvers: p.approvers.clone(),
        },
        Payload::BreakglassReviewed(p) => Command::ReviewBreakglass {
            deployment_id: p.deployment_id,
            justified: p.justified,
            findings: p.findings.clone(),
        },
        Payload::IncidentReported(p) => Command::ReportIncident(IncidentReport {
            incident_id: p.incident_id,
            deployment_id: p.deployment_id,
            severity: p.severity,
            incident_date: parse_time(&p.incident_date)
                .ok_or("incident.reported with an unreadable date")?,
            affected_user_count: p.affected_user_count,
            downtime_minutes: p.downtime_minutes,
            business_impact_usd: p.business_impact_usd.clone(),
            preventable: p.preventable,
            preventability_notes: p.preventability_notes.clone(),
            control_improvements: p.control_improvements.clone(),
        }),
        Payload::IncidentUpdated(p) => Command::UpdateIncident(p.clone()),
        Payload::MaturityEvaluated(p) => Command::EvaluateMaturity { strict: p.strict },
        Payload::AccessGranted(p) => Command::GrantAccess(p.clone()),
        Payload::AccessRevoked(p) => Command::RevokeAccess(p.clone()),
        Payload::MaturityLevelsDefined(_) => {
            return Err("maturity levels are only defined at genesis")
        }
        Payload::AppRegistered(_)
        | Payload::EvidenceProducerSet(_)
        | Payload::DeploymentAutoApproved(_)
        | Payload::DeploymentRoutedToCab(_)
        | Payload::DeploymentApproved(_)
        | Payload::DeploymentRejected(_)
        | Payload::RiskModelApproved(_)
        | Payload::MaturityLevelChanged(_)
        | Payload::MaturityProgressionApproved(_) => {
            return Err(
                "is only ever the consequence of another decision, and here nothing caused it",
            )
        }
    }))
}
