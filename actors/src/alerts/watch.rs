//! `ClusterWatchCore`: alerts about the cluster that no single run shows,
//! decided from observations with the time they were made. It says when a
//! condition starts firing and when it is resolved, once per change.
//!
//! Watched now: this node has seen no leader for longer than the
//! threshold (every node watches its own view); and, on the leader, a
//! group that enabled jobs target has no live executor.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::format::Message;

/// What a cluster alert is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Condition {
    /// This node sees no leader.
    NoLeader,
    /// Enabled jobs target this group, and no executor of it is live.
    NoExecutor { group: String },
}

/// Most groups alerted as without executors at once: a cluster whose
/// every group went away says so in this many alerts, not thousands.
pub const MAX_GROUP_ALERTS: usize = 32;

impl Condition {
    /// The event name of the JSON body.
    pub fn event(&self) -> &'static str {
        match self {
            Condition::NoLeader => "cluster.no_leader",
            Condition::NoExecutor { .. } => "cluster.no_executor",
        }
    }
}

/// Whether a condition began or ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertState {
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One change of a condition, to send to the node's alert destinations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterAlert {
    pub condition: Condition,
    pub state: AlertState,
    /// The node that saw it.
    pub node: u64,
    pub detail: String,
    /// When the condition began.
    pub since: DateTime<Utc>,
}

impl ClusterAlert {
    /// The `json` body: `{"event": "cluster.no_leader", "state":
    /// "firing", "node": 3, "detail": ..., "since": ...}` (and `"group"`
    /// for `cluster.no_executor`).
    pub fn json(&self) -> Value {
        let mut body = json!({
            "event": self.condition.event(),
            "state": self.state.as_str(),
            "node": self.node,
            "detail": self.detail,
            "since": self.since,
        });
        if let Condition::NoExecutor { group } = &self.condition {
            body["group"] = json!(group);
        }
        body
    }

    /// As people read it (Slack, Teams, e-mail).
    pub fn message(&self) -> Message {
        Message {
            title: format!(
                "[cronmesh] {} {} on node {}",
                self.condition.event(),
                self.state.as_str(),
                self.node
            ),
            facts: vec![
                ("Event".into(), self.condition.event().into()),
                ("State".into(), self.state.as_str().into()),
                ("Node".into(), self.node.to_string()),
                ("Since".into(), self.since.to_rfc3339()),
                ("Detail".into(), self.detail.clone()),
            ],
            output: None,
        }
    }
}

/// Decides cluster alerts from what the node observes.
pub struct ClusterWatchCore {
    node_id: u64,
    /// How long without a leader before it is an alert.
    no_leader_after: Duration,
    /// Since when this node has seen no leader; `None` while it sees one.
    leaderless_since: Option<DateTime<Utc>>,
    /// Conditions firing now, and since when.
    firing: BTreeMap<Condition, DateTime<Utc>>,
}

impl ClusterWatchCore {
    pub fn new(node_id: u64, no_leader_after: Duration) -> Self {
        Self {
            node_id,
            no_leader_after,
            leaderless_since: None,
            firing: BTreeMap::new(),
        }
    }

    /// This node sees `leader` (or none) at `now`.
    pub fn observe_leader(&mut self, now: DateTime<Utc>, leader: Option<u64>) -> Vec<ClusterAlert> {
        match leader {
            Some(leader) => {
                self.leaderless_since = None;
                self.resolve(Condition::NoLeader, format!("node {leader} leads"))
            }
            None => {
                let since = *self.leaderless_since.get_or_insert(now);
                let threshold = chrono::Duration::from_std(self.no_leader_after)
                    .unwrap_or(chrono::Duration::MAX);
                if now - since < threshold {
                    return Vec::new();
                }
                let seconds = self.no_leader_after.as_secs_f64();
                self.fire(
                    Condition::NoLeader,
                    since,
                    format!(
                        "node {} has seen no leader for more than {seconds}s",
                        self.node_id
                    ),
                )
            }
        }
    }

