//! Keys derived from the cluster secret, one per use.
//!
//! Every scheduler and executor holds the same secret (`--secret-file`).
//! Using its bytes directly for everything would let whoever is given one
//! use's proof replay it as another's: a webhook receiver, a third party,
//! would hold signatures that also open the executor protocol. So each use
//! gets a key of its own, derived with HKDF-SHA256 (RFC 5869) from the
//! secret and a label naming the use. Knowing one derived key reveals
//! neither the secret nor any other key.

use hkdf::Hkdf;
use sha2::Sha256;

/// What a derived key is for. Each has a distinct HKDF `info` label, so
/// their keys are unrelated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyUse {
    /// Requests of the executor protocol, version 2 (dispatch, kill, reads,
    /// and reports back to the scheduler).
    ExecutorProtocol,
    /// Bodies of alert webhooks: a receiver can check them, but the key
    /// opens nothing else.
    Webhook,
    /// The handshake of the Raft transport between scheduler nodes.
    Raft,
    /// The announcements of members in gossip.
    Gossip,
}

impl KeyUse {
    /// Every use, for tests and for whoever derives all keys at once.
    pub const ALL: [KeyUse; 4] = [
        KeyUse::ExecutorProtocol,
        KeyUse::Webhook,
        KeyUse::Raft,
        KeyUse::Gossip,
    ];

    /// The HKDF `info` of this use. Never change one: every member of a
    /// cluster must derive the same key.
    fn label(self) -> &'static [u8] {
        match self {
            KeyUse::ExecutorProtocol => b"cronmesh/v2/executor-protocol",
            KeyUse::Webhook => b"cronmesh/v2/webhook",
            KeyUse::Raft => b"cronmesh/v2/raft",
            KeyUse::Gossip => b"cronmesh/v2/gossip",
        }
    }
}

/// A 32-byte key for `key_use`, derived from the cluster `secret`.
pub fn derive(secret: &[u8], key_use: KeyUse) -> [u8; 32] {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(b"cronmesh"), secret)
        .expand(key_use.label(), &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    key
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn each_use_gets_its_own_key_and_the_same_secret_the_same_keys() {
        let secret = b"the cluster secret";
        let keys: HashSet<[u8; 32]> = KeyUse::ALL.map(|u| derive(secret, u)).into();
        assert_eq!(keys.len(), KeyUse::ALL.len());
        assert!(!keys.iter().any(|k| k.as_slice() == secret.as_slice()));
        for key_use in KeyUse::ALL {
            assert_eq!(derive(secret, key_use), derive(secret, key_use));
            assert_ne!(derive(secret, key_use), derive(b"another secret", key_use));
        }
    }

    #[test]
    fn a_derived_key_is_pinned() {
        // RFC 5869 HKDF-SHA256 with salt "cronmesh" (computed apart from
        // this code); a change here would split a cluster being upgraded,
        // and break every webhook receiver's check.
        assert_eq!(
            hex::encode(derive(b"secret", KeyUse::Webhook)),
            "5fb6a93dffe1bab081be4b0f47ff4cdd987d546a9bef3ca70625cf872415be02"
        );
    }
}
