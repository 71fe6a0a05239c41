//! Executors found by gossip: the live verified ones become the Router's
//! executor set, and those declared dead have their runs failed over. Also
//! which of them a job's runs may go to now (`placement`).
//!
//! Only members whose announcement verifies (signed with the cluster's
//! gossip key, see `membership::signing`) count: an unverified executor is
//! listed by `GET /v1/executors` with `verified: false`, but it gets no
//! runs, and neither its joining, its restarts nor its death touch the runs
//! of a verified executor, even one whose endpoint it claims.

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
            verified: true,
            ..
        } = state
        else {
            // Schedulers, and executors whose announcement is not signed
            // with the cluster key: an impersonator of a verified
            // executor's endpoint must not make its runs fail over.
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

/// The static executors and every live verified gossiped one, without
/// duplicates. Unverified members are left out: whoever reaches the gossip
/// port could otherwise draw runs (and their commands and params) to
/// itself, or replace a real executor's group, weight and handlers by
/// announcing its endpoint.
pub fn live_executors(statics: &[ExecutorEntry], members: &[MemberState]) -> Vec<ExecutorEntry> {
    let mut by_endpoint: BTreeMap<String, ExecutorEntry> = statics
        .iter()
        .map(|e| (e.endpoint.clone(), e.clone()))
        .collect();
    for state in members.iter().filter(|m| m.alive && m.verified) {
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

/// Every executor this node knows: the Router's (with their load), the
/// gossiped ones the Router no longer routes to because they died, and the
/// unverified ones it never routes to, each in a row of its own (an
/// unverified member claiming a verified one's endpoint changes nothing of
/// that one's row).
pub async fn executor_list(
    router: &Addr<Router>,
    membership: Option<&Membership>,
) -> Result<Vec<ExecutorInfo>, actix::MailboxError> {
    let listed = router.send(ListExecutors).await?;
    Ok(match membership {
        Some(membership) => with_members(listed, &membership.members().await),
        None => listed,
    })
}

/// The Router's executors `listed`, with the liveness of the gossiped ones
/// and a row for every other gossiped executor.
fn with_members(mut listed: Vec<ExecutorInfo>, members: &[MemberState]) -> Vec<ExecutorInfo> {
    for member in members {
        let Member::Executor(e) = &member.member else {
            continue;
        };
        let row = listed
            .iter_mut()
            .find(|x| member.verified && x.verified && x.endpoint == e.endpoint);
        match row {
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
                verified: member.verified,
            }),
        }
    }
    listed
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

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = "http://10.0.0.1:7080";

    fn state(gossip_id: &str, member: membership::ExecutorInfo, verified: bool) -> MemberState {
        MemberState {
            member: Member::Executor(member),
            alive: true,
            last_seen: None,
            gossip_id: gossip_id.into(),
            verified,
        }
    }

    fn real() -> MemberState {
        let mut e = membership::ExecutorInfo::new("billing", REAL);
        e.weight = 2;
        state("executor-real:1:10.0.0.1:7072", e, true)
    }

    fn impersonator(endpoint: &str) -> MemberState {
        let mut e = membership::ExecutorInfo::new("billing", endpoint);
        e.weight = u32::MAX;
        e.group = "stolen".into();
        e.handlers = vec!["*".into()];
        state("rogue:1:10.0.0.66:7072", e, false)
    }

    #[test]
    fn the_router_gets_only_verified_executors() {
        for members in [
            vec![real(), impersonator(REAL)],
            vec![impersonator(REAL), real()],
        ] {
            let live = live_executors(&[], &members);
            assert_eq!(live.len(), 1, "{live:?}");
            assert_eq!(live[0].group, "billing");
            assert_eq!(live[0].weight, 2);
        }
        let own = live_executors(&[], &[real(), impersonator("http://10.0.0.66:7080")]);
        assert_eq!(
            own.iter().map(|e| e.endpoint.as_str()).collect::<Vec<_>>(),
            [REAL]
        );
    }

    #[test]
    fn an_impersonator_is_listed_apart_and_unverified() {
        let routed: Vec<ExecutorInfo> = {
            let entry = &live_executors(&[], &[real()])[0];
            vec![ExecutorInfo {
                id: entry.id.clone(),
                group: entry.group.clone(),
                endpoint: entry.endpoint.clone(),
                handlers: entry.handlers.clone(),
                weight: entry.weight,
                labels: entry.labels.clone(),
                running: 0,
                alive: true,
                last_seen: None,
                max_concurrent: 0,
                verified: true,
            }]
        };
        let mut dead_rogue = impersonator(REAL);
        dead_rogue.alive = false;
        let listed = with_members(routed, &[real(), dead_rogue]);
        assert_eq!(listed.len(), 2, "{listed:?}");
        let real_row = listed.iter().find(|e| e.verified).unwrap();
        assert!(
            real_row.alive,
            "the impersonator's death is not the real one's"
        );
        assert_eq!((real_row.group.as_str(), real_row.weight), ("billing", 2));
        let rogue_row = listed.iter().find(|e| !e.verified).unwrap();
        assert_eq!(
            (rogue_row.group.as_str(), rogue_row.weight),
            ("stolen", u32::MAX)
        );
    }
}
