//! Signed votes: members' SSH keys, and the check every vote passes before it is recorded.

use super::*;
use crate::passkey::{self, PasskeyProblem};
use crate::vote_statement::{self, Kind, SignatureProblem, Statement};

/// A member's signature on a vote, as a request carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedVote {
    /// When the member signed (entry time spelling, `YYYY-MM-DDTHH:MM:SS.ffffffZ`).
    pub signed_at: String,
    /// The signature over the vote's statement.
    pub proof: VoteProof,
}

/// What signs a vote's statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoteProof {
    /// The armored SSHSIG by the member's SSH key in force.
    Ssh(String),
    /// An assertion by one of the member's passkeys, its challenge the statement's SHA-256.
    Passkey(PasskeyAssertion),
}

impl SignedVote {
    /// An SSH signature made at `signed_at`.
    pub fn ssh(signed_at: String, sshsig: String) -> Self {
        Self {
            signed_at,
            proof: VoteProof::Ssh(sshsig),
        }
    }

    /// What a recorded vote's signature was, as a request.
    pub fn recorded(vote: &CabVoteCast) -> Option<Self> {
        match (&vote.signature, &vote.passkey_signature) {
            (Some(ssh), _) => Some(Self::ssh(ssh.signed_at.clone(), ssh.sshsig.clone())),
            (None, Some(passkey)) => Some(Self {
                signed_at: passkey.signed_at.clone(),
                proof: VoteProof::Passkey(passkey.assertion.clone()),
            }),
            (None, None) => None,
        }
    }

    /// The armored SSH signature, if this is one.
    pub fn sshsig(&self) -> Option<&str> {
        match &self.proof {
            VoteProof::Ssh(sshsig) => Some(sshsig),
            VoteProof::Passkey(_) => None,
        }
    }
}

/// What a vote records of its signature: one of the two, or neither on a log that never
/// required signed votes.
#[derive(Debug, Default)]
pub(super) struct RecordedSignature {
    pub ssh: Option<VoteSignature>,
    pub passkey: Option<PasskeyVoteSignature>,
}

/// What a vote names for its statement.
pub(super) struct VoteSubject<'a> {
    pub kind: Kind,
    pub subject: String,
    pub digest: String,
    pub approve: bool,
    pub rationale: &'a str,
}

/// The digest a vote of `kind` on `subject` names: what the member approves, as the state holds
/// it now (a deployment's evidence hash, a model's digest, the latest evaluation's digest).
///
/// # Errors
/// When the subject is unknown.
pub fn vote_digest(
    state: &GovernanceState,
    kind: Kind,
    subject: &str,
) -> Result<String, Rejection> {
    let unknown = |kind: &'static str| Rejection::Unknown {
        kind,
        id: subject.to_owned(),
    };
    match kind {
        Kind::Deployment | Kind::BreakglassReview => {
            let id = Uuid::parse_str(subject).map_err(|_| unknown("deployment"))?;
            let d = deployment(state, &id)?;
            Ok(hex::encode(d.submitted.evidence_hash))
        }
        Kind::RiskModel => state
            .models
            .get(subject)
            .map(|m| vote_statement::canonical_digest(&m.proposal))
            .ok_or_else(|| unknown("risk model")),
        Kind::Change => {
            let id = Uuid::parse_str(subject).map_err(|_| unknown("proposal"))?;
            state
                .change_proposals
                .get(&id)
                .map(|c| vote_statement::canonical_digest(&c.proposal))
                .ok_or_else(|| unknown("proposal"))
        }
        Kind::RegistryChange => {
            let id = Uuid::parse_str(subject).map_err(|_| unknown("registry proposal"))?;
            state
                .registry_proposals
                .get(&id)
                .map(|r| vote_statement::canonical_digest(&r.proposal))
                .ok_or_else(|| unknown("registry proposal"))
        }
        Kind::Exception => {
            let id = Uuid::parse_str(subject).map_err(|_| unknown("exception proposal"))?;
            state
                .exception_proposals
                .get(&id)
                .map(|e| vote_statement::canonical_digest(&e.proposal))
                .ok_or_else(|| unknown("exception proposal"))
        }
        Kind::MaturityProgression => state
            .last_evaluation
            .as_ref()
            .map(|e| vote_statement::canonical_digest(&e.evaluation))
            .ok_or_else(|| unknown("maturity evaluation for level")),
    }
}

