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
    Run(Box<Run>),
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
        Outcome::RunsCreated(runs) | Outcome::RunsChanged(runs) => runs
            .iter()
            .map(|r| Event::Run(Box::new(without_output(r))))
            .collect(),
        Outcome::JobPut { job, created } => {
            vec![changed(job, if *created { "created" } else { "updated" })]
        }
        Outcome::JobsCreated(jobs) => jobs.iter().map(|j| changed(j, "created")).collect(),
        Outcome::JobDeleted {
            key,
            existed: true,
            unlinked,
        } => unlinked
            .iter()
            .map(|parent| changed(parent, "updated"))
            .chain([Event::Job(JobChange {
                namespace: key.namespace.clone(),
                id: key.id.clone(),
                action: "deleted",
                enabled: None,
            })])
            .collect(),
        Outcome::JobDeleted { existed: false, .. }
        | Outcome::AlreadyApplied
        | Outcome::NodeRegistered(_)
        | Outcome::RunMoved { .. }
        | Outcome::RunPlaced { .. }
        | Outcome::AlertsRecorded(_)
        | Outcome::Rejected(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use protocol::{api::ExecutorInfo, JobKey};

    use super::*;

    fn job(id: &str) -> protocol::Job {
        serde_json::from_value(serde_json::json!({
            "id": id, "schedule": "@manual", "target": {"type": "shell", "command": "true"}
        }))
        .unwrap()
    }

    #[test]
    fn job_changes_become_job_events_named_by_their_action() {
        let created = events_of(&Outcome::JobPut {
            job: Box::new(job("a")),
            created: true,
        });
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].name(), "job");
        assert_eq!(
            created[0].data(),
            r#"{"namespace":"default","id":"a","action":"created","enabled":true}"#
        );
        let deleted = events_of(&Outcome::JobDeleted {
            key: JobKey::new("default", "a"),
            existed: true,
            unlinked: Vec::new(),
        });
        assert!(deleted[0].data().contains(r#""action":"deleted""#));
        let nothing = events_of(&Outcome::JobDeleted {
            key: JobKey::new("default", "a"),
            existed: false,
            unlinked: Vec::new(),
        });
        assert!(nothing.is_empty(), "deleting nothing is no event");
    }

    #[test]
    fn an_event_in_the_stream_format_ends_with_a_blank_line() {
        let event = Event::Leader(LeaderChange {
            leader_id: Some(2),
            term: 7,
        });
        assert_eq!(
            event.to_sse(),
            "event: leader\ndata: {\"leader_id\":2,\"term\":7}\n\n"
        );
    }

    #[test]
    fn a_job_filter_keeps_cluster_wide_events() {
        let key = JobKey::new("default", "a");
        let other = Event::Job(JobChange {
            namespace: "default".into(),
            id: "b".into(),
            action: "created",
            enabled: Some(true),
        });
        assert!(!other.is_about(&key));
        let executor = Event::Executor(ExecutorInfo {
            id: "e".into(),
            group: "default".into(),
            endpoint: "http://e".into(),
            handlers: vec![],
            weight: 1,
            labels: Default::default(),
            running: 0,
            alive: true,
            last_seen: None,
            max_concurrent: 0,
            verified: true,
        });
        assert!(executor.is_about(&key));
    }
}
