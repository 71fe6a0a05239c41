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
    /// Why a `pending` run has not gone to an executor yet: every executor
    /// that may take it is running its `max_concurrent`. It waits at the
    /// scheduler, in order, until one has room or its `start_deadline`
    /// passes. `None` once placed.
    #[serde(default)]
    pub pending_reason: Option<String>,
    /// For a child run (trigger `child`): the final runs of the parent's
    /// fire, in shard order (`CRONMESH_PARENT_RUN_IDS`). Empty otherwise.
    #[serde(default)]
    pub parent_run_ids: Vec<String>,
    /// For a child run: the slot of the parent's fire
    /// (`CRONMESH_PARENT_SCHEDULED_AT`).
    #[serde(default)]
    pub parent_scheduled_at: Option<DateTime<Utc>>,
    /// For a child run: the id of the parent job (same namespace).
    #[serde(default)]
    pub parent_job_id: Option<String>,
    /// Each attempt to deliver this run's alert (webhooks and e-mail), the
    /// last 32, oldest first.
    #[serde(default)]
    #[schemars(length(max = crate::alert::MAX_RUN_ALERT_DELIVERIES))]
    pub alerts: Vec<crate::alert::AlertDelivery>,
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
/// the same slot the same way (invariant 1). It begins with the slot (see
/// [`timed_id`]).
pub fn slot_run_id(
    namespace: &str,
    job_id: &str,
    scheduled_at: DateTime<Utc>,
    shard: u32,
) -> String {
    timed_id(
        scheduled_at.timestamp(),
        &[
            namespace,
            job_id,
            &scheduled_at.timestamp_millis().to_string(),
            &shard.to_string(),
        ],
    )
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

/// The id of a child run: derived from the parent's fire (job, slot and
/// trigger) and the child's shard, so every leader that judges the same
/// parent fire names the child's runs the same way and creating them twice
/// creates nothing the second time. It begins with the parent's slot.
pub fn child_run_id(
    namespace: &str,
    child_job_id: &str,
    parent_job_id: &str,
    parent_scheduled_at: DateTime<Utc>,
    parent_trigger: TriggerKind,
    shard: u32,
) -> String {
    timed_id(
        parent_scheduled_at.timestamp(),
        &[
            namespace,
            child_job_id,
            "child-of",
            parent_job_id,
            &parent_scheduled_at.timestamp_millis().to_string(),
            parent_trigger.as_str(),
            &shard.to_string(),
        ],
    )
}

/// The id of the retry (or failover) `attempt` of `parent`. It begins as
/// the parent's does, when that is a time.
pub fn retry_run_id(parent: &str, attempt: u32) -> String {
    let parts = [parent, "attempt", &attempt.to_string()];
    match parent.get(..TIME_DIGITS) {
        Some(time) if parent.len() == ID_DIGITS && time.bytes().all(|b| b.is_ascii_hexdigit()) => {
            format!("{time}{}", hex::encode(&digest(&parts)[..8]))
        }
        _ => hex::encode(&digest(&parts)[..12]),
    }
}

/// Hex digits of every run id.
const ID_DIGITS: usize = 24;
/// Hex digits of the time at the head of a [`timed_id`].
const TIME_DIGITS: usize = 8;

/// An id of 24 hex digits: a time in whole seconds since 1970 (8 digits,
/// held between 1970 and 2106), then the first 8 bytes of the SHA-256 of
/// `parts`. The store keeps run records in the order of their ids, so ids
/// that begin with their slot put the runs of one slot side by side: each
/// new run and each report touches the few pages of recent slots, and
/// retention empties whole pages of old ones, instead of every page of
/// the store taking a share of every write.
fn timed_id(seconds: i64, parts: &[&str]) -> String {
    let time = u32::try_from(seconds.max(0)).unwrap_or(u32::MAX);
    format!("{time:08x}{}", hex::encode(&digest(parts)[..8]))
}

fn digest_id(parts: &[&str]) -> String {
    hex::encode(&digest(parts)[..12])
}

fn digest(parts: &[&str]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hasher.finalize().into()
}

/// Keeps the first `limit` bytes of `text`, cut at a character boundary.
pub fn head(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
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

/// Keeps the last `limit` bytes of a stream (a process's output, an HTTP
/// answer), in at most twice that memory plus one chunk: older bytes are
/// dropped in bulk, so appending stays amortised O(1) per byte.
#[derive(Debug)]
pub struct OutputTail {
    bytes: Vec<u8>,
    limit: usize,
}

impl Default for OutputTail {
    fn default() -> Self {
        Self::with_limit(OUTPUT_LIMIT)
    }
}

impl OutputTail {
    pub fn with_limit(limit: usize) -> Self {
        Self {
            bytes: Vec::new(),
            limit,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        if chunk.len() >= self.limit {
            self.bytes.clear();
            self.bytes
                .extend_from_slice(&chunk[chunk.len() - self.limit..]);
            return;
        }
        self.bytes.extend_from_slice(chunk);
        if self.bytes.len() > 2 * self.limit {
            let excess = self.bytes.len() - self.limit;
            self.bytes.drain(..excess);
        }
    }

    /// The kept tail as text: invalid UTF-8 becomes U+FFFD, and a character
    /// cut in half at the start of the tail is dropped.
    pub fn text(&self) -> String {
        let start = self.bytes.len().saturating_sub(self.limit);
        let mut kept = &self.bytes[start..];
        if start > 0 {
            // Skip UTF-8 continuation bytes of a character that began before the tail.
            let skip = kept
                .iter()
                .take(3)
                .take_while(|b| (**b & 0b1100_0000) == 0b1000_0000)
                .count();
            kept = &kept[skip..];
        }
        let text = String::from_utf8_lossy(kept);
        // Replacement characters can make lossy text longer than the bytes.
        tail(&text, self.limit).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_begin_with_their_slot_and_sort_by_it() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let first = slot_run_id("default", "b", at("2026-12-06T10:00:00Z"), 0);
        let second = slot_run_id("default", "a", at("2026-12-06T10:00:01Z"), 0);
        assert_eq!(first.len(), 24);
        assert!(first
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(
            &first[..8],
            &format!("{:08x}", at("2026-12-06T10:00:00Z").timestamp())
        );
        assert!(first < second, "{first} {second}");
        // The same slot is named the same way; another shard or job not.
        assert_eq!(
            first,
            slot_run_id("default", "b", at("2026-12-06T10:00:00Z"), 0)
        );
        assert_ne!(
            first,
            slot_run_id("default", "b", at("2026-12-06T10:00:00Z"), 1)
        );
        assert_ne!(
            first,
            slot_run_id("default", "c", at("2026-12-06T10:00:00Z"), 0)
        );
        // Times outside 1970..2106 are held at its ends.
        assert!(slot_run_id("default", "b", at("1960-01-01T00:00:00Z"), 0).starts_with("00000000"));
        assert!(slot_run_id("default", "b", at("2200-01-01T00:00:00Z"), 0).starts_with("ffffffff"));
        // Retries and children keep the time of what they continue.
        let retry = retry_run_id(&first, 2);
        assert_eq!((retry.len(), &retry[..8]), (24, &first[..8]));
        assert_ne!(retry, first);
        assert_ne!(retry, retry_run_id(&first, 3));
        let child = child_run_id(
            "default",
            "child",
            "b",
            at("2026-12-06T10:00:00Z"),
            TriggerKind::Schedule,
            0,
        );
        assert_eq!(&child[..8], &first[..8]);
        // An id of another form (a store of an earlier version) still
        // gives 24 hex digits.
        assert_eq!(retry_run_id("r1", 2).len(), 24);
    }

    #[test]
    fn an_output_tail_keeps_the_last_bytes() {
        let mut out = OutputTail::with_limit(8);
        out.push(b"hello ");
        assert_eq!(out.text(), "hello ");
        out.push(b"world");
        assert_eq!(out.text(), "lo world");
        for _ in 0..100 {
            out.push(b"abc");
        }
        assert_eq!(out.text(), "bcabcabc");
        out.push(b"0123456789");
        assert_eq!(out.text(), "23456789");
    }

    #[test]
    fn a_long_stream_keeps_only_its_tail_in_bounded_memory() {
        let mut kept = OutputTail::with_limit(10);
        for i in 0..1000u32 {
            kept.push(format!("{:03}-", i % 1000).as_bytes());
            assert!(kept.bytes.len() <= 20, "{} bytes kept", kept.bytes.len());
        }
        assert_eq!(kept.text(), "7-998-999-");
    }

    #[test]
    fn an_output_tail_drops_a_character_cut_at_the_start() {
        let mut out = OutputTail::with_limit(4);
        out.push("xé€".as_bytes()); // 1 + 2 + 3 bytes; the tail starts inside é
        assert_eq!(out.text(), "€");
        let mut out = OutputTail::with_limit(8);
        out.push(&[0xff, b'a']);
        assert_eq!(out.text(), "\u{fffd}a");
    }

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
    fn child_ids_name_the_parent_fire_and_the_shard() {
        let t = DateTime::parse_from_rfc3339("2026-11-21T23:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let id = |child: &str, parent: &str, trigger, shard| {
            child_run_id("default", child, parent, t, trigger, shard)
        };
        let base = id("c", "p", TriggerKind::Schedule, 0);
        assert_eq!(base, id("c", "p", TriggerKind::Schedule, 0));
        assert_ne!(base, id("c", "p", TriggerKind::Manual, 0));
        assert_ne!(base, id("c", "p", TriggerKind::Schedule, 1));
        assert_ne!(base, id("c", "q", TriggerKind::Schedule, 0));
        assert_ne!(base, id("d", "p", TriggerKind::Schedule, 0));
        assert_ne!(base, slot_run_id("default", "c", t, 0));
    }

    #[test]
    fn tail_cuts_on_char_boundary() {
        assert_eq!(tail("héllo", 4), "llo");
        assert_eq!(tail("abc", 10), "abc");
    }

    #[test]
    fn head_cuts_on_char_boundary() {
        assert_eq!(head("héllo", 2), "h");
        assert_eq!(head("héllo", 3), "hé");
        assert_eq!(head("abc", 10), "abc");
    }
}
