//! C2SP `tlog-checkpoint` notes signed as C2SP `signed-note`s with Ed25519.
//!
//! ```text
//! <origin>\n<size>\n<base64 root>\n
//! \n
//! — <key name> <base64(4-byte key id ‖ 64-byte signature)>\n
//! ```
//! The signature covers the note text (the checkpoint lines with their newlines). The key id is
//! the first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key). Verifier keys are spelled
//! `<name>+<8 hex key id>+<base64(0x01 ‖ public key)>`, and signer keys in the same family's
//! `PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 ‖ seed)>` form, as Go's `note` package does.

use crate::entry::Digest;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest as _, Sha256};

/// Algorithm byte for Ed25519 in C2SP signed-note keys.
const ALG_ED25519: u8 = 0x01;
/// The em dash and space that open a signature line.
pub(crate) const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// Longest key name accepted.
pub const KEY_NAME_BYTES_MAX: usize = 128;
/// Most signature lines parsed from one note.
pub const NOTE_SIGNATURES_MAX: usize = 16;
/// Largest note accepted for parsing.
pub const NOTE_BYTES_MAX: usize = 8 * 1024;

/// Why a key, note or checkpoint is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// A key string is malformed.
    #[error("malformed key: {0}")]
    MalformedKey(String),
    /// The note is malformed (layout, lines, encoding).
    #[error("malformed note: {0}")]
    MalformedNote(String),
    /// The checkpoint body is malformed.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    /// No signature line from the expected key.
    #[error("no signature by key {name}+{key_id:08x} on the note")]
    NoSignatureByKey {
        /// The expected key's name.
        name: String,
        /// The expected key's id.
        key_id: u32,
    },
    /// A signature line from the expected key that does not verify.
    #[error("signature by {name}+{key_id:08x} does not verify")]
    BadSignature {
        /// The key's name.
        name: String,
        /// The key's id.
        key_id: u32,
    },
    /// Fewer witnesses cosigned the checkpoint than the policy requires.
    #[error("{found} valid witness cosignatures, {required} required ({why})")]
    TooFewCosignatures {
        /// Witnesses whose cosignature verified.
        found: usize,
        /// How many the policy requires.
        required: usize,
        /// What was wrong with each of the others.
        why: String,
    },
    /// The checkpoint names another log.
    #[error("checkpoint origin {found:?} is not the expected {expected:?}")]
    WrongOrigin {
        /// Expected origin.
        expected: String,
        /// Origin in the note.
        found: String,
    },
}

pub(crate) fn check_key_name(name: &str) -> Result<(), CheckpointError> {
    if name.is_empty()
        || name.len() > KEY_NAME_BYTES_MAX
        || name.contains('+')
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(CheckpointError::MalformedKey(format!(
            "key name {name:?} must be 1–{KEY_NAME_BYTES_MAX} bytes without '+', spaces or control characters"
        )));
    }
    Ok(())
}

/// The C2SP key id: first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key), big-endian.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    key_id_for(ALG_ED25519, name, public_key)
}

/// The key id of a key of signature type `algorithm`: SHA-256(name ‖ "\n" ‖ type ‖ key)[:4].
pub(crate) fn key_id_for(algorithm: u8, name: &str, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([algorithm]);
    h.update(public_key);
    let digest = h.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// A verifier key: a name and an Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key: VerifyingKey,
    id: u32,
}

impl NoteVerifier {
    /// Parses `<name>+<8 hex key id>+<base64(0x01 ‖ public key)>`, checking the id matches.
    ///
    /// # Errors
    /// [`CheckpointError::MalformedKey`] saying what is wrong.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let (name, key, id) = parse_verifier_key(text, ALG_ED25519)?;
        Ok(Self { name, key, id })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// Verifies that `note` carries a valid signature by this key and returns the signed text.
    ///
    /// # Errors
    /// [`CheckpointError`] for a malformed note, no signature by this key, or a bad signature.
    pub fn verify_note<'a>(&self, note: &'a str) -> Result<&'a str, CheckpointError> {
        find_signature(note, &self.name, self.id, |text, blob| {
            let signature = Signature::from_bytes(blob.try_into().ok()?);
            self.key.verify(text.as_bytes(), &signature).ok()?;
            Some(text)
        })
    }
}

