//! Passkeys (WebAuthn credentials) as CAB members' vote keys: the registration checked from its
//! client data and attestation object, and a vote's assertion checked under the key registered.
//!
//! Both ceremonies sign a statement of ours through the WebAuthn challenge, which is the
//! SHA-256 of the statement's text: a vote's challenge is the SHA-256 of the same statement an
//! SSH key signs (`vote_statement`), a registration's the SHA-256 of
//!
//! ```text
//! trustledger-passkey-v1
//! origin: <the log's origin>
//! member: <the member>
//! requested-at: <YYYY-MM-DDTHH:MM:SS.ffffffZ>
//! ```
//!
//! so both are checked from the log alone, offline, as the auditor re-derives them. Only ES256
//! (ECDSA P-256 with SHA-256) keys are accepted, and every ceremony must have verified the user
//! (the UV flag: a PIN or a biometric, not only a touch). The attestation statement is kept but
//! not checked: the service trusts which authenticator a member chose, not its maker.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use coset::{iana, AsCborValue as _, CborSerializable as _, CoseKey, KeyType, Label};
use events::payloads::{PasskeyAssertion, PasskeyKey};
use p256::ecdsa::signature::Verifier as _;
use sha2::{Digest as _, Sha256};

/// The first line of a registration statement.
pub const REGISTRATION_HEADER: &str = "trustledger-passkey-v1";

/// The authenticator data's "user present" flag.
const USER_PRESENT: u8 = 0x01;
/// The authenticator data's "user verified" flag.
const USER_VERIFIED: u8 = 0x04;
/// The authenticator data's "attested credential data included" flag.
const ATTESTED_DATA: u8 = 0x40;
/// The authenticator data's "extension data included" flag.
const EXTENSION_DATA: u8 = 0x80;

/// Upper bounds on what a request may carry (decoded bytes): a credential id is at most 1,023
/// bytes (WebAuthn), the rest far above what authenticators write.
const CREDENTIAL_ID_MAX: usize = 1023;
const CLIENT_DATA_MAX: usize = 4096;
const AUTHENTICATOR_DATA_MAX: usize = 4096;
const ATTESTATION_OBJECT_MAX: usize = 16 * 1024;
const SIGNATURE_MAX: usize = 128;

/// What a member registering a passkey signs through its challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationStatement<'a> {
    /// The log's origin.
    pub origin: &'a str,
    /// The member.
    pub member: &'a str,
    /// When they asked (entry time spelling).
    pub requested_at: &'a str,
}

impl RegistrationStatement<'_> {
    /// The statement's exact text.
    pub fn to_text(&self) -> String {
        format!(
            "{REGISTRATION_HEADER}\norigin: {}\nmember: {}\nrequested-at: {}\n",
            self.origin, self.member, self.requested_at
        )
    }
}

/// The WebAuthn challenge for a statement: its SHA-256, in unpadded base64url (as the client
/// data JSON spells it).
pub fn challenge(statement_text: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(statement_text.as_bytes()))
}

/// What `navigator.credentials.create` returned, each field in unpadded base64url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration<'a> {
    /// The credential's id.
    pub credential_id: &'a str,
    /// The client data JSON.
    pub client_data_json: &'a str,
    /// The attestation object (CBOR).
    pub attestation_object: &'a str,
}

/// Why a passkey's registration or assertion was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasskeyProblem {
    /// Not in the shape WebAuthn gives (bad base64url, CBOR, JSON, lengths).
    #[error("{0}")]
    Malformed(String),
    /// Well formed, but not for this statement, relying party, origin or key.
    #[error("{0}")]
    Refused(String),
}

fn malformed(what: impl Into<String>) -> PasskeyProblem {
    PasskeyProblem::Malformed(what.into())
}

fn refused(what: impl Into<String>) -> PasskeyProblem {
    PasskeyProblem::Refused(what.into())
}

/// Decodes one unpadded base64url field of at most `max` bytes.
fn field(name: &str, text: &str, max: usize) -> Result<Vec<u8>, PasskeyProblem> {
    if text.len() > max.div_ceil(3) * 4 {
        return Err(malformed(format!("{name} is longer than {max} bytes")));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| malformed(format!("{name} is not unpadded base64url: {e}")))?;
    if bytes.is_empty() {
        return Err(malformed(format!("{name} is empty")));
    }
    Ok(bytes)
}

/// The fingerprint of a COSE public key: `SHA256:` and unpadded base64, as SSH keys are named.
pub fn fingerprint(cose_key: &[u8]) -> String {
    format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(Sha256::digest(cose_key))
    )
}

/// Whether `web_origin` may use credentials scoped to `rp_id`: an `https` origin whose host is
/// the RP id or below it, or an `http` one on `localhost` (WebAuthn's secure contexts).
fn origin_fits(web_origin: &str, rp_id: &str) -> bool {
    let (secure, rest) = match web_origin.split_once("://") {
        Some(("https", rest)) => (true, rest),
        Some(("http", rest)) => (false, rest),
        _ => return false,
    };
    let host = match rest.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => rest,
    };
    let under = host == rp_id || host.ends_with(&format!(".{rp_id}"));
    let localhost = host == "localhost" || host.ends_with(".localhost");
    !rp_id.is_empty() && !host.contains('/') && under && (secure || localhost)
}

