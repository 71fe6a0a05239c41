//! `GET /metrics`: what an operator graphs and alerts on, in the
//! Prometheus (OpenMetrics) text format.
//!
//! - this file: [`Metrics`], every metric family and how applied log
//!   entries, leader changes and requests update them.
//! - [`recorder`]: the actor that follows the log for the run metrics.
//! - [`timed_proposer`]: measures how long proposals take to apply.
//! - [`requests`]: counts API requests by route and status, with labels
//!   from fixed sets only, so no request adds series without bound.
//! - [`store_disk`]: the store's size on disk, a gauge left out of a
//!   scrape when sled cannot tell it.
//!
//! The data directory's free space and storage state come from the disk
//! monitor (`crate::disk`) through `ClusterStatus::storage`.
//!
//! Run metrics count what this node applied from the replicated log, so
//! every node of a cluster reports the same run totals; Raft, executor and
//! request metrics are this node's own.

pub mod recorder;
pub mod requests;
pub mod store_disk;
pub mod timed_proposer;

use std::sync::Arc;

use actors::store::Outcome;
use chrono::{DateTime, Utc};
use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};
use protocol::{
    api::{ClusterStatus, StorageState},
    Run, RunStatus, TriggerKind,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggerLabel {
    pub trigger: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabel {
    pub event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's pattern (`/v1/jobs/{id}`), not the path: ids would make
    /// one series per job; `unmatched` when no route matched.
    pub route: String,
    /// A standard method's name, or `other` (see [`requests::method_label`]).
    pub method: &'static str,
    pub status: u16,
}

/// Seconds from 1 ms to about 65 s, doubling.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 17)
}

struct Families {
    fires: Counter,
    runs_created: Family<TriggerLabel, Counter>,
    runs_finished: Family<StatusLabel, Counter>,
    lateness: Histogram,
    dispatch_latency: Histogram,
    raft_term: Gauge,
    raft_commit_index: Gauge,
    raft_applied_index: Gauge,
    raft_is_leader: Gauge,
    leader_changes: Counter,
    proposal_duration: Histogram,
    executors: Family<StateLabel, Gauge>,
    /// Raft snapshots since the start, by what happened (built, sent,
    /// send_failures, received, installed).
    raft_snapshots: Family<EventLabel, Gauge>,
    /// What the Raft port's authentication refused since the start, by
    /// event (handshakes_refused, handshake_failures,
    /// dropped_wrong_sender): a stranger or a node with another secret.
    raft_auth_refusals: Family<EventLabel, Gauge>,
    requests: Family<RequestLabels, Counter>,
    /// Fires handed over by the trigger whose runs are not created yet.
    trigger_backlog: Gauge,
    /// How long the earliest fire the trigger holds back (the backlog
    /// being full) has been due: how late the cluster is running.
    trigger_behind: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Keys the state machine's applies inserted or removed in sled since
    /// the process started: per run, creation and end.
    store_writes: Counter,
    /// The store's count when it was last read into `store_writes`.
    store_writes_seen: std::sync::atomic::AtomicU64,
    /// What sled says the database takes on disk, set at each scrape.
    store_disk_bytes: Arc<store_disk::StoreDiskBytes>,
    /// Free bytes of the data directory's file system, at the disk
    /// monitor's last reading.
    data_dir_free_bytes: Gauge,
    /// The data directory file system's size.
    data_dir_size_bytes: Gauge,
    /// 1 for the storage state the node is in (ok, low_space, critical,
    /// stalled), 0 for the others.
    storage_state: Family<StateLabel, Gauge>,
    /// Storage trouble since the start, by kind: refused_no_space (a write
    /// refused for want of room), write_failed (the store failed a
    /// write), stalled (the store stopped finishing writes).
    storage_errors: Family<EventLabel, Counter>,
}

/// The gauges of the path from the trigger to the log, read at a scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PipelineGauges {
    pub backlog_fires: u64,
    pub behind: std::time::Duration,
    /// `StateMachine::writes` now.
    pub store_writes: u64,
    /// `StateMachine::size_on_disk` now; `None` when sled could not tell
    /// (the gauge is then left out rather than shown as 0).
    pub store_disk_bytes: Option<u64>,
}

