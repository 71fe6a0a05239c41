//! Bodies of the admin HTTP API that are not a Job or a Run.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    job::Job,
    run::{Run, RunStatus},
};

/// `{"error": {"code", "message", "field"}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_field`, `not_found`.
    pub code: String,
    pub message: String,
    /// The JSON path of the offending field, when one is to blame.
    pub field: Option<String>,
}

/// One page of a list: pass `next_cursor` back as `?cursor=` for the next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "{T}Page")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// `POST /v1/jobs/{id}/trigger`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerRequest {
    /// Replaces the job's `params` for this run; at most 64 KiB.
    #[serde(default)]
    #[schemars(length(max = 65536))]
    pub params: Option<String>,
}

/// `POST /v1/jobs/{id}/trigger` answer: the runs created (one per shard).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TriggerResponse {
    pub runs: Vec<Run>,
}

/// `POST /v1/schedules/preview`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub schedule: String,
    #[serde(default = "utc")]
    pub timezone: String,
    /// Start of the preview; now when absent.
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// How many fire times to answer, 1 to 1000.
    #[serde(default = "five")]
    #[schemars(range(min = 1, max = MAX_PREVIEW))]
    pub count: u32,
}

/// Largest `count` a preview answers.
pub const MAX_PREVIEW: u32 = 1000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PreviewResponse {
    pub fire_times: Vec<DateTime<Utc>>,
}

/// `GET /v1/jobs/{id}`: the job plus what users look for next.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct JobView {
    #[serde(flatten)]
    pub job: Job,
    pub next_fire_times: Vec<DateTime<Utc>>,
    pub last_run: Option<RunSummary>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunSummary {
    pub id: String,
    pub status: RunStatus,
    pub trigger: crate::run::TriggerKind,
    pub scheduled_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&Run> for RunSummary {
    fn from(run: &Run) -> Self {
        Self {
            id: run.id.clone(),
            status: run.status,
            trigger: run.trigger,
            scheduled_at: run.scheduled_at,
            finished_at: run.finished_at,
        }
    }
}

/// `GET /v1/cluster`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClusterStatus {
    pub node_id: u64,
    pub leader_id: Option<u64>,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    /// First index still in this node's log; entries before it were
    /// compacted into a snapshot.
    #[serde(default)]
    pub log_start_index: u64,
    pub members: Vec<ClusterMember>,
    /// What this node did with Raft snapshots since it started.
    #[serde(default)]
    pub snapshots: SnapshotCounters,
    /// Raft connections and messages this node refused since it started,
    /// for want of the cluster secret or a matching member id.
    #[serde(default)]
    pub raft_auth: RaftAuthCounters,
    /// Whether the answering node's data directory can take writes: its
    /// free space and what it refuses for want of it. Absent from nodes
    /// that do not watch their disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageStatus>,
}

/// A node's data directory as the node sees it (`GET /v1/cluster`,
/// `GET /readyz`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StorageStatus {
    pub state: StorageState,
    /// Free bytes of the data directory's file system for this node's
    /// user, at the last reading; absent when it could not be read.
    pub free_bytes: Option<u64>,
    /// The file system's size, at the last reading.
    pub total_bytes: Option<u64>,
    /// Below this much free space the node refuses new jobs and manual
    /// triggers (`--min-free-space`; 0: never).
    pub floor_bytes: u64,
    /// What is wrong, in words, when `state` is not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a node's disk lets it write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StorageState {
    /// Every write is taken.
    Ok,
    /// Free space is below the floor: new jobs and manual triggers get
    /// 507; runs still fire and record their ends.
    LowSpace,
    /// Free space is below half the floor, the reserve kept for sled: only
    /// job deletions are taken.
    Critical,
    /// A write has not finished for seconds: the store is wedged (sled
    /// cannot finish a write that once failed for want of space). Nothing
    /// is taken; the node starts itself over once there is room.
    Stalled,
}

impl StorageState {
    /// The name the JSON uses.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageState::Ok => "ok",
            StorageState::LowSpace => "low_space",
            StorageState::Critical => "critical",
            StorageState::Stalled => "stalled",
        }
    }
}

/// What the Raft port's authentication refused since the node started.
/// All stay 0 without `--secret-file`. A rising count means a node with
/// another secret (or none) is trying to talk to this one, or a stranger
/// reaches the Raft port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RaftAuthCounters {
    /// Incoming connections closed because their handshake failed.
    pub handshakes_refused: u64,
    /// Outgoing connections whose peer did not prove the secret, or
    /// refused this node.
    pub handshake_failures: u64,
    /// Messages dropped because they claimed another sender than the
    /// member their connection proved to be.
    pub dropped_wrong_sender: u64,
}

