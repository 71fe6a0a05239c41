//! Signed announcements: a member proves that its gossiped keys come from a
//! holder of the cluster secret.
//!
//! chitchat authenticates nothing: any process that can send UDP to a gossip
//! port joins, and Scuttlebutt relays every node's keys through third
//! parties, so a peer may even send new values for another node's keys. So
//! every member with the cluster secret adds the key [`SIG`]: the
//! HMAC-SHA256, keyed with the gossip key derived from the secret
//! (`protocol::keys::derive(secret, KeyUse::Gossip)`), of the canonical
//! encoding of its announcement ([`message`]). Receivers holding the same
//! secret check it at the edge, before the keys become a typed member; a
//! member whose `sig` is missing, malformed or wrong is unverified.
//!
//! Every key but `sig` is covered, `running`, `leader` and `term` included,
//! and keys unknown to this version too: a node re-signs whenever any of its
//! values changes (one HMAC per change, a few times a second at most), so a
//! receiver never has to decide which keys matter. The cluster id, the node
//! name and the generation are covered as well, so a signature is not
//! replayed into another cluster, as another node, or into a later life of
//! the same node. Within one generation an older, validly signed set of
//! values can be replayed by a peer that kept it; the view never lets an
//! unverified version replace a verified one, and a replayed one is a value
//! the node really announced earlier.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The gossip key holding the signature, lowercase hex.
pub const SIG: &str = "sig";

/// Length of a signature in hex: HMAC-SHA256 is 32 bytes.
pub const SIG_HEX_LEN: usize = 64;

/// First bytes of every signed message: names the scheme, so a signature
/// of this encoding is never valid for a later one.
const DOMAIN: &[u8] = b"cronmesh/gossip/v1";

/// The key that signs and checks announcements. Debug output never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct GossipKey([u8; 32]);

impl GossipKey {
    /// The gossip key of the cluster `secret` (as `--secret-file` holds it).
    /// The same secret gives the same key on every node.
    pub fn from_secret(secret: &[u8]) -> Self {
        GossipKey(protocol::keys::derive(
            secret,
            protocol::keys::KeyUse::Gossip,
        ))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length; 32 bytes is the natural one.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts a key of any length"))
    }
}

impl std::fmt::Debug for GossipKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GossipKey(<redacted>)")
    }
}

/// Who announces: the parts of a node's chitchat identity a signature is
/// bound to, besides its keys.
#[derive(Clone, Copy, Debug)]
pub struct Announcer<'a> {
    /// The gossip cluster id (`--gossip-cluster`).
    pub cluster_id: &'a str,
    /// The chitchat node id: the configured node name.
    pub node_name: &'a str,
    /// The chitchat generation: changes on every restart.
    pub generation: u64,
}

/// The canonical bytes signed: [`DOMAIN`], then the cluster id, the node
/// name, the generation in decimal, then every key but [`SIG`] with its
/// value, in byte order of the keys. Each string is preceded by its length
/// in bytes as a big-endian u64, so no two announcements encode alike.
pub fn message<'k>(
    announcer: Announcer<'_>,
    keys: impl IntoIterator<Item = (&'k str, &'k str)>,
) -> Vec<u8> {
    let sorted: BTreeMap<&str, &str> = keys.into_iter().filter(|(k, _)| *k != SIG).collect();
    let generation = announcer.generation.to_string();
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(DOMAIN);
    for field in [announcer.cluster_id, announcer.node_name, &generation] {
        put(&mut out, field);
    }
    for (key, value) in sorted {
        put(&mut out, key);
        put(&mut out, value);
    }
    out
}

fn put(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The `sig` value of an announcement: lowercase hex of the HMAC of
/// [`message`].
pub fn sign<'k>(
    key: &GossipKey,
    announcer: Announcer<'_>,
    keys: impl IntoIterator<Item = (&'k str, &'k str)>,
) -> String {
    let mut mac = key.mac();
    mac.update(&message(announcer, keys));
    hex::encode(mac.finalize().into_bytes())
}

