//! The statement a CAB member signs for a vote, and its SSHSIG signature.
//!
//! A vote is the member's own act only if the member signed what it approves: the server
//! rebuilds the statement from the vote and the state it is cast against, and records the vote
//! only if the member's key in force signed exactly those bytes. The statement is plain text so
//! that a member can read it and sign it with `ssh-keygen -Y sign -n trustledger-vote`:
//!
//! ```text
//! trustledger-vote-v1
//! origin: <the log's origin>
//! kind: deployment | risk_model | maturity_progression | exception | breakglass_review |
//!       registry_change | change
//! subject: <deployment id | model version | target level | exception or proposal id>
//! digest: <lowercase hex SHA-256 of what is approved>
//! decision: approve | reject
//! rationale-sha256: <lowercase hex SHA-256 of the rationale's UTF-8 bytes>
//! signed-at: <YYYY-MM-DDTHH:MM:SS.ffffffZ>
//! ```
//!
//! Each line ends with a line feed, the last one too.

use events::payloads::MemberKey;
use sha2::{Digest as _, Sha256};
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

/// The SSHSIG namespace of votes (`ssh-keygen -Y sign -n trustledger-vote`).
pub const NAMESPACE: &str = "trustledger-vote";
/// The first line of every statement.
pub const HEADER: &str = "trustledger-vote-v1";
/// A signature older than this when its vote is decided is stale.
pub const MAX_AGE_MICROS: i64 = 15 * 60 * 1_000_000;
/// How far a signature may be dated after its vote is decided (the signer's clock running ahead).
pub const MAX_AHEAD_MICROS: i64 = 2 * 60 * 1_000_000;

/// What a vote is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A deployment (subject: its id; digest: its evidence hash).
    Deployment,
    /// A proposed risk model (subject: its version; digest: [`model_digest`]).
    RiskModel,
    /// Progression to a maturity level (subject: the level; digest: the evaluation's digest).
    MaturityProgression,
    /// A proposed exception (subject: its id; digest: [`canonical_digest`] of the proposal).
    Exception,
    /// The review of a break-glass release (subject: the deployment id; digest: its evidence
    /// hash; `approve`: the emergency was justified).
    BreakglassReview,
    /// A proposed application registry change (subject: the proposal id; digest:
    /// [`canonical_digest`] of the proposal).
    RegistryChange,
    /// A proposed change to the CAB's membership or policy (subject: the proposal id; digest:
    /// [`canonical_digest`] of the proposal).
    Change,
}

impl Kind {
    /// Its name in the statement.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "deployment",
            Self::RiskModel => "risk_model",
            Self::MaturityProgression => "maturity_progression",
            Self::Exception => "exception",
            Self::BreakglassReview => "breakglass_review",
            Self::RegistryChange => "registry_change",
            Self::Change => "change",
        }
    }

    /// The kind a statement names, by its name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Deployment,
            Self::RiskModel,
            Self::MaturityProgression,
            Self::Exception,
            Self::BreakglassReview,
            Self::RegistryChange,
            Self::Change,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

/// Everything a vote's statement names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    /// What the vote is about.
    pub kind: Kind,
    /// The log's origin.
    pub origin: &'a str,
    /// Deployment id, model version or level.
    pub subject: &'a str,
    /// Lowercase hex SHA-256 of what is approved.
    pub digest: &'a str,
    /// Approve or reject.
    pub approve: bool,
    /// The rationale (the statement holds its SHA-256).
    pub rationale: &'a str,
    /// When it was signed (entry time spelling).
    pub signed_at: &'a str,
}

impl Statement<'_> {
    /// The exact bytes that are signed.
    pub fn to_text(&self) -> String {
        self.to_text_with_rationale_sha256(&hex::encode(Sha256::digest(self.rationale.as_bytes())))
    }

    /// The statement with the rationale's digest given (`rationale` is then not read): for a
    /// signer who sends the service the digest rather than the text.
    pub fn to_text_with_rationale_sha256(&self, rationale_sha256: &str) -> String {
        format!(
            "{HEADER}\norigin: {}\nkind: {}\nsubject: {}\ndigest: {}\ndecision: {}\nrationale-sha256: {rationale_sha256}\nsigned-at: {}\n",
            self.origin,
            self.kind.as_str(),
            self.subject,
            self.digest,
            if self.approve { "approve" } else { "reject" },
            self.signed_at,
        )
    }

    /// Signs the statement (the CLI's `vote`, the simulation, tests).
    ///
    /// # Errors
    /// When the key cannot sign (an encrypted key, a hardware key).
    pub fn sign(&self, key: &PrivateKey) -> Result<String, ssh_key::Error> {
        key.sign(NAMESPACE, HashAlg::Sha512, self.to_text().as_bytes())?
            .to_pem(LineEnding::LF)
    }
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    /// Not an armored SSHSIG.
    #[error("not an armored SSH signature (-----BEGIN SSH SIGNATURE-----): {0}")]
    Malformed(String),
    /// Signed for another purpose.
    #[error("signed in namespace {found:?}, not {expected:?} (ssh-keygen -Y sign -n {expected})")]
    Namespace {
        /// The namespace signed in.
        found: String,
        /// The namespace required.
        expected: &'static str,
    },
    /// Signed by a key other than the signer's key in force.
    #[error("signed by key {found}, not by the key in force for this signer ({expected})")]
    OtherKey {
        /// The signing key's fingerprint.
        found: String,
        /// The key in force.
        expected: String,
    },
    /// The signature does not verify over this vote's statement.
    #[error("the signature does not verify over this vote's statement: the origin, subject, digest, decision, rationale or signing time differ from what was signed")]
    OtherStatement,
    /// The signature does not verify over this evidence document's canonical bytes.
    #[error("the signature does not verify over this evidence document's canonical JSON (RFC 8785): a field differs from what was signed")]
    OtherDocument,
}

