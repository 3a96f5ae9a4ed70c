//! Voting in the browser with a passkey, over the real server and a simulated history (which
//! requires signed votes), with a software authenticator doing what a browser and a passkey do:
//! a CAB member registers a passkey through the keys page, signs a vote on a queued deployment
//! through the deployment page's form, and the vote is recorded with its assertion and passes the
//! audit; a forged or replayed assertion, an unsigned vote, and a registration without the
//! session's CSRF token write nothing, each answered with the status the API gives (403 a
//! signature that does not hold, 409 a second registration or vote, 422 a missing signature).

mod http_client;
mod web_pages;

use events::payloads::Payload;
use projections::passkey::SoftwareAuthenticator;
use projections::state::DeploymentStatus;
use projections::vote_statement::{Kind, Statement};
use web_pages::{get, post, served_with, sign_in};

/// The value of the first `name="..."` attribute on the page.
fn attribute(page: &str, name: &str) -> String {
    let marker = format!("{name}=\"");
    let at = page
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} in {page}"))
        + marker.len();
    let end = page[at..].find('"').unwrap() + at;
    page[at..end].replace("&#10;", "\n")
}

/// The value of the hidden input `name`.
fn hidden(page: &str, name: &str) -> String {
    attribute(page, &format!("name=\"{name}\" value"))
}

