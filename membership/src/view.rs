//! This node's view of the members, and the changes between two
//! observations of the chitchat state. Pure: no I/O, no clock reads, so the
//! rules below are unit-tested without a network.
//!
//! - Members are keyed by node name. When several generations of one node
//!   name are known (a restart), the newest verified alive one counts, else
//!   the newest verified one, then likewise among unverified ones: a
//!   restart is an `Updated`, the old generation's death is not reported,
//!   and an impersonator taking a verified node's name is not seen.
//! - An announcement that does not verify never replaces a verified member
//!   of the same generation: the last verified one is kept, as for keys
//!   that do not parse (chitchat lets any peer gossip values for any node,
//!   and a value may arrive a round before its new signature). Liveness is
//!   still tracked.
//! - A node whose keys have never parsed is not a member. When later keys
//!   do not parse, the last good member is kept. Each bad version is logged
//!   once, at debug level.
//! - `Added` when a member is first alive, `Updated` when its keys or
//!   generation change while alive or when it comes back alive, `Removed`
//!   when it goes from alive to dead. A member only ever heard of as dead is
//!   listed, with no change emitted.
//! - A member is forgotten when chitchat forgets its node (the dead grace
//!   period after its death).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use tracing::debug;

use crate::keys;
use crate::member::{MemberState, MembershipChange};

/// One node as chitchat knows it at one instant.
#[derive(Clone, Debug)]
pub(crate) struct Observation {
    /// chitchat's node id: the configured node name.
    pub node_name: String,
    /// Changes on every restart of the node; higher is newer.
    pub generation: u64,
    /// `node_name:generation:gossip_addr`.
    pub gossip_id: String,
    /// The failure detector's verdict.
    pub alive: bool,
    /// Increases while the node is running; a change means news from it.
    pub heartbeat: u64,
    /// The node's max key version: its keys are unchanged while it is.
    pub version: u64,
    /// Its live (not deleted) key-values.
    pub keys: BTreeMap<String, String>,
    /// Whether `keys` carry a valid signature (or no key is configured),
    /// checked at the edge by `signing`.
    pub verified: bool,
}

struct Entry {
    state: MemberState,
    generation: u64,
    heartbeat: u64,
    version: u64,
}

/// The members this node knows, by node name.
#[derive(Default)]
pub(crate) struct View {
    entries: BTreeMap<String, Entry>,
    /// (generation, version) of nodes whose keys did not parse and that are
    /// not members, so each bad version is reported once.
    rejected: HashMap<String, (u64, u64)>,
}

impl View {
    /// Every member known, alive or dead, by node name.
    pub(crate) fn members(&self) -> Vec<MemberState> {
        self.entries.values().map(|e| e.state.clone()).collect()
    }

    /// The members alive now.
    pub(crate) fn alive(&self) -> impl Iterator<Item = &MemberState> {
        self.entries.values().map(|e| &e.state).filter(|s| s.alive)
    }

    /// Brings the view up to `observations` (every node chitchat knows, at
    /// wall-clock time `now`) and returns the changes: members chitchat
    /// forgot first, then by node name.
    ///
    /// With `hold_deaths` (this node was just paused, see `pause`), members
    /// alive in the view stay alive even when chitchat says otherwise.
    pub(crate) fn apply(
        &mut self,
        observations: Vec<Observation>,
        now: DateTime<Utc>,
        hold_deaths: bool,
    ) -> Vec<MembershipChange> {
        let current = pick_generations(observations);
        let mut changes = Vec::new();

        // Nodes chitchat has forgotten.
        let gone: Vec<String> = self
            .entries
            .keys()
            .filter(|name| !current.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(mut entry) = self.entries.remove(&name) {
                if entry.state.alive {
                    entry.state.alive = false;
                    changes.push(MembershipChange::Removed(entry.state));
                }
            }
        }
        self.rejected.retain(|name, _| current.contains_key(name));

        for (name, obs) in current {
            if let Some(change) = self.apply_one(name, obs, now, hold_deaths) {
                changes.push(change);
            }
        }
        changes
    }

