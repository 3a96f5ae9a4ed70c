//! Access and trust: bearer-token grants and revocations, SBOM signing keys.

use super::*;

/// Decides this module's commands.
pub(super) fn decide(state: &GovernanceState, command: &Command) -> Result<Decision, Rejection> {
    match command {
        Command::GrantAccess(g) => {
            names::check_name("principal", &g.principal, NAME_BYTES_MAX)?;
            if g.principal.starts_with("system:") || g.principal.chars().any(char::is_whitespace) {
                return Err(invalid(
                    "principal",
                    "must not contain spaces or start with system:",
                ));
            }
            check_hex64("token_sha256", &g.token_sha256)?;
            if g.roles.is_empty() {
                return Err(invalid("roles", "at least one role"));
            }
            if let Some(bad) = g.roles.iter().find(|r| Role::parse(r).is_none()) {
                let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                return Err(invalid(
                    "roles",
                    format!("unknown role {bad:?}; roles: {known:?}"),
                ));
            }
            if state.access.contains_key(&g.token_sha256) {
                return Err(Rejection::Conflict("that token is already granted".into()));
            }
            let principals = state.access.values().map(|a| a.principal.as_str());
            if let Some(other) = names::confusable_with(&g.principal, principals) {
                return Err(Rejection::Conflict(format!(
                    "{} looks like the existing principal {other}",
                    g.principal
                )));
            }
            // One principal, one token in force: nobody mints a second token under a name that
            // already acts (and votes) as someone.
            if state
                .access
                .values()
                .any(|a| !a.revoked && a.principal == g.principal)
            {
                return Err(Rejection::Conflict(format!(
                    "{} already holds a token in force; revoke it first",
                    g.principal
                )));
            }
            let mut grant = g.clone();
            grant.roles.sort();
            grant.roles.dedup();
            Ok(Decision::one(
                format!("access/{}", g.principal),
                Payload::AccessGranted(grant),
            ))
        }
        Command::RevokeAccess(r) => {
            check_text("reason", &r.reason, TEXT_BYTES_MAX, true)?;
            match state.access.get(&r.token_sha256) {
                None => Err(Rejection::Unknown {
                    kind: "token",
                    id: r.token_sha256.clone(),
                }),
                Some(a) if a.revoked => {
                    Err(Rejection::Conflict("that token is already revoked".into()))
                }
                Some(a) if a.principal != r.principal => Err(invalid(
                    "principal",
                    format!("the token belongs to {}", a.principal),
                )),
                Some(_) => Ok(Decision::one(
                    format!("access/{}", r.principal),
                    Payload::AccessRevoked(r.clone()),
                )),
            }
        }
        Command::TrustSigningKey(k) => {
            check_text("key_id", &k.key_id, NAME_BYTES_MAX, true)?;
            check_text("owner", &k.owner, NAME_BYTES_MAX, true)?;
            let valid_key = hex::decode(&k.public_key_hex)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .is_some_and(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).is_ok());
            if !valid_key || k.public_key_hex.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(invalid(
                    "public_key_hex",
                    "must be a 32-byte Ed25519 public key in lowercase hex",
                ));
            }
            if state.signing_keys.contains_key(&k.key_id) {
                return Err(Rejection::Conflict(format!(
                    "key id {} was already used (key ids are never reused)",
                    k.key_id
                )));
            }
            Ok(Decision::one(
                format!("signing_key/{}", k.key_id),
                Payload::SigningKeyTrusted(k.clone()),
            ))
        }
        Command::RevokeSigningKey(k) => {
            check_text("reason", &k.reason, TEXT_BYTES_MAX, true)?;
            match state.signing_keys.get(&k.key_id) {
                None => Err(Rejection::Unknown {
                    kind: "signing key",
                    id: k.key_id.clone(),
                }),
                Some(r) if r.revoked_at.is_some() => Err(Rejection::Conflict(format!(
                    "key {} is already revoked",
                    k.key_id
                ))),
                Some(_) => Ok(Decision::one(
                    format!("signing_key/{}", k.key_id),
                    Payload::SigningKeyRevoked(k.clone()),
                )),
            }
        }
        _ => unreachable!("policy::decide dispatches only this module's commands here"),
    }
}
