//! Executors found by gossip: the live ones become the Router's executor
//! set, and those declared dead have their runs failed over.

use std::{collections::BTreeMap, time::Duration};

use actix::Addr;
use actors::{
    dispatcher::Dispatcher,
    messages::{ExecutorLost, SetExecutors},
    router::{ExecutorEntry, Router},
};
use futures::StreamExt;
use membership::{Member, MemberState, Membership, MembershipChange};

use crate::consensus::Consensus;

/// Keeps the Router's executors equal to the static ones plus the live
/// gossiped ones, until the membership stops.
pub async fn follow_executors(
    membership: Membership,
    statics: Vec<ExecutorEntry>,
    router: Addr<Router>,
    dispatcher: Addr<Dispatcher>,
) {
    let mut changes = Box::pin(membership.subscribe());
    // The gossip instance of each executor: a new one under the same
    // endpoint is a restart, and the old instance's runs went with it.
    let mut instances: BTreeMap<String, String> = BTreeMap::new();
    router.do_send(SetExecutors(live_executors(
        &statics,
        &membership.members().await,
    )));
    while let Some(change) = changes.next().await {
        router.do_send(SetExecutors(live_executors(
            &statics,
            &membership.members().await,
        )));
        let (state, removed) = match &change {
            MembershipChange::Removed(state) => (state, true),
            MembershipChange::Added(state) | MembershipChange::Updated(state) => (state, false),
        };
        let MemberState {
            member: Member::Executor(executor),
            gossip_id,
            ..
        } = state
        else {
            continue;
        };
        let previous = instances.insert(executor.endpoint.clone(), gossip_id.clone());
        let restarted = previous.is_some_and(|p| p != *gossip_id);
        if removed || restarted {
            let why = if removed {
                "declared dead"
            } else {
                "restarted"
            };
            tracing::warn!(endpoint = %executor.endpoint, why, "executor lost its runs; failing them over");
            dispatcher.do_send(ExecutorLost(executor.endpoint.clone()));
        }
    }
}

/// The static executors and every live gossiped one, without duplicates.
pub fn live_executors(statics: &[ExecutorEntry], members: &[MemberState]) -> Vec<ExecutorEntry> {
    let mut by_endpoint: BTreeMap<String, ExecutorEntry> = statics
        .iter()
        .map(|e| (e.endpoint.clone(), e.clone()))
        .collect();
    for state in members.iter().filter(|m| m.alive) {
        if let Member::Executor(e) = &state.member {
            by_endpoint.insert(
                e.endpoint.clone(),
                ExecutorEntry {
                    id: e.id.clone(),
                    group: e.group.clone(),
                    endpoint: e.endpoint.clone(),
                    weight: e.weight,
                    labels: e.labels.clone(),
                    handlers: e.handlers.clone(),
                },
            );
        }
    }
    by_endpoint.into_values().collect()
}

/// Keeps this scheduler's gossiped `leader` flag equal to whether it leads.
pub async fn announce_leadership(membership: Membership, mut me: Member, consensus: Consensus) {
    loop {
        let leading = consensus.leader_state().ready_to_lead;
        if let Member::Scheduler(info) = &mut me {
            if info.leader != leading {
                info.leader = leading;
                membership.update_self(me.clone()).await;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Shortest wait, after gossip starts, before a node may fire: a first
/// exchange with the seeds brings the whole membership at once.
const DISCOVERY_MIN: Duration = Duration::from_millis(300);
/// Longest wait: a cluster with no executor yet does not hold firing back.
const DISCOVERY_MAX: Duration = Duration::from_secs(3);

/// Turns `discovered` true once gossip has had its chance to find the
/// executors (one seen and `DISCOVERY_MIN` passed, or `DISCOVERY_MAX`
/// passed), so a restarted node does not fire into an empty executor list
/// and fail a whole slot with "no executor can take the run".
pub async fn settle(membership: Membership, discovered: tokio::sync::watch::Sender<bool>) {
    let started = tokio::time::Instant::now();
    tokio::time::sleep(DISCOVERY_MIN).await;
    while started.elapsed() < DISCOVERY_MAX {
        let executors = membership
            .members()
            .await
            .iter()
            .filter(|m| matches!(m.member, Member::Executor(_)))
            .count();
        if executors > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!(
        waited_ms = started.elapsed().as_millis(),
        "gossip discovery settled; firing may start"
    );
    let _ = discovered.send(true);
}
