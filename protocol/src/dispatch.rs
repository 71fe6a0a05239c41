//! The executor protocol: what a scheduler sends an executor and what the
//! executor reports back (docs/EXECUTOR-PROTOCOL.md).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::run::{RunStatus, ShardInfo};

/// Content type of MessagePack bodies.
pub const MSGPACK: &str = "application/msgpack";
/// Header carrying the HMAC signature of a request body.
pub const SIGNATURE_HEADER: &str = "x-cronmesh-signature";
/// Header of an executor's refusal of a stale leader ([`STALE_TERM_STATUS`]):
/// the highest leader term the executor has seen.
pub const TERM_HEADER: &str = "x-cronmesh-term";
/// The status an executor answers a dispatch or kill from a leader whose
/// term is lower than one it has seen: that sender was deposed and must
/// step down. Distinct from every other refusal, which lets a scheduler
/// fail the run over.
pub const STALE_TERM_STATUS: u16 = 409;
/// The error code in the body of that refusal.
pub const STALE_TERM_CODE: &str = "stale_term";

/// In an executor's announced `handlers`: it takes a task for any handler
/// name (a `--forward` agent given no `--handler`, or an executor given to
/// a scheduler by URL, whose handlers the scheduler cannot know). Never a
/// handler's own name: names do not hold `*`.
pub const ANY_HANDLER: &str = "*";

/// Whether an executor announcing `handlers` takes tasks for `handler`.
pub fn serves_handler(handlers: &[String], handler: &str) -> bool {
    handlers.iter().any(|h| h == handler || h == ANY_HANDLER)
}

/// `POST {endpoint}/v1/dispatch`: run this, once per `run_id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DispatchRequest {
    pub run_id: String,
    pub job_id: String,
    pub namespace: String,
    pub scheduled_at: DateTime<Utc>,
    pub attempt: u32,
    pub shard: ShardInfo,
    pub params: String,
    pub task: Task,
    /// The executor kills the run after this long and reports `timed_out`.
    pub timeout_ms: u64,
    /// Scheduler base URLs to `POST /v1/internal/runs/{id}/report` to, in order.
    pub report_to: Vec<String>,
    /// The Raft term of the leader that sends it. An executor refuses a
    /// term lower than the highest it has seen (from dispatches, kills and
    /// the schedulers' gossip) with [`STALE_TERM_STATUS`]; 0 is a sender
    /// that does not fence, accepted always.
    #[serde(default)]
    pub term: u64,
    /// The executor starts the run only before this time on its own clock,
    /// and refuses it later (a `Refused` entry, reason starting with
    /// [`EXPIRED_REASON`]). The scheduler fails a run over from an executor
    /// that did not answer only once this has passed (plus a margin for
    /// clock differences), so a dispatch that waited in a stopped
    /// executor's socket, or was retransmitted after a partition healed,
    /// never starts beside its failover. `None`: no limit.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// For a child run: the final runs of the parent's fire, in shard
    /// order (`CRONMESH_PARENT_RUN_IDS`, comma-separated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_run_ids: Vec<String>,
    /// For a child run: the slot of the parent's fire
    /// (`CRONMESH_PARENT_SCHEDULED_AT`, RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_scheduled_at: Option<DateTime<Utc>>,
}

/// How an executor's refusal of an expired dispatch begins.
pub const EXPIRED_REASON: &str = "the dispatch expired";

/// The body of `POST {endpoint}/v1/runs/{id}/kill` (optional: an empty
/// body is term 0). Fenced like a dispatch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KillRequest {
    /// The Raft term of the leader that asks.
    #[serde(default)]
    pub term: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Task {
    Shell { command: String },
    Handler { handler: String },
}

/// Answer to a dispatch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DispatchAck {
    pub run_id: String,
    /// True when the executor had the run already and started nothing new.
    pub duplicate: bool,
}

/// Executor to scheduler: the state of one run. Sent when it starts and
/// when it ends; the final one is retried until a scheduler acknowledges it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub run_id: String,
    /// The reporting executor's endpoint.
    pub executor: String,
    pub status: RunStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub output: String,
    pub error: Option<String>,
}

impl RunReport {
    pub fn into_update(self) -> crate::run::RunUpdate {
        crate::run::RunUpdate {
            run_id: self.run_id,
            status: Some(self.status),
            executor: Some(self.executor),
            started_at: self.started_at,
            finished_at: self.finished_at,
            exit_code: self.exit_code,
            output: (!self.output.is_empty()).then_some(self.output),
            error: self.error,
        }
    }
}

/// `POST {endpoint}/v1/dispatch/batch`: many runs in one request. The
/// executor treats each entry exactly like a single dispatch and answers
/// 200 with a [`DispatchBatchAck`] holding one result per entry, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DispatchBatch {
    pub runs: Vec<DispatchRequest>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DispatchBatchAck {
    pub results: Vec<DispatchResult>,
}

/// What became of one entry of a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DispatchResult {
    /// Started, or known already (`duplicate`).
    Accepted { run_id: String, duplicate: bool },
    /// Not started, for `reason` (a malformed entry, or the executor is
    /// shutting down); the scheduler fails over or fails the run.
    Refused { run_id: String, reason: String },
    /// Not started because the executor is running its `max_concurrent`
    /// runs; the scheduler asks again once it has room, never elsewhere.
    Busy { run_id: String, reason: String },
}

/// `POST {scheduler}/v1/internal/reports`: many run reports in one request,
/// answered 200 with a [`ReportBatchAck`] once they are recorded durably.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportBatch {
    pub reports: Vec<RunReport>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportBatchAck {
    /// One per report, in order.
    pub results: Vec<ReportResult>,
}

/// What became of one report of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportResult {
    /// Recorded durably: stop sending it.
    Recorded,
    /// The scheduler refuses it for good (an unknown run, an oversized
    /// output): stop sending it.
    Refused,
}
