//! Executors found by gossip: the live ones become the Router's executor
//! set, and those declared dead have their runs failed over. Also which of
//! them a job's runs may go to now (`placement`).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use tokio::sync::watch;

use actix::Addr;
use actors::{
    dispatcher::Dispatcher,
    messages::{ExecutorLost, ListExecutors, SetExecutors},
    router::{eligible, ExecutorEntry, NoMatch, Router},
};
use futures::StreamExt;
use membership::{Member, MemberState, Membership, MembershipChange};
use protocol::{api::ExecutorInfo, Job};
use serde::Serialize;

use crate::consensus::Consensus;

/// Keeps the Router's executors equal to the static ones plus the live
/// gossiped ones, until the membership stops. `discovered` turns true once
/// the Router has been given an executor: schedules may fire from then on
/// (the Router reads its mailbox in order, so it knows them before any fire).
pub async fn follow_executors(
    membership: Membership,
    statics: Vec<ExecutorEntry>,
    router: Addr<Router>,
    dispatcher: Addr<Dispatcher>,
    discovered: Arc<watch::Sender<bool>>,
) {
    let mut changes = Box::pin(membership.subscribe());
    // The gossip instance of each executor: a new one under the same
    // endpoint is a restart, and the old instance's runs went with it.
    let mut instances: BTreeMap<String, String> = BTreeMap::new();
    let set_executors = |executors: Vec<ExecutorEntry>| {
        let found = !executors.is_empty();
        router.do_send(SetExecutors(executors));
        if found && !*discovered.borrow() {
            tracing::info!("executors found; schedules may fire");
            discovered.send_replace(true);
        }
    };
    set_executors(live_executors(&statics, &membership.members().await));
    while let Some(change) = changes.next().await {
        set_executors(live_executors(&statics, &membership.members().await));
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
                    max_concurrent: e.max_concurrent,
                },
            );
        }
    }
    by_endpoint.into_values().collect()
}

/// Keeps this scheduler's gossiped `leader` flag equal to whether it
/// leads, and its `term` equal to its Raft term. Executors take the highest
/// term any scheduler gossips as their fence: once a newer leader is
/// elected, the gossip of any node in its term (a follower's too) stops
/// executors from obeying the deposed one, even before its next dispatch.
/// Raft runs with pre-vote, so a term rises only in an election a majority
/// takes part in: a node cut off from the others does not inflate it.
pub async fn announce_leadership(membership: Membership, mut me: Member, consensus: Consensus) {
    loop {
        let state = consensus.leader_state();
        if let Member::Scheduler(info) = &mut me {
            if info.leader != state.ready_to_lead || info.term != state.term {
                info.leader = state.ready_to_lead;
                info.term = state.term;
                membership.update_self(me.clone()).await;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Longest a node holds its schedules back waiting for gossip to find an
/// executor: a cluster with none yet still fires (and records why its runs
/// could not be placed).
const DISCOVERY_MAX: Duration = Duration::from_secs(3);

/// Lets schedules fire after `DISCOVERY_MAX` even if no executor was found.
pub async fn discovery_deadline(discovered: Arc<watch::Sender<bool>>) {
    tokio::time::sleep(DISCOVERY_MAX).await;
    if !*discovered.borrow() {
        tracing::warn!(
            waited_ms = DISCOVERY_MAX.as_millis(),
            "no executor found by gossip yet; schedules fire anyway"
        );
        discovered.send_replace(true);
    }
}

/// Every executor this node knows: the Router's (with their load), and the
/// gossiped ones the Router no longer routes to because they died.
pub async fn executor_list(
    router: &Addr<Router>,
    membership: Option<&Membership>,
) -> Result<Vec<ExecutorInfo>, actix::MailboxError> {
    let mut listed = router.send(ListExecutors).await?;
    let Some(membership) = membership else {
        return Ok(listed);
    };
    for member in membership.members().await {
        let Member::Executor(e) = &member.member else {
            continue;
        };
        match listed.iter_mut().find(|x| x.endpoint == e.endpoint) {
            Some(info) => {
                info.alive = member.alive;
                info.last_seen = member.last_seen;
                info.running = info.running.max(e.running);
            }
            None => listed.push(ExecutorInfo {
                id: e.id.clone(),
                group: e.group.clone(),
                endpoint: e.endpoint.clone(),
                handlers: e.handlers.clone(),
                weight: e.weight,
                labels: e.labels.clone(),
                running: e.running,
                alive: member.alive,
                last_seen: member.last_seen,
                max_concurrent: e.max_concurrent,
            }),
        }
    }
    Ok(listed)
}

/// `GET /v1/jobs/{id}/placement`: the live executors a run of the job may
/// go to now, by group, selector and handler, as the Router would choose.
#[derive(Clone, Debug, Serialize)]
pub struct Placement {
    /// Endpoints of the executors that may take its runs, in id order;
    /// empty for an HTTP target, which the scheduler calls itself.
    pub executors: Vec<String>,
    /// Why none may (the error a run placed now would fail with); `null`
    /// when one may, or for an HTTP target.
    pub problem: Option<String>,
}

/// Where the job's runs may go, checked against the Router's executors.
pub async fn placement(router: &Addr<Router>, job: &Job) -> Result<Placement, actix::MailboxError> {
    let entries: Vec<ExecutorEntry> = router
        .send(ListExecutors)
        .await?
        .into_iter()
        .map(|e| ExecutorEntry {
            id: e.id,
            group: e.group,
            endpoint: e.endpoint,
            weight: e.weight,
            labels: e.labels,
            handlers: e.handlers,
            max_concurrent: e.max_concurrent,
        })
        .collect();
    Ok(Placement {
        executors: entries
            .iter()
            .filter(|e| eligible(e, job))
            .map(|e| e.endpoint.clone())
            .collect(),
        problem: NoMatch::diagnose(&entries, job).map(|why| why.to_string()),
    })
}
