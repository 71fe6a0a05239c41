//! Turns a fire into runs: one per shard (or per executor for
//! `broadcast`), each with its executor and failover order.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use protocol::{
    job::Routing,
    run::{retry_run_id, slot_run_id, ShardInfo},
    Job, Run, RunStatus, Target, TriggerKind,
};

use super::core::RouterCore;
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
                core.acquire(&endpoint);
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

/// Puts the run on its route's executor (or fails the run when the group
/// has none; HTTP targets go to their URL) and returns its failover order.
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
        None => {
            run.status = RunStatus::Failed;
            run.error = Some(format!(
                "no executor in group {:?} can take the run",
                job.group().unwrap_or_default()
            ));
            run.finished_at = Some(run.created_at);
            Vec::new()
        }
    }
}

fn new_run(job: &Job, fire: &Fire, shard: ShardInfo, params: &str, now: DateTime<Utc>) -> Run {
    // Scheduled slots are named by (job, slot, shard) so no leader can
    // create a second run for them; other runs are named by the log.
    let id = match fire.trigger {
        TriggerKind::Schedule | TriggerKind::Misfire => {
            slot_run_id(&job.namespace, &job.id, fire.scheduled_at, shard.index)
        }
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
        alerts: Vec::new(),
    }
}
