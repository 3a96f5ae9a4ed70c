//! Who may do what: roles, principals, bearer tokens, and the roles each command needs.

pub use projections::policy::{roles_for, Role};
use projections::state::GovernanceState;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;
use uuid::Uuid;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Name recorded as the entries' `actor`.
    pub name: String,
    /// Roles.
    pub roles: BTreeSet<Role>,
}

impl Principal {
    /// A principal with these roles.
    pub fn new(name: impl Into<String>, roles: &[Role]) -> Self {
        Self {
            name: name.into(),
            roles: roles.iter().copied().collect(),
        }
    }
}

pub use projections::policy::CLI_ADMIN;

/// A new random bearer token (`tl_` + 64 hex digits from two v4 UUIDs: 244 random bits) and its
/// SHA-256 hex (the only form in which it is recorded).
///
/// # Panics
/// If the operating system has no randomness.
pub fn new_token() -> (String, String) {
    let bytes: [u8; 32] = *Uuid::new_v4()
        .as_bytes()
        .iter()
        .chain(Uuid::new_v4().as_bytes())
        .copied()
        .collect::<Vec<u8>>()
        .first_chunk()
        .expect("32 bytes");
    let token = format!("tl_{}", hex::encode(bytes));
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    (token, digest)
}

/// The principal a bearer token authenticates, if it is granted and not revoked. The token is
/// hashed first, so look-up time does not depend on how much of a guess is right.
pub fn authenticate(state: &GovernanceState, token: &str) -> Option<Principal> {
    authenticate_digest(state, &hex::encode(Sha256::digest(token.as_bytes())))
}

/// The principal a token in force maps to, by the token's SHA-256 (lowercase hex).
pub fn authenticate_digest(state: &GovernanceState, digest: &str) -> Option<Principal> {
    let record = state.access.get(digest).filter(|a| !a.revoked)?;
    Some(Principal {
        name: record.principal.clone(),
        roles: record.roles.iter().filter_map(|r| Role::parse(r)).collect(),
    })
}

/// The id (SHA-256) of `principal`'s token in force, if it holds one (a principal holds at most
/// one: the policy refuses a second grant).
pub fn token_in_force(state: &GovernanceState, principal: &str) -> Option<String> {
    state
        .access
        .iter()
        .find(|(_, a)| !a.revoked && a.principal == principal)
        .map(|(sha256, _)| sha256.clone())
}