    fn apply_one(
        &mut self,
        name: String,
        obs: Observation,
        now: DateTime<Utc>,
        hold_deaths: bool,
    ) -> Option<MembershipChange> {
        let Some(entry) = self.entries.get_mut(&name) else {
            let member = self.parse_new(&name, &obs)?;
            let state = MemberState {
                member,
                alive: obs.alive,
                last_seen: obs.alive.then_some(now),
                gossip_id: obs.gossip_id,
                verified: obs.verified,
            };
            let change = state.alive.then(|| MembershipChange::Added(state.clone()));
            self.entries.insert(
                name,
                Entry {
                    state,
                    generation: obs.generation,
                    heartbeat: obs.heartbeat,
                    version: obs.version,
                },
            );
            return change;
        };

        let same_generation = entry.generation == obs.generation;
        let member_changed = if same_generation && entry.version == obs.version {
            false
        } else {
            entry.generation = obs.generation;
            entry.version = obs.version;
            match keys::decode(&obs.keys) {
                Ok(_) if same_generation && entry.state.verified && !obs.verified => {
                    debug!(node = %obs.gossip_id, "gossip keys are not signed by the cluster key; keeping the last verified member");
                    false
                }
                Ok(member)
                    if member != entry.state.member || obs.verified != entry.state.verified =>
                {
                    entry.state.member = member;
                    entry.state.verified = obs.verified;
                    true
                }
                Ok(_) => false,
                Err(error) => {
                    debug!(node = %obs.gossip_id, %error, "gossip keys do not parse; keeping the last good member");
                    false
                }
            }
        };
        let was_alive = entry.state.alive;
        let alive = obs.alive || (hold_deaths && was_alive);
        let ever_seen = entry.state.last_seen.is_some();
        let news = !same_generation || entry.heartbeat != obs.heartbeat;
        entry.heartbeat = obs.heartbeat;
        if obs.alive && (news || !ever_seen) {
            entry.state.last_seen = Some(now);
        }
        let id_changed = entry.state.gossip_id != obs.gossip_id;
        entry.state.gossip_id = obs.gossip_id;
        entry.state.alive = alive;

        let state = entry.state.clone();
        match (was_alive, alive) {
            (true, true) if member_changed || id_changed => Some(MembershipChange::Updated(state)),
            (true, false) => Some(MembershipChange::Removed(state)),
            (false, true) if ever_seen => Some(MembershipChange::Updated(state)),
            (false, true) => Some(MembershipChange::Added(state)),
            _ => None,
        }
    }

    /// The member of a node not in the view yet, or `None` (logged once per
    /// version) when its keys do not parse.
    fn parse_new(&mut self, name: &str, obs: &Observation) -> Option<crate::member::Member> {
        match keys::decode(&obs.keys) {
            Ok(member) => {
                self.rejected.remove(name);
                Some(member)
            }
            Err(error) => {
                let seen = (obs.generation, obs.version);
                if self.rejected.insert(name.to_string(), seen) != Some(seen) {
                    debug!(node = %obs.gossip_id, %error, "gossip keys do not make a member; skipped");
                }
                None
            }
        }
    }
}