/// Why an announcement is not verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unverified {
    #[error("the announcement carries no `sig` key")]
    Missing,
    #[error("the `sig` key is not {SIG_HEX_LEN} hex digits")]
    Malformed,
    #[error("the `sig` key does not match the announcement")]
    Mismatch,
}

/// Checks the `sig` among `keys` against the rest of them, in constant
/// time. The value's length is checked before anything is decoded, so a
/// hostile value of any size costs nothing.
pub fn verify(
    key: &GossipKey,
    announcer: Announcer<'_>,
    keys: &BTreeMap<String, String>,
) -> Result<(), Unverified> {
    let sig = keys.get(SIG).ok_or(Unverified::Missing)?;
    if sig.len() != SIG_HEX_LEN {
        return Err(Unverified::Malformed);
    }
    let sig = hex::decode(sig).map_err(|_| Unverified::Malformed)?;
    let mut mac = key.mac();
    mac.update(&message(
        announcer,
        keys.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ));
    mac.verify_slice(&sig).map_err(|_| Unverified::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;
    use crate::member::{ExecutorInfo, Member, SchedulerInfo};

    const ME: Announcer<'static> = Announcer {
        cluster_id: "prod",
        node_name: "executor-http://10.0.0.9:7080",
        generation: 1_700_000_000_000,
    };

    fn key() -> GossipKey {
        GossipKey::from_secret(b"the cluster secret")
    }

    fn executor() -> Member {
        let mut e = ExecutorInfo::new("billing", "http://10.0.0.9:7080");
        e.handlers = vec!["report".into()];
        e.weight = 3;
        e.labels.insert("zone".into(), "a".into());
        e.max_concurrent = 4;
        Member::Executor(e)
    }

    /// The keys `member` gossips, signed as `announcer` with `key`.
    fn signed(
        key: &GossipKey,
        announcer: Announcer<'_>,
        member: &Member,
    ) -> BTreeMap<String, String> {
        let mut kv: BTreeMap<String, String> = keys::encode(member).into_iter().collect();
        let sig = sign(
            key,
            announcer,
            kv.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        kv.insert(SIG.into(), sig);
        kv
    }

    #[test]
    fn a_signed_announcement_verifies() {
        let scheduler = Member::Scheduler(SchedulerInfo {
            node_id: 1,
            api_url: "http://10.0.0.1:7070".into(),
            raft_addr: "10.0.0.1:7071".into(),
            leader: true,
            term: 9,
        });
        for member in [executor(), scheduler] {
            let kv = signed(&key(), ME, &member);
            assert_eq!(kv[SIG].len(), SIG_HEX_LEN);
            assert_eq!(verify(&key(), ME, &kv), Ok(()));
        }
    }

    #[test]
    fn every_tampered_field_is_a_mismatch() {
        let kv = signed(&key(), ME, &executor());
        for field in kv.keys().filter(|k| *k != SIG) {
            let mut tampered = kv.clone();
            tampered.insert(field.clone(), format!("{}x", kv[field]));
            assert_eq!(
                verify(&key(), ME, &tampered),
                Err(Unverified::Mismatch),
                "{field} changed"
            );
            let mut removed = kv.clone();
            removed.remove(field);
            assert_eq!(
                verify(&key(), ME, &removed),
                Err(Unverified::Mismatch),
                "{field} removed"
            );
        }
        let mut added = kv.clone();
        added.insert("weight_boost".into(), "100".into());
        assert_eq!(verify(&key(), ME, &added), Err(Unverified::Mismatch));
    }

    #[test]
    fn the_weight_of_an_impersonator_does_not_verify() {
        let kv = signed(&key(), ME, &executor());
        let mut rogue = kv.clone();
        rogue.insert(keys::WEIGHT.into(), u32::MAX.to_string());
        assert_eq!(verify(&key(), ME, &rogue), Err(Unverified::Mismatch));
    }

    #[test]
    fn another_key_cluster_or_node_is_a_mismatch() {
        let kv = signed(&GossipKey::from_secret(b"another secret"), ME, &executor());
        assert_eq!(verify(&key(), ME, &kv), Err(Unverified::Mismatch));
        let kv = signed(&key(), ME, &executor());
        let other_cluster = Announcer {
            cluster_id: "staging",
            ..ME
        };
        assert_eq!(
            verify(&key(), other_cluster, &kv),
            Err(Unverified::Mismatch)
        );
        let other_node = Announcer {
            node_name: "executor-http://10.0.0.66:7080",
            ..ME
        };
        assert_eq!(verify(&key(), other_node, &kv), Err(Unverified::Mismatch));
    }

    #[test]
    fn a_generation_bump_needs_a_new_signature() {
        let old = signed(&key(), ME, &executor());
        let restarted = Announcer {
            generation: ME.generation + 1,
            ..ME
        };
        // Replayed into the next life of the node: refused.
        assert_eq!(verify(&key(), restarted, &old), Err(Unverified::Mismatch));
        // Re-signed for it: a different signature, which verifies.
        let new = signed(&key(), restarted, &executor());
        assert_ne!(new[SIG], old[SIG]);
        assert_eq!(verify(&key(), restarted, &new), Ok(()));
    }

    #[test]
    fn a_missing_or_malformed_sig_is_refused_without_panic() {
        let mut kv = signed(&key(), ME, &executor());
        let good = kv.remove(SIG).unwrap_or_default();
        assert_eq!(verify(&key(), ME, &kv), Err(Unverified::Missing));
        let bad = [
            String::new(),
            "zz".repeat(32),
            good[..62].to_string(),
            format!("{good}00"),
            "é".repeat(32),
            "0".repeat(1 << 20),
        ];
        for sig in bad {
            kv.insert(SIG.into(), sig.clone());
            assert_eq!(
                verify(&key(), ME, &kv),
                Err(Unverified::Malformed),
                "{}",
                sig.len()
            );
        }
        // The right length but the wrong bytes.
        kv.insert(SIG.into(), "0".repeat(SIG_HEX_LEN));
        assert_eq!(verify(&key(), ME, &kv), Err(Unverified::Mismatch));
        // Upper case hex is the same bytes: accepted.
        kv.insert(SIG.into(), good.to_uppercase());
        assert_eq!(verify(&key(), ME, &kv), Ok(()));
    }

    #[test]
    fn the_encoding_is_unambiguous_and_pinned() {
        // Moving a byte between a key and its value changes the message.
        let a = message(ME, [("ab", "c")]);
        let b = message(ME, [("a", "bc")]);
        assert_ne!(a, b);
        // Order of the input does not matter; `sig` is never covered.
        assert_eq!(
            message(ME, [("b", "2"), ("a", "1"), (SIG, "x")]),
            message(ME, [("a", "1"), ("b", "2")])
        );
        // Pinned, so a third-party executor's implementation can be checked
        // against it (docs/EXECUTOR-PROTOCOL.md).
        let announcer = Announcer {
            cluster_id: "cronmesh",
            node_name: "n",
            generation: 7,
        };
        let mut expected = b"cronmesh/gossip/v1".to_vec();
        for s in ["cronmesh", "n", "7", "role", "executor"] {
            expected.extend_from_slice(&(s.len() as u64).to_be_bytes());
            expected.extend_from_slice(s.as_bytes());
        }
        assert_eq!(message(announcer, [("role", "executor")]), expected);
        assert_eq!(
            sign(
                &GossipKey::from_secret(b"secret"),
                announcer,
                [("role", "executor")]
            ),
            PINNED_SIG
        );
    }

    /// HMAC-SHA256 of the message above under the gossip key of `secret`.
    const PINNED_SIG: &str = "bb1a8792caa16b73f987dad6efabe9f9ec937b9ea0d804949f0e08c84df712d3";
}
