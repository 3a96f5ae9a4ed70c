//! Passkeys as vote keys: a member registers one (several at most [`PASSKEYS_MAX`]), checked
//! from its registration statement, client data and attestation object.

use super::*;
use crate::passkey::{self, PasskeyProblem, Registration, RegistrationStatement};
use crate::vote_statement;

/// How many passkeys a member may hold at once (a laptop, a phone, a security key, spares).
pub const PASSKEYS_MAX: usize = 8;

/// Decides [`Command::RegisterPasskey`].
pub(super) fn decide(
    state: &GovernanceState,
    actor: &str,
    at: Timestamp,
    command: &Command,
) -> Result<Decision, Rejection> {
    let Command::RegisterPasskey {
        member,
        requested_at,
        rp_id,
        credential_id,
        client_data_json,
        attestation_object,
    } = command
    else {
        unreachable!("policy::decide dispatches only RegisterPasskey here")
    };
    require_member(state, member)?;
    if member != actor {
        return Err(Rejection::Forbidden(format!(
            "only {member} registers {member}'s passkeys: a vote is signed by its member, so nobody else may choose the key"
        )));
    }
    check_fresh(requested_at, at)?;
    let statement = RegistrationStatement {
        origin: &state.origin,
        member,
        requested_at,
    };
    let key = passkey::check_registration(
        &statement.to_text(),
        rp_id,
        &Registration {
            credential_id,
            client_data_json,
            attestation_object,
        },
    )
    .map_err(|e| match e {
        PasskeyProblem::Malformed(m) => invalid("passkey", m),
        PasskeyProblem::Refused(m) => Rejection::Forbidden(m),
    })?;
    if state.revoked_member_keys.contains(&key.fingerprint) {
        return Err(Rejection::Forbidden(format!(
            "key {} was revoked and is never registered again",
            key.fingerprint
        )));
    }
    let taken = state.member_passkeys.iter().find(|(_, keys)| {
        keys.values()
            .any(|k| k.credential_id == key.credential_id || k.fingerprint == key.fingerprint)
    });
    if let Some((holder, _)) = taken {
        return Err(Rejection::Conflict(format!(
            "passkey {} is already registered to {holder}",
            key.fingerprint
        )));
    }
    if state.member_passkeys.get(member).map_or(0, BTreeMap::len) >= PASSKEYS_MAX {
        return Err(Rejection::NotAllowed(format!(
            "{member} holds {PASSKEYS_MAX} passkeys already: revoke one first"
        )));
    }
    Ok(Decision::one(
        "cab/members".into(),
        Payload::CabMemberPasskeyRegistered(CabMemberPasskeyRegistered {
            member: member.clone(),
            passkey: key,
            requested_at: requested_at.clone(),
            client_data_json: client_data_json.clone(),
            attestation_object: attestation_object.clone(),
        }),
    ))
}

/// A registration must be asked for within the window a vote's signature must be made in.
fn check_fresh(requested_at: &str, at: Timestamp) -> Result<(), Rejection> {
    let requested = Timestamp::parse(requested_at).map_err(|_| {
        invalid(
            "requested_at",
            "must be a UTC time spelled YYYY-MM-DDTHH:MM:SS.ffffffZ",
        )
    })?;
    let age = at.unix_micros() - requested.unix_micros();
    if age > vote_statement::MAX_AGE_MICROS || -age > vote_statement::MAX_AHEAD_MICROS {
        return Err(Rejection::Forbidden(format!(
            "the registration was asked for at {requested}, not within 15 minutes before {at}"
        )));
    }
    Ok(())
}