#[test]
fn a_member_registers_a_passkey_and_votes_with_it_and_the_audit_checks_the_assertion() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, gov, state, tokens) = served_with(tmp.path(), &[("cab-chen", &["cab"])]);
    let port = server.port;
    let web_origin = format!("http://localhost:{port}");
    state.set_web_origin(&web_origin);
    let session = sign_in(port, &tokens[0]);
    let mut passkey = SoftwareAuthenticator::from_label("chen's laptop", "localhost", &web_origin);

    // The keys page shows the statement the registration signs, and its challenge.
    let keys = get(port, "/keys", Some(&session)).body;
    let csrf = hidden(&keys, "csrf");
    let requested_at = hidden(&keys, "requested_at");
    let statement = projections::passkey::RegistrationStatement {
        origin: gov.log().origin(),
        member: "cab-chen",
        requested_at: &requested_at,
    }
    .to_text();
    assert_eq!(
        attribute(&keys, "data-challenge"),
        projections::passkey::challenge(&statement)
    );
    let created = passkey.create(&statement);
    let form = |csrf: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("requested_at", requested_at.clone()),
            ("credential_id", created.credential_id.clone()),
            ("client_data_json", created.client_data_json.clone()),
            ("attestation_object", created.attestation_object.clone()),
        ]
    };
    let post_form = |path: &str, fields: &[(&str, String)]| {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        post(port, path, Some(&session), &fields)
    };
    let size = gov.log().head().size;
    assert_eq!(post_form("/keys/passkeys", &form("forged")).status, 403);
    assert_eq!(gov.log().head().size, size, "a refused form writes nothing");
    let registered = post_form("/keys/passkeys", &form(&csrf));
    assert_eq!(
        (registered.status, registered.location.as_deref()),
        (303, Some("/keys?registered=1")),
        "{}",
        registered.body
    );
    let again = post_form("/keys/passkeys", &form(&csrf));
    assert_eq!(again.status, 409);
    assert!(again.body.contains("already registered"), "{}", again.body);
    let keys = get(port, "/keys", Some(&session)).body;
    assert!(keys.contains(&projections::passkey::fingerprint(&passkey.cose_key())));

    // A queued deployment chen may vote on.
    let id = gov
        .with_state(|s| {
            s.deployments
                .iter()
                .find(|(_, d)| {
                    d.status == DeploymentStatus::PendingCab
                        && !d.votes.contains_key("cab-chen")
                        && d.submitter != "cab-chen"
                })
                .map(|(id, _)| id)
        })
        .expect("the simulated history leaves deployments waiting for the CAB");
    let page = get(port, &format!("/deployments/{id}"), Some(&session)).body;
    assert!(page.contains("data-passkeys=\""), "{page}");
    let digest = attribute(&page, "data-digest");
    let rationale = "Evidence reviewed;\nrollback plan checked.";
    let sign = |passkey: &mut SoftwareAuthenticator, approve: bool| {
        let signed_at = gov.current_time().to_string();
        let subject = id.to_string();
        let text = Statement {
            kind: Kind::Deployment,
            origin: gov.log().origin(),
            subject: &subject,
            digest: &digest,
            approve,
            rationale,
            signed_at: &signed_at,
        }
        .to_text();
        let assertion = passkey.assert(&text);
        vec![
            ("csrf", csrf.clone()),
            ("kind", "deployment".to_owned()),
            ("subject", subject),
            (
                "decision",
                if approve { "approve" } else { "reject" }.to_owned(),
            ),
            // As a browser posts a textarea: CRLF line breaks.
            ("rationale", rationale.replace('\n', "\r\n")),
            ("signed_at", signed_at),
            ("credential_id", assertion.credential_id),
            ("authenticator_data", assertion.authenticator_data),
            ("client_data_json", assertion.client_data_json),
            ("signature", assertion.signature),
        ]
    };
    let size = gov.log().head().size;
    // Unsigned, the vote is refused: the log requires signed votes.
    let unsigned: Vec<(&str, String)> = sign(&mut passkey, true).into_iter().take(5).collect();
    let refused = post_form("/votes", &unsigned);
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("signature"), "{}", refused.body);
    // Signed as a rejection but posted as an approval: another statement.
    let mut flipped = sign(&mut passkey, false);
    flipped[3].1 = "approve".into();
    assert_eq!(post_form("/votes", &flipped).status, 403);
    // A signature that does not verify.
    let mut forged = sign(&mut passkey, true);
    let last = forged.len() - 1;
    let mut signature = forged[last].1.clone().into_bytes();
    signature[20] = if signature[20] == b'A' { b'B' } else { b'A' };
    forged[last].1 = String::from_utf8(signature).unwrap();
    let answer = post_form("/votes", &forged);
    assert_eq!(answer.status, 403, "{}", answer.body);
    // Another authenticator presenting chen's credential id.
    let mut mallory = SoftwareAuthenticator::from_label("mallory's key", "localhost", &web_origin);
    let mut stolen_id = sign(&mut mallory, true);
    stolen_id[6].1 = passkey.credential_id();
    assert_eq!(post_form("/votes", &stolen_id).status, 403);
    assert_eq!(gov.log().head().size, size, "refused votes write nothing");

    let vote = sign(&mut passkey, true);
    let cast = post_form("/votes", &vote);
    assert_eq!(
        (cast.status, cast.location.as_deref()),
        (303, Some(format!("/deployments/{id}").as_str())),
        "{}",
        cast.body
    );
    // Replayed, the same assertion is not a second vote.
    assert_eq!(post_form("/votes", &vote).status, 409);
    let recorded = (size..gov.log().head().size)
        .filter_map(|seq| gov.log().get(seq).unwrap())
        .find_map(|entry| match Payload::decode(&entry) {
            Ok(Some(Payload::CabVoteCast(v))) => Some(v),
            _ => None,
        })
        .expect("the vote's entry");
    let signature = recorded.passkey_signature.expect("the assertion is kept");
    assert_eq!(signature.assertion.credential_id, passkey.credential_id());
    assert_eq!(recorded.rationale, rationale);
    let page = get(port, &format!("/deployments/{id}"), Some(&session)).body;
    assert!(page.contains("<li>cab-chen: approve</li>"), "{page}");

    // The auditor re-derives the registration and the vote from the log alone.
    let report = replay::audit::audit_log(gov.log(), gov.log().verifier(), |_| {}).unwrap();
    assert!(report.clean(), "{report:?}");
}
