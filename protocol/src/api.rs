//! Bodies of the admin HTTP API that are not a Job or a Run.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    job::Job,
    run::{Run, RunStatus},
};

/// `{"error": {"code", "message", "field"}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_field`, `not_found`.
    pub code: String,
    pub message: String,
    /// The JSON path of the offending field, when one is to blame.
    pub field: Option<String>,
}

/// One page of a list: pass `next_cursor` back as `?cursor=` for the next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// `POST /v1/jobs/{id}/trigger`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerRequest {
    /// Replaces the job's `params` for this run.
    #[serde(default)]
    pub params: Option<String>,
}

/// `POST /v1/jobs/{id}/trigger` answer: the runs created (one per shard).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggerResponse {
    pub runs: Vec<Run>,
}

/// `POST /v1/schedules/preview`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub schedule: String,
    #[serde(default = "utc")]
    pub timezone: String,
    /// Start of the preview; now when absent.
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    #[serde(default = "five")]
    pub count: u32,
}

/// Largest `count` a preview answers.
pub const MAX_PREVIEW: u32 = 1000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreviewResponse {
    pub fire_times: Vec<DateTime<Utc>>,
}

/// `GET /v1/jobs/{id}`: the job plus what users look for next.
#[derive(Clone, Debug, Serialize)]
pub struct JobView {
    #[serde(flatten)]
    pub job: Job,
    pub next_fire_times: Vec<DateTime<Utc>>,
    pub last_run: Option<RunSummary>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    pub node_id: u64,
    /// IP:PORT of the node's Raft port.
    pub raft_addr: String,
    /// Base URL of the node's admin API.
    pub api_url: String,
}

/// `GET /v1/executors`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
}

fn utc() -> String {
    "UTC".into()
}
fn five() -> u32 {
    5
}

/// `GET /v1/stats`: what the last hour of runs looks like.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MinuteCounts {
    pub minute: DateTime<Utc>,
    pub succeeded: u64,
    /// Failed or timed out.
    pub failed: u64,
    /// Killed or skipped.
    pub other: u64,
}

/// Start time minus scheduled time of scheduled runs, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lateness {
    pub samples: usize,
    pub p50_ms: Option<i64>,
    pub p99_ms: Option<i64>,
    pub max_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummaryOfJob {
    pub namespace: String,
    pub job_id: String,
    #[serde(flatten)]
    pub run: RunSummary,
}
