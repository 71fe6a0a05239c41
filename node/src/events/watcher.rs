//! The leader and the executor set are not in the log: they are sampled
//! every [`WATCH_INTERVAL`] and each change is published once (and a
//! change of leader counted for `/metrics`).

use std::{collections::HashMap, time::Duration};

use actix::Addr;
use actors::router::Router;
use membership::Membership;
use protocol::api::ExecutorInfo;

use super::{Event, EventFeed, LeaderChange};
use crate::{consensus::Consensus, metrics::Metrics};

pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// What was last published, to publish only what changed.
#[derive(Default)]
pub struct WatcherCore {
    leader: Option<LeaderChange>,
    /// By endpoint and whether it is verified (an unverified member may
    /// claim a verified one's endpoint; each is its own row): the
    /// executor's liveness and load when last published.
    executors: HashMap<(String, bool), (bool, u32)>,
}

impl WatcherCore {
    /// The events that take the last published picture to this one.
    pub fn observe(&mut self, leader: LeaderChange, executors: Vec<ExecutorInfo>) -> Vec<Event> {
        let mut events = Vec::new();
        if self.leader.as_ref() != Some(&leader) {
            self.leader = Some(leader.clone());
            events.push(Event::Leader(leader));
        }
        for executor in executors {
            let now = (executor.alive, executor.running);
            let key = (executor.endpoint.clone(), executor.verified);
            if self.executors.insert(key, now) != Some(now) {
                events.push(Event::Executor(executor));
            }
        }
        events
    }
}

/// Samples until the feed's node stops (the task is dropped with its runtime).
pub async fn watch(
    feed: EventFeed,
    metrics: Metrics,
    consensus: Consensus,
    router: Addr<Router>,
    membership: Option<Membership>,
) {
    let mut core = WatcherCore::default();
    let mut ticks = tokio::time::interval(WATCH_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let state = consensus.leader_state();
        let leader = LeaderChange {
            leader_id: state.leader_id,
            term: state.term,
        };
        let Ok(executors) = crate::discovery::executor_list(&router, membership.as_ref()).await
        else {
            return;
        };
        let first = core.leader.is_none();
        for event in core.observe(leader, executors) {
            if matches!(event, Event::Leader(_)) && !first {
                metrics.leader_changed();
            }
            feed.publish(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn executor(endpoint: &str, alive: bool, running: u32) -> ExecutorInfo {
        ExecutorInfo {
            id: endpoint.into(),
            group: "default".into(),
            endpoint: endpoint.into(),
            handlers: vec![],
            weight: 1,
            labels: Default::default(),
            running,
            alive,
            last_seen: None,
            max_concurrent: 0,
            verified: true,
        }
    }

    fn leader(id: u64, term: u64) -> LeaderChange {
        LeaderChange {
            leader_id: Some(id),
            term,
        }
    }

    #[test]
    fn publishes_the_first_picture_then_only_changes() {
        let mut core = WatcherCore::default();
        let first = core.observe(leader(1, 1), vec![executor("http://a", true, 0)]);
        assert_eq!(first.len(), 2);
        assert!(core
            .observe(leader(1, 1), vec![executor("http://a", true, 0)])
            .is_empty());

        let died = core.observe(leader(1, 1), vec![executor("http://a", false, 0)]);
        assert_eq!(died, vec![Event::Executor(executor("http://a", false, 0))]);

        let elected = core.observe(leader(2, 2), vec![executor("http://a", false, 0)]);
        assert_eq!(elected, vec![Event::Leader(leader(2, 2))]);
    }
}
