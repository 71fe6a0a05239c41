//! How the follower of `--kill-follower-at` / `--restart-follower-at`
//! caught up under the bench's load: how long from its restart until it
//! had applied what the leader had applied at that moment, and whether
//! the leader's log tail served it or a snapshot had to.
//!
//! Pure figures from what [`super::follower_events`] read on the nodes'
//! `/v1/cluster`; the snapshot counters there count since each process
//! started, so the follower's "before" is its killed incarnation's and
//! its "after" the restarted one's.

use std::time::Duration;

use protocol::api::SnapshotCounters;
use serde::Serialize;

/// The follower when it was killed and the leader when it was restarted.
#[derive(Clone, Copy, Debug, Default)]
pub struct AtRestart {
    pub follower: u64,
    pub leader: u64,
    /// From the kill to the restart.
    pub down: Duration,
    /// The follower's applied index when killed: it restarts from there.
    pub follower_applied: u64,
    /// The killed incarnation's counters.
    pub follower_snapshots: SnapshotCounters,
    /// The leader's `applied_index`, `log_start_index` and counters just
    /// before the restart.
    pub leader_applied: u64,
    pub leader_log_start: u64,
    pub leader_snapshots: SnapshotCounters,
}

/// What polling the nodes after the restart saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct Polled {
    /// From the restart to the first answer with the follower's applied
    /// index at the target; `None` if that did not happen in time.
    pub caught_up_after: Option<Duration>,
    /// The follower's last answer: its applied index and counters.
    pub follower_applied: Option<u64>,
    pub follower_snapshots: Option<SnapshotCounters>,
    /// The leader's counters once the follower had caught up (or gave up).
    pub leader_snapshots: Option<SnapshotCounters>,
}

/// The report of the restarted follower.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FollowerCatchUp {
    pub follower: u64,
    /// The leader at the restart, whose figures these are.
    pub leader: u64,
    pub down_seconds: f64,
    pub follower_applied_index_at_kill: u64,
    /// The target: the follower has caught up once it applied this.
    pub leader_applied_index_at_restart: u64,
    pub leader_log_start_index_at_restart: u64,
    /// Entries in the leader's log up to its applied index at the restart
    /// (`applied - log_start + 1`): the size of its tail then, in entries.
    pub leader_log_entries_at_restart: u64,
    /// Entries the follower missed while down.
    pub entries_behind: u64,
    /// The log's growth while the follower was down: how fast the tail
    /// fills at this load.
    pub entries_per_second_while_down: f64,
    /// From the restart until the follower's applied index reached the
    /// target (polled every 100 ms); null if it did not in time.
    pub catch_up_ms: Option<f64>,
    pub follower_applied_index_after: Option<u64>,
    pub leader_snapshots_sent_before: u64,
    pub leader_snapshots_sent_after: Option<u64>,
    /// Of the killed incarnation, since its start.
    pub follower_snapshots_installed_before: u64,
    /// Of the restarted incarnation, since its restart.
    pub follower_snapshots_installed_after: Option<u64>,
    /// The leader still held the entry after the follower's applied index
    /// when the follower came back.
    pub log_tail_covered: bool,
    /// Caught up, with the tail covering it, no snapshot sent by the
    /// leader and none installed by the follower.
    pub served_from_log: bool,
}

/// Whether the leader's log, starting at `log_start`, still holds every
/// entry a follower that applied `follower_applied` needs: the next one
/// and on. (`log_start <= follower_applied` would be the stricter test;
/// the entry at `follower_applied` itself is not needed.)
pub fn tail_covers(log_start: u64, follower_applied: u64) -> bool {
    log_start <= follower_applied.saturating_add(1)
}

/// Entries in a log from `log_start` to `applied`, both included.
pub fn log_entries(log_start: u64, applied: u64) -> u64 {
    (applied + 1).saturating_sub(log_start)
}

/// The report from the state at the restart and what the polling saw.
pub fn figures(at: &AtRestart, polled: &Polled) -> FollowerCatchUp {
    let down_seconds = at.down.as_secs_f64();
    let entries_behind = at.leader_applied.saturating_sub(at.follower_applied);
    let sent_after = polled.leader_snapshots.map(|s| s.sent);
    let installed_after = polled.follower_snapshots.map(|s| s.installed);
    let covered = tail_covers(at.leader_log_start, at.follower_applied);
    let no_snapshot = sent_after.is_some_and(|sent| sent <= at.leader_snapshots.sent)
        && installed_after == Some(0);
    FollowerCatchUp {
        follower: at.follower,
        leader: at.leader,
        down_seconds,
        follower_applied_index_at_kill: at.follower_applied,
        leader_applied_index_at_restart: at.leader_applied,
        leader_log_start_index_at_restart: at.leader_log_start,
        leader_log_entries_at_restart: log_entries(at.leader_log_start, at.leader_applied),
        entries_behind,
        entries_per_second_while_down: if down_seconds > 0.0 {
            entries_behind as f64 / down_seconds
        } else {
            0.0
        },
        catch_up_ms: polled.caught_up_after.map(|d| d.as_secs_f64() * 1e3),
        follower_applied_index_after: polled.follower_applied,
        leader_snapshots_sent_before: at.leader_snapshots.sent,
        leader_snapshots_sent_after: sent_after,
        follower_snapshots_installed_before: at.follower_snapshots.installed,
        follower_snapshots_installed_after: installed_after,
        log_tail_covered: covered,
        served_from_log: polled.caught_up_after.is_some() && covered && no_snapshot,
    }
}

