//! `ClusterWatchCore`: alerts about the cluster that no single run shows,
//! decided from observations with the time they were made. It says when a
//! condition starts firing and when it is resolved, once per change.
//!
//! Watched now: this node has seen no leader for longer than the
//! threshold (every node watches its own view).

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::format::Message;

/// What a cluster alert is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Condition {
    /// This node sees no leader.
    NoLeader,
}

impl Condition {
    /// The event name of the JSON body.
    pub fn event(&self) -> &'static str {
        match self {
            Condition::NoLeader => "cluster.no_leader",
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
    /// "firing", "node": 3, "detail": ..., "since": ...}`.
    pub fn json(&self) -> Value {
        json!({
            "event": self.condition.event(),
            "state": self.state.as_str(),
            "node": self.node,
            "detail": self.detail,
            "since": self.since,
        })
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
