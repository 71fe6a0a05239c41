//! Helpers for tests of this crate and of its users: sample members, and
//! polling with a deadline instead of fixed sleeps.
//! [`MembershipConfig::fast_for_tests`](crate::MembershipConfig::fast_for_tests)
//! gives the fast timings.

use std::future::Future;
use std::time::Duration;

use futures::{Stream, StreamExt};

use crate::member::{ExecutorInfo, Member, MembershipChange, SchedulerInfo};

/// How often [`eventually`] polls.
const POLL: Duration = Duration::from_millis(20);

/// A scheduler member with made-up addresses derived from `node_id`.
pub fn scheduler(node_id: u64) -> Member {
    Member::Scheduler(SchedulerInfo {
        node_id,
        api_url: format!("http://127.0.0.1:{}", 17_000 + node_id),
        raft_addr: format!("127.0.0.1:{}", 18_000 + node_id),
        leader: false,
        term: 0,
    })
}

/// An executor of group `default` at `endpoint`.
pub fn executor(endpoint: &str) -> Member {
    Member::Executor(ExecutorInfo::new("default", endpoint))
}

/// Polls `check` until it holds or `deadline` passes; tells which.
pub async fn eventually<F, Fut>(deadline: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The next change of `stream` matching `pred` within `deadline`, skipping
/// the others; `None` on timeout or when the stream ends.
pub async fn next_change<S, P>(
    stream: &mut S,
    deadline: Duration,
    mut pred: P,
) -> Option<MembershipChange>
where
    S: Stream<Item = MembershipChange> + Unpin,
    P: FnMut(&MembershipChange) -> bool,
{
    tokio::time::timeout(deadline, async {
        while let Some(change) = stream.next().await {
            if pred(&change) {
                return Some(change);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}