/// Signs a vote of `kind` on `subject` against `state` as it is now, at `signed_at`: what a
/// member's client does (the CLI asks the service for the statement instead; the simulation and
/// tests, which hold the state, sign here).
///
/// # Errors
/// When the subject is unknown, or the key cannot sign.
pub fn sign_vote(
    state: &GovernanceState,
    key: &ssh_key::PrivateKey,
    (kind, subject): (Kind, &str),
    (approve, rationale): (bool, &str),
    signed_at: Timestamp,
) -> Result<SignedVote, Rejection> {
    let digest = vote_digest(state, kind, subject)?;
    let signed_at = signed_at.to_string();
    let statement = Statement {
        kind,
        origin: &state.origin,
        subject,
        digest: &digest,
        approve,
        rationale,
        signed_at: &signed_at,
    };
    let sshsig = statement
        .sign(key)
        .map_err(|e| invalid("signature", format!("the key cannot sign: {e}")))?;
    Ok(SignedVote::ssh(signed_at, sshsig))
}

/// Decides this module's commands.
pub(super) fn decide(
    state: &GovernanceState,
    actor: &str,
    command: &Command,
) -> Result<Decision, Rejection> {
    match command {
        Command::RegisterMemberKey { member, ssh_key } => {
            require_member(state, member)?;
            if member != actor {
                return Err(Rejection::Forbidden(format!(
                    "only {member} registers {member}'s key: a vote is signed by its member, so nobody else may choose the key"
                )));
            }
            let ssh_key = member_key(state, member, ssh_key)?;
            if state.member_keys.get(member) == Some(&ssh_key) {
                return Err(Rejection::Conflict(format!(
                    "{} is already {member}'s key in force",
                    ssh_key.fingerprint
                )));
            }
            Ok(Decision::one(
                "cab/members".into(),
                Payload::CabMemberKeyRegistered(CabMemberKeyRegistered {
                    member: member.clone(),
                    ssh_key,
                }),
            ))
        }
        Command::RevokeMemberKey {
            member,
            fingerprint,
            reason,
        } => {
            check_text("reason", reason, TEXT_BYTES_MAX, true)?;
            if member != actor && !holds_admin(state, actor) {
                return Err(Rejection::Forbidden(format!(
                    "only {member} or an admin revokes {member}'s key"
                )));
            }
            let passkey = state
                .member_passkeys
                .get(member)
                .is_some_and(|keys| keys.values().any(|k| &k.fingerprint == fingerprint));
            if !passkey
                && state
                    .member_keys
                    .get(member)
                    .is_none_or(|k| &k.fingerprint != fingerprint)
            {
                return Err(Rejection::Unknown {
                    kind: "member key in force",
                    id: format!("{member} {fingerprint}"),
                });
            }
            Ok(Decision::one(
                "cab/members".into(),
                Payload::CabMemberKeyRevoked(CabMemberKeyRevoked {
                    member: member.clone(),
                    fingerprint: fingerprint.clone(),
                    reason: reason.clone(),
                }),
            ))
        }
        Command::RequireSignedVotes => {
            if state.signed_votes_required {
                return Err(Rejection::Conflict(
                    "signed votes are already required".into(),
                ));
            }
            Ok(Decision::one(
                "cab/members".into(),
                Payload::SignedVotesRequired(SignedVotesRequired {
                    namespace: vote_statement::NAMESPACE.into(),
                }),
            ))
        }
        _ => unreachable!("policy::decide dispatches only this module's commands here"),
    }
}

/// Whether `actor` holds a grant with the admin role now.
fn holds_admin(state: &GovernanceState, actor: &str) -> bool {
    state.access.values().any(|a| {
        !a.revoked && a.principal == actor && a.roles.iter().any(|r| r == Role::Admin.as_str())
    })
}

