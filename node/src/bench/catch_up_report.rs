//! The result of `cronmesh bench --scenario catch-up`: one JSON object
//! with stable snake_case fields (`--json`), or a table for people.

use std::fmt::Write as _;

use protocol::api::SnapshotCounters;
use serde::Serialize;

use super::{bulk_state::StateCreation, disk_usage::DiskUsage, timed_command::CommandFigures};

/// Everything the catch-up scenario measured.
#[derive(Clone, Debug, Serialize)]
pub struct CatchUpReport {
    pub setup: CatchUpSetup,
    pub state_creation: StateCreation,
    /// The node that led when the follower restarted.
    pub leader: u64,
    /// The follower killed, then restarted.
    pub follower: u64,
    pub follower_applied_at_kill: u64,
    /// The leader's log when the follower restarted.
    pub leader_at_restart: LogPosition,
    /// The leader's log started after the follower's applied index: it
    /// could only catch up from a snapshot.
    pub log_compacted_past_follower: bool,
    pub catch_up: CatchUpFigures,
    pub leader_memory: NodeMemory,
    pub follower_memory: NodeMemory,
    /// Each node's data directory once the follower caught up.
    pub disk: Vec<NodeDisk>,
    /// With `--backup-restore`; null otherwise.
    pub backup_restore: Option<BackupRestore>,
}

/// The flags that shaped the run.
#[derive(Clone, Debug, Serialize)]
pub struct CatchUpSetup {
    pub nodes: usize,
    pub state_mib: u64,
    pub params_bytes: u32,
    pub create_batch: u32,
    pub create_concurrency: u32,
    pub raft_log_tail: u64,
    /// Null: the servers' default.
    pub raft_log_tail_bytes: Option<u64>,
    pub raft_compact_after: u64,
    /// The follower's data directory was removed before it restarted.
    pub wipe: bool,
    pub data_dir: String,
    pub data_dir_kept: bool,
}

/// Where a node's Raft log stood.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct LogPosition {
    pub applied_index: u64,
    pub commit_index: u64,
    pub log_start_index: u64,
}

/// The catch-up itself.
#[derive(Clone, Debug, Serialize)]
pub struct CatchUpFigures {
    /// The leader's applied index at the restart: caught up once the
    /// follower applied it.
    pub target_index: u64,
    /// From the follower's start to its first answer at or past the target.
    pub seconds: f64,
    /// From its start to its first answer of `/v1/cluster`.
    pub first_answer_seconds: Option<f64>,
    /// The follower installed a snapshot (rather than only log entries).
    pub from_snapshot: bool,
    /// The largest `snapshots/out-*.dump` seen at the leader.
    pub snapshot_bytes: Option<u64>,
    /// The largest `snapshots/in-*` seen at the follower.
    pub received_snapshot_bytes: Option<u64>,
    /// `snapshot_bytes` per second of catch-up.
    pub snapshot_mib_per_second: Option<f64>,
    /// The leader's counters over the catch-up.
    pub leader_snapshots: SnapshotCounters,
    /// The restarted follower's counters (since its restart).
    pub follower_snapshots: SnapshotCounters,
    pub follower_applied_index: u64,
    pub leader_applied_index: u64,
    /// The leader the follower names once caught up.
    pub leader_at_end: Option<u64>,
}

/// Memory of one node around the catch-up.
#[derive(Clone, Debug, Serialize)]
pub struct NodeMemory {
    /// Leader: peak resident memory from its start to the restart (the
    /// state's creation included). Follower: that of the killed process.
    pub peak_before_bytes: u64,
    /// Leader: resident memory at the follower's restart. Follower: at
    /// the kill.
    pub rss_before_bytes: u64,
    /// The anonymous part of it (heap, not file pages).
    pub anon_before_bytes: u64,
    /// Peak resident memory over the catch-up (the restarted follower's
    /// whole life).
    pub peak_during_bytes: u64,
    /// False if the kernel would not reset the leader's peak: then
    /// `peak_during_bytes` is the peak of its whole life.
    pub peak_during_is_of_catch_up: bool,
    /// The most anonymous memory seen at a poll of the catch-up.
    pub peak_anon_during_bytes: u64,
    /// Resident memory once caught up.
    pub rss_after_bytes: u64,
    /// The anonymous part of it.
    pub anon_after_bytes: u64,
    /// CPU seconds over the catch-up.
    pub cpu_seconds_during: f64,
}

/// One node's data directory.
#[derive(Clone, Debug, Serialize)]
pub struct NodeDisk {
    pub node: u64,
    pub role: &'static str,
    #[serde(flatten)]
    pub usage: DiskUsage,
}

/// `cronmesh backup` of the leader and `cronmesh restore` of its file.
#[derive(Clone, Debug, Serialize)]
pub struct BackupRestore {
    pub backup: CommandFigures,
    pub backup_bytes: u64,
    pub restore: CommandFigures,
    /// The restored data directory.
    pub restored: DiskUsage,
}

