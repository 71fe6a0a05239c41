//! `ClusterWatchCore`: alerts about the cluster that no single run shows,
//! decided from observations with the time they were made. It says when a
//! condition starts firing and when it is resolved, once per change.
//!
//! Watched now: this node has seen no leader for longer than the
//! threshold (every node watches its own view); and, on the leader, a
//! group that enabled jobs target has no live executor, and a job whose
//! slot was skipped by its misfire policy or whose run started later
//! than the lateness threshold.

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
    /// A slot of this job (`namespace/id`) was skipped by its misfire
    /// policy, or its run started late; a run that starts on time ends it.
    JobBehind { job: String },
    /// A dispatched or running run is still not ended past its timeout
    /// and the grace period.
    RunOverdue { run: String },
}

/// Most runs alerted as overdue at once.
pub const MAX_RUN_ALERTS: usize = 32;

/// What the leader saw of one run of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunSeen {
    /// Recorded `skipped` by the misfire policy.
    SkippedByMisfire,
    /// A scheduled run started this long after its slot.
    Started { late_by: Duration },
}

/// Most jobs alerted as behind at once.
pub const MAX_JOB_ALERTS: usize = 32;
/// Most jobs one applied command is read for: a burst of 100,000 runs
/// costs the watch no more than this.
pub const MAX_JOBS_SEEN_PER_COMMAND: usize = 1024;

