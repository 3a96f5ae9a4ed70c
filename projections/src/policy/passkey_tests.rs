//! Passkeys as vote keys: registered only by their member for this log, then votes signed by
//! them are recorded with the assertion, and nothing else passes.

use super::*;
use crate::passkey::{RegistrationStatement, SoftwareAuthenticator};
use crate::vote_statement::{Kind, Statement};

const RP: &str = "cab.test.example";
const WEB: &str = "https://cab.test.example";

fn register(given: &Given, member: &str, auth: &mut SoftwareAuthenticator) -> Command {
    let requested_at = given.at.to_string();
    let statement = RegistrationStatement {
        origin: &given.state.origin,
        member,
        requested_at: &requested_at,
    };
    let created = auth.create(&statement.to_text());
    Command::RegisterPasskey {
        member: member.into(),
        requested_at,
        rp_id: RP.into(),
        credential_id: created.credential_id,
        client_data_json: created.client_data_json,
        attestation_object: created.attestation_object,
    }
}

fn passkey_vote(
    given: &Given,
    auth: &mut SoftwareAuthenticator,
    deployment_id: Uuid,
    approve: bool,
) -> Command {
    let subject = deployment_id.to_string();
    let digest = vote_digest(&given.state, Kind::Deployment, &subject).unwrap();
    let signed_at = given.at.to_string();
    let statement = Statement {
        kind: Kind::Deployment,
        origin: &given.state.origin,
        subject: &subject,
        digest: &digest,
        approve,
        rationale: "reviewed",
        signed_at: &signed_at,
    };
    Command::Vote {
        deployment_id,
        approve,
        rationale: "reviewed".into(),
        signature: Some(SignedVote {
            proof: VoteProof::Passkey(auth.assert(&statement.to_text())),
            signed_at: signed_at.clone(),
        }),
    }
}

#[test]
fn a_vote_signed_by_a_registered_passkey_is_recorded_with_its_assertion() {
    let mut given = Given::genesis();
    let mut chen = SoftwareAuthenticator::from_label("chen", RP, WEB);
    let registered = given.decided("chen", &register(&given, "chen", &mut chen));
    let Payload::CabMemberPasskeyRegistered(p) = &registered[0].1 else {
        panic!("{registered:?}")
    };
    assert_eq!(p.passkey.web_origin, WEB);
    assert_eq!(
        command_of(&registered[0].1).unwrap(),
        Some(register_again(p))
    );
    let id = given.pending_deployment();
    let vote = passkey_vote(&given, &mut chen, id, true);
    let events = given.decided("chen", &vote);
    let Payload::CabVoteCast(cast) = &events[0].1 else {
        panic!("{events:?}")
    };
    let recorded = cast
        .passkey_signature
        .as_ref()
        .expect("the assertion is kept");
    assert!(cast.signature.is_none());
    assert_eq!(recorded.key_fingerprint, p.passkey.fingerprint);
    // The auditor's inverse rebuilds the same command.
    assert_eq!(command_of(&events[0].1).unwrap(), Some(vote));
}

/// The command a registration entry records.
fn register_again(p: &CabMemberPasskeyRegistered) -> Command {
    Command::RegisterPasskey {
        member: p.member.clone(),
        requested_at: p.requested_at.clone(),
        rp_id: p.passkey.rp_id.clone(),
        credential_id: p.passkey.credential_id.clone(),
        client_data_json: p.client_data_json.clone(),
        attestation_object: p.attestation_object.clone(),
    }
}

#[test]
fn a_passkey_is_registered_by_its_member_once_and_votes_only_for_them() {
    let mut given = Given::genesis();
    let mut chen = SoftwareAuthenticator::from_label("chen", RP, WEB);
    // Carol cannot register a key for chen, nor chen one made for carol's statement.
    assert!(matches!(
        given.when("carol", &register(&given, "chen", &mut chen)),
        Err(Rejection::Forbidden(_))
    ));
    let for_carol = register(&given, "carol", &mut chen);
    let Command::RegisterPasskey {
        credential_id,
        client_data_json,
        attestation_object,
        requested_at,
        ..
    } = for_carol
    else {
        unreachable!()
    };
    let relabelled = Command::RegisterPasskey {
        member: "chen".into(),
        requested_at,
        rp_id: RP.into(),
        credential_id,
        client_data_json,
        attestation_object,
    };
    assert!(matches!(
        given.when("chen", &relabelled),
        Err(Rejection::Forbidden(_))
    ));
    given.decided("chen", &register(&given, "chen", &mut chen));
    // The same credential again, or by another member, is a conflict.
    assert!(matches!(
        given.when("chen", &register(&given, "chen", &mut chen)),
        Err(Rejection::Conflict(_))
    ));
    assert!(matches!(
        given.when("carol", &register(&given, "carol", &mut chen)),
        Err(Rejection::Conflict(_))
    ));
    // Carol cannot vote with chen's passkey, nor with a passkey she never registered.
    let id = given.pending_deployment();
    assert!(matches!(
        given.when("carol", &passkey_vote(&given, &mut chen, id, true)),
        Err(Rejection::Forbidden(_))
    ));
    let mut carol = SoftwareAuthenticator::from_label("carol", RP, WEB);
    assert!(matches!(
        given.when("carol", &passkey_vote(&given, &mut carol, id, true)),
        Err(Rejection::Forbidden(_))
    ));
    // A revoked passkey signs nothing more and never returns.
    let fingerprint = crate::passkey::fingerprint(&chen.cose_key());
    given.decided(
        "chen",
        &Command::RevokeMemberKey {
            member: "chen".into(),
            fingerprint,
            reason: "lost".into(),
        },
    );
    assert!(matches!(
        given.when("chen", &passkey_vote(&given, &mut chen, id, true)),
        Err(Rejection::Forbidden(_))
    ));
    assert!(matches!(
        given.when("chen", &register(&given, "chen", &mut chen)),
        Err(Rejection::Forbidden(_))
    ));
}

#[test]
fn a_registration_asked_for_long_ago_is_refused() {
    let mut given = Given::genesis();
    let mut chen = SoftwareAuthenticator::from_label("chen", RP, WEB);
    let old = register(&given, "chen", &mut chen);
    given.at = Timestamp::from_unix_micros(given.at.unix_micros() + 16 * 60_000_000);
    assert!(matches!(
        given.when("chen", &old),
        Err(Rejection::Forbidden(m)) if m.contains("15 minutes")
    ));
}

#[test]
fn a_passkey_assertion_over_another_statement_is_refused() {
    let mut given = Given::genesis();
    let mut chen = SoftwareAuthenticator::from_label("chen", RP, WEB);
    given.decided("chen", &register(&given, "chen", &mut chen));
    let id = given.pending_deployment();
    let Command::Vote {
        signature: Some(rejecting),
        ..
    } = passkey_vote(&given, &mut chen, id, false)
    else {
        unreachable!()
    };
    let approving_with_rejection = Command::Vote {
        deployment_id: id,
        approve: true,
        rationale: "reviewed".into(),
        signature: Some(rejecting),
    };
    assert!(matches!(
        given.when("chen", &approving_with_rejection),
        Err(Rejection::Forbidden(m)) if m.contains("another statement")
    ));
}
