//! What the viewer reads from the admin API, as small tolerant structs.
//!
//! Every struct takes `#[serde(default)]` and ignores unknown fields, and run
//! statuses and triggers stay strings: a viewer pointed at a newer or older
//! node keeps showing what it understands instead of failing on one field.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// `GET /v1/cluster`: the answering node's view of the Raft group.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Cluster {
    /// The node that answered, so the screen can say which one it reads.
    pub node_id: u64,
    /// `None` while an election is under way.
    pub leader_id: Option<u64>,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    /// Where to reconnect when the current node goes away.
    pub members: Vec<Member>,
    /// The answering node's data disk; absent from nodes that do not say.
    pub storage: Option<Storage>,
}

/// A node's data disk (`storage` of `GET /v1/cluster`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Storage {
    /// `ok`, `low_space`, `critical` or `stalled`.
    pub state: String,
    pub free_bytes: Option<u64>,
    /// What is wrong, in words, when `state` is not `ok`.
    pub reason: Option<String>,
}

impl Cluster {
    /// The leader's member entry, when there is a leader and it is listed.
    pub fn leader(&self) -> Option<&Member> {
        let id = self.leader_id?;
        self.members.iter().find(|m| m.node_id == id)
    }
}

/// One scheduler node of the Raft group.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Member {
    pub node_id: u64,
    /// `leader`, `follower`, `candidate`, ... as the node reports it.
    pub role: String,
    /// Admin API of the member: a fail-over target for the viewer.
    pub api_url: Option<String>,
    /// How far the member's log is replicated (leader's view only).
    pub matched_index: Option<u64>,
}

/// `GET /v1/executors`: one executor seen by gossip.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default)]
pub struct Executor {
    pub id: String,
    pub group: String,
    pub endpoint: String,
    pub handlers: Vec<String>,
    pub weight: u32,
    pub labels: BTreeMap<String, String>,
    /// Runs the answering scheduler has in flight on it.
    pub running: u32,
    /// False for executors gossip has declared dead but still remembers.
    pub alive: bool,
    pub last_seen: Option<DateTime<Utc>>,
    /// False for a gossip member whose announcement is not signed with
    /// the cluster's secret: listed, never sent work. Servers that predate
    /// the field only list verified executors, hence true when absent.
    pub verified: bool,
}

impl Default for Executor {
    fn default() -> Self {
        Self {
            id: String::new(),
            group: String::new(),
            endpoint: String::new(),
            handlers: Vec::new(),
            weight: 0,
            labels: BTreeMap::new(),
            running: 0,
            alive: false,
            last_seen: None,
            verified: true,
        }
    }
}

/// One item of `GET /v1/jobs`: the fields of a job the viewer shows, plus
/// the next fire times and last run summary the API adds.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default)]
pub struct Job {
    pub id: String,
    pub namespace: String,
    pub description: String,
    pub schedule: String,
    pub timezone: String,
    /// False for a paused job: `p` then resumes it.
    pub enabled: bool,
    /// Kept as JSON: only its type and command or URL are shown.
    pub target: serde_json::Value,
    pub shards: u32,
    pub next_fire_times: Vec<DateTime<Utc>>,
    pub last_run: Option<LastRun>,
}

impl Default for Job {
    fn default() -> Self {
        Self {
            id: String::new(),
            namespace: "default".into(),
            description: String::new(),
            schedule: String::new(),
            timezone: "UTC".into(),
            enabled: true,
            target: serde_json::Value::Null,
            shards: 1,
            next_fire_times: Vec::new(),
            last_run: None,
        }
    }
}

impl Job {
    /// `namespace/id`, or the bare id in the default namespace.
    pub fn label(&self) -> String {
        if self.namespace == "default" || self.namespace.is_empty() {
            self.id.clone()
        } else {
            format!("{}/{}", self.namespace, self.id)
        }
    }