/// What an applied command shows of runs' timeliness, one entry per job
/// (`namespace/id`): a misfire skip outweighs any start, and the latest
/// start stands for the others.
pub fn runs_seen(outcome: &crate::store::Outcome) -> Vec<(String, RunSeen)> {
    use crate::store::Outcome;
    use protocol::{RunStatus, TriggerKind};
    let (runs, created) = match outcome {
        Outcome::RunsCreated(runs) => (runs, true),
        Outcome::RunsChanged(runs) => (runs, false),
        _ => return Vec::new(),
    };
    let mut seen: BTreeMap<String, RunSeen> = BTreeMap::new();
    for run in runs {
        let this =
            if created && run.trigger == TriggerKind::Misfire && run.status == RunStatus::Skipped {
                RunSeen::SkippedByMisfire
            } else if run.trigger == TriggerKind::Schedule {
                let Some(started) = run.started_at else {
                    continue;
                };
                RunSeen::Started {
                    late_by: (started - run.scheduled_at).to_std().unwrap_or_default(),
                }
            } else {
                continue;
            };
        let job = format!("{}/{}", run.namespace, run.job_id);
        if !seen.contains_key(&job) && seen.len() >= MAX_JOBS_SEEN_PER_COMMAND {
            continue;
        }
        let entry = seen.entry(job).or_insert(this);
        *entry = match (*entry, this) {
            (RunSeen::SkippedByMisfire, _) | (_, RunSeen::SkippedByMisfire) => {
                RunSeen::SkippedByMisfire
            }
            (RunSeen::Started { late_by: a }, RunSeen::Started { late_by: b }) => {
                RunSeen::Started { late_by: a.max(b) }
            }
        };
    }
    seen.into_iter().collect()
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
            Condition::JobBehind { .. } => "cluster.job_behind",
            Condition::RunOverdue { .. } => "cluster.run_overdue",
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
        match &self.condition {
            Condition::NoExecutor { group } => body["group"] = json!(group),
            Condition::JobBehind { job } => body["job"] = json!(job),
            Condition::RunOverdue { run } => body["run"] = json!(run),
            Condition::NoLeader => {}
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
    /// How late a scheduled run may start before it is an alert.
    late_after: Duration,
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
            late_after: Duration::from_secs(60),
            leaderless_since: None,
            firing: BTreeMap::new(),
        }
    }

    /// Runs that start later than `late_after` after their slot alert.
    pub fn with_lateness(mut self, late_after: Duration) -> Self {
        self.late_after = late_after;
        self
    }

    /// The leader (`leading`) saw `seen` of a run of `job` at `now`.
    pub fn observe_run(
        &mut self,
        now: DateTime<Utc>,
        leading: bool,
        job: &str,
        seen: RunSeen,
    ) -> Vec<ClusterAlert> {
        if !leading {
            return Vec::new();
        }
        let condition = Condition::JobBehind {
            job: job.to_string(),
        };
        let detail = match seen {
            RunSeen::Started { late_by } if late_by <= self.late_after => {
                return self.resolve(condition, format!("a run of {job} started on time"));
            }
            RunSeen::Started { late_by } => format!(
                "a run of {job} started {}s after its slot (threshold {}s)",
                late_by.as_secs(),
                self.late_after.as_secs()
            ),
            RunSeen::SkippedByMisfire => {
                format!("a slot of {job} was skipped by its misfire policy")
            }
        };
        let behind = self
            .firing
            .keys()
            .filter(|c| matches!(c, Condition::JobBehind { .. }))
            .count();
        if behind >= MAX_JOB_ALERTS {
            return Vec::new();
        }
        self.fire(condition, now, detail)
    }

    /// The leader (`leading`) found the runs `overdue` (run id to what
    /// to say of it) still active past their timeout and grace.
    pub fn observe_overdue(
        &mut self,
        now: DateTime<Utc>,
        leading: bool,
        overdue: &BTreeMap<String, String>,
    ) -> Vec<ClusterAlert> {
        if !leading {
            self.firing.retain(|c, _| *c == Condition::NoLeader);
            return Vec::new();
        }
        let firing: Vec<String> = self
            .firing
            .keys()
            .filter_map(|c| match c {
                Condition::RunOverdue { run } => Some(run.clone()),
                _ => None,
            })
            .collect();
        let mut alerts = Vec::new();
        for run in firing.iter().filter(|r| !overdue.contains_key(*r)) {
            alerts.extend(self.resolve(
                Condition::RunOverdue { run: run.clone() },
                format!("run {run} ended"),
            ));
        }
        let mut count = firing.iter().filter(|r| overdue.contains_key(*r)).count();
        for (run, detail) in overdue {
            if count >= MAX_RUN_ALERTS {
                break;
            }
            let condition = Condition::RunOverdue { run: run.clone() };
            if self.firing.contains_key(&condition) {
                continue;
            }
            count += 1;
            alerts.extend(self.fire(condition, now, detail.clone()));
        }
        alerts
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
                _ => None,
            })
            .collect();
        if !leading {
            // What only the leader watches is forgotten.
            self.firing.retain(|c, _| *c == Condition::NoLeader);
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
    fn a_misfire_skip_or_a_late_start_fires_and_an_on_time_start_resolves() {
        let mut core = ClusterWatchCore::new(1, Duration::from_secs(30))
            .with_lateness(Duration::from_secs(60));
        let on_time = RunSeen::Started {
            late_by: Duration::from_secs(1),
        };
        let late = RunSeen::Started {
            late_by: Duration::from_secs(90),
        };
        assert!(core
            .observe_run(t(0), true, "default/a", on_time)
            .is_empty());
        let fired = core.observe_run(t(1), true, "default/a", RunSeen::SkippedByMisfire);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].json()["event"], "cluster.job_behind");
        assert_eq!(fired[0].json()["job"], "default/a");
        assert!(
            core.observe_run(t(2), true, "default/a", late).is_empty(),
            "already firing"
        );
        let resolved = core.observe_run(t(3), true, "default/a", on_time);
        assert_eq!(resolved[0].state, AlertState::Resolved);
        assert_eq!(core.observe_run(t(4), true, "default/b", late).len(), 1);
        assert!(core.observe_run(t(5), false, "default/c", late).is_empty());
        // Losing the lead forgets the job conditions without a word.
        assert!(core
            .observe_groups(t(6), false, &BTreeSet::new())
            .is_empty());
        assert!(core
            .observe_run(t(7), true, "default/b", on_time)
            .is_empty());
        for i in 0..100 {
            core.observe_run(t(8), true, &format!("default/j{i}"), late);
        }
        assert_eq!(
            core.firing
                .keys()
                .filter(|c| matches!(c, Condition::JobBehind { .. }))
                .count(),
            MAX_JOB_ALERTS
        );
    }

    #[test]
    fn an_applied_command_is_read_as_one_observation_per_job() {
        use crate::store::Outcome;
        use protocol::{RunStatus, TriggerKind};
        let run = |job: &str, trigger: TriggerKind, status: RunStatus, late: Option<i64>| {
            let mut run =
                crate::store::fixtures::slot_run_of(&protocol::JobKey::new("default", job), t(0));
            run.trigger = trigger;
            run.status = status;
            run.started_at = late.map(t);
            run
        };
        let created = Outcome::RunsCreated(vec![
            run("a", TriggerKind::Misfire, RunStatus::Skipped, None),
            run("a", TriggerKind::Schedule, RunStatus::Running, Some(1)),
            run("b", TriggerKind::Manual, RunStatus::Running, Some(500)),
        ]);
        assert_eq!(
            runs_seen(&created),
            vec![("default/a".to_string(), RunSeen::SkippedByMisfire)]
        );
        let changed = Outcome::RunsChanged(vec![
            run("c", TriggerKind::Schedule, RunStatus::Running, Some(2)),
            run("c", TriggerKind::Schedule, RunStatus::Succeeded, Some(90)),
            run("d", TriggerKind::Schedule, RunStatus::Dispatched, None),
        ]);
        assert_eq!(
            runs_seen(&changed),
            vec![(
                "default/c".to_string(),
                RunSeen::Started {
                    late_by: Duration::from_secs(90)
                }
            )]
        );
        assert!(runs_seen(&Outcome::AlreadyApplied).is_empty());
    }

    #[test]
    fn an_overdue_run_fires_once_and_resolves_when_it_ends() {
        let mut core = ClusterWatchCore::new(1, Duration::from_secs(30));
        let stuck: BTreeMap<String, String> = [(
            "r1".to_string(),
            "run r1 of default/a is overdue".to_string(),
        )]
        .into();
        let fired = core.observe_overdue(t(0), true, &stuck);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].json()["event"], "cluster.run_overdue");
        assert_eq!(fired[0].json()["run"], "r1");
        assert!(core.observe_overdue(t(5), true, &stuck).is_empty());
        let resolved = core.observe_overdue(t(10), true, &BTreeMap::new());
        assert_eq!(resolved[0].state, AlertState::Resolved);
        let many: BTreeMap<String, String> =
            (0..100).map(|i| (format!("r{i}"), String::new())).collect();
        assert_eq!(
            core.observe_overdue(t(11), true, &many).len(),
            MAX_RUN_ALERTS
        );
        assert!(core.observe_overdue(t(12), false, &many).is_empty());
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
