//! Turns a fire into runs: one per shard (or per executor for
//! `broadcast`), each with its executor and failover order.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use protocol::{
    job::Routing,
    run::{child_run_id, retry_run_id, slot_run_id, ShardInfo},
    Job, Run, RunStatus, Target, TriggerKind,
};

use super::{core::RouterCore, selector::NoMatch};
use crate::fire::Fire;

/// A run ready to be created, with what the dispatcher needs to deliver it.
#[derive(Clone, Debug)]
pub struct Assignment {
    pub run: Run,
    pub job: Arc<Job>,
    /// Endpoints to try, in order, if the run's executor cannot take it.
    pub fallbacks: Vec<String>,
}

pub fn assign(
    core: &mut RouterCore,
    fire: &Fire,
    job: &Arc<Job>,
    now: DateTime<Utc>,
) -> Vec<Assignment> {
    let params = fire.params.clone().unwrap_or_else(|| job.params.clone());
    let plan = |run: Run, fallbacks: Vec<String>| Assignment {
        run,
        job: job.clone(),
        fallbacks,
    };
    if let Some(reason) = &fire.skip_reason {
        let count = shard_count(job);
        return (0..count)
            .map(|i| {
                let mut run = new_run(job, fire, shard(job, i, count), &params, now);
                run.status = RunStatus::Skipped;
                run.error = Some(reason.clone());
                run.finished_at = Some(now);
                plan(run, vec![])
            })
            .collect();
    }
    if let Some(retry) = &fire.retry {
        let mut run = new_run(job, fire, retry.shard.clone(), &retry.params, now);
        run.id = retry_run_id(&retry.previous_run_id, retry.attempt);
        run.attempt = retry.attempt;
        run.retry_of = Some(retry.previous_run_id.clone());
        let route = core.route(job, run.shard.index, retry.previous_executor.as_deref());
        let fallbacks = place(core, job, &mut run, route);
        return vec![plan(run, fallbacks)];
    }
    if job.routing == Routing::Broadcast && !matches!(job.target, Target::Http { .. }) {
        let endpoints = core.broadcast(job);
        if endpoints.is_empty() {
            let mut run = new_run(job, fire, shard(job, 0, 1), &params, now);
            place(core, job, &mut run, None);
            return vec![plan(run, vec![])];
        }
        let count = endpoints.len() as u32;
        return endpoints
            .into_iter()
            .enumerate()
            .map(|(i, endpoint)| {
                let mut run = new_run(job, fire, shard(job, i as u32, count), &params, now);
                if core.has_room_at(&endpoint) {
                    core.acquire(&endpoint);
                } else {
                    // Its own executor is full: it waits for room there.
                    run.pending_reason = Some(format!(
                        "waiting for room: executor {endpoint} is running its max_concurrent"
                    ));
                }
                run.executor = Some(endpoint);
                plan(run, vec![])
            })
            .collect();
    }
    // One shard goes by the routing policy; several are spread evenly and
    // stay where they are while the group does not change.
    let routes = match job.shards {
        1 => vec![core.route(job, 0, None)],
        _ => core.assign_shards(job),
    };
    routes
        .into_iter()
        .zip(0..job.shards)
        .map(|(route, i)| {
            let mut run = new_run(job, fire, shard(job, i, job.shards), &params, now);
            let fallbacks = place(core, job, &mut run, route);
            plan(run, fallbacks)
        })
        .collect()
}

fn shard_count(job: &Job) -> u32 {
    if job.routing == Routing::Broadcast {
        1
    } else {
        job.shards
    }
}

fn shard(job: &Job, index: u32, count: u32) -> ShardInfo {
    ShardInfo {
        index,
        count,
        param: job.shard_param(index),
    }
}

/// Puts the run on its route's executor (or fails the run, saying why,
/// when no executor of the group may take it; HTTP targets go to their
/// URL) and returns its failover order.
fn place(
    core: &mut RouterCore,
    job: &Job,
    run: &mut Run,
    route: Option<super::Route>,
) -> Vec<String> {
    if let Target::Http { url, .. } = &job.target {
        run.executor = Some(url.clone());
        return Vec::new();
    }
    match route {
        Some(route) => {
            core.acquire(&route.primary);
            run.executor = Some(route.primary);
            if job.failover {
                route.fallbacks
            } else {
                Vec::new()
            }
        }
        None => match core.waiting_reason(job) {
            // Executors may take it but none has room: it is created
            // pending and waits at the scheduler (see the dispatcher).
            Some(reason) => {
                run.pending_reason = Some(reason);
                Vec::new()
            }
            None => {
                let why = NoMatch::diagnose(core.executors(), job).unwrap_or_else(|| {
                    NoMatch::EmptyGroup {
                        group: job.group().unwrap_or_default().to_string(),
                    }
                });
                run.status = RunStatus::Failed;
                run.error = Some(why.to_string());
                run.finished_at = Some(run.created_at);
                Vec::new()
            }
        },
    }
}

