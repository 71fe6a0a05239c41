//! What `GET /v1/events` streams: run transitions, job changes, leader and
//! executor changes, as they happen on this node.
//!
//! - [`feed`]: the broadcast every subscriber reads from.
//! - [`publisher`]: the actor that turns applied log entries into events.
//! - [`watcher`]: follows the leader and the executor set and publishes
//!   their changes.

pub mod feed;
pub mod publisher;
pub mod watcher;

use actors::store::Outcome;
use protocol::{api::ExecutorInfo, JobKey, Run};
use serde::Serialize;

pub use feed::EventFeed;

/// One event. Its name is the SSE `event:` field; its JSON the `data:`.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A run was created or changed status. The run's output is left out:
    /// it can be 64 KiB, and `GET /v1/runs/{id}/output` serves it.
    Run(Run),
    Job(JobChange),
    Leader(LeaderChange),
    Executor(ExecutorInfo),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobChange {
    pub namespace: String,
    pub id: String,
    /// `created`, `updated` or `deleted`.
    pub action: &'static str,
    /// The job's enabled flag after the change (absent once deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeaderChange {
    pub leader_id: Option<u64>,
    pub term: u64,
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::Run(_) => "run",
            Event::Job(_) => "job",
            Event::Leader(_) => "leader",
            Event::Executor(_) => "executor",
        }
    }

    pub fn data(&self) -> String {
        let json = match self {
            Event::Run(run) => serde_json::to_string(run),
            Event::Job(change) => serde_json::to_string(change),
            Event::Leader(change) => serde_json::to_string(change),
            Event::Executor(executor) => serde_json::to_string(executor),
        };
        json.unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The event in the text/event-stream format.
    pub fn to_sse(&self) -> String {
        format!("event: {}\ndata: {}\n\n", self.name(), self.data())
    }

    /// Whether the event concerns the job (for `?job=`).
    pub fn is_about(&self, job: &JobKey) -> bool {
        match self {
            Event::Run(run) => run.job_id == job.id && run.namespace == job.namespace,
            Event::Job(change) => change.id == job.id && change.namespace == job.namespace,
            Event::Leader(_) | Event::Executor(_) => true,
        }
    }
}

fn without_output(run: &Run) -> Run {
    Run {
        output: String::new(),
        ..run.clone()
    }
}

/// The events an applied log entry gives rise to.
pub fn events_of(outcome: &Outcome) -> Vec<Event> {
    let changed = |job: &protocol::Job, action| {
        Event::Job(JobChange {
            namespace: job.namespace.clone(),
            id: job.id.clone(),
            action,
            enabled: Some(job.enabled),
        })
    };
    match outcome {
        Outcome::RunsCreated(runs) | Outcome::RunsChanged(runs) => {
            runs.iter().map(|r| Event::Run(without_output(r))).collect()
        }
        Outcome::JobPut { job, created } => {
            vec![changed(job, if *created { "created" } else { "updated" })]
        }
        Outcome::JobsCreated(jobs) => jobs.iter().map(|j| changed(j, "created")).collect(),
        Outcome::JobDeleted { key, existed: true } => vec![Event::Job(JobChange {
            namespace: key.namespace.clone(),
            id: key.id.clone(),
            action: "deleted",
            enabled: None,
        })],
        Outcome::JobDeleted { existed: false, .. }
        | Outcome::AlreadyApplied
        | Outcome::NodeRegistered(_)
        | Outcome::Rejected(_) => Vec::new(),
    }
}
