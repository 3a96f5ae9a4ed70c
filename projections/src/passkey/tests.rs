use super::*;

const RP: &str = "cab.example.com";
const WEB: &str = "https://cab.example.com";

fn statement() -> String {
    RegistrationStatement {
        origin: "example.com/log",
        member: "chen",
        requested_at: "2026-01-01T00:00:00.000000Z",
    }
    .to_text()
}

fn registered(auth: &mut SoftwareAuthenticator) -> PasskeyKey {
    let created = auth.create(&statement());
    check_registration(
        &statement(),
        RP,
        &Registration {
            credential_id: &created.credential_id,
            client_data_json: &created.client_data_json,
            attestation_object: &created.attestation_object,
        },
    )
    .unwrap()
}

#[test]
fn a_registration_yields_the_key_and_binds_the_member_statement() {
    let mut auth = SoftwareAuthenticator::from_label("chen", RP, WEB);
    let key = registered(&mut auth);
    assert_eq!(key.credential_id, auth.credential_id());
    assert_eq!(key.fingerprint, fingerprint(&auth.cose_key()));
    assert_eq!(key.web_origin, WEB);
    let created = auth.create(&statement());
    let other = statement().replace("chen", "ada");
    let problem = check_registration(
        &other,
        RP,
        &Registration {
            credential_id: &created.credential_id,
            client_data_json: &created.client_data_json,
            attestation_object: &created.attestation_object,
        },
    );
    assert!(
        matches!(problem, Err(PasskeyProblem::Refused(_))),
        "{problem:?}"
    );
    let elsewhere = check_registration(
        &statement(),
        "other.example.com",
        &Registration {
            credential_id: &created.credential_id,
            client_data_json: &created.client_data_json,
            attestation_object: &created.attestation_object,
        },
    );
    assert!(matches!(elsewhere, Err(PasskeyProblem::Refused(_))));
}

#[test]
fn an_assertion_verifies_only_over_its_statement_under_its_key() {
    let mut auth = SoftwareAuthenticator::from_label("chen", RP, WEB);
    let key = registered(&mut auth);
    let vote = "trustledger-vote-v1\nsubject: x\n";
    let assertion = auth.assert(vote);
    check_assertion(&key, vote, &assertion).unwrap();
    assert!(matches!(
        check_assertion(&key, "trustledger-vote-v1\nsubject: y\n", &assertion),
        Err(PasskeyProblem::Refused(_))
    ));
    let mut forged = assertion.clone();
    let mut sig = URL_SAFE_NO_PAD.decode(&forged.signature).unwrap();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    forged.signature = URL_SAFE_NO_PAD.encode(sig);
    assert!(check_assertion(&key, vote, &forged).is_err());
    // Another key signing the same statement under this credential's id.
    let mallory = SoftwareAuthenticator::from_label("mallory", RP, WEB);
    let mut by_other = mallory.sign(
        URL_SAFE_NO_PAD
            .decode(&assertion.authenticator_data)
            .unwrap(),
        &auth.client_data("webauthn.get", vote),
    );
    by_other.credential_id = assertion.credential_id.clone();
    assert_eq!(
        check_assertion(&key, vote, &by_other),
        Err(PasskeyProblem::Refused(
            "the passkey's signature does not verify under the key registered".into()
        ))
    );
}

#[test]
fn an_assertion_must_be_a_get_at_the_registered_origin_with_the_user_verified() {
    let mut auth = SoftwareAuthenticator::from_label("chen", RP, WEB);
    let key = registered(&mut auth);
    let vote = "statement\n";
    let mut data = Sha256::digest(RP.as_bytes()).to_vec();
    data.extend_from_slice(&[0x01, 0, 0, 0, 9]);
    let present_only = auth.sign(data, &auth.client_data("webauthn.get", vote));
    assert!(matches!(
        check_assertion(&key, vote, &present_only),
        Err(PasskeyProblem::Refused(m)) if m.contains("verify the user")
    ));
    let got = URL_SAFE_NO_PAD
        .decode(auth.assert(vote).authenticator_data)
        .unwrap();
    let create = auth.sign(got, &auth.client_data("webauthn.create", vote));
    assert!(check_assertion(&key, vote, &create).is_err());
    let mut phished = SoftwareAuthenticator::from_label("chen", RP, "https://evil.example.net");
    assert!(matches!(
        check_assertion(&key, vote, &phished.assert(vote)),
        Err(PasskeyProblem::Refused(m)) if m.contains("origin")
    ));
}

#[test]
fn malformed_fields_are_named() {
    let mut auth = SoftwareAuthenticator::from_label("chen", RP, WEB);
    let key = registered(&mut auth);
    let mut bad = auth.assert("s\n");
    bad.client_data_json = "not base64!".into();
    assert!(matches!(
        check_assertion(&key, "s\n", &bad),
        Err(PasskeyProblem::Malformed(m)) if m.contains("client_data_json")
    ));
    bad = auth.assert("s\n");
    bad.signature = "A".repeat(10_000);
    assert!(matches!(
        check_assertion(&key, "s\n", &bad),
        Err(PasskeyProblem::Malformed(m)) if m.contains("longer")
    ));
}

#[test]
fn origins_fit_their_relying_party_on_secure_contexts_only() {
    assert!(origin_fits("https://cab.example.com", "example.com"));
    assert!(origin_fits("https://example.com:8443", "example.com"));
    assert!(origin_fits("http://localhost:8080", "localhost"));
    assert!(!origin_fits("http://cab.example.com", "example.com"));
    assert!(!origin_fits("https://badexample.com", "example.com"));
    assert!(!origin_fits("https://example.com/path", "example.com"));
    assert!(!origin_fits("ftp://example.com", "example.com"));
}
