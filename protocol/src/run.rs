//! Runs: one execution of a job for one slot and one shard.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The tail of a run's output that is kept.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Created and committed, not yet accepted by an executor (or queued).
    Pending,
    /// Accepted by an executor.
    Dispatched,
    /// The executor reported that the process started.
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Killed,
    /// The slot did not run; `error` says why.
    Skipped,
}

impl RunStatus {
    pub const ALL: [RunStatus; 8] = [
        RunStatus::Pending,
        RunStatus::Dispatched,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::TimedOut,
        RunStatus::Killed,
        RunStatus::Skipped,
    ];

    /// How far along a run is: pending, dispatched, running, ended. A run
    /// never moves back.
    pub fn progress(self) -> u8 {
        match self {
            RunStatus::Pending => 0,
            RunStatus::Dispatched => 1,
            RunStatus::Running => 2,
            _ => 3,
        }
    }

    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            RunStatus::Pending | RunStatus::Dispatched | RunStatus::Running
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Dispatched => "dispatched",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::TimedOut => "timed_out",
            RunStatus::Killed => "killed",
            RunStatus::Skipped => "skipped",
        }
    }
}

impl std::str::FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown run status {s:?}"))
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a run exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    Schedule,
    Manual,
    Retry,
    Misfire,
    Child,
    Failover,
    Backfill,
}

impl TriggerKind {
    /// The name the JSON uses.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Schedule => "schedule",
            TriggerKind::Manual => "manual",
            TriggerKind::Retry => "retry",
            TriggerKind::Misfire => "misfire",
            TriggerKind::Child => "child",
            TriggerKind::Failover => "failover",
            TriggerKind::Backfill => "backfill",
        }
    }
}

impl std::fmt::Display for TriggerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ShardInfo {
    pub index: u32,
    pub count: u32,
    #[serde(default)]
    pub param: String,
}

/// A run record as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Run {
    pub id: String,
    pub job_id: String,
    pub namespace: String,
    /// The slot this run belongs to (the trigger time for manual runs).
    pub scheduled_at: DateTime<Utc>,
    pub trigger: TriggerKind,
    pub shard: ShardInfo,
    /// 1 for the first try, 2 for the first retry, ...
    pub attempt: u32,
    pub status: RunStatus,
    /// Endpoint of the executor that has the run (the URL for HTTP targets).
    pub executor: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    /// The last 64 KiB of stdout and stderr.
    #[serde(default)]
    pub output: String,
    pub error: Option<String>,
    /// Parameters this run was given (`CRONMESH_PARAMS`).
    #[serde(default)]
    pub params: String,
    /// The run this one retries or fails over from.
    #[serde(default)]
    pub retry_of: Option<String>,
}

impl Run {
    pub fn is_active(&self) -> bool {
        !self.status.is_terminal()
    }
}

/// A change to a run reported by an executor, a timeout or a kill. Only the
/// fields that are `Some` change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunUpdate {
    pub run_id: String,
    pub status: Option<RunStatus>,
    pub executor: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    pub output: Option<String>,
    pub error: Option<String>,
}

impl RunUpdate {
    /// Folds a later update of the same run into this one, so applying the
    /// result equals applying both in order: a terminal status is final and
    /// what follows it only fills in what it lacked; otherwise the further
    /// status wins and later fields replace earlier ones.
    pub fn absorb(&mut self, later: RunUpdate) {
        let terminal = self.status.is_some_and(RunStatus::is_terminal);
        if terminal {
            self.output = self.output.take().or(later.output);
            self.exit_code = self.exit_code.or(later.exit_code);
            self.started_at = self.started_at.or(later.started_at);
            self.finished_at = self.finished_at.or(later.finished_at);
            return;
        }
        self.status = match (self.status, later.status) {
            (Some(a), Some(b)) if a.progress() > b.progress() => Some(a),
            (a, b) => b.or(a),
        };
        self.executor = later.executor.or(self.executor.take());
        self.started_at = later.started_at.or(self.started_at);
        self.finished_at = later.finished_at.or(self.finished_at);
        self.exit_code = later.exit_code.or(self.exit_code);
        self.output = later.output.or(self.output.take());
        self.error = later.error.or(self.error.take());
    }
}

/// The id of a scheduled (or misfire / skipped) run, derived from the
/// (namespace, job, slot, shard) tuple so every node and every leader names
/// the same slot the same way (invariant 1).
pub fn slot_run_id(
    namespace: &str,
    job_id: &str,
    scheduled_at: DateTime<Utc>,
    shard: u32,
) -> String {
    digest_id(&[
        namespace,
        job_id,
        &scheduled_at.timestamp_millis().to_string(),
        &shard.to_string(),
    ])
}

/// The id of a run created by a manual trigger, derived from the log index
/// of the command that created it.
pub fn logged_run_id(namespace: &str, job_id: &str, log_index: u64, position: usize) -> String {
    digest_id(&[
        namespace,
        job_id,
        "log",
        &log_index.to_string(),
        &position.to_string(),
    ])
}

/// The id of the retry (or failover) `attempt` of `parent`.
pub fn retry_run_id(parent: &str, attempt: u32) -> String {
    digest_id(&[parent, "attempt", &attempt.to_string()])
}

fn digest_id(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(&hasher.finalize()[..12])
}

/// Keeps the last `limit` bytes of `text`, cut at a character boundary.
pub fn tail(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut start = text.len() - limit;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_names_are_the_json_names() {
        for kind in [
            TriggerKind::Schedule,
            TriggerKind::Manual,
            TriggerKind::Retry,
            TriggerKind::Misfire,
            TriggerKind::Child,
            TriggerKind::Failover,
            TriggerKind::Backfill,
        ] {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::String(kind.to_string())
            );
        }
    }

    #[test]
    fn slot_ids_are_stable_and_distinct() {
        let t = DateTime::parse_from_rfc3339("2026-11-21T23:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            slot_run_id("default", "a", t, 0),
            slot_run_id("default", "a", t, 0)
        );
        assert_ne!(
            slot_run_id("default", "a", t, 0),
            slot_run_id("default", "a", t, 1)
        );
        assert_ne!(
            slot_run_id("default", "a", t, 0),
            slot_run_id("other", "a", t, 0)
        );
        assert_eq!(slot_run_id("default", "a", t, 0).len(), 24);
    }

    #[test]
    fn tail_cuts_on_char_boundary() {
        assert_eq!(tail("héllo", 4), "llo");
        assert_eq!(tail("abc", 10), "abc");
    }
}