/// The table rows of the restarted follower.
pub fn rows(c: &FollowerCatchUp) -> Vec<(&'static str, String)> {
    let or_unknown = |n: Option<u64>| n.map_or_else(|| "unknown".to_string(), |n| n.to_string());
    vec![
        (
            "caught up",
            match c.catch_up_ms {
                Some(ms) => format!(
                    "in {ms:.0} ms (node{} applied index {} of node{}'s {})",
                    c.follower,
                    or_unknown(c.follower_applied_index_after),
                    c.leader,
                    c.leader_applied_index_at_restart
                ),
                None => format!(
                    "no: node{} at applied index {} of {}",
                    c.follower,
                    or_unknown(c.follower_applied_index_after),
                    c.leader_applied_index_at_restart
                ),
            },
        ),
        (
            "down",
            format!(
                "{:.1} s, {} entries behind ({:.0} entries/s)",
                c.down_seconds, c.entries_behind, c.entries_per_second_while_down
            ),
        ),
        (
            "leader's log",
            format!(
                "starts at {} at the restart ({} entries to its applied index); follower at {}",
                c.leader_log_start_index_at_restart,
                c.leader_log_entries_at_restart,
                c.follower_applied_index_at_kill
            ),
        ),
        (
            "snapshots",
            format!(
                "leader sent {} -> {}, follower installed {} -> {}",
                c.leader_snapshots_sent_before,
                or_unknown(c.leader_snapshots_sent_after),
                c.follower_snapshots_installed_before,
                or_unknown(c.follower_snapshots_installed_after)
            ),
        ),
        (
            "served from",
            if c.served_from_log {
                "the log tail".to_string()
            } else if c.catch_up_ms.is_none() {
                "unknown (not caught up)".to_string()
            } else {
                "a snapshot".to_string()
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_restart() -> AtRestart {
        AtRestart {
            follower: 3,
            leader: 1,
            down: Duration::from_secs(10),
            follower_applied: 1_000,
            leader_applied: 6_000,
            leader_log_start: 900,
            leader_snapshots: SnapshotCounters {
                sent: 2,
                ..SnapshotCounters::default()
            },
            ..AtRestart::default()
        }
    }

    fn polled(sent: u64, installed: u64) -> Polled {
        Polled {
            caught_up_after: Some(Duration::from_millis(1_250)),
            follower_applied: Some(6_010),
            follower_snapshots: Some(SnapshotCounters {
                installed,
                ..SnapshotCounters::default()
            }),
            leader_snapshots: Some(SnapshotCounters {
                sent,
                ..SnapshotCounters::default()
            }),
        }
    }

    #[test]
    fn the_tail_covers_the_next_entry() {
        assert!(tail_covers(900, 1_000));
        assert!(tail_covers(1_001, 1_000));
        assert!(!tail_covers(1_002, 1_000));
        assert_eq!(log_entries(900, 6_000), 5_101);
        assert_eq!(log_entries(7_000, 6_000), 0);
    }

    #[test]
    fn served_from_the_log() {
        let f = figures(&at_restart(), &polled(2, 0));
        assert!(f.log_tail_covered && f.served_from_log);
        assert_eq!(f.catch_up_ms, Some(1_250.0));
        assert_eq!(
            (f.entries_behind, f.leader_log_entries_at_restart),
            (5_000, 5_101)
        );
        assert_eq!(f.entries_per_second_while_down, 500.0);
        assert_eq!(f.leader_snapshots_sent_after, Some(2));
        assert!(rows(&f).iter().any(|(_, v)| v == "the log tail"));
    }

    #[test]
    fn a_snapshot_or_no_catch_up_is_not_the_log() {
        assert!(!figures(&at_restart(), &polled(3, 0)).served_from_log);
        assert!(!figures(&at_restart(), &polled(2, 1)).served_from_log);
        let compacted = AtRestart {
            leader_log_start: 2_000,
            ..at_restart()
        };
        let f = figures(&compacted, &polled(2, 0));
        assert!(!f.log_tail_covered && !f.served_from_log);
        let late = Polled {
            caught_up_after: None,
            ..polled(2, 0)
        };
        let f = figures(&at_restart(), &late);
        assert!(!f.served_from_log && f.catch_up_ms.is_none());
        let unknown = Polled {
            leader_snapshots: None,
            ..polled(2, 0)
        };
        assert!(!figures(&at_restart(), &unknown).served_from_log);
    }
}
