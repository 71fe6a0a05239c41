//! `MetaCommand`: the closed set of changes to replicated metadata. Every
//! write to jobs or runs is one of these, proposed through the log and
//! applied by one `match` into sled (see `actors::store`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
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
    DeleteJob {
        key: JobKey,
    },
    /// Pause or resume a job; resuming owes no slot before `at`.
    SetJobEnabled {
        key: JobKey,
        enabled: bool,
        at: DateTime<Utc>,
    },
    /// Create runs. A run whose id exists already is left alone (one slot,
    /// one run); runs with an empty id get one derived from the log index.
    CreateRuns {
        runs: Vec<Run>,
    },
    /// Record transitions of existing runs; a terminal status is final.
    RecordRuns {
        updates: Vec<RunUpdate>,
    },
}

impl MetaCommand {
    /// Short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            MetaCommand::PutJob { .. } => "put_job",
            MetaCommand::DeleteJob { .. } => "delete_job",
            MetaCommand::SetJobEnabled { .. } => "set_job_enabled",
            MetaCommand::CreateRuns { .. } => "create_runs",
            MetaCommand::RecordRuns { .. } => "record_runs",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PutMode {
    /// Fails if the job exists.
    Create,
    /// Fails if the job does not exist.
    Replace,
}