/// Parses a member's public key (an `authorized_keys` line; its comment is dropped).
///
/// # Errors
/// When it is not an OpenSSH public key, or not an Ed25519 one.
pub fn parse_member_key(line: &str) -> Result<MemberKey, String> {
    let key = PublicKey::from_openssh(line.trim())
        .map_err(|e| format!("not an OpenSSH public key line (ssh-ed25519 AAAA...): {e}"))?;
    if key.algorithm() != ssh_key::Algorithm::Ed25519 {
        return Err(format!(
            "is a {} key; members sign votes with Ed25519 keys (ssh-keygen -t ed25519)",
            key.algorithm()
        ));
    }
    member_key_of(&key).map_err(|e| format!("cannot be encoded: {e}"))
}

/// The recorded form of a public key.
///
/// # Errors
/// When the key cannot be encoded.
pub fn member_key_of(key: &PublicKey) -> Result<MemberKey, ssh_key::Error> {
    let bare = PublicKey::new(key.key_data().clone(), "");
    Ok(MemberKey {
        public_key: bare.to_openssh()?,
        fingerprint: bare.fingerprint(HashAlg::Sha256).to_string(),
    })
}

/// Checks `sshsig` (armored) over `statement` under `key`, and returns the signature re-armored
/// the one way this crate writes it (so that what is recorded does not depend on the client's
/// line endings).
///
/// # Errors
/// What is wrong with the signature.
pub fn verify(
    key: &MemberKey,
    statement: &Statement<'_>,
    sshsig: &str,
) -> Result<String, SignatureProblem> {
    let text = statement.to_text();
    verify_signed((NAMESPACE, key), sshsig, text.as_bytes()).map_err(|problem| match problem {
        SignatureProblem::OtherDocument => SignatureProblem::OtherStatement,
        other => other,
    })
}

/// Checks `sshsig` (armored) in `namespace` over `signed` under `key`, and returns it re-armored
/// the one way this crate writes it. A signature that does not verify is reported as
/// [`SignatureProblem::OtherDocument`].
///
/// # Errors
/// What is wrong with the signature.
pub fn verify_signed(
    (namespace, key): (&'static str, &MemberKey),
    sshsig: &str,
    signed: &[u8],
) -> Result<String, SignatureProblem> {
    // Worked out ahead (the auditor's workers): the same answer, without parsing again.
    let ahead = crate::policy::ssh_answer_ahead(sshsig, signed);
    if let Some(Some(verified)) = &ahead {
        if verified.namespace == namespace && verified.key_line == key.public_key {
            return Ok(verified.rearmored.clone());
        }
    }
    let signature =
        SshSig::from_pem(sshsig.trim()).map_err(|e| SignatureProblem::Malformed(e.to_string()))?;
    if signature.namespace() != namespace {
        return Err(SignatureProblem::Namespace {
            found: signature.namespace().to_owned(),
            expected: namespace,
        });
    }
    let public = PublicKey::from_openssh(&key.public_key)
        .map_err(|e| SignatureProblem::Malformed(format!("the key in force: {e}")))?;
    if public.key_data() != signature.public_key() {
        return Err(SignatureProblem::OtherKey {
            found: PublicKey::new(signature.public_key().clone(), "")
                .fingerprint(HashAlg::Sha256)
                .to_string(),
            expected: key.fingerprint.clone(),
        });
    }
    let verifies = ahead.map_or_else(
        || public.verify(namespace, signed, &signature).is_ok(),
        |answer| answer.is_some(),
    );
    if !verifies {
        return Err(SignatureProblem::OtherDocument);
    }
    signature
        .to_pem(LineEnding::LF)
        .map_err(|e| SignatureProblem::Malformed(e.to_string()))
}

/// An SSH signature verified ahead: what [`verify_signed`] needs to give the same answer
/// without parsing it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAhead {
    /// The namespace it was signed in.
    pub namespace: String,
    /// The signing key, as a member key's `public_key` is written (`ssh-ed25519 AAAA...`).
    pub key_line: String,
    /// The signature re-armored as [`verify_signed`] returns it.
    pub rearmored: String,
}