impl PipelineGauges {
    pub fn of(
        backlog: &actors::backlog::Backlog,
        store: &actors::store::StateMachine,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            store_writes: store.writes(),
            store_disk_bytes: store.size_on_disk().ok(),
            ..Self::of_backlog(backlog, now)
        }
    }

    fn of_backlog(backlog: &actors::backlog::Backlog, now: DateTime<Utc>) -> Self {
        Self {
            backlog_fires: u64::try_from(backlog.outstanding()).unwrap_or(u64::MAX),
            behind: backlog.behind(now),
            store_writes: 0,
            store_disk_bytes: None,
        }
    }
}

/// The node's metrics; cheap to clone, shared by everything that counts.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    families: Arc<Families>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let families = Families {
            fires: Counter::default(),
            runs_created: Family::default(),
            runs_finished: Family::default(),
            lateness: Histogram::new(latency_buckets()),
            dispatch_latency: Histogram::new(latency_buckets()),
            raft_term: Gauge::default(),
            raft_commit_index: Gauge::default(),
            raft_applied_index: Gauge::default(),
            raft_is_leader: Gauge::default(),
            leader_changes: Counter::default(),
            proposal_duration: Histogram::new(latency_buckets()),
            executors: Family::default(),
            raft_snapshots: Family::default(),
            raft_auth_refusals: Family::default(),
            requests: Family::default(),
            trigger_backlog: Gauge::default(),
            trigger_behind: Gauge::default(),
            store_writes: Counter::default(),
            store_writes_seen: Default::default(),
            store_disk_bytes: Default::default(),
            data_dir_free_bytes: Gauge::default(),
            data_dir_size_bytes: Gauge::default(),
            storage_state: Family::default(),
            storage_errors: Family::default(),
        };
        let mut registry = Registry::with_prefix("cronmesh");
        let f = &families;
        registry.register(
            "fires",
            "Schedule slots fired (one per slot, whatever its shards)",
            f.fires.clone(),
        );
        registry.register(
            "runs_created",
            "Runs created, by why they exist: schedule, manual, retry, failover, misfire, child",
            f.runs_created.clone(),
        );
        registry.register(
            "runs_finished",
            "Runs that ended, by final status",
            f.runs_finished.clone(),
        );
        registry.register(
            "run_lateness_seconds",
            "How late scheduled runs started: started_at minus scheduled_at",
            f.lateness.clone(),
        );
        registry.register(
            "dispatch_latency_seconds",
            "From the moment a run could start (created and due) to its start on an executor",
            f.dispatch_latency.clone(),
        );
        registry.register("raft_term", "This node's Raft term", f.raft_term.clone());
        registry.register(
            "raft_commit_index",
            "Highest log index known committed",
            f.raft_commit_index.clone(),
        );
        registry.register(
            "raft_applied_index",
            "Highest log index applied to this node's store",
            f.raft_applied_index.clone(),
        );
        registry.register(
            "raft_is_leader",
            "1 while this node leads",
            f.raft_is_leader.clone(),
        );
        registry.register(
            "raft_leader_changes",
            "Changes of leader (or term) this node saw",
            f.leader_changes.clone(),
        );
        registry.register(
            "raft_snapshots",
            "Raft snapshots since the start, by event (built, sent, send_failures, received, installed)",
            f.raft_snapshots.clone(),
        );
        registry.register(
            "raft_auth_refusals",
            "Raft connections and messages refused for want of the cluster secret or a matching member id, by event (handshakes_refused, handshake_failures, dropped_wrong_sender)",
            f.raft_auth_refusals.clone(),
        );
        registry.register(
            "proposal_duration_seconds",
            "From proposing a metadata change to its being applied on this node",
            f.proposal_duration.clone(),
        );
        registry.register(
            "executors",
            "Executors this node knows, by state (alive, dead)",
            f.executors.clone(),
        );
        registry.register(
            "trigger_backlog_fires",
            "Fires the trigger handed over whose runs are not created yet (bounded by --trigger-backlog)",
            f.trigger_backlog.clone(),
        );
        registry.register(
            "trigger_behind_seconds",
            "How long the earliest slot the trigger holds back has been due: above 0, runs start late because the cluster cannot create them as fast as slots come",
            f.trigger_behind.clone(),
        );
        registry.register(
            "store_writes",
            "Keys the state machine's applies inserted or removed in sled (a run takes two: its creation and its end)",
            f.store_writes.clone(),
        );
        registry.register_collector(Box::new(f.store_disk_bytes.clone()));
        registry.register(
            "data_dir_free_bytes",
            "Free bytes of the data directory's file system for the node's user (below --min-free-space new work is refused)",
            f.data_dir_free_bytes.clone(),
        );
        registry.register(
            "data_dir_size_bytes",
            "Size of the data directory's file system",
            f.data_dir_size_bytes.clone(),
        );
        registry.register(
            "storage_state",
            "1 for the node's storage state (ok, low_space, critical, stalled), 0 for the others",
            f.storage_state.clone(),
        );
        registry.register(
            "storage_errors",
            "Storage trouble, by event: refused_no_space (a write refused for want of room), write_failed (the store failed a write), stalled (the store stopped finishing writes)",
            f.storage_errors.clone(),
        );
        registry.register(
            "http_requests",
            "Admin API requests, by route pattern, method and status",
            f.requests.clone(),
        );
        Self {
            registry: Arc::new(registry),
            families: Arc::new(families),
        }
    }

    /// Counts what an applied log entry did to runs.
    pub fn record_applied(&self, outcome: &Outcome) {
        let f = &self.families;
        match outcome {
            Outcome::RunsCreated(runs) => {
                for run in runs {
                    let trigger = run.trigger.as_str().to_string();
                    f.runs_created
                        .get_or_create(&TriggerLabel { trigger })
                        .inc();
                    if run.trigger == TriggerKind::Schedule && run.shard.index == 0 {
                        f.fires.inc();
                    }
                    // Runs recorded as skipped are created already ended.
                    if run.status.is_terminal() {
                        self.finished(run);
                    }
                }
            }
            Outcome::RunsChanged(runs) => {
                for run in runs.iter().filter(|r| r.status.is_terminal()) {
                    self.finished(run);
                }
            }
            _ => {}
        }
    }

    /// A run reached its final status (once per run: final is final).
    fn finished(&self, run: &Run) {
        let f = &self.families;
        let status = run.status.to_string();
        f.runs_finished.get_or_create(&StatusLabel { status }).inc();
        let Some(started) = run.started_at else {
            return;
        };
        if run.trigger == TriggerKind::Schedule {
            f.lateness.observe(seconds(started, run.scheduled_at));
        }
        let ready = run.created_at.max(run.scheduled_at);
        if run.status != RunStatus::Skipped {
            f.dispatch_latency.observe(seconds(started, ready));
        }
    }

    pub fn leader_changed(&self) {
        self.families.leader_changes.inc();
    }

    pub fn proposal_took(&self, duration: std::time::Duration) {
        self.families
            .proposal_duration
            .observe(duration.as_secs_f64());
    }

    /// Counts storage trouble of `event` (see `storage_errors`).
    pub fn storage_error(&self, event: &'static str) {
        self.families
            .storage_errors
            .get_or_create(&EventLabel { event })
            .inc();
    }

    pub fn request(&self, labels: &RequestLabels) {
        self.families.requests.get_or_create(labels).inc();
    }

    /// The text a scrape gets, with the gauges read at this moment.
    pub fn render(
        &self,
        cluster: &ClusterStatus,
        pipeline: &PipelineGauges,
        alive: usize,
        dead: usize,
    ) -> String {
        let f = &self.families;
        let as_gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        f.trigger_backlog.set(as_gauge(pipeline.backlog_fires));
        f.trigger_behind.set(pipeline.behind.as_secs_f64());
        let seen = f
            .store_writes_seen
            .fetch_max(pipeline.store_writes, std::sync::atomic::Ordering::AcqRel);
        f.store_writes
            .inc_by(pipeline.store_writes.saturating_sub(seen));
        f.store_disk_bytes.set(pipeline.store_disk_bytes);
        f.raft_term.set(as_gauge(cluster.term));
        f.raft_commit_index.set(as_gauge(cluster.commit_index));
        f.raft_applied_index.set(as_gauge(cluster.applied_index));
        f.raft_is_leader
            .set(i64::from(cluster.leader_id == Some(cluster.node_id)));
        let s = &cluster.snapshots;
        for (event, count) in [
            ("built", s.built),
            ("sent", s.sent),
            ("send_failures", s.send_failures),
            ("received", s.received),
            ("installed", s.installed),
        ] {
            f.raft_snapshots
                .get_or_create(&EventLabel { event })
                .set(as_gauge(count));
        }
        let a = &cluster.raft_auth;
        for (event, count) in [
            ("handshakes_refused", a.handshakes_refused),
            ("handshake_failures", a.handshake_failures),
            ("dropped_wrong_sender", a.dropped_wrong_sender),
        ] {
            f.raft_auth_refusals
                .get_or_create(&EventLabel { event })
                .set(as_gauge(count));
        }
        if let Some(storage) = &cluster.storage {
            if let (Some(free), Some(total)) = (storage.free_bytes, storage.total_bytes) {
                f.data_dir_free_bytes.set(as_gauge(free));
                f.data_dir_size_bytes.set(as_gauge(total));
            }
            for state in [
                StorageState::Ok,
                StorageState::LowSpace,
                StorageState::Critical,
                StorageState::Stalled,
            ] {
                f.storage_state
                    .get_or_create(&StateLabel {
                        state: state.as_str().into(),
                    })
                    .set(i64::from(storage.state == state));
            }
        }
        for (state, count) in [("alive", alive), ("dead", dead)] {
            f.executors
                .get_or_create(&StateLabel {
                    state: state.into(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            out = format!("# the metrics could not be encoded: {e}\n");
        }
        out
    }
}

fn seconds(later: DateTime<Utc>, earlier: DateTime<Utc>) -> f64 {
    ((later - earlier).num_microseconds().unwrap_or(0).max(0) as f64) / 1e6
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn run(trigger: &str, status: &str, shard: u32) -> Run {
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        serde_json::from_value(serde_json::json!({
            "id": format!("{trigger}-{status}-{shard}"), "job_id": "j", "namespace": "default",
            "scheduled_at": t, "trigger": trigger,
            "shard": {"index": shard, "count": 2, "param": ""}, "attempt": 1,
            "status": status, "executor": null, "created_at": t,
            "started_at": null, "finished_at": null, "exit_code": null, "error": null
        }))
        .unwrap()
    }

    fn cluster() -> ClusterStatus {
        ClusterStatus {
            node_id: 1,
            leader_id: Some(1),
            term: 3,
            commit_index: 9,
            applied_index: 9,
            log_start_index: 0,
            members: vec![],
            snapshots: Default::default(),
            raft_auth: Default::default(),
            storage: None,
        }
    }

    #[test]
    fn a_slot_of_two_shards_is_one_fire_and_a_skipped_run_ends_at_once() {
        let metrics = Metrics::new();
        metrics.record_applied(&Outcome::RunsCreated(vec![
            run("schedule", "pending", 0),
            run("schedule", "pending", 1),
            run("misfire", "skipped", 0),
        ]));
        let text = metrics.render(&cluster(), &PipelineGauges::default(), 0, 0);
        assert!(text.contains("cronmesh_fires_total 1\n"), "{text}");
        assert!(text.contains("cronmesh_runs_created_total{trigger=\"schedule\"} 2\n"));
        assert!(text.contains("cronmesh_runs_created_total{trigger=\"misfire\"} 1\n"));
        assert!(text.contains("cronmesh_runs_finished_total{status=\"skipped\"} 1\n"));
        assert!(text.contains("cronmesh_raft_term 3\n"));
    }

    #[test]
    fn a_trigger_held_back_by_a_full_backlog_shows_how_late_it_runs() {
        let metrics = Metrics::new();
        let backlog = actors::backlog::Backlog::new(10);
        let _ticket = backlog.take(10);
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 10).unwrap();
        backlog.set_behind_since(Some(now - chrono::Duration::milliseconds(2500)));
        let pipeline = PipelineGauges {
            store_writes: 7,
            store_disk_bytes: Some(4096),
            ..PipelineGauges::of_backlog(&backlog, now)
        };
        let text = metrics.render(&cluster(), &pipeline, 0, 0);
        for line in [
            "cronmesh_trigger_backlog_fires 10\n",
            "cronmesh_trigger_behind_seconds 2.5\n",
            "cronmesh_store_writes_total 7\n",
            "# TYPE cronmesh_store_disk_bytes gauge\n",
            "cronmesh_store_disk_bytes 4096\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        backlog.set_behind_since(None);
        let pipeline = PipelineGauges {
            store_writes: 9,
            ..PipelineGauges::of_backlog(&backlog, now)
        };
        let text = metrics.render(&cluster(), &pipeline, 0, 0);
        for line in [
            "cronmesh_trigger_behind_seconds 0.0\n",
            "cronmesh_store_writes_total 9\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert!(!text.contains("cronmesh_store_disk_bytes"), "{text}");
    }
}