fn new_run(job: &Job, fire: &Fire, shard: ShardInfo, params: &str, now: DateTime<Utc>) -> Run {
    // Scheduled slots are named by (job, slot, shard) so no leader can
    // create a second run for them; other runs are named by the log.
    // Child runs are named by their parent's fire, so a second judgment
    // of the same fire (a new leader) creates nothing.
    let id = match (fire.trigger, &fire.parent) {
        (TriggerKind::Schedule | TriggerKind::Misfire, _) => {
            slot_run_id(&job.namespace, &job.id, fire.scheduled_at, shard.index)
        }
        (TriggerKind::Child, Some(parent)) => child_run_id(
            &job.namespace,
            &job.id,
            &parent.job_id,
            parent.scheduled_at,
            parent.trigger,
            shard.index,
        ),
        _ => String::new(),
    };
    Run {
        id,
        job_id: job.id.clone(),
        namespace: job.namespace.clone(),
        scheduled_at: fire.scheduled_at,
        trigger: fire.trigger,
        shard,
        attempt: 1,
        status: RunStatus::Pending,
        executor: None,
        created_at: now,
        started_at: None,
        finished_at: None,
        exit_code: None,
        output: String::new(),
        error: None,
        params: params.to_string(),
        retry_of: None,
        pending_reason: None,
        parent_run_ids: fire
            .parent
            .as_ref()
            .map(|p| p.run_ids.clone())
            .unwrap_or_default(),
        parent_scheduled_at: fire.parent.as_ref().map(|p| p.scheduled_at),
        parent_job_id: fire.parent.as_ref().map(|p| p.job_id.clone()),
        alerts: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::router::ExecutorEntry;

    fn router() -> RouterCore {
        let mut core = RouterCore::new(1);
        core.set_executors(
            [("a", "eu-1"), ("b", "us-1")]
                .iter()
                .map(|(id, zone)| ExecutorEntry {
                    id: id.to_string(),
                    group: "default".into(),
                    endpoint: format!("http://{id}"),
                    weight: 1,
                    labels: BTreeMap::from([("zone".to_string(), zone.to_string())]),
                    handlers: vec![],
                    max_concurrent: 0,
                })
                .collect(),
        );
        core
    }

    fn job(routing: &str, selector: &str) -> Arc<Job> {
        Arc::new(
            protocol::validate::from_json(
                format!(r#"{{"id":"j","schedule":"@daily","routing":"{routing}","shards":3,"target":{{"type":"shell","command":"true"}},"selector":{selector}}}"#)
                    .as_bytes(),
            )
            .unwrap(),
        )
    }

    fn fire(job: &Job, now: DateTime<Utc>) -> Fire {
        Fire::new(job.key(), now, TriggerKind::Manual)
    }

    #[test]
    fn runs_nothing_matches_fail_at_once_saying_why() {
        let now = Utc::now();
        for routing in ["round_robin", "broadcast"] {
            let mut core = router();
            let job = job(routing, r#"{"zone":"ap-1"}"#);
            let planned = assign(&mut core, &fire(&job, now), &job, now);
            assert!(!planned.is_empty());
            for a in &planned {
                assert_eq!(a.run.status, RunStatus::Failed, "{routing}");
                assert_eq!(a.run.executor, None);
                assert_eq!(a.run.finished_at, Some(now));
                assert_eq!(
                    a.run.error.as_deref(),
                    Some(r#"no live executor in group "default" matches selector {zone=ap-1}"#)
                );
            }
            assert_eq!(core.inflight("http://a") + core.inflight("http://b"), 0);
        }
    }

    #[test]
    fn every_shard_lands_on_a_matching_executor() {
        let now = Utc::now();
        for routing in ["round_robin", "broadcast"] {
            let mut core = router();
            let job = job(routing, r#"{"zone":{"in":["eu-1"]}}"#);
            let planned = assign(&mut core, &fire(&job, now), &job, now);
            for a in &planned {
                assert_eq!(a.run.status, RunStatus::Pending, "{routing}");
                assert_eq!(a.run.executor.as_deref(), Some("http://a"), "{routing}");
                assert!(a.fallbacks.is_empty(), "no other executor matches");
            }
        }
    }
}
