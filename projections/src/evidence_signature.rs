//! The signature an evidence producer (a CI system) puts on an evidence package: an SSHSIG in the
//! `trustledger-evidence` namespace over the document's RFC 8785 canonical JSON, the very bytes
//! whose SHA-256 is the evidence hash. Over a file holding those bytes,
//! `ssh-keygen -Y sign -n trustledger-evidence -f KEY FILE` makes one.

use crate::vote_statement::{self, SignatureProblem};
use events::payloads::{EvidenceDocument, MemberKey};
use ssh_key::{HashAlg, LineEnding, PrivateKey};

/// The SSHSIG namespace of evidence signatures.
pub const NAMESPACE: &str = "trustledger-evidence";

/// The bytes a producer signs: the document's RFC 8785 canonical JSON.
///
/// # Errors
/// When the document has no canonical form (a number beyond ±(2^53 − 1)).
pub fn signed_bytes(document: &EvidenceDocument) -> Result<Vec<u8>, String> {
    let json = serde_json::to_value(document).map_err(|e| e.to_string())?;
    events::canonical::to_canonical_vec(&json).map_err(|e| e.to_string())
}

/// Signs `document` with a producer's key (the CLI's `evidence`, the simulation, tests).
///
/// # Errors
/// When the document has no canonical form, or the key cannot sign.
pub fn sign(document: &EvidenceDocument, key: &PrivateKey) -> Result<String, String> {
    let bytes = signed_bytes(document)?;
    key.sign(NAMESPACE, HashAlg::Sha512, &bytes)
        .and_then(|signature| signature.to_pem(LineEnding::LF))
        .map_err(|e| format!("the key cannot sign: {e}"))
}

/// Checks `sshsig` (armored) over `signed` (the document's canonical bytes) under the
/// producer's key in force, and returns the signature as it is recorded.
///
/// # Errors
/// What is wrong with the signature.
pub fn verify(key: &MemberKey, signed: &[u8], sshsig: &str) -> Result<String, SignatureProblem> {
    vote_statement::verify_signed((NAMESPACE, key), sshsig, signed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::payloads::Artifact;

    fn document(tests_failed: u64) -> EvidenceDocument {
        EvidenceDocument {
            artifacts: vec![Artifact {
                name: "app.msi".into(),
                sha256: "ab".repeat(32),
                size: 1,
            }],
            sbom: None,
            tests_passed: 10,
            tests_failed,
            scan_critical_findings: 0,
            generated_by: "ci".into(),
            packaged_by: "packager".into(),
            requires_admin: Some(true),
        }
    }

    #[test]
    fn a_signature_verifies_only_over_its_own_document_and_key() {
        let key = vote_statement::key_from_label("ci");
        let producer = vote_statement::member_key_of(key.public_key()).unwrap();
        let sig = sign(&document(0), &key).unwrap();
        let bytes = signed_bytes(&document(0)).unwrap();
        assert_eq!(verify(&producer, &bytes, &sig).unwrap(), sig);
        let edited = signed_bytes(&document(1)).unwrap();
        assert_eq!(
            verify(&producer, &edited, &sig),
            Err(SignatureProblem::OtherDocument)
        );
        let other =
            vote_statement::member_key_of(vote_statement::key_from_label("other").public_key())
                .unwrap();
        assert!(matches!(
            verify(&other, &bytes, &sig),
            Err(SignatureProblem::OtherKey { .. })
        ));
        let vote_sig = key
            .sign(vote_statement::NAMESPACE, HashAlg::Sha512, &bytes)
            .unwrap()
            .to_pem(LineEnding::LF)
            .unwrap();
        assert!(matches!(
            verify(&producer, &bytes, &vote_sig),
            Err(SignatureProblem::Namespace { .. })
        ));
    }
}