impl CatchUpReport {
    /// The table printed without `--json`.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let s = &self.setup;
        let _ = writeln!(
            out,
            "cronmesh bench catch-up: 3 nodes, node{} down while {} MiB of params were added; --raft-log-tail {}{}, --raft-compact-after {}{}",
            self.follower,
            s.state_mib,
            s.raft_log_tail,
            s.raft_log_tail_bytes
                .map(|b| format!(", --raft-log-tail-bytes {b}"))
                .unwrap_or_default(),
            s.raft_compact_after,
            if s.wipe { "; its data directory wiped" } else { "" }
        );
        let c = &self.state_creation;
        let u = &self.catch_up;
        let at = &self.leader_at_restart;
        let mut rows: Vec<(&str, String)> = vec![
            (
                "state creation",
                format!(
                    "{} jobs of {} bytes in {} requests of {}, {} in flight: {:.1} s ({:.0} jobs/s, {:.1} MiB/s, {} retries)",
                    c.jobs, s.params_bytes, c.requests, s.create_batch, s.create_concurrency,
                    c.seconds, c.jobs_per_second, c.mib_per_second, c.retries
                ),
            ),
            (
                "leader",
                format!(
                    "node{}: applied {}, log from {} at the restart",
                    self.leader, at.applied_index, at.log_start_index
                ),
            ),
            (
                "follower",
                format!(
                    "node{}: applied {} at the kill; {}",
                    self.follower,
                    self.follower_applied_at_kill,
                    if self.log_compacted_past_follower {
                        "the log was compacted past it"
                    } else {
                        "the log still held what it missed"
                    }
                ),
            ),
            (
                "catch-up",
                format!(
                    "{:.1} s to applied {} (first answer after {}), {}",
                    u.seconds,
                    u.target_index,
                    u.first_answer_seconds
                        .map_or_else(|| "none".to_string(), |s| format!("{s:.1} s")),
                    if u.from_snapshot {
                        "from a snapshot"
                    } else {
                        "from the log"
                    }
                ),
            ),
            (
                "snapshot",
                match u.snapshot_bytes {
                    Some(bytes) => format!(
                        "{} ({:.1} MiB/s of catch-up); {} received",
                        mib(bytes),
                        u.snapshot_mib_per_second.unwrap_or_default(),
                        u.received_snapshot_bytes.map_or_else(|| "none".to_string(), mib)
                    ),
                    None => "none seen at the leader".to_string(),
                },
            ),
            (
                "snapshot counters",
                format!(
                    "leader built {}, sent {}, failed {}; follower received {}, installed {}",
                    u.leader_snapshots.built,
                    u.leader_snapshots.sent,
                    u.leader_snapshots.send_failures,
                    u.follower_snapshots.received,
                    u.follower_snapshots.installed
                ),
            ),
            ("leader memory", memory_row(&self.leader_memory)),
            ("follower memory", memory_row(&self.follower_memory)),
        ];
        if u.leader_at_end.is_some_and(|l| l != self.leader) {
            rows.push((
                "leader at the end",
                u.leader_at_end
                    .map(|l| format!("node{l}"))
                    .unwrap_or_default(),
            ));
        }
        for d in &self.disk {
            let parts: Vec<String> = d
                .usage
                .by_entry
                .iter()
                .filter(|(_, bytes)| **bytes >= 1024 * 1024)
                .map(|(name, bytes)| format!("{name} {}", mib(*bytes)))
                .collect();
            rows.push((
                "disk",
                format!(
                    "node{} ({}): {} = {:.2}x the params ({})",
                    d.node,
                    d.role,
                    mib(d.usage.bytes),
                    d.usage.bytes as f64 / c.params_bytes.max(1) as f64,
                    parts.join(", ")
                ),
            ));
        }
        if let Some(b) = &self.backup_restore {
            rows.push((
                "backup",
                format!(
                    "{} in {:.1} s, peak rss {}, {:.1} cpu s",
                    mib(b.backup_bytes),
                    b.backup.seconds,
                    mib(b.backup.peak_rss_bytes),
                    b.backup.cpu_seconds
                ),
            ));
            rows.push((
                "restore",
                format!(
                    "{:.1} s, peak rss {}, {:.1} cpu s; {} on disk",
                    b.restore.seconds,
                    mib(b.restore.peak_rss_bytes),
                    b.restore.cpu_seconds,
                    mib(b.restored.bytes)
                ),
            ));
        }
        for (name, value) in rows {
            let _ = writeln!(out, "{name:<18}{value}");
        }
        out
    }
}

/// Resident memory before, the peak during and what stays after, each
/// with its anonymous part.
fn memory_row(m: &NodeMemory) -> String {
    let rise = m.peak_during_bytes as i128 - m.rss_before_bytes as i128;
    format!(
        "before: rss {} (anon {}), peak {}; during: peak {} ({}{:.1} MiB over the rss before{}), anon {}, {:.1} cpu s; after: rss {} (anon {})",
        mib(m.rss_before_bytes),
        mib(m.anon_before_bytes),
        mib(m.peak_before_bytes),
        mib(m.peak_during_bytes),
        if rise < 0 { "-" } else { "+" },
        rise.unsigned_abs() as f64 / (1024.0 * 1024.0),
        if m.peak_during_is_of_catch_up {
            ""
        } else {
            "; the peak could not be reset"
        },
        mib(m.peak_anon_during_bytes),
        m.cpu_seconds_during,
        mib(m.rss_after_bytes),
        mib(m.anon_after_bytes)
    )
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_rows_say_the_rise() {
        let m = NodeMemory {
            peak_before_bytes: 300 << 20,
            rss_before_bytes: 100 << 20,
            anon_before_bytes: 80 << 20,
            peak_during_bytes: 140 << 20,
            peak_during_is_of_catch_up: true,
            peak_anon_during_bytes: 110 << 20,
            rss_after_bytes: 120 << 20,
            anon_after_bytes: 100 << 20,
            cpu_seconds_during: 2.5,
        };
        let row = memory_row(&m);
        assert!(row.contains("(+40.0 MiB over"), "{row}");
        assert!(row.contains("peak 300.0 MiB"), "{row}");
        assert!(row.contains("rss 100.0 MiB (anon 80.0 MiB)"), "{row}");
        let lower = NodeMemory {
            peak_during_bytes: 90 << 20,
            peak_during_is_of_catch_up: false,
            ..m
        };
        let row = memory_row(&lower);
        assert!(
            row.contains("(-10.0 MiB") && row.contains("could not be reset"),
            "{row}"
        );
    }
}