    /// `shell: echo hi`, `http: GET https://…`, `executor: group/handler`.
    pub fn target_summary(&self) -> String {
        let field = |name: &str| {
            self.target
                .get(name)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        match field("type").as_str() {
            "shell" => format!("shell: {}", field("command")),
            "http" => {
                let method = field("method");
                let method = if method.is_empty() {
                    "GET".into()
                } else {
                    method
                };
                format!("http: {method} {}", field("url"))
            }
            "executor" => format!("executor: {}/{}", field("group"), field("handler")),
            "" => String::new(),
            other => other.to_string(),
        }
    }
}

/// The last run of a job, as `GET /v1/jobs` summarises it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct LastRun {
    pub id: String,
    pub status: String,
    pub trigger: String,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A run record (`GET /v1/runs`, `GET /v1/runs/{id}`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Run {
    pub id: String,
    pub job_id: String,
    pub namespace: String,
    pub scheduled_at: Option<DateTime<Utc>>,
    /// `schedule`, `manual`, `retry`, ...
    pub trigger: String,
    pub shard: Shard,
    pub attempt: u32,
    /// `pending`, `running`, `succeeded`, ...: see [`is_active`].
    pub status: String,
    pub executor: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    /// The last 64 KiB of output as stored; live output comes separately.
    pub output: String,
    pub error: Option<String>,
    pub params: String,
    pub retry_of: Option<String>,
}

impl Run {
    /// Same as [`Job::label`] for the run's job.
    pub fn job_label(&self) -> String {
        if self.namespace == "default" || self.namespace.is_empty() {
            self.job_id.clone()
        } else {
            format!("{}/{}", self.namespace, self.job_id)
        }
    }

    pub fn is_active(&self) -> bool {
        is_active(&self.status)
    }
}

/// Which shard of a fire a run is.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
    pub param: String,
}

/// A status a run can still leave: only such a run can be killed.
pub fn is_active(status: &str) -> bool {
    matches!(status, "pending" | "dispatched" | "running")
}

/// `{"items": [...], "next_cursor": ...}`: only the first page is read.
#[derive(Clone, Debug, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
}

/// Everything one refresh reads from one node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub cluster: Cluster,
    pub executors: Vec<Executor>,
    pub jobs: Vec<Job>,
    /// Newest first.
    pub runs: Vec<Run>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_api_json_and_tolerates_extra_and_missing_fields() {
        let cluster: Cluster = serde_json::from_str(
            r#"{"node_id":1,"leader_id":1,"term":1,"commit_index":5,"applied_index":5,
                "log_start_index":0,"new_field":true,
                "members":[{"node_id":1,"role":"leader","api_url":"http://127.0.0.1:7070",
                            "raft_addr":null,"matched_index":5}]}"#,
        )
        .expect("cluster json");
        assert_eq!(cluster.leader().map(|m| m.role.as_str()), Some("leader"));

        let job: Job = serde_json::from_str(
            r#"{"id":"nightly","schedule":"@daily","target":{"type":"shell","command":"echo hi"},
                "next_fire_times":["2026-01-01T00:00:00Z"],
                "last_run":{"id":"r1","status":"succeeded","trigger":"manual",
                            "scheduled_at":"2025-12-31T10:00:00Z","finished_at":null}}"#,
        )
        .expect("job json");
        assert!(job.enabled, "enabled defaults to true");
        assert_eq!(job.label(), "nightly");
        assert_eq!(job.target_summary(), "shell: echo hi");
        assert_eq!(job.last_run.map(|r| r.status), Some("succeeded".into()));

        let run: Run = serde_json::from_str(
            r#"{"id":"r1","job_id":"a","namespace":"ops","status":"running","executor":null,
                "shard":{"index":0,"count":1,"param":""},"attempt":1,"exit_code":null}"#,
        )
        .expect("run json");
        assert!(run.is_active());
        assert_eq!(run.job_label(), "ops/a");
    }
}