/// Whether `sshsig` (armored) is a signature in `namespace` over `signed` under the key it names
/// itself: the costly half of [`verify`] (and of an evidence signature's check), which an auditor
/// works out ahead on other threads (the policy then checks the key is the signer's).
///
/// It does what `PublicKey::verify` does for an Ed25519 key (the same signed data, the same
/// non-strict verification), with the decompressed key kept per thread as for SBOM signatures:
/// a log's votes are signed by a handful of keys, and decompression is a fifth of the cost.
pub fn verifies_under_its_own_key(namespace: &str, sshsig: &str, signed: &[u8]) -> bool {
    use ed25519_dalek::Verifier as _;
    ed25519_check(namespace, sshsig, signed)
        .is_some_and(|check| check.key.verify(&check.data, &check.signature).is_ok())
}

/// The Ed25519 verification an SSHSIG in `namespace` over `signed` comes down to: the data
/// SSHSIG signs, the signature and the key it names (decompressed, cached per thread). `None`
/// for a signature that cannot verify: not armored SSHSIG, another namespace, not Ed25519.
pub fn ed25519_check(namespace: &str, sshsig: &str, signed: &[u8]) -> Option<Ed25519Check> {
    let signature = SshSig::from_pem(sshsig.trim()).ok()?;
    let ssh_key::public::KeyData::Ed25519(public) = signature.public_key() else {
        return None;
    };
    if signature.namespace() != namespace {
        return None;
    }
    let data = SshSig::signed_data(namespace, signature.hash_alg(), signed).ok()?;
    Some(Ed25519Check {
        data,
        signature: ed25519_dalek::Signature::from_slice(signature.signature_bytes()).ok()?,
        key: crate::policy::verifying_key(public.0)?,
        verified_form: Some(VerifiedAhead {
            namespace: namespace.to_owned(),
            key_line: PublicKey::new(signature.public_key().clone(), "")
                .to_openssh()
                .ok()?,
            rearmored: signature.to_pem(LineEnding::LF).ok()?,
        }),
    })
}

/// One Ed25519 verification: `key` over `data` with `signature`.
#[derive(Debug, Clone)]
pub struct Ed25519Check {
    /// The signed data.
    pub data: Vec<u8>,
    /// The signature.
    pub signature: ed25519_dalek::Signature,
    /// The key.
    pub key: ed25519_dalek::VerifyingKey,
    /// For an SSH signature: what [`verify_signed`] returns once it verifies.
    pub verified_form: Option<VerifiedAhead>,
}

/// Lowercase hex SHA-256 of a value's RFC 8785 canonical JSON: the digest a risk model or an
/// evaluation is voted on by.
pub fn canonical_digest<T: serde::Serialize>(value: &T) -> String {
    let json = serde_json::to_value(value).expect("payloads serialise");
    let bytes = events::canonical::to_canonical_vec(&json).expect("payloads are canonical JSON");
    hex::encode(Sha256::digest(bytes))
}

/// A key derived from a public label: for the simulation and tests only, whose members must sign
/// reproducibly. Anyone can derive it; never register one on a real log.
pub fn key_from_label(label: &str) -> PrivateKey {
    let seed: [u8; 32] = Sha256::digest(format!("trustledger public test key: {label}")).into();
    PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(signed_at: &str) -> Statement<'_> {
        Statement {
            kind: Kind::Deployment,
            origin: "example.com/log",
            subject: "00000000-0000-0000-0000-000000000001",
            digest: "00",
            approve: true,
            rationale: "ok",
            signed_at,
        }
    }

    #[test]
    fn a_signature_verifies_only_over_its_own_statement_and_key() {
        let key = key_from_label("chen");
        let member = member_key_of(key.public_key()).unwrap();
        let at = "2026-01-01T00:00:00.000000Z";
        let sig = statement(at).sign(&key).unwrap();
        assert_eq!(verify(&member, &statement(at), &sig).unwrap(), sig);
        let later = statement("2026-01-01T00:00:01.000000Z");
        assert_eq!(
            verify(&member, &later, &sig),
            Err(SignatureProblem::OtherStatement)
        );
        let other = member_key_of(key_from_label("ada").public_key()).unwrap();
        assert!(matches!(
            verify(&other, &statement(at), &sig),
            Err(SignatureProblem::OtherKey { .. })
        ));
        let crlf = sig.replace('\n', "\r\n");
        assert_eq!(verify(&member, &statement(at), &crlf).unwrap(), sig);
    }

    #[test]
    fn only_ed25519_keys_are_member_keys() {
        let rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDJ";
        assert!(parse_member_key(rsa).is_err());
        assert!(parse_member_key("not a key").is_err());
        let line = key_from_label("chen").public_key().to_openssh().unwrap();
        let parsed = parse_member_key(&format!("{line} chen@laptop")).unwrap();
        assert_eq!(parsed.public_key, line);
        assert!(parsed.fingerprint.starts_with("SHA256:"));
    }
}
