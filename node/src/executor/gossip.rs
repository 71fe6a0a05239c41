//! The executor in the cluster's gossip: it announces itself (group,
//! endpoint, handlers, weight, labels, running count) so schedulers route
//! to it while it is alive, it fences itself when it has seen no live
//! scheduler for too long, and it raises its leader-term fence to the
//! highest term any scheduler gossips.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use membership::{ExecutorInfo, Member, Membership, MembershipConfig};

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
        // Dead schedulers count too: a term they reached was a real one.
        let newest_term = members
            .iter()
            .filter_map(|m| m.member.as_scheduler())
            .map(|s| s.term)
            .max();
        if let Some(term) = newest_term {
            agent.learn_term(term);
        }
        if members
            .iter()
            .any(|m| m.alive && matches!(m.member, Member::Scheduler(_)))
        {
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