/// Parses a key `member` is to sign with: an Ed25519 key, never revoked, nobody else's.
pub(super) fn member_key(
    state: &GovernanceState,
    member: &str,
    line: &str,
) -> Result<MemberKey, Rejection> {
    if line.len() > NAME_BYTES_MAX * 4 {
        return Err(invalid("ssh_key", "is longer than any Ed25519 key line"));
    }
    let key = vote_statement::parse_member_key(line).map_err(|e| invalid("ssh_key", e))?;
    if state.revoked_member_keys.contains(&key.fingerprint) {
        return Err(Rejection::Forbidden(format!(
            "key {} was revoked and is never registered again",
            key.fingerprint
        )));
    }
    if let Some((other, _)) = state
        .member_keys
        .iter()
        .find(|(m, k)| m.as_str() != member && k.fingerprint == key.fingerprint)
    {
        return Err(Rejection::Conflict(format!(
            "key {} is {other}'s: each member signs with a key of their own",
            key.fingerprint
        )));
    }
    Ok(key)
}

/// Checks the signature a vote by `actor` carries (required when the log requires signed votes)
/// and returns what to record of it.
pub(super) fn check(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    vote: VoteSubject<'_>,
    signature: Option<&SignedVote>,
) -> Result<RecordedSignature, Rejection> {
    let Some(signature) = signature else {
        if state.signed_votes_required {
            return Err(invalid(
                "signature",
                format!(
                    "this log requires every vote to carry its member's SSH signature (ssh-keygen -Y sign -n {}) or passkey assertion over the vote's statement",
                    vote_statement::NAMESPACE
                ),
            ));
        }
        return Ok(RecordedSignature::default());
    };
    let signed_at = Timestamp::parse(&signature.signed_at).map_err(|_| {
        invalid(
            "signed_at",
            "must be a UTC time spelled YYYY-MM-DDTHH:MM:SS.ffffffZ",
        )
    })?;
    let age = at.unix_micros() - signed_at.unix_micros();
    if age > vote_statement::MAX_AGE_MICROS {
        return Err(Rejection::Forbidden(format!(
            "the signature is stale: signed at {signed_at}, more than 15 minutes before {at}"
        )));
    }
    if -age > vote_statement::MAX_AHEAD_MICROS {
        return Err(Rejection::Forbidden(format!(
            "the signature is dated {signed_at}, more than 2 minutes after {at}"
        )));
    }
    let statement = Statement {
        kind: vote.kind,
        origin: &state.origin,
        subject: &vote.subject,
        digest: &vote.digest,
        approve: vote.approve,
        rationale: vote.rationale,
        signed_at: &signature.signed_at,
    };
    match &signature.proof {
        VoteProof::Ssh(sshsig) => {
            let key = state.member_keys.get(actor).ok_or_else(|| {
                Rejection::Forbidden(format!(
                    "{actor} has no SSH key in force: register one before voting"
                ))
            })?;
            let sshsig = vote_statement::verify(key, &statement, sshsig).map_err(|e| match e {
                SignatureProblem::Malformed(_) => invalid("signature", e.to_string()),
                _ => Rejection::Forbidden(e.to_string()),
            })?;
            Ok(RecordedSignature {
                ssh: Some(VoteSignature {
                    digest: vote.digest,
                    signed_at: signature.signed_at.clone(),
                    key_fingerprint: key.fingerprint.clone(),
                    sshsig,
                }),
                passkey: None,
            })
        }
        VoteProof::Passkey(assertion) => {
            let key = state
                .member_passkeys
                .get(actor)
                .and_then(|keys| keys.get(&assertion.credential_id))
                .ok_or_else(|| {
                    Rejection::Forbidden(format!(
                        "credential {} is not one of {actor}'s passkeys in force",
                        assertion.credential_id
                    ))
                })?;
            passkey::check_assertion(key, &statement.to_text(), assertion).map_err(
                |e| match e {
                    PasskeyProblem::Malformed(m) => invalid("passkey", m),
                    PasskeyProblem::Refused(m) => Rejection::Forbidden(m),
                },
            )?;
            Ok(RecordedSignature {
                ssh: None,
                passkey: Some(PasskeyVoteSignature {
                    digest: vote.digest,
                    signed_at: signature.signed_at.clone(),
                    key_fingerprint: key.fingerprint.clone(),
                    assertion: assertion.clone(),
                }),
            })
        }
    }
}
