//! The executor protocol: what a scheduler sends an executor and what the
//! executor reports back (see docs and DESIGN.md "Executor protocol").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::run::{RunStatus, ShardInfo};

/// Content type of MessagePack bodies.
pub const MSGPACK: &str = "application/msgpack";
/// Header carrying the HMAC signature of a request body.
pub const SIGNATURE_HEADER: &str = "x-cronmesh-signature";

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