/// The first signature line by key `name`+`id` on `note` that `check` accepts (given the note
/// text and the signature bytes after the key id), with what `check` made of it.
///
/// # Errors
/// [`CheckpointError::NoSignatureByKey`] when no line is by that key,
/// [`CheckpointError::BadSignature`] when every line by it fails `check`, or a malformed note.
pub(crate) fn find_signature<'a, T>(
    note: &'a str,
    name: &str,
    id: u32,
    check: impl Fn(&'a str, &[u8]) -> Option<T>,
) -> Result<T, CheckpointError> {
    let (text, signatures) = split_note(note)?;
    let mut found = false;
    for line in signatures {
        let (line_name, line_id, blob) = parse_signature_line(line)?;
        if line_name != name || line_id != id {
            continue;
        }
        found = true;
        if let Some(checked) = check(text, &blob) {
            return Ok(checked);
        }
    }
    let (name, key_id) = (name.to_owned(), id);
    Err(if found {
        CheckpointError::BadSignature { name, key_id }
    } else {
        CheckpointError::NoSignatureByKey { name, key_id }
    })
}

/// A fresh Ed25519 seed from the operating system.
pub(crate) fn random_seed() -> Result<[u8; 32], CheckpointError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)
        .map_err(|e| CheckpointError::MalformedKey(format!("no randomness: {e}")))?;
    Ok(seed)
}

impl std::fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&verifier_key_text(
            &self.name,
            self.id,
            ALG_ED25519,
            self.key.as_bytes(),
        ))
    }
}

/// Parses `<name>+<8 hex key id>+<base64(type ‖ 32-byte Ed25519 public key)>`, checking the
/// signature type and that the id matches.
pub(crate) fn parse_verifier_key(
    text: &str,
    algorithm: u8,
) -> Result<(String, VerifyingKey, u32), CheckpointError> {
    let text = text.trim_end_matches(['\n', '\r']);
    let bad = |why: &str| CheckpointError::MalformedKey(why.to_owned());
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected <name>+<key id>+<base64 key>"));
    };
    check_key_name(name)?;
    if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("key id must be 8 hex digits"));
    }
    let id = u32::from_str_radix(id_hex, 16).map_err(|_| bad("key id must be 8 hex digits"))?;
    let raw = B64
        .decode(key_b64)
        .map_err(|_| bad("key is not standard base64"))?;
    if raw.len() != 33 || raw[0] != algorithm {
        return Err(bad(&format!(
            "key must be 0x{algorithm:02x} followed by a 32-byte Ed25519 public key"
        )));
    }
    let bytes: [u8; 32] = raw[1..].try_into().expect("length checked");
    let key =
        VerifyingKey::from_bytes(&bytes).map_err(|_| bad("not a valid Ed25519 public key"))?;
    if key_id_for(algorithm, name, &bytes) != id {
        return Err(bad("key id does not match the name and public key"));
    }
    Ok((name.to_owned(), key, id))
}

/// `<name>+<8 hex key id>+<base64(type ‖ key)>`.
pub(crate) fn verifier_key_text(name: &str, id: u32, algorithm: u8, key: &[u8; 32]) -> String {
    let mut raw = Vec::with_capacity(33);
    raw.push(algorithm);
    raw.extend_from_slice(key);
    format!("{name}+{id:08x}+{}", B64.encode(raw))
}

/// Parses `PRIVATE+KEY+<name>+<8 hex key id>+<base64(type ‖ seed)>` into the name and seed,
/// checking the signature type (the caller checks the id once it has derived the key).
pub(crate) fn parse_signer_key(
    text: &str,
    algorithm: u8,
) -> Result<(String, String, [u8; 32]), CheckpointError> {
    let text = text.trim_end_matches(['\n', '\r']);
    let bad = |why: &str| CheckpointError::MalformedKey(why.to_owned());
    let rest = text
        .strip_prefix("PRIVATE+KEY+")
        .ok_or_else(|| bad("signer key must start with PRIVATE+KEY+"))?;
    let mut parts = rest.splitn(3, '+');
    let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected PRIVATE+KEY+<name>+<key id>+<base64 seed>"));
    };
    let raw = B64
        .decode(key_b64)
        .map_err(|_| bad("seed is not standard base64"))?;
    if raw.len() != 33 || raw[0] != algorithm {
        return Err(bad(&format!(
            "seed must be 0x{algorithm:02x} followed by 32 bytes"
        )));
    }
    let seed = raw[1..].try_into().expect("length checked");
    Ok((name.to_owned(), id_hex.to_ascii_lowercase(), seed))
}

/// `PRIVATE+KEY+<name>+<8 hex key id>+<base64(type ‖ seed)>`.
pub(crate) fn signer_key_text(name: &str, id: u32, algorithm: u8, seed: &[u8; 32]) -> String {
    format!(
        "PRIVATE+KEY+{}",
        verifier_key_text(name, id, algorithm, seed)
    )
}

/// A signer key: a name and an Ed25519 signing key.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    id: u32,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        write!(f, "NoteSigner({}+{:08x})", self.name, self.id)
    }
}