/// The client data's members a relying party checks.
struct ClientData {
    challenge: String,
    origin: String,
}

/// Parses the client data JSON and checks its type and that it was not asked cross-origin.
fn client_data(bytes: &[u8], expected_type: &str) -> Result<ClientData, PasskeyProblem> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| malformed(format!("client_data_json is not JSON: {e}")))?;
    let text = |name: &str| {
        value
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| malformed(format!("client_data_json has no string {name:?}")))
    };
    let ty = text("type")?;
    if ty != expected_type {
        return Err(refused(format!(
            "the client data is of type {ty:?}, not {expected_type:?}"
        )));
    }
    if value.get("crossOrigin") == Some(&serde_json::Value::Bool(true)) {
        return Err(refused("the credential was used from a cross-origin frame"));
    }
    Ok(ClientData {
        challenge: text("challenge")?,
        origin: text("origin")?,
    })
}

/// The fixed head of authenticator data.
struct AuthenticatorData<'a> {
    rp_id_hash: &'a [u8],
    flags: u8,
    rest: &'a [u8],
}

fn authenticator_data(bytes: &[u8]) -> Result<AuthenticatorData<'_>, PasskeyProblem> {
    if bytes.len() < 37 {
        return Err(malformed("authenticator data is shorter than 37 bytes"));
    }
    Ok(AuthenticatorData {
        rp_id_hash: &bytes[..32],
        flags: bytes[32],
        rest: &bytes[37..],
    })
}

/// Checks what both ceremonies share: the RP id hash, the user verified, the challenge and the
/// origin.
fn check_binding(
    data: &AuthenticatorData<'_>,
    client: &ClientData,
    (rp_id, web_origin): (&str, Option<&str>),
    statement_text: &str,
) -> Result<(), PasskeyProblem> {
    if data.rp_id_hash != Sha256::digest(rp_id.as_bytes()).as_slice() {
        return Err(refused(format!(
            "the authenticator data is for another relying party than {rp_id:?}"
        )));
    }
    if data.flags & USER_PRESENT == 0 || data.flags & USER_VERIFIED == 0 {
        return Err(refused(
            "the authenticator did not verify the user (a PIN or biometric is required)",
        ));
    }
    if client.challenge != challenge(statement_text) {
        return Err(refused(
            "the passkey signed another statement: the challenge is not the SHA-256 of this one",
        ));
    }
    match web_origin {
        Some(origin) if client.origin != origin => Err(refused(format!(
            "signed at origin {:?}, not {origin:?} where the passkey was registered",
            client.origin
        ))),
        None if !origin_fits(&client.origin, rp_id) => Err(refused(format!(
            "origin {:?} may not use credentials for {rp_id:?}",
            client.origin
        ))),
        _ => Ok(()),
    }
}

/// The ES256 verifying key of a COSE key.
fn verifying_key(cose: &CoseKey) -> Result<p256::ecdsa::VerifyingKey, PasskeyProblem> {
    let ec2 = cose.kty == KeyType::Assigned(iana::KeyType::EC2);
    let es256 = cose.alg == Some(coset::Algorithm::Assigned(iana::Algorithm::ES256));
    let p256 = cose.params.iter().any(|(label, value)| {
        *label == Label::Int(iana::Ec2KeyParameter::Crv as i64)
            && value.as_integer() == Some((iana::EllipticCurve::P_256 as i64).into())
    });
    if !(ec2 && es256 && p256) {
        return Err(refused(
            "the passkey's key is not an ES256 key (ECDSA P-256, COSE algorithm -7)",
        ));
    }
    let point = cose
        .to_sec1_octet_string()
        .map_err(|e| malformed(format!("the COSE key has no usable point: {e:?}")))?;
    p256::ecdsa::VerifyingKey::from_sec1_bytes(&point)
        .map_err(|_| malformed("the COSE key's point is not on P-256"))
}