/// One observation per node name: its newest verified alive generation,
/// else its newest verified one, else likewise among the unverified.
fn pick_generations(observations: Vec<Observation>) -> BTreeMap<String, Observation> {
    let rank = |o: &Observation| (o.verified, o.alive, o.generation);
    let mut picked: BTreeMap<String, Observation> = BTreeMap::new();
    for obs in observations {
        match picked.get(&obs.node_name) {
            Some(current) if rank(current) >= rank(&obs) => {}
            _ => {
                picked.insert(obs.node_name.clone(), obs);
            }
        }
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::{ExecutorInfo, Member};

    fn executor(running: u32) -> Member {
        let mut e = ExecutorInfo::new("default", "http://127.0.0.1:7080");
        e.running = running;
        Member::Executor(e)
    }

    fn obs(
        name: &str,
        generation: u64,
        alive: bool,
        heartbeat: u64,
        member: &Member,
    ) -> Observation {
        let keys: BTreeMap<String, String> = keys::encode(member).into_iter().collect();
        Observation {
            node_name: name.into(),
            generation,
            gossip_id: format!("{name}:{generation}:127.0.0.1:1"),
            alive,
            heartbeat,
            // Any value that changes with the keys does.
            version: keys.values().map(|v| v.len() as u64).sum::<u64>()
                + match member {
                    Member::Executor(e) => e.running as u64 * 1000,
                    Member::Scheduler(_) => 0,
                },
            keys,
            verified: true,
        }
    }

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn kinds(changes: &[MembershipChange]) -> Vec<(&'static str, String, bool)> {
        changes
            .iter()
            .map(|c| {
                let kind = match c {
                    MembershipChange::Added(_) => "added",
                    MembershipChange::Updated(_) => "updated",
                    MembershipChange::Removed(_) => "removed",
                };
                (kind, c.state().gossip_id.clone(), c.state().alive)
            })
            .collect()
    }

    #[test]
    fn lifecycle_added_updated_removed_revived_forgotten() {
        let mut view = View::default();
        let e0 = executor(0);
        let e1 = executor(1);

        let c = view.apply(vec![obs("a", 1, true, 5, &e0)], t(0), false);
        assert_eq!(kinds(&c), [("added", "a:1:127.0.0.1:1".into(), true)]);
        assert_eq!(view.members()[0].last_seen, Some(t(0)));

        // Only the heartbeat moved: no change, last_seen advances.
        assert!(view
            .apply(vec![obs("a", 1, true, 6, &e0)], t(1), false)
            .is_empty());
        assert_eq!(view.members()[0].last_seen, Some(t(1)));

        let c = view.apply(vec![obs("a", 1, true, 7, &e1)], t(2), false);
        assert_eq!(kinds(&c)[0].0, "updated");
        assert_eq!(c[0].state().member, e1);

        // Declared dead: last_seen stays at the last heartbeat.
        let c = view.apply(vec![obs("a", 1, false, 7, &e1)], t(5), false);
        assert_eq!(kinds(&c), [("removed", "a:1:127.0.0.1:1".into(), false)]);
        assert_eq!(c[0].state().last_seen, Some(t(2)));
        assert!(view
            .apply(vec![obs("a", 1, false, 7, &e1)], t(6), false)
            .is_empty());
        assert_eq!(view.members().len(), 1);
        assert!(view.alive().next().is_none());

        // Back alive.
        let c = view.apply(vec![obs("a", 1, true, 9, &e1)], t(7), false);
        assert_eq!(kinds(&c)[0].0, "updated");

        // Forgotten by chitchat while alive: removed; then seen again: added.
        let c = view.apply(vec![], t(8), false);
        assert_eq!(kinds(&c)[0].0, "removed");
        assert!(view.members().is_empty());
        let c = view.apply(vec![obs("a", 1, true, 10, &e1)], t(9), false);
        assert_eq!(kinds(&c)[0].0, "added");
    }

    #[test]
    fn never_seen_alive_is_listed_without_a_change() {
        let mut view = View::default();
        assert!(view
            .apply(vec![obs("a", 1, false, 3, &executor(0))], t(0), false)
            .is_empty());
        let members = view.members();
        assert_eq!(members.len(), 1);
        assert!(!members[0].alive);
        assert_eq!(members[0].last_seen, None);
        // Its first time alive is an Added.
        let c = view.apply(vec![obs("a", 1, true, 4, &executor(0))], t(1), false);
        assert_eq!(kinds(&c)[0].0, "added");
        // Forgotten while dead: silently.
        view.apply(vec![obs("a", 1, false, 4, &executor(0))], t(2), false);
        assert_eq!(view.apply(vec![], t(3), false).len(), 0);
    }

    #[test]
    fn a_restart_is_an_update_and_the_old_generation_dies_silently() {
        let mut view = View::default();
        let e = executor(0);
        view.apply(vec![obs("a", 1, true, 50, &e)], t(0), false);
        // The new generation is known but not alive yet: nothing changes.
        let c = view.apply(
            vec![obs("a", 1, true, 51, &e), obs("a", 2, false, 1, &e)],
            t(1),
            false,
        );
        assert!(c.is_empty());
        // It is alive: one Updated with the new identity.
        let c = view.apply(
            vec![obs("a", 1, true, 51, &e), obs("a", 2, true, 3, &e)],
            t(2),
            false,
        );
        assert_eq!(kinds(&c), [("updated", "a:2:127.0.0.1:1".into(), true)]);
        // The old generation is declared dead: nothing.
        let c = view.apply(
            vec![obs("a", 1, false, 51, &e), obs("a", 2, true, 4, &e)],
            t(3),
            false,
        );
        assert!(c.is_empty());
        assert_eq!(view.members().len(), 1);
    }

    #[test]
    fn bad_keys_are_skipped_and_the_last_good_member_kept() {
        let mut view = View::default();
        let mut bad = obs("a", 1, true, 1, &executor(0));
        bad.keys.insert("weight".into(), "heavy".into());
        assert!(view.apply(vec![bad.clone()], t(0), false).is_empty());
        assert!(view.members().is_empty());

        view.apply(vec![obs("a", 1, true, 2, &executor(0))], t(1), false);
        let mut bad = obs("a", 1, true, 3, &executor(5));
        bad.keys.insert("running".into(), "-1".into());
        assert!(view.apply(vec![bad], t(2), false).is_empty());
        assert_eq!(view.members()[0].member, executor(0));
        // Liveness is still tracked.
        let mut bad = obs("a", 1, false, 3, &executor(5));
        bad.keys.insert("running".into(), "-1".into());
        let c = view.apply(vec![bad], t(3), false);
        assert_eq!(kinds(&c)[0].0, "removed");
    }

    #[test]
    fn deaths_are_held_after_a_local_pause() {
        let mut view = View::default();
        let e = executor(0);
        view.apply(
            vec![obs("a", 1, true, 1, &e), obs("b", 1, false, 1, &e)],
            t(0),
            false,
        );
        // Held: `a` stays alive, its last_seen does not move; `b` (never
        // alive) is unaffected.
        assert!(view
            .apply(
                vec![obs("a", 1, false, 1, &e), obs("b", 1, false, 1, &e)],
                t(1),
                true
            )
            .is_empty());
        let members = view.members();
        assert!(members[0].alive);
        assert_eq!(members[0].last_seen, Some(t(0)));
        assert!(!members[1].alive);
        // Revived within the hold: nothing was ever reported.
        assert!(view
            .apply(vec![obs("a", 1, true, 2, &e)], t(2), true)
            .is_empty());
        // Still dead once the hold is over: reported then.
        let c = view.apply(vec![obs("a", 1, false, 2, &e)], t(3), true);
        assert!(c.is_empty());
        let c = view.apply(vec![obs("a", 1, false, 2, &e)], t(4), false);
        assert_eq!(kinds(&c)[0].0, "removed");
    }

    fn unverified(mut o: Observation) -> Observation {
        o.verified = false;
        o
    }

    fn heavy(endpoint: &str) -> Member {
        let mut e = ExecutorInfo::new("stolen", endpoint);
        e.weight = u32::MAX;
        Member::Executor(e)
    }

    #[test]
    fn an_unverified_version_never_replaces_a_verified_member() {
        let mut view = View::default();
        let real = executor(0);
        let c = view.apply(vec![obs("a", 1, true, 1, &real)], t(0), false);
        assert!(c[0].state().verified);
        // Forged values for the same node and generation: ignored.
        let forged = unverified(obs("a", 1, true, 2, &heavy("http://127.0.0.1:7080")));
        assert!(view.apply(vec![forged.clone()], t(1), false).is_empty());
        let members = view.members();
        assert_eq!(members[0].member, real);
        assert!(members[0].verified);
        // Liveness is still followed.
        let mut dead = forged;
        dead.alive = false;
        let c = view.apply(vec![dead], t(2), false);
        assert_eq!(kinds(&c)[0].0, "removed");
        assert_eq!(c[0].state().member, real);
    }

    #[test]
    fn an_unverified_member_is_listed_as_such_until_it_verifies() {
        let mut view = View::default();
        let c = view.apply(
            vec![unverified(obs("a", 1, true, 1, &executor(0)))],
            t(0),
            false,
        );
        assert_eq!(kinds(&c)[0].0, "added");
        assert!(!c[0].state().verified);
        // Signed a round later (the same values and a new `sig`): an
        // update, now verified.
        let mut signed = obs("a", 1, true, 2, &executor(0));
        signed.version += 1;
        let c = view.apply(vec![signed], t(1), false);
        assert_eq!(kinds(&c)[0].0, "updated");
        assert!(c[0].state().verified);
    }

    #[test]
    fn an_impersonator_under_a_verified_node_name_is_not_seen() {
        let mut view = View::default();
        let real = executor(0);
        let rogue = heavy("http://127.0.0.1:7080");
        view.apply(vec![obs("a", 1, true, 1, &real)], t(0), false);
        // A newer generation of the same name, alive but not signed.
        let c = view.apply(
            vec![
                obs("a", 1, true, 2, &real),
                unverified(obs("a", 9, true, 1, &rogue)),
            ],
            t(1),
            false,
        );
        assert!(c.is_empty(), "{c:?}");
        // Even once the real one is dead, the verified generation counts.
        let c = view.apply(
            vec![
                obs("a", 1, false, 2, &real),
                unverified(obs("a", 9, true, 2, &rogue)),
            ],
            t(2),
            false,
        );
        assert_eq!(kinds(&c), [("removed", "a:1:127.0.0.1:1".into(), false)]);
        assert_eq!(view.members()[0].member, real);
        // A real restart (verified, newer) takes over as usual.
        let c = view.apply(
            vec![
                obs("a", 10, true, 1, &real),
                unverified(obs("a", 9, true, 3, &rogue)),
            ],
            t(3),
            false,
        );
        assert_eq!(kinds(&c), [("updated", "a:10:127.0.0.1:1".into(), true)]);
        assert!(c[0].state().verified);
    }

    #[test]
    fn garbage_keys_never_panic() {
        let mut view = View::default();
        let garbage = [
            "",
            "\0",
            "{",
            "executor",
            "9999999999999999999999",
            "true",
            ",",
        ];
        let mut observations = Vec::new();
        for (i, role) in ["scheduler", "executor", "?"].iter().enumerate() {
            for (j, value) in garbage.iter().enumerate() {
                let mut keys = BTreeMap::new();
                keys.insert("role".to_string(), role.to_string());
                for key in [
                    "node_id",
                    "api_url",
                    "raft_addr",
                    "leader",
                    "term",
                    "group",
                    "endpoint",
                    "handlers",
                    "weight",
                    "labels",
                    "running",
                ] {
                    keys.insert(key.to_string(), value.to_string());
                }
                observations.push(Observation {
                    node_name: format!("n{i}-{j}"),
                    generation: 1,
                    gossip_id: format!("n{i}-{j}:1"),
                    alive: true,
                    heartbeat: 1,
                    version: 1,
                    keys,
                    verified: false,
                });
            }
        }
        assert!(view.apply(observations, t(0), false).is_empty());
        assert!(view.members().is_empty());
    }
}