    /// The leader (`leading`) sees enabled jobs target the groups
    /// `missing`, which have no live executor. A node that does not lead
    /// forgets these conditions without a word: the leader watches them.
    pub fn observe_groups(
        &mut self,
        now: DateTime<Utc>,
        leading: bool,
        missing: &BTreeSet<String>,
    ) -> Vec<ClusterAlert> {
        let firing: Vec<String> = self
            .firing
            .keys()
            .filter_map(|c| match c {
                Condition::NoExecutor { group } => Some(group.clone()),
                Condition::NoLeader => None,
            })
            .collect();
        if !leading {
            for group in firing {
                self.firing.remove(&Condition::NoExecutor { group });
            }
            return Vec::new();
        }
        let mut alerts = Vec::new();
        for group in firing.iter().filter(|g| !missing.contains(*g)) {
            alerts.extend(self.resolve(
                Condition::NoExecutor {
                    group: group.clone(),
                },
                format!("group {group} has a live executor again"),
            ));
        }
        let mut count = firing.iter().filter(|g| missing.contains(*g)).count();
        for group in missing {
            if count >= MAX_GROUP_ALERTS {
                break;
            }
            let condition = Condition::NoExecutor {
                group: group.clone(),
            };
            if self.firing.contains_key(&condition) {
                continue;
            }
            count += 1;
            alerts.extend(self.fire(
                condition,
                now,
                format!("enabled jobs target group {group}, which has no live executor"),
            ));
        }
        alerts
    }

    fn fire(
        &mut self,
        condition: Condition,
        since: DateTime<Utc>,
        detail: String,
    ) -> Vec<ClusterAlert> {
        if self.firing.contains_key(&condition) {
            return Vec::new();
        }
        self.firing.insert(condition.clone(), since);
        vec![ClusterAlert {
            condition,
            state: AlertState::Firing,
            node: self.node_id,
            detail,
            since,
        }]
    }

    fn resolve(&mut self, condition: Condition, detail: String) -> Vec<ClusterAlert> {
        match self.firing.remove(&condition) {
            Some(since) => vec![ClusterAlert {
                condition,
                state: AlertState::Resolved,
                node: self.node_id,
                detail,
                since,
            }],
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
    }

    #[test]
    fn no_leader_fires_once_after_the_threshold_and_resolves_when_one_returns() {
        let mut core = ClusterWatchCore::new(3, Duration::from_secs(30));
        assert!(core.observe_leader(t(0), Some(1)).is_empty());
        assert!(core.observe_leader(t(10), None).is_empty());
        assert!(core.observe_leader(t(39), None).is_empty());
        let fired = core.observe_leader(t(40), None);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].state, AlertState::Firing);
        assert_eq!(fired[0].since, t(10));
        assert_eq!(fired[0].json()["event"], "cluster.no_leader");
        assert_eq!(fired[0].json()["node"], 3);
        assert!(
            core.observe_leader(t(50), None).is_empty(),
            "once per change"
        );
        let resolved = core.observe_leader(t(60), Some(2));
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].state, AlertState::Resolved);
        assert!(core.observe_leader(t(61), Some(2)).is_empty());
    }

    #[test]
    fn a_group_without_executors_fires_once_and_resolves_and_followers_stay_quiet() {
        let mut core = ClusterWatchCore::new(1, Duration::from_secs(30));
        let none = BTreeSet::new();
        let batch: BTreeSet<String> = ["batch".to_string()].into();
        assert!(core.observe_groups(t(0), true, &none).is_empty());
        let fired = core.observe_groups(t(5), true, &batch);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].json()["event"], "cluster.no_executor");
        assert_eq!(fired[0].state, AlertState::Firing);
        assert!(core.observe_groups(t(10), true, &batch).is_empty());
        let resolved = core.observe_groups(t(15), true, &none);
        assert_eq!(resolved[0].state, AlertState::Resolved);
        assert_eq!(resolved[0].since, t(5));
        // A follower says nothing and keeps nothing.
        assert!(core.observe_groups(t(20), false, &batch).is_empty());
        assert_eq!(core.observe_groups(t(25), true, &batch).len(), 1);
        assert!(core.observe_groups(t(30), false, &none).is_empty());
        assert!(core.observe_groups(t(35), true, &none).is_empty());
    }

    #[test]
    fn groups_alerted_at_once_are_bounded() {
        let mut core = ClusterWatchCore::new(1, Duration::from_secs(30));
        let many: BTreeSet<String> = (0..1000).map(|i| format!("g{i}")).collect();
        assert_eq!(
            core.observe_groups(t(0), true, &many).len(),
            MAX_GROUP_ALERTS
        );
        assert!(core.observe_groups(t(1), true, &many).is_empty());
    }

    #[test]
    fn a_short_gap_between_leaders_is_no_alert() {
        let mut core = ClusterWatchCore::new(1, Duration::from_secs(30));
        assert!(core.observe_leader(t(0), None).is_empty());
        assert!(core.observe_leader(t(20), Some(2)).is_empty());
        assert!(core.observe_leader(t(40), None).is_empty());
        assert!(
            core.observe_leader(t(60), None).is_empty(),
            "the gap began at 40"
        );
        assert_eq!(core.observe_leader(t(70), None).len(), 1);
    }
}