/// Checks a registration for `statement_text` scoped to `rp_id`, and returns the key to record.
///
/// # Errors
/// What is wrong with it.
pub fn check_registration(
    statement_text: &str,
    rp_id: &str,
    registration: &Registration<'_>,
) -> Result<PasskeyKey, PasskeyProblem> {
    let credential_id = field(
        "credential_id",
        registration.credential_id,
        CREDENTIAL_ID_MAX,
    )?;
    let client_json = field(
        "client_data_json",
        registration.client_data_json,
        CLIENT_DATA_MAX,
    )?;
    let attestation = field(
        "attestation_object",
        registration.attestation_object,
        ATTESTATION_OBJECT_MAX,
    )?;
    let client = client_data(&client_json, "webauthn.create")?;
    let auth_bytes = attested_authenticator_data(&attestation)?;
    let data = authenticator_data(&auth_bytes)?;
    check_binding(&data, &client, (rp_id, None), statement_text)?;
    if data.flags & ATTESTED_DATA == 0 {
        return Err(malformed(
            "the authenticator data carries no attested credential",
        ));
    }
    let (attested_id, cose_bytes) = attested_credential(data.rest, data.flags)?;
    if attested_id != credential_id.as_slice() {
        return Err(refused(
            "credential_id is not the credential the authenticator attested",
        ));
    }
    let cose = CoseKey::from_slice(cose_bytes)
        .map_err(|e| malformed(format!("the credential public key is not a COSE key: {e}")))?;
    verifying_key(&cose)?;
    Ok(PasskeyKey {
        credential_id: registration.credential_id.to_owned(),
        public_key: URL_SAFE_NO_PAD.encode(cose_bytes),
        fingerprint: fingerprint(cose_bytes),
        rp_id: rp_id.to_owned(),
        web_origin: client.origin,
    })
}

/// The `authData` of an attestation object (a CBOR map of `fmt`, `attStmt` and `authData`).
fn attested_authenticator_data(attestation: &[u8]) -> Result<Vec<u8>, PasskeyProblem> {
    let value: ciborium::Value = ciborium::from_reader(attestation)
        .map_err(|e| malformed(format!("attestation_object is not CBOR: {e}")))?;
    let map = value
        .as_map()
        .ok_or_else(|| malformed("attestation_object is not a CBOR map"))?;
    map.iter()
        .find(|(k, _)| k.as_text() == Some("authData"))
        .and_then(|(_, v)| v.as_bytes().cloned())
        .ok_or_else(|| malformed("attestation_object has no authData byte string"))
}

/// Splits attested credential data: the credential id and the COSE key's bytes (what follows
/// must be extensions when the flags say so, and nothing otherwise).
fn attested_credential(rest: &[u8], flags: u8) -> Result<(&[u8], &[u8]), PasskeyProblem> {
    let truncated = || malformed("the attested credential data is truncated");
    let length_bytes = rest.get(16..18).ok_or_else(truncated)?;
    let id_length = usize::from(u16::from_be_bytes([length_bytes[0], length_bytes[1]]));
    let id = rest.get(18..18 + id_length).ok_or_else(truncated)?;
    let key_and_more = &rest[18 + id_length..];
    let mut reader = std::io::Cursor::new(key_and_more);
    let key: ciborium::Value = ciborium::from_reader(&mut reader)
        .map_err(|e| malformed(format!("the credential public key is not CBOR: {e}")))?;
    let key_length = usize::try_from(reader.position()).map_err(|_| truncated())?;
    let after = &key_and_more[key_length..];
    if flags & EXTENSION_DATA == 0 && !after.is_empty() {
        return Err(malformed("bytes follow the credential public key"));
    }
    CoseKey::from_cbor_value(key)
        .map_err(|e| malformed(format!("the credential public key is not a COSE key: {e}")))?;
    Ok((id, &key_and_more[..key_length]))
}

/// Checks `assertion` over `statement_text` under the registered `key`.
///
/// # Errors
/// What is wrong with it.
pub fn check_assertion(
    key: &PasskeyKey,
    statement_text: &str,
    assertion: &PasskeyAssertion,
) -> Result<(), PasskeyProblem> {
    if assertion.credential_id != key.credential_id {
        return Err(refused("the assertion is by another credential"));
    }
    let auth_bytes = field(
        "authenticator_data",
        &assertion.authenticator_data,
        AUTHENTICATOR_DATA_MAX,
    )?;
    let client_json = field(
        "client_data_json",
        &assertion.client_data_json,
        CLIENT_DATA_MAX,
    )?;
    let signature = field("signature", &assertion.signature, SIGNATURE_MAX)?;
    let signature = p256::ecdsa::Signature::from_der(&signature)
        .map_err(|_| malformed("signature is not an ASN.1 DER ECDSA signature"))?;
    let client = client_data(&client_json, "webauthn.get")?;
    let data = authenticator_data(&auth_bytes)?;
    check_binding(
        &data,
        &client,
        (&key.rp_id, Some(&key.web_origin)),
        statement_text,
    )?;
    let cose_bytes = URL_SAFE_NO_PAD
        .decode(&key.public_key)
        .map_err(|_| malformed("the registered key is not base64url"))?;
    let cose = CoseKey::from_slice(&cose_bytes)
        .map_err(|e| malformed(format!("the registered key is not a COSE key: {e}")))?;
    let verifying = verifying_key(&cose)?;
    let mut signed = auth_bytes;
    signed.extend_from_slice(&Sha256::digest(&client_json));
    verifying
        .verify(&signed, &signature)
        .map_err(|_| refused("the passkey's signature does not verify under the key registered"))
}

mod software;
pub use software::{CreatedCredential, SoftwareAuthenticator};

#[cfg(test)]
mod tests;