/// Raft snapshots a node built, sent, received and installed since it
/// started. A follower that catches up from the log tail adds to none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotCounters {
    /// Snapshots built (as a leader) from a view of the state.
    pub built: u64,
    /// Snapshot streams sent whole to followers.
    pub sent: u64,
    /// Snapshot streams that failed before the follower had them whole.
    pub send_failures: u64,
    /// Snapshot streams received whole and checked.
    pub received: u64,
    /// Snapshots installed into this node's state.
    pub installed: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClusterMember {
    pub node_id: u64,
    pub role: String,
    pub api_url: Option<String>,
    pub raft_addr: Option<String>,
    /// Highest log index known to be replicated on the member (leader's view).
    #[serde(default)]
    pub matched_index: Option<u64>,
}

/// `POST /v1/cluster/members`: add a scheduler node to the Raft group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    /// From 1.
    #[schemars(range(min = 1))]
    pub node_id: u64,
    /// IP:PORT of the node's Raft port.
    pub raft_addr: String,
    /// Base URL of the node's admin API.
    pub api_url: String,
}

/// `GET /v1/executors`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExecutorInfo {
    pub id: String,
    pub group: String,
    pub endpoint: String,
    pub handlers: Vec<String>,
    pub weight: u32,
    pub labels: BTreeMap<String, String>,
    /// Runs this scheduler has in flight on it.
    pub running: u32,
    pub alive: bool,
    pub last_seen: Option<DateTime<Utc>>,
    /// Most runs it takes at once (`--max-concurrent`); 0: no limit.
    #[serde(default)]
    pub max_concurrent: u32,
    /// Whether its gossip announcement is signed with the cluster's key
    /// (always true for executors given by URL, and without a secret).
    /// Runs never go to an unverified executor: anyone who reaches the
    /// gossip port can announce one, and it is listed so operators see it.
    #[serde(default = "verified_by_default")]
    pub verified: bool,
}

/// A scheduler too old to check announcements trusted every executor.
fn verified_by_default() -> bool {
    true
}

fn utc() -> String {
    "UTC".into()
}
fn five() -> u32 {
    5
}

/// `GET /v1/stats`: what the last hour of runs looks like.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunStats {
    /// Start of the first minute counted.
    pub since: DateTime<Utc>,
    /// One entry per minute, oldest first, counting runs by when they ended.
    pub minutes: Vec<MinuteCounts>,
    /// How late scheduled runs started over the last few minutes.
    pub lateness: Lateness,
    /// Runs pending, dispatched or running now.
    pub active_runs: usize,
    /// Jobs whose latest run in the window ended badly.
    pub failing_jobs: Vec<RunSummaryOfJob>,
    /// Whether the window held more runs than were read.
    pub truncated: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MinuteCounts {
    pub minute: DateTime<Utc>,
    pub succeeded: u64,
    /// Failed or timed out.
    pub failed: u64,
    /// Killed or skipped.
    pub other: u64,
}

/// Start time minus scheduled time of scheduled runs, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Lateness {
    pub samples: usize,
    pub p50_ms: Option<i64>,
    pub p99_ms: Option<i64>,
    pub max_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunSummaryOfJob {
    pub namespace: String,
    pub job_id: String,
    #[serde(flatten)]
    pub run: RunSummary,
}

/// The JSON Schemas of the API's bodies by name, as an OpenAPI 3.1
/// document's `components.schemas` (JSON Schema 2020-12, `$ref`s into
/// `#/components/schemas/`). Generated from the types serde reads and
/// writes, so the document cannot drift from the server: a field, default
/// or enum value added to a type appears here.
pub fn schemas() -> serde_json::Map<String, serde_json::Value> {
    let mut settings = schemars::generate::SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    let mut generator = settings.into_generator();
    generator.subschema_for::<Job>();
    generator.subschema_for::<JobView>();
    generator.subschema_for::<Page<JobView>>();
    generator.subschema_for::<Run>();
    generator.subschema_for::<Page<Run>>();
    generator.subschema_for::<TriggerRequest>();
    generator.subschema_for::<TriggerResponse>();
    generator.subschema_for::<PreviewRequest>();
    generator.subschema_for::<PreviewResponse>();
    generator.subschema_for::<ClusterStatus>();
    generator.subschema_for::<StorageStatus>();
    generator.subschema_for::<MemberRequest>();
    generator.subschema_for::<Vec<ExecutorInfo>>();
    generator.subschema_for::<RunStats>();
    generator.subschema_for::<ErrorBody>();
    generator.take_definitions(true)
}
