//! C2SP `tlog-cosignature` v1 (Ed25519): a witness's timestamped statement that, as of that
//! time, the checkpoint is the largest consistent tree head it has seen for the log.
//!
//! ```text
//! — <witness name> base64(4-byte key id ‖ 8-byte big-endian timestamp ‖ 64-byte signature)
//! ```
//! The key id is SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key)[:4]; the signature covers
//! `cosignature/v1\ntime <timestamp>\n` followed by the checkpoint's note text. Verifier keys
//! are vkeys of signature type 0x04, signer keys `PRIVATE+KEY+…` of the same type.

use crate::checkpoint::{
    find_signature, key_id_for, parse_signer_key, parse_verifier_key, random_seed, signer_key_text,
    verifier_key_text, Checkpoint, CheckpointError, NoteVerifier, SIGNATURE_PREFIX,
};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};

/// Signature type of an Ed25519 `cosignature/v1` key.
const ALG_COSIGNATURE_V1: u8 = 0x04;
/// Largest timestamp the spec allows (2^63 − 1).
const TIMESTAMP_MAX: u64 = i64::MAX as u64;

/// The bytes a v1 cosignature signs: the header line, the time line, then the note text.
pub fn signed_message(note_text: &str, timestamp: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{note_text}").into_bytes()
}

/// A witness's public key: its name and Ed25519 key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    key: VerifyingKey,
    id: u32,
}

impl CosignatureVerifier {
    /// Parses `<name>+<8 hex key id>+<base64(0x04 ‖ public key)>`.
    ///
    /// # Errors
    /// [`CheckpointError::MalformedKey`] saying what is wrong.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let (name, key, id) = parse_verifier_key(text, ALG_COSIGNATURE_V1)?;
        Ok(Self { name, key, id })
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks this witness's cosignature on a note and returns its timestamp.
    ///
    /// # Errors
    /// [`CheckpointError::NoSignatureByKey`] when the note has no line from this witness,
    /// [`CheckpointError::BadSignature`] when it has one that does not verify.
    pub fn verify_note(&self, note: &str) -> Result<u64, CheckpointError> {
        find_signature(note, &self.name, self.id, |text, blob| {
            self.verify_blob(text, blob)
        })
    }

    fn verify_blob(&self, text: &str, blob: &[u8]) -> Option<u64> {
        let (time, signature) = blob.split_first_chunk::<8>()?;
        let signature = Signature::from_bytes(signature.try_into().ok()?);
        let timestamp = u64::from_be_bytes(*time);
        (timestamp <= TIMESTAMP_MAX
            && self
                .key
                .verify(&signed_message(text, timestamp), &signature)
                .is_ok())
        .then_some(timestamp)
    }
}

impl std::fmt::Display for CosignatureVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&verifier_key_text(
            &self.name,
            self.id,
            ALG_COSIGNATURE_V1,
            self.key.as_bytes(),
        ))
    }
}

/// A witness's signing key.
#[derive(Clone)]
pub struct Cosigner {
    name: String,
    key: SigningKey,
    id: u32,
}

impl std::fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cosigner({}+{:08x})", self.name, self.id)
    }
}

impl Cosigner {
    /// A cosigner from a 32-byte Ed25519 seed.
    ///
    /// # Errors
    /// [`CheckpointError::MalformedKey`] for an unusable name.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, CheckpointError> {
        crate::checkpoint::check_key_name(name)?;
        let key = SigningKey::from_bytes(&seed);
        let id = key_id_for(ALG_COSIGNATURE_V1, name, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_owned(),
            key,
            id,
        })
    }

    /// A cosigner with a fresh random key.
    ///
    /// # Errors
    /// [`CheckpointError::MalformedKey`] for an unusable name or no randomness available.
    pub fn generate(name: &str) -> Result<Self, CheckpointError> {
        Self::from_seed(name, random_seed()?)
    }

    /// Parses `PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x04 ‖ seed)>`.
    ///
    /// # Errors
    /// [`CheckpointError::MalformedKey`] saying what is wrong.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let (name, id_hex, seed) = parse_signer_key(text, ALG_COSIGNATURE_V1)?;
        let cosigner = Self::from_seed(&name, seed)?;
        if format!("{:08x}", cosigner.id) != id_hex {
            return Err(CheckpointError::MalformedKey(
                "key id does not match the name and key".into(),
            ));
        }
        Ok(cosigner)
    }

    /// The key in `PRIVATE+KEY+…` form (a secret: store it 0600).
    pub fn to_private_string(&self) -> String {
        signer_key_text(&self.name, self.id, ALG_COSIGNATURE_V1, self.key.as_bytes())
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
            id: self.id,
        }
    }

    /// The cosignature line (ending in a newline) over a checkpoint's note text at `timestamp`.
    pub fn cosign(&self, note_text: &str, timestamp: u64) -> String {
        let signature = self.key.sign(&signed_message(note_text, timestamp));
        let mut blob = Vec::with_capacity(76);
        blob.extend_from_slice(&self.id.to_be_bytes());
        blob.extend_from_slice(&timestamp.to_be_bytes());
        blob.extend_from_slice(&signature.to_bytes());
        format!("{SIGNATURE_PREFIX}{} {}\n", self.name, B64.encode(blob))
    }
}

/// Who must have cosigned a checkpoint before a client trusts it: `required` of `witnesses`.
#[derive(Debug, Clone, Default)]
pub struct WitnessPolicy {
    /// The witnesses' keys.
    pub witnesses: Vec<CosignatureVerifier>,
    /// How many of them must have cosigned.
    pub required: usize,
}

