//! Target `gossip_keys`: the key-values a node receives by gossip from
//! any peer, turned into a member by `membership::keys::decode`.
//!
//! Input: one `key=value` pair a line (UTF-8; chitchat keys and values are
//! strings); a later line replaces an earlier one with the same key, and a
//! line without `=` is a key with an empty value. Invariants: checking the
//! keys' signature (`membership::signing::verify`) never panics, whatever
//! `sig` holds, and the keys signed then checked verify. Of a member that
//! decodes: it passes `keys::validate`, and `keys::encode` then `decode`
//! gives it back unchanged.

use std::collections::BTreeMap;

use membership::{
    keys,
    signing::{self, Announcer, GossipKey},
};

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let map: BTreeMap<String, String> = text
        .split('\n')
        .map(|line| {
            let (key, value) = line.split_once('=').unwrap_or((line, ""));
            (key.to_string(), value.to_string())
        })
        .collect();
    check_signing(&map);
    let Ok(member) = keys::decode(&map) else {
        return;
    };
    assert_eq!(
        keys::validate(&member),
        Ok(()),
        "{member:?}: decoded but invalid"
    );
    let again: BTreeMap<String, String> = keys::encode(&member).into_iter().collect();
    assert_eq!(
        keys::decode(&again).as_ref(),
        Ok(&member),
        "{again:?}: the member's own keys"
    );
}

fn check_signing(map: &BTreeMap<String, String>) {
    let key = GossipKey::from_secret(b"fuzz");
    let announcer = Announcer {
        cluster_id: "cronmesh",
        node_name: "executor-fuzz",
        generation: 1,
    };
    // Whatever `sig` holds: an answer, never a panic.
    let _ = signing::verify(&key, announcer, map);
    let mut signed = map.clone();
    let sig = signing::sign(
        &key,
        announcer,
        map.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    signed.insert(signing::SIG.to_string(), sig);
    assert_eq!(
        signing::verify(&key, announcer, &signed),
        Ok(()),
        "{signed:?}: its own signature"
    );
}