impl NoteSigner {
    /// A signer from a 32-byte Ed25519 seed.
    ///
    /// # Errors
    /// [`CheckpointError::MalformedKey`] for an unusable name.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, CheckpointError> {
        check_key_name(name)?;
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(name, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_owned(),
            key,
            id,
        })
    }

    /// A signer with a fresh random key from the operating system.
    ///
    /// # Errors
    /// [`CheckpointError::MalformedKey`] for an unusable name or no randomness available.
    pub fn generate(name: &str) -> Result<Self, CheckpointError> {
        Self::from_seed(name, random_seed()?)
    }

    /// Parses `PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 ‖ seed)>`.
    ///
    /// # Errors
    /// [`CheckpointError::MalformedKey`] saying what is wrong.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let (name, id_hex, seed) = parse_signer_key(text, ALG_ED25519)?;
        let signer = Self::from_seed(&name, seed)?;
        if format!("{:08x}", signer.id) != id_hex {
            return Err(CheckpointError::MalformedKey(
                "key id does not match the name and key".into(),
            ));
        }
        Ok(signer)
    }

    /// The signer key in `PRIVATE+KEY+…` form (a secret: store it 0600).
    pub fn to_private_string(&self) -> String {
        signer_key_text(&self.name, self.id, ALG_ED25519, self.key.as_bytes())
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
            id: self.id,
        }
    }

    /// Signs `text` (which must end in a newline) and returns the whole signed note.
    pub fn sign_note(&self, text: &str) -> String {
        debug_assert!(text.ends_with('\n'));
        let signature = self.key.sign(text.as_bytes());
        let mut blob = Vec::with_capacity(68);
        blob.extend_from_slice(&self.id.to_be_bytes());
        blob.extend_from_slice(&signature.to_bytes());
        format!(
            "{text}\n{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            B64.encode(blob)
        )
    }
}

/// Splits a signed note into its text and its signature lines.
pub(crate) fn split_note(note: &str) -> Result<(&str, Vec<&str>), CheckpointError> {
    let bad = |why: &str| CheckpointError::MalformedNote(why.to_owned());
    if note.len() > NOTE_BYTES_MAX {
        return Err(bad("note is too large"));
    }
    if !note.ends_with('\n') {
        return Err(bad("note must end with a newline"));
    }
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| bad("no blank line before the signatures"))?;
    let (text, block) = (&note[..=split], &note[split + 2..]);
    let lines: Vec<&str> = block
        .strip_suffix('\n')
        .unwrap_or(block)
        .split('\n')
        .collect();
    if lines.is_empty() || lines.iter().any(|l| l.is_empty()) {
        return Err(bad("no signature lines"));
    }
    if lines.len() > NOTE_SIGNATURES_MAX {
        return Err(bad("too many signature lines"));
    }
    Ok((text, lines))
}

/// A signature line's key name, key id and the signature bytes after the id (whose length
/// depends on the key's type: a line of an unknown type is skipped by its name and id).
pub(crate) fn parse_signature_line(line: &str) -> Result<(&str, u32, Vec<u8>), CheckpointError> {
    let bad = |why: &str| CheckpointError::MalformedNote(why.to_owned());
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or_else(|| bad("signature line must start with an em dash and a space"))?;
    let (name, b64) = rest
        .split_once(' ')
        .ok_or_else(|| bad("signature line must be '— <name> <base64>'"))?;
    let mut blob = B64
        .decode(b64)
        .map_err(|_| bad("signature is not standard base64"))?;
    if blob.len() < 5 {
        return Err(bad("a signature is a 4-byte key id and the signature"));
    }
    let id = u32::from_be_bytes(blob[..4].try_into().expect("length checked"));
    blob.drain(..4);
    Ok((name, id, blob))
}

/// A `tlog-checkpoint`: the log's origin, tree size and Merkle root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// Number of entries covered.
    pub size: u64,
    /// Merkle root of those entries.
    pub root: Digest,
}