impl WitnessPolicy {
    /// Verifies a checkpoint's log signature and at least `required` distinct witnesses'
    /// cosignatures, and returns the checkpoint with the witnesses that cosigned it.
    ///
    /// # Errors
    /// What failed: the note, the log signature, or too few valid cosignatures (each
    /// missing or failing witness named).
    pub fn verify(
        &self,
        note: &str,
        log: &NoteVerifier,
    ) -> Result<(Checkpoint, Vec<(String, u64)>), CheckpointError> {
        let checkpoint = Checkpoint::verify(note, log)?;
        let mut cosigned = Vec::new();
        let mut missing = Vec::new();
        for witness in &self.witnesses {
            match witness.verify_note(note) {
                Ok(timestamp) => cosigned.push((witness.name.clone(), timestamp)),
                Err(e) => missing.push(e.to_string()),
            }
        }
        if cosigned.len() < self.required {
            return Err(CheckpointError::TooFewCosignatures {
                found: cosigned.len(),
                required: self.required,
                why: missing.join("; "),
            });
        }
        Ok((checkpoint, cosigned))
    }
}

/// Adds cosignature lines to a signed note (after its existing signatures).
pub fn add_cosignatures(note: &str, lines: &[String]) -> String {
    let mut out = note.to_owned();
    for line in lines {
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{parse_signature_line, NoteSigner};
    use crate::Digest;

    /// The example line from the C2SP tlog-cosignature spec: its key id, then the timestamp
    /// of the spec's example signed message (1679315147), big-endian.
    #[test]
    fn the_specs_example_line_carries_the_specs_example_time() {
        let line = "\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==";
        let (name, _, blob) = parse_signature_line(line).unwrap();
        assert_eq!(name, "witness.example.com/w1");
        assert_eq!(blob.len(), 72);
        assert_eq!(
            u64::from_be_bytes(blob[..8].try_into().unwrap()),
            1_679_315_147
        );
        assert_eq!(
            signed_message("example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", 1_679_315_147),
            b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
    }

    fn signed_checkpoint() -> (String, NoteSigner) {
        let log = NoteSigner::from_seed("example.com/log", [1; 32]).unwrap();
        let cp = Checkpoint {
            origin: "example.com/log".into(),
            size: 5,
            root: Digest([2; 32]),
        };
        (cp.sign(&log), log)
    }

    #[test]
    fn keys_round_trip_and_ids_use_type_0x04() {
        let w = Cosigner::from_seed("witness.example/w1", [3; 32]).unwrap();
        let parsed = Cosigner::parse(&w.to_private_string()).unwrap();
        assert_eq!(parsed.verifier(), w.verifier());
        assert_eq!(
            CosignatureVerifier::parse(&w.verifier().to_string()).unwrap(),
            w.verifier()
        );
        // A checkpoint (type 0x01) key is not a cosignature key, and the reverse.
        let log = NoteSigner::from_seed("witness.example/w1", [3; 32]).unwrap();
        assert!(CosignatureVerifier::parse(&log.verifier().to_string()).is_err());
        assert!(NoteVerifier::parse(&w.verifier().to_string()).is_err());
        let mut preimage = b"witness.example/w1\n\x04".to_vec();
        preimage.extend_from_slice(w.key.verifying_key().as_bytes());
        let digest = <sha2::Sha256 as sha2::Digest>::digest(&preimage);
        assert_eq!(w.id.to_be_bytes(), digest[..4]);
    }

    #[test]
    fn a_cosigned_checkpoint_verifies_under_a_policy_and_changes_do_not() {
        let (note, log) = signed_checkpoint();
        let text = &note[..note.find("\n\n").unwrap() + 1];
        let (w1, w2) = (
            Cosigner::from_seed("w1", [4; 32]).unwrap(),
            Cosigner::from_seed("w2", [5; 32]).unwrap(),
        );
        let cosigned = add_cosignatures(&note, &[w1.cosign(text, 1_700_000_000)]);
        // The log's own verification ignores the cosignature line.
        assert!(Checkpoint::verify(&cosigned, &log.verifier()).is_ok());
        assert_eq!(w1.verifier().verify_note(&cosigned), Ok(1_700_000_000));
        let policy = |required| WitnessPolicy {
            witnesses: vec![w1.verifier(), w2.verifier()],
            required,
        };
        let (_, by) = policy(1).verify(&cosigned, &log.verifier()).unwrap();
        assert_eq!(by, vec![("w1".to_owned(), 1_700_000_000)]);
        assert!(matches!(
            policy(2).verify(&cosigned, &log.verifier()),
            Err(CheckpointError::TooFewCosignatures { found: 1, .. })
        ));
        // A cosignature over another checkpoint, or with another time, does not verify.
        let other = text.replace("\n5\n", "\n6\n");
        let moved = add_cosignatures(&note, &[w1.cosign(&other, 1_700_000_000)]);
        assert!(matches!(
            w1.verifier().verify_note(&moved),
            Err(CheckpointError::BadSignature { .. })
        ));
        let line = w1.cosign(text, 1_700_000_000);
        let (_, _, mut blob) = parse_signature_line(line.trim_end()).unwrap();
        blob[7] ^= 1;
        let mut raw = w1.id.to_be_bytes().to_vec();
        raw.extend_from_slice(&blob);
        let retimed = format!("{note}\u{2014} w1 {}\n", B64.encode(raw));
        assert!(w1.verifier().verify_note(&retimed).is_err());
    }
}
