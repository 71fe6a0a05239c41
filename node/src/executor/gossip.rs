//! The executor in the cluster's gossip: it announces itself (group,
//! endpoint, handlers, weight, labels, running count) so schedulers route
//! to it while it is alive, it fences itself when it has seen no live
//! scheduler for too long, and it raises its leader-term fence to the
//! highest term any scheduler gossips.
//!
//! With the cluster secret, its announcement is signed, and only schedulers
//! whose announcement verifies count: a fake scheduler (anyone who reaches
//! the gossip port) neither keeps it from fencing itself nor raises its
//! term fence to lock the real leaders out.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use membership::{ExecutorInfo, Member, MemberState, Membership, MembershipConfig};

use super::{agent::Agent, config::GossipSettings};

/// How often the running count is refreshed, the fence checked and the
/// schedulers' terms read.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// Joins the gossip and keeps this executor's entry current until the
/// membership is shut down.
pub async fn join(
    settings: &GossipSettings,
    agent: Arc<Agent>,
    me: ExecutorInfo,
) -> anyhow::Result<Membership> {
    let mut config = MembershipConfig::new(format!("executor-{}", me.endpoint), settings.listen)
        .with_seeds(settings.seeds.clone());
    config.cluster_id = settings.cluster.clone();
    if let Some(secret) = &agent.config().secret {
        config = config.with_secret(secret);
    }
    if settings.listen.ip().is_unspecified() {
        // Bound to every interface: peers reach it at the endpoint's host.
        let host = url::Url::parse(&me.endpoint)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string));
        config.gossip_advertise = host
            .and_then(|h| h.parse().ok())
            .map(|ip| std::net::SocketAddr::new(ip, 0));
    }
    let membership = Membership::start(config, Member::Executor(me.clone())).await?;
    tracing::info!(gossip = %membership.gossip_addr(), seeds = ?settings.seeds, "executor joined the gossip");
    tokio::spawn(watch(membership.clone(), agent, me, settings.fence_after));
    Ok(membership)
}

async fn watch(
    membership: Membership,
    agent: Arc<Agent>,
    mut me: ExecutorInfo,
    fence_after: Duration,
) {
    let mut last_scheduler = Instant::now();
    let mut fenced = false;
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let running = u32::try_from(agent.running_count()).unwrap_or(u32::MAX);
        if running != me.running {
            me.running = running;
            membership.update_self(Member::Executor(me.clone())).await;
        }
        let members = membership.members().await;
        if let Some(term) = newest_term(&members) {
            agent.learn_term(term);
        }
        if scheduler_in_sight(&members) {
            last_scheduler = Instant::now();
            fenced = false;
        } else if !fenced && last_scheduler.elapsed() >= fence_after {
            let stopped = agent.fence();
            fenced = true;
            tracing::warn!(
                stopped,
                after = ?fence_after,
                "no scheduler in sight: fenced, running work stopped"
            );
        }
    }
}

/// The highest term a verified scheduler gossips. Dead schedulers count
/// too: a term they reached was a real one. Unverified ones do not: a fake
/// term of `u64::MAX` would make the executor refuse every real leader.
fn newest_term(members: &[MemberState]) -> Option<u64> {
    members
        .iter()
        .filter(|m| m.verified)
        .filter_map(|m| m.member.as_scheduler())
        .map(|s| s.term)
        .max()
}

/// Whether a live scheduler whose announcement verifies is in sight: only
/// then is the executor not cut off from the cluster.
fn scheduler_in_sight(members: &[MemberState]) -> bool {
    members
        .iter()
        .any(|m| m.alive && m.verified && matches!(m.member, Member::Scheduler(_)))
}

#[cfg(test)]
mod tests {
    use membership::SchedulerInfo;

    use super::*;

    fn scheduler(term: u64, alive: bool, verified: bool) -> MemberState {
        MemberState {
            member: Member::Scheduler(SchedulerInfo {
                node_id: 1,
                api_url: "http://10.0.0.1:7070".into(),
                raft_addr: "10.0.0.1:7071".into(),
                leader: true,
                term,
            }),
            alive,
            last_seen: None,
            gossip_id: "scheduler-1:1:10.0.0.1:7072".into(),
            verified,
        }
    }

    fn me() -> MemberState {
        MemberState {
            member: Member::Executor(ExecutorInfo::new("default", "http://10.0.0.9:7080")),
            alive: true,
            last_seen: None,
            gossip_id: "executor-x:1:10.0.0.9:7072".into(),
            verified: true,
        }
    }

    #[test]
    fn a_fake_scheduler_does_not_keep_the_executor_from_fencing() {
        assert!(!scheduler_in_sight(&[me(), scheduler(3, true, false)]));
        assert!(!scheduler_in_sight(&[me(), scheduler(3, false, true)]));
        assert!(scheduler_in_sight(&[
            me(),
            scheduler(3, true, false),
            scheduler(3, true, true)
        ]));
    }

    #[test]
    fn a_fake_scheduler_does_not_raise_the_term_fence() {
        let members = [
            me(),
            scheduler(u64::MAX, true, false),
            scheduler(7, false, true),
            scheduler(5, true, true),
        ];
        assert_eq!(newest_term(&members), Some(7));
        assert_eq!(newest_term(&[me(), scheduler(u64::MAX, true, false)]), None);
    }
}