impl Checkpoint {
    /// The note text: origin, size and base64 root, each ending in a newline.
    pub fn to_note_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root.0)
        )
    }

    /// Signs the checkpoint.
    pub fn sign(&self, signer: &NoteSigner) -> String {
        self.sign_text(signer)
    }

    fn sign_text(&self, signer: &NoteSigner) -> String {
        signer.sign_note(&self.to_note_text())
    }

    /// Parses checkpoint note text (extension lines after the root are allowed and ignored).
    ///
    /// # Errors
    /// [`CheckpointError::MalformedCheckpoint`] saying what is wrong.
    pub fn parse_text(text: &str) -> Result<Self, CheckpointError> {
        let bad = |why: &str| CheckpointError::MalformedCheckpoint(why.to_owned());
        let mut lines = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("must end with a newline"))?
            .split('\n');
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| bad("missing origin line"))?;
        let size_text = lines.next().ok_or_else(|| bad("missing size line"))?;
        let canonical_decimal = !size_text.is_empty()
            && size_text.bytes().all(|b| b.is_ascii_digit())
            && (size_text == "0" || !size_text.starts_with('0'));
        let size = size_text
            .parse::<u64>()
            .ok()
            .filter(|_| canonical_decimal)
            .ok_or_else(|| bad("size must be a decimal integer without leading zeros"))?;
        let root_text = lines.next().ok_or_else(|| bad("missing root hash line"))?;
        let raw = B64
            .decode(root_text)
            .map_err(|_| bad("root hash is not standard base64"))?;
        let root: [u8; 32] = raw
            .try_into()
            .map_err(|_| bad("root hash must be 32 bytes"))?;
        if lines.any(str::is_empty) {
            return Err(bad("extension lines must not be empty"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root: Digest(root),
        })
    }

    /// Verifies a signed checkpoint note under `verifier` and parses it.
    ///
    /// # Errors
    /// [`CheckpointError`] for a malformed note, a missing or bad signature, or a malformed body.
    pub fn verify(note: &str, verifier: &NoteVerifier) -> Result<Self, CheckpointError> {
        let text = verifier.verify_note(note)?;
        Self::parse_text(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_strings_round_trip_and_ids_match_the_c2sp_definition() {
        let signer = NoteSigner::from_seed("example.com/log", [7; 32]).unwrap();
        let parsed = NoteSigner::parse(&signer.to_private_string()).unwrap();
        assert_eq!(parsed.verifier(), signer.verifier());
        let verifier = NoteVerifier::parse(&signer.verifier().to_string()).unwrap();
        let public = signer.key.verifying_key().to_bytes();
        let mut preimage = b"example.com/log\n\x01".to_vec();
        preimage.extend_from_slice(&public);
        let digest = Sha256::digest(&preimage);
        assert_eq!(verifier.key_id().to_be_bytes(), digest[..4]);
    }

    #[test]
    fn signed_checkpoint_round_trips_and_rejects_changes() {
        let signer = NoteSigner::from_seed("trustledger-test", [9; 32]).unwrap();
        let cp = Checkpoint {
            origin: "trustledger.local/log/test".into(),
            size: 42,
            root: Digest([3; 32]),
        };
        let note = cp.sign(&signer);
        assert!(note.starts_with("trustledger.local/log/test\n42\n"));
        assert!(note.contains("\n\n\u{2014} trustledger-test "));
        assert_eq!(Checkpoint::verify(&note, &signer.verifier()).unwrap(), cp);

        let other = NoteSigner::from_seed("trustledger-test", [10; 32]).unwrap();
        assert!(matches!(
            Checkpoint::verify(&note, &other.verifier()),
            Err(CheckpointError::NoSignatureByKey { .. })
        ));
        let tampered = note.replacen("\n42\n", "\n43\n", 1);
        assert!(matches!(
            Checkpoint::verify(&tampered, &signer.verifier()),
            Err(CheckpointError::BadSignature { .. })
        ));
        for (i, _) in note
            .char_indices()
            .filter(|(i, _)| *i < note.find("\n\n").unwrap())
        {
            let mut bytes = note.clone().into_bytes();
            bytes[i] ^= 0x01;
            if let Ok(changed) = String::from_utf8(bytes) {
                assert!(
                    Checkpoint::verify(&changed, &signer.verifier()).is_err(),
                    "byte {i}"
                );
            }
        }
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        for bad in [
            "",
            "a+b",
            "name+0000000g+AA==",
            "name+00000000+AA==",
            "na me+00000000+AA==",
        ] {
            assert!(NoteVerifier::parse(bad).is_err(), "{bad}");
        }
        let signer = NoteSigner::from_seed("k", [1; 32]).unwrap();
        for bad in [
            "",
            "o\n1\n",
            "o\n1\nAAAA\n\n",
            "o\n1\nAAAA\n\n\u{2014} k AAAA\n",
            "o\n01\nAAAA\n\n\u{2014} k AAAA\n",
        ] {
            assert!(
                Checkpoint::verify(bad, &signer.verifier()).is_err(),
                "{bad:?}"
            );
        }
        assert!(
            Checkpoint::parse_text("o\n1\nAAAA\n").is_err(),
            "root of the wrong length"
        );
        assert!(Checkpoint::parse_text("o\n-1\nAAAA\n").is_err());
    }
}
