//! How the state keeps CAB members' vote keys: one SSH key in force per member, any number of
//! passkeys beside it, and every revoked fingerprint (never registered again).

use crate::state::GovernanceState;
use events::payloads::Payload;

impl GovernanceState {
    /// Folds a key registration or revocation (other payloads are not its concern).
    pub(crate) fn apply_vote_key(&mut self, payload: Payload) {
        match payload {
            Payload::CabMemberKeyRegistered(p) => {
                self.member_keys.insert(p.member, p.ssh_key);
            }
            Payload::CabMemberPasskeyRegistered(p) => {
                self.member_passkeys
                    .entry(p.member)
                    .or_default()
                    .insert(p.passkey.credential_id.clone(), p.passkey);
            }
            Payload::CabMemberKeyRevoked(p) => {
                if self
                    .member_keys
                    .get(&p.member)
                    .is_some_and(|k| k.fingerprint == p.fingerprint)
                {
                    self.member_keys.remove(&p.member);
                }
                if let Some(keys) = self.member_passkeys.get_mut(&p.member) {
                    keys.retain(|_, k| k.fingerprint != p.fingerprint);
                }
                self.revoked_member_keys.insert(p.fingerprint);
            }
            _ => {}
        }
    }
}
