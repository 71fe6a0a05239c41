//! Failover events (`--kill-leader-at`, `--restart-leader-at`,
//! `--kill-follower-at`, `--restart-follower-at`) and what they cost: how long nothing was dispatched, how long until the first
//! run after them, and the slots around them that came late, were
//! skipped, lost or doubled.

use serde::Serialize;

use super::{
    analysis::{SlotFigures, Span},
    clock::Nanos,
    follower_catch_up::FollowerCatchUp,
};

/// Seconds of receipts before an event that the gap search looks at, and
/// after the first receipt that follows it.
const GAP_MARGIN: Nanos = 2_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// kill -9 of the leader; the others take over; it restarts at once.
    KillLeader,
    /// kill -9 of the leader and its restart; with one node nobody else
    /// can fire meanwhile.
    RestartLeader,
    /// kill -9 of a follower, which stays down until `RestartFollower`.
    KillFollower,
    /// The restart of the follower `KillFollower` killed, on its data
    /// directory; timed until it has caught up with the leader.
    RestartFollower,
}

/// One event as it happened.
#[derive(Clone, Debug)]
pub struct Event {
    pub kind: EventKind,
    /// Seconds into the window it was planned for.
    pub at_seconds: f64,
    /// The leader that was killed (the follower, for follower events).
    pub node_id: u64,
    /// When it was killed. For `RestartFollower`, nothing is killed: the
    /// restart's time, so its slots are counted from it.
    pub killed_at: Nanos,
    /// When the killed node was started again (for `KillFollower`, which
    /// does not restart it, the kill's time).
    pub restarted_at: Nanos,
    /// The leader the nodes agreed on afterwards, if they did in time.
    pub leader_after: Option<u64>,
    /// For `RestartFollower`: how the follower caught up, once known.
    pub catch_up: Option<FollowerCatchUp>,
}

/// The report of one event.
#[derive(Clone, Debug, Serialize)]
pub struct FailoverFigures {
    pub event: EventKind,
    pub at_seconds: f64,
    pub killed_node: u64,
    pub leader_after: Option<u64>,
    /// Largest gap between consecutive receipts (any executor) from 2 s
    /// before the kill to 2 s after the first receipt that follows it.
    pub time_without_dispatch_ms: Option<f64>,
    pub kill_to_first_receipt_ms: Option<f64>,
    /// For a restart: from the new process's start to the first receipt.
    pub restart_to_first_receipt_ms: Option<f64>,
    /// The slots counted below: scheduled from 1 s before the kill to the
    /// next event or the window's end, in seconds into the window.
    pub slots_from_seconds: f64,
    pub slots_until_seconds: f64,
    pub slots_expected: u64,
    /// Received more than 1 s after their time.
    pub late_slots: u64,
    /// Run records with status `skipped`.
    pub skipped_slots: u64,
    pub lost_slots: u64,
    pub duplicate_slots: u64,
    /// For `restart_follower`: how it caught up; null otherwise.
    pub follower_catch_up: Option<FollowerCatchUp>,
}

/// The figures of `event`; `received` holds every receipt time, sorted;
/// `slots` are the slot figures of `span`; `skipped` the (job, slot) of
/// skipped run records.
pub fn figures(
    event: &Event,
    window_start: Nanos,
    received: &[Nanos],
    span: Span,
    slots: &SlotFigures,
    skipped: &[(u32, Nanos)],
) -> FailoverFigures {
    let first_after = |at: Nanos| received.iter().copied().find(|t| *t > at);
    let ms = |n: Nanos| n as f64 / 1e6;
    let after_kill = first_after(event.killed_at);
    let gap = after_kill.and_then(|first| {
        let from = event.killed_at - GAP_MARGIN;
        let to = first + GAP_MARGIN;
        let around: Vec<Nanos> = received
            .iter()
            .copied()
            .filter(|t| (from..=to).contains(t))
            .collect();
        around.windows(2).map(|w| w[1] - w[0]).max()
    });
    let restart = match event.kind {
        EventKind::RestartLeader | EventKind::RestartFollower => {
            first_after(event.restarted_at).map(|first| ms(first - event.restarted_at))
        }
        EventKind::KillLeader | EventKind::KillFollower => None,
    };
    let seconds = |at: Nanos| (at - window_start) as f64 / 1e9;
    FailoverFigures {
        event: event.kind,
        at_seconds: event.at_seconds,
        killed_node: event.node_id,
        leader_after: event.leader_after,
        time_without_dispatch_ms: gap.map(ms),
        kill_to_first_receipt_ms: after_kill.map(|first| ms(first - event.killed_at)),
        restart_to_first_receipt_ms: restart,
        slots_from_seconds: seconds(span.start),
        slots_until_seconds: seconds(span.end),
        slots_expected: slots.slots_expected,
        late_slots: slots.late_slots,
        skipped_slots: skipped
            .iter()
            .filter(|(_, slot)| span.contains(*slot))
            .count() as u64,
        lost_slots: slots.lost_slots,
        duplicate_slots: slots.duplicate_slots,
        follower_catch_up: event.catch_up.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    #[test]
    fn gap_and_first_receipt() {
        let event = Event {
            kind: EventKind::RestartLeader,
            at_seconds: 1.5,
            node_id: 1,
            killed_at: 1_500 * MS,
            restarted_at: 1_510 * MS,
            leader_after: Some(1),
            catch_up: None,
        };
        // Receipts every 100 ms until the kill, then the first at 3.2 s.
        let mut received: Vec<Nanos> = (0..15).map(|i| i * 100 * MS).collect();
        received.extend([3_200 * MS, 3_300 * MS, 9_000 * MS]);
        let span = Span {
            start: 500 * MS,
            end: 10_000 * MS,
        };
        let f = figures(
            &event,
            0,
            &received,
            span,
            &SlotFigures::default(),
            &[(0, 2_000 * MS), (1, 100 * MS)],
        );
        assert_eq!(f.kill_to_first_receipt_ms, Some(1_700.0));
        assert_eq!(f.restart_to_first_receipt_ms, Some(1_690.0));
        // 1.4 s -> 3.2 s; the later 3.3 -> 9.0 gap is past the margin.
        assert_eq!(f.time_without_dispatch_ms, Some(1_800.0));
        assert_eq!(f.skipped_slots, 1);
        assert_eq!(f.slots_from_seconds, 0.5);
    }
}
