//! `MetaCommand`: the closed set of changes to replicated metadata. Every
//! write to jobs or runs is one of these, proposed through the log and
//! applied by one `match` into sled (see `actors::store`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    alert::AlertDelivery,
    job::{Job, JobKey},
    run::{Run, RunUpdate},
};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// Create or replace a job. `at` is the proposer's clock: slots up to it
    /// are not owed by the new definition.
    PutJob {
        job: Box<Job>,
        mode: PutMode,
        at: DateTime<Utc>,
    },
    /// Create many jobs at once, all or none: one that exists already
    /// rejects the whole command and nothing is stored.
    CreateJobs { jobs: Vec<Job>, at: DateTime<Utc> },
    /// Delete a job and its runs. A job that other jobs name as a child
    /// is refused unless `force`, which removes those links from the
    /// parents in the same command.
    DeleteJob {
        key: JobKey,
        #[serde(default)]
        force: bool,
    },
    /// Pause or resume a job; resuming owes no slot before `at`.
    SetJobEnabled {
        key: JobKey,
        enabled: bool,
        at: DateTime<Utc>,
    },
    /// Create runs. A run whose id exists already is left alone (one slot,
    /// one run); runs with an empty id get one derived from the log index.
    CreateRuns { runs: Vec<Run> },
    /// A scheduler node announces where its admin API and Raft port are,
    /// so every node can forward writes to whichever node leads.
    RegisterNode { node: NodeInfo },
    /// Record transitions of existing runs; a terminal status is final.
    RecordRuns { updates: Vec<RunUpdate> },
    /// Move an active run from the executor `from`, which certainly did not
    /// take it, to `to`. Applies only while the run is still active on
    /// `from`, so a leader sends it to `to` only once the log agrees, and a
    /// deposed leader, whose proposal never commits, moves nothing.
    MoveRun {
        run_id: String,
        from: String,
        to: String,
    },
    /// Give a run that waited for room (`pending_reason` set) the executor
    /// `to`, which has room now. Applies only while the run is still
    /// pending and waiting, so a deposed leader's placement changes nothing.
    PlaceRun { run_id: String, to: String },
    /// Record attempts to deliver runs' alerts, each on its run (a run
    /// keeps the last `MAX_RUN_ALERT_DELIVERIES`). A run that no longer
    /// exists is passed over.
    RecordAlertDeliveries {
        deliveries: Vec<(String, AlertDelivery)>,
    },
}

impl MetaCommand {
    /// Short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            MetaCommand::PutJob { .. } => "put_job",
            MetaCommand::CreateJobs { .. } => "create_jobs",
            MetaCommand::DeleteJob { .. } => "delete_job",
            MetaCommand::SetJobEnabled { .. } => "set_job_enabled",
            MetaCommand::CreateRuns { .. } => "create_runs",
            MetaCommand::RecordRuns { .. } => "record_runs",
            MetaCommand::RegisterNode { .. } => "register_node",
            MetaCommand::MoveRun { .. } => "move_run",
            MetaCommand::PlaceRun { .. } => "place_run",
            MetaCommand::RecordAlertDeliveries { .. } => "record_alert_deliveries",
        }
    }
}

/// Where a scheduler node can be reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node_id: u64,
    /// Base URL of its admin API.
    pub api_url: String,
    /// Address of its Raft port.
    pub raft_addr: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PutMode {
    /// Fails if the job exists.
    Create,
    /// Fails if the job does not exist.
    Replace,
}
