//! A software authenticator: what a browser and a passkey do, in code, for tests and the
//! simulation. Its key is derived from a public label, so anyone can sign as it: never register
//! one on a real log.

use super::challenge;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use coset::{iana, CborSerializable as _, CoseKeyBuilder};
use events::payloads::PasskeyAssertion;
use p256::ecdsa::signature::Signer as _;
use sha2::{Digest as _, Sha256};

/// A passkey held in memory, scoped to one relying party and used at one web origin.
pub struct SoftwareAuthenticator {
    key: p256::ecdsa::SigningKey,
    credential_id: Vec<u8>,
    rp_id: String,
    web_origin: String,
    counter: u32,
}

/// What `navigator.credentials.create` returns, each field in unpadded base64url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedCredential {
    /// The credential's id.
    pub credential_id: String,
    /// The client data JSON.
    pub client_data_json: String,
    /// The attestation object (format `none`).
    pub attestation_object: String,
}

impl SoftwareAuthenticator {
    /// The authenticator derived from `label`, for `rp_id` at `web_origin`.
    pub fn from_label(label: &str, rp_id: &str, web_origin: &str) -> Self {
        let seed = Sha256::digest(format!("trustledger public test passkey: {label}"));
        Self {
            key: p256::ecdsa::SigningKey::from_slice(&seed).expect("a SHA-256 is a P-256 scalar"),
            credential_id: Sha256::digest(label.as_bytes())[..16].to_vec(),
            rp_id: rp_id.to_owned(),
            web_origin: web_origin.to_owned(),
            counter: 0,
        }
    }

    /// The credential's id, unpadded base64url.
    pub fn credential_id(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.credential_id)
    }

    /// The COSE form of the public key.
    pub fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_encoded_point(false);
        CoseKeyBuilder::new_ec2_pub_key(
            iana::EllipticCurve::P_256,
            point.x().expect("uncompressed").to_vec(),
            point.y().expect("uncompressed").to_vec(),
        )
        .algorithm(iana::Algorithm::ES256)
        .build()
        .to_vec()
        .expect("a COSE key encodes")
    }

    /// The client data JSON for a ceremony of `ty` over `statement_text`, as a browser writes it.
    pub fn client_data(&self, ty: &str, statement_text: &str) -> Vec<u8> {
        format!(
            r#"{{"type":"{ty}","challenge":"{}","origin":"{}","crossOrigin":false}}"#,
            challenge(statement_text),
            self.web_origin
        )
        .into_bytes()
    }

    /// Authenticator data with `flags` (user present and verified, plus any given) and `rest`.
    fn authenticator_data(&mut self, flags: u8, rest: &[u8]) -> Vec<u8> {
        self.counter += 1;
        let mut data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        data.push(0x01 | 0x04 | flags);
        data.extend_from_slice(&self.counter.to_be_bytes());
        data.extend_from_slice(rest);
        data
    }

    /// Creates the credential for a registration statement.
    pub fn create(&mut self, statement_text: &str) -> CreatedCredential {
        let mut attested = vec![0u8; 16];
        let id_length = u16::try_from(self.credential_id.len()).expect("a short id");
        attested.extend_from_slice(&id_length.to_be_bytes());
        attested.extend_from_slice(&self.credential_id);
        attested.extend_from_slice(&self.cose_key());
        let auth_data = self.authenticator_data(0x40, &attested);
        let object = ciborium::Value::Map(vec![
            ("fmt".into(), "none".into()),
            ("attStmt".into(), ciborium::Value::Map(vec![])),
            ("authData".into(), ciborium::Value::Bytes(auth_data)),
        ]);
        let mut attestation_object = Vec::new();
        ciborium::into_writer(&object, &mut attestation_object).expect("CBOR encodes");
        CreatedCredential {
            credential_id: self.credential_id(),
            client_data_json: URL_SAFE_NO_PAD
                .encode(self.client_data("webauthn.create", statement_text)),
            attestation_object: URL_SAFE_NO_PAD.encode(attestation_object),
        }
    }

    /// Signs an assertion over `statement_text`.
    pub fn assert(&mut self, statement_text: &str) -> PasskeyAssertion {
        let client_data = self.client_data("webauthn.get", statement_text);
        let auth_data = self.authenticator_data(0, &[]);
        self.sign(auth_data, &client_data)
    }

    /// Signs `auth_data` and `client_data` as an authenticator does, whatever they hold (tests
    /// forge assertions with this).
    pub fn sign(&self, auth_data: Vec<u8>, client_data: &[u8]) -> PasskeyAssertion {
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(client_data));
        let signature: p256::ecdsa::Signature = self.key.sign(&signed);
        PasskeyAssertion {
            credential_id: self.credential_id(),
            authenticator_data: URL_SAFE_NO_PAD.encode(auth_data),
            client_data_json: URL_SAFE_NO_PAD.encode(client_data),
            signature: URL_SAFE_NO_PAD.encode(signature.to_der().as_bytes()),
        }
    }
}
