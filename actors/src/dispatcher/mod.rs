//! The Dispatcher actor: creates runs through the log, and only once they
//! are committed delivers them to executors (invariant 2); tracks them to
//! a terminal state (invariant 5). `core` decides, `fan_in` tallies the
//! fires of jobs with children, `creation` queues runs into the log,
//! `transport` talks to executors.

mod core;
mod creation;
mod fan_in;
mod phase;
#[cfg(test)]
mod room_tests;
mod run_span;
#[cfg(test)]
mod tests;
mod transport;

use std::{collections::HashMap, sync::Arc, time::Duration};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use protocol::{dispatch::DispatchRequest, Job, MetaCommand, Run};
use tokio::sync::oneshot;
use tracing::Instrument;

use self::creation::{AfterFailure, Chunk, CreationQueue};
pub use self::{
    core::{Action, DispatcherCore, HttpCall, HttpResult, Planned},
    fan_in::FireKey,
    phase::{Phase, SendOutcome},
    transport::Transport,
};
use crate::{
    backlog::Ticket,
    fire::FireReply,
    messages::{
        AppliedCommand, Assign, ExecutorLoad, ExecutorLost, Fires, KillError, KillRun, Leadership,
        Record, Reports, SetReportTo,
    },
    proposer::{ProposeError, Proposer},
    store::{Outcome, StateMachine},
};

/// Where the dispatcher's actions go.
pub struct DispatcherLinks {
    pub log_sink: Recipient<Record>,
    pub router: Recipient<Fires>,
    pub load: Recipient<ExecutorLoad>,
}

/// How long before a slot its waiting runs are prepared: frames built,
/// encoded and signed, then sent the moment the slot comes.
const SEND_PREPARATION: Duration = Duration::from_millis(40);
/// What preparing one more run of a slot costs, about (requests built,
/// grouped, encoded and signed): a slot of 100,000 runs starts 290 ms early.
const PREPARATION_PER_RUN: Duration = Duration::from_nanos(2_500);
/// The earliest a slot's runs are prepared.
const MAX_PREPARATION: Duration = Duration::from_secs(1);

pub struct Dispatcher {
    core: DispatcherCore,
    proposer: Arc<dyn Proposer>,
    store: Arc<StateMachine>,
    transport: Transport,
    links: DispatcherLinks,
    /// How often deadlines and retries are checked.
    tick: Duration,
    /// The one timer that releases runs created ahead of their slot, and
    /// the slot it is set for.
    release_timer: Option<(SpawnHandle, DateTime<Utc>)>,
    /// Planned runs on their way into the log.
    creation: CreationQueue,
}

impl Dispatcher {
    pub fn new(
        core: DispatcherCore,
        proposer: Arc<dyn Proposer>,
        store: Arc<StateMachine>,
        transport: Transport,
        links: DispatcherLinks,
        tick: Duration,
    ) -> Self {
        Self {
            core,
            proposer,
            store,
            transport,
            links,
            tick,
            release_timer: None,
            creation: CreationQueue::default(),
        }
    }

    /// Points the release timer at the next slot with waiting runs.
    fn rearm(&mut self, ctx: &mut Context<Self>) {
        let next = self.core.next_release();
        if self.release_timer.as_ref().map(|(_, at)| *at) == next {
            return;
        }
        if let Some((handle, _)) = self.release_timer.take() {
            ctx.cancel_future(handle);
        }
        let Some(at) = next else { return };
        // A large slot takes longer to prepare: start it earlier.
        let runs = u32::try_from(self.core.waiting_at(at)).unwrap_or(u32::MAX);
        let preparation =
            (SEND_PREPARATION + PREPARATION_PER_RUN.saturating_mul(runs)).min(MAX_PREPARATION);
        let wake = at - chrono::Duration::from_std(preparation).unwrap_or_default();
        let wait = (wake - self.core.now()).to_std().unwrap_or(Duration::ZERO);
        let handle = ctx.run_later(wait, move |act, ctx| {
            act.release_timer = None;
            let actions = act.core.release_until(at);
            act.execute(actions, ctx);
        });
        self.release_timer = Some((handle, at));
    }

    fn execute(&mut self, actions: Vec<Action>, ctx: &mut Context<Self>) {
        self.execute_with_reply(actions, None, None, ctx);
    }

    /// Carries out `actions`; `reply` learns what the first `Create` made.
    /// Sends are grouped into one batch per executor and records into one
    /// message, so a burst of due runs costs a few frames, not a request each.
    fn execute_with_reply(
        &mut self,
        actions: Vec<Action>,
        mut reply: Option<FireReply>,
        mut ticket: Option<Arc<Ticket>>,
        ctx: &mut Context<Self>,
    ) {
        // Runs prepared ahead of their slot travel apart from the others
        // and leave at the slot.
        let now = self.core.now();
        let mut sends: HashMap<(String, Option<DateTime<Utc>>), Vec<DispatchRequest>> =
            HashMap::new();
        // The transport waits on the runtime's clock, which the core's
        // clock follows (and a paused test clock controls).
        let instant_of = |at: DateTime<Utc>| {
            tokio::time::Instant::now() + (at - now).to_std().unwrap_or_default()
        };
        let mut records = Vec::new();
        let mut later = Vec::new();
        // HTTP target calls by slot: one wait per slot, then all at once.
        let mut calls: HashMap<DateTime<Utc>, Vec<(String, HttpCall)>> = HashMap::new();
        let term = self.core.term().unwrap_or_default();
        for action in actions {
            match action {
                Action::Send { endpoint, request } => {
                    let not_before = Some(request.scheduled_at).filter(|at| *at > now);
                    sends
                        .entry((endpoint, not_before))
                        .or_default()
                        .push(request);
                }
                Action::Record(update) => records.push(update),
                Action::Create(plans) => self.create(plans, reply.take(), ticket.take(), ctx),
                Action::CallHttp { run_id, call } => calls
                    .entry(call.not_before)
                    .or_default()
                    .push((run_id, call)),
                Action::Move { run_id, from, to } => {
                    let proposal = self.proposer.propose(MetaCommand::MoveRun {
                        run_id: run_id.clone(),
                        from,
                        to: to.clone(),
                    });
                    ctx.spawn(proposal.into_actor(self).map(move |result, act, ctx| {
                        let moved = match result {
                            Ok(Outcome::RunMoved { moved, .. }) => Ok(moved),
                            Ok(other) => Err(format!("unexpected outcome {other:?}")),
                            Err(e) => Err(e.to_string()),
                        };
                        let actions = act.core.on_moved(&run_id, &to, moved);
                        act.execute(actions, ctx);
                    }));
                }
                Action::Kill { run_id, endpoint } => {
                    let transport = self.transport.clone();
                    let span = run_span::run_id_span(&run_id);
                    actix::spawn(
                        async move {
                            if let Err(e) = transport.kill(&endpoint, &run_id, term).await {
                                tracing::warn!(endpoint, error = %e, "executor did not confirm the kill");
                            }
                        }
                        .instrument(span),
                    );
                }
                Action::Alert {
                    webhooks,
                    emails,
                    run,
                } => {
                    let alerts = crate::alerts::RunAlerts {
                        transport: self.transport.clone(),
                        proposer: self.proposer.clone(),
                        clock: self.core.clock(),
                    };
                    alerts.spawn(crate::alerts::destinations(&webhooks, &emails), run, term);
                }
                Action::Fire(fires) => self.links.router.do_send(Fires {
                    fires,
                    reply: None,
                    ticket: None,
                }),
                Action::LoadFire { key, job } => {
                    let runs = self
                        .store
                        .fire_runs(&key.job, key.slot, fire_scan(&job))
                        .map_err(|e| e.to_string());
                    later.extend(self.core.on_fire_loaded(key, runs));
                }
                Action::Acquire(endpoint) => {
                    self.links.load.do_send(ExecutorLoad::Acquire(endpoint))
                }
                Action::Release(endpoint) => {
                    self.links.load.do_send(ExecutorLoad::Release(endpoint))
                }
                Action::Place(requests) => {
                    let (reply, placed) = oneshot::channel();
                    self.links
                        .load
                        .do_send(ExecutorLoad::Place { requests, reply });
                    ctx.spawn(placed.into_actor(self).map(|placed, act, ctx| {
                        // No answer (the router stopped): nothing was placed.
                        let actions = act.core.on_placed(placed.unwrap_or_default());
                        act.execute(actions, ctx);
                    }));
                }
                Action::PlaceRun { run_id, to } => {
                    let proposal = self.proposer.propose(MetaCommand::PlaceRun {
                        run_id: run_id.clone(),
                        to: to.clone(),
                    });
                    ctx.spawn(proposal.into_actor(self).map(move |result, act, ctx| {
                        let placed = match result {
                            Ok(Outcome::RunPlaced { placed, .. }) => Ok(placed),
                            Ok(other) => Err(format!("unexpected outcome {other:?}")),
                            Err(e) => Err(e.to_string()),
                        };
                        let actions = act.core.on_place_committed(&run_id, &to, placed);
                        act.execute(actions, ctx);
                    }));
                }
            }
        }
        if !records.is_empty() {
            self.links.log_sink.do_send(Record {
                updates: records,
                done: None,
            });
        }
        if !later.is_empty() {
            self.execute(later, ctx);
        }
        for (slot, calls) in calls {
            let transport = self.transport.clone();
            let span = tracing::info_span!("http_targets", calls = calls.len(), %slot);
            ctx.spawn(
                async move { transport.call_at(calls, slot, term).await }
                    .instrument(span)
                    .into_actor(self)
                    .map(|results, act, ctx| {
                        // Without the lease nothing was called; the leader
                        // that holds it takes the runs over.
                        let mut actions = Vec::new();
                        for (run_id, result) in results.unwrap_or_default() {
                            let span = run_span::run_id_span(&run_id);
                            span.in_scope(|| tracing::debug!("HTTP target answered"));
                            actions.extend(act.core.on_http_done(&run_id, result));
                        }
                        act.execute(actions, ctx);
                    }),
            );
        }
        for ((endpoint, not_before), requests) in sends {
            let not_before = not_before.map(instant_of);
            let transport = self.transport.clone();
            let target = endpoint.clone();
            let delivery =
                async move { transport.deliver_batch(&target, requests, not_before).await };
            ctx.spawn(delivery.into_actor(self).map(move |results, act, ctx| {
                let mut actions = Vec::new();
                for (run_id, outcome) in results {
                    actions.extend(act.core.on_sent(&run_id, &endpoint, outcome));
                }
                act.execute(actions, ctx);
            }));
        }
        self.rearm(ctx);
    }

    /// Queues planned runs for creation through the log and proposes as
    /// many chunks as the pipeline has room for (see `creation`). `reply`
    /// (a manual trigger, never more than a chunk) gets the runs created.
    fn create(
        &mut self,
        plans: Vec<Planned>,
        reply: Option<FireReply>,
        ticket: Option<Arc<Ticket>>,
        ctx: &mut Context<Self>,
    ) {
        let Some(term) = self.core.term() else {
            if let Some(reply) = reply {
                let _ = reply.send(Err("this node is not the leader".into()));
            }
            let actions = self
                .core
                .on_created(plans, Err("this node is not the leader".into()));
            self.execute(actions, ctx);
            return;
        };
        self.creation.push(plans, reply, ticket, term);
        self.propose_chunks(ctx);
    }

    fn propose_chunks(&mut self, ctx: &mut Context<Self>) {
        while let Some(chunk) = self.creation.next() {
            self.propose_chunk(chunk, ctx);
        }
    }

    fn propose_chunk(&mut self, mut chunk: Chunk, ctx: &mut Context<Self>) {
        let runs: Vec<Run> = chunk
            .plans
            .iter()
            .map(|p| p.assignment.run.clone())
            .collect();
        let proposal = self.proposer.propose(MetaCommand::CreateRuns { runs });
        ctx.spawn(proposal.into_actor(self).map(move |mut result, act, ctx| {
            // A test's fault: the runs were created but the answer is lost.
            if result.is_ok() && crate::fault_point("create-runs-unanswered") {
                result = Err(ProposeError::Timeout);
            }
            let created = match result {
                Ok(Outcome::RunsCreated(runs)) => Ok(runs),
                Ok(other) => Err(format!("unexpected outcome {other:?}")),
                Err(error) => {
                    match CreationQueue::after_failure(&mut chunk, &error, act.core.term()) {
                        AfterFailure::Retry(wait) => {
                            tracing::warn!(%error, runs = chunk.plans.len(), attempt = chunk.attempts, "runs were not created; proposing them again");
                            ctx.run_later(wait, move |act, ctx| {
                                if act.core.term() == Some(chunk.term) {
                                    act.propose_chunk(chunk, ctx);
                                } else {
                                    act.chunk_done(chunk, Err("leadership changed".into()), ctx);
                                }
                            });
                            return;
                        }
                        AfterFailure::GiveUp => Err(error.to_string()),
                    }
                }
            };
            act.chunk_done(chunk, created, ctx);
        }));
    }

    /// A chunk in flight is answered (or given up): its place goes to the
    /// next one.
    fn chunk_done(
        &mut self,
        chunk: Chunk,
        created: Result<Vec<Run>, String>,
        ctx: &mut Context<Self>,
    ) {
        self.creation.finished();
        self.settle_chunk(chunk, created, ctx);
        self.propose_chunks(ctx);
    }

    /// Hands a chunk's outcome to the core. Runs a failed earlier proposal
    /// of the chunk created after all are missing from a retry's outcome:
    /// they are adopted from the store, so none is left undispatched.
    fn settle_chunk(
        &mut self,
        chunk: Chunk,
        created: Result<Vec<Run>, String>,
        ctx: &mut Context<Self>,
    ) {
        let retried = chunk.retried();
        let Chunk {
            plans,
            reply,
            ticket,
            term,
            ..
        } = chunk;
        let created = match created {
            Ok(_) if self.core.term() != Some(term) => Err("leadership changed".to_string()),
            other => other,
        };
        if let Some(reply) = reply {
            let _ = reply.send(created.clone());
        }
        let orphans = match (&created, retried) {
            (Ok(runs), true) => self.orphans_of(&plans, runs),
            _ => Vec::new(),
        };
        let mut actions = self.core.on_created(plans, created);
        if !orphans.is_empty() {
            tracing::info!(
                runs = orphans.len(),
                "adopted runs an unanswered proposal created"
            );
            actions.extend(self.core.adopt(orphans));
        }
        // The fires are created (or given up): the trigger may hand more.
        drop(ticket);
        self.execute(actions, ctx);
    }

    /// The planned runs a retry did not create that the store holds and
    /// nobody here dispatches (`DispatcherCore::adopt` takes the unfinished
    /// ones).
    fn orphans_of(&self, plans: &[Planned], created: &[Run]) -> Vec<(Run, Arc<Job>)> {
        let made: std::collections::HashSet<&str> = created.iter().map(|r| r.id.as_str()).collect();
        plans
            .iter()
            .filter(|p| !made.contains(p.assignment.run.id.as_str()))
            .filter(|p| !self.core.is_active(&p.assignment.run.id))
            .filter_map(|p| match self.store.run(&p.assignment.run.id) {
                Ok(Some(run)) => Some((run, p.assignment.job.clone())),
                _ => None,
            })
            .collect()
    }

    /// Leadership changed: runs planned in the old term are not created.
    fn drop_queued_creations(&mut self, ctx: &mut Context<Self>) {
        for chunk in self.creation.clear() {
            self.settle_chunk(chunk, Err("leadership changed".into()), ctx);
        }
    }

    fn resume(&mut self, ctx: &mut Context<Self>) {
        let runs = match self.store.active_runs() {
            Ok(runs) => runs,
            Err(e) => {
                tracing::error!(error = %e, "cannot load active runs");
                return;
            }
        };
        let mut with_jobs = Vec::new();
        for run in runs {
            let key = protocol::JobKey::new(run.namespace.clone(), run.job_id.clone());
            match self.store.job(&key) {
                Ok(Some(job)) => with_jobs.push((run, Arc::new(job))),
                _ => self.links.log_sink.do_send(Record {
                    updates: vec![protocol::RunUpdate {
                        run_id: run.id.clone(),
                        status: Some(protocol::RunStatus::Failed),
                        error: Some("the job was deleted".into()),
                        ..Default::default()
                    }],
                    done: None,
                }),
            }
        }
        tracing::info!(runs = with_jobs.len(), "dispatcher took over active runs");
        let mut actions = self.core.resume(with_jobs);
        actions.extend(self.recheck_fires());
        self.execute(actions, ctx);
    }
}

/// How many of a job's newest runs are read to find one fire's runs: its
/// shards, each with its retries, and some room for other fires.
fn fire_scan(job: &Job) -> usize {
    let attempts = job.retry.max_retries as usize + 2;
    (job.shards as usize * attempts).saturating_add(256)
}

impl Dispatcher {
    /// The fires of parents whose runs ended shortly before this node took
    /// over: an earlier leader may have stopped before it created their
    /// children (see `fan_in`). Reads the runs created in the last
    /// `RECHECK_WINDOW`, at most `RECHECK_RUNS`, and checks the fires of
    /// those that ended in the last `RECHECK_ENDED`. That is short: a
    /// child run the history already dropped would be created again.
    fn recheck_fires(&mut self) -> Vec<Action> {
        let since =
            self.core.now() - chrono::Duration::from_std(RECHECK_WINDOW).unwrap_or_default();
        let runs = match self.store.recent_runs(since, RECHECK_RUNS) {
            Ok(runs) => runs,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read recent runs to re-check the fires of parents");
                return Vec::new();
            }
        };
        let mut jobs: HashMap<protocol::JobKey, Option<Arc<Job>>> = HashMap::new();
        let mut ended = Vec::new();
        let ended_since =
            self.core.now() - chrono::Duration::from_std(RECHECK_ENDED).unwrap_or_default();
        let recently_ended = |run: &Run| {
            run.status.is_terminal() && run.finished_at.is_some_and(|at| at >= ended_since)
        };
        for run in runs.into_iter().filter(recently_ended) {
            let key = protocol::JobKey::new(run.namespace.clone(), run.job_id.clone());
            let job = jobs
                .entry(key)
                .or_insert_with_key(|key| {
                    self.store
                        .job(key)
                        .ok()
                        .flatten()
                        .filter(|job| !job.children.is_empty())
                        .map(Arc::new)
                })
                .clone();
            if let Some(job) = job {
                ended.push((run, job));
            }
        }
        self.core.recheck_fires(&ended)
    }
}

/// How far back a new leader looks for parents' fires to re-check.
const RECHECK_WINDOW: Duration = Duration::from_secs(300);
/// Most recent runs a new leader reads to find them.
const RECHECK_RUNS: usize = 10_000;
/// How recently a parent's run must have ended for its fire to be checked
/// again: longer than a change of leader takes.
const RECHECK_ENDED: Duration = Duration::from_secs(30);

impl Actor for Dispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.tick, |act, ctx| {
            if act.core.term().is_some() {
                let actions = act.core.on_tick();
                act.execute(actions, ctx);
            }
        });
    }
}

impl Handler<Assign> for Dispatcher {
    type Result = ();

    fn handle(&mut self, msg: Assign, ctx: &mut Context<Self>) {
        if self.core.term().is_none() {
            if let Some(reply) = msg.reply {
                let _ = reply.send(Err("this node is not the leader".into()));
            }
            return;
        }
        let actions = self.core.plan(msg.assignments);
        self.execute_with_reply(actions, msg.reply, msg.ticket, ctx);
    }
}

impl Handler<Reports> for Dispatcher {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, Reports(updates): Reports, ctx: &mut Context<Self>) -> Self::Result {
        let (done, recorded) = oneshot::channel();
        let mut actions = Vec::new();
        for update in &updates {
            actions.extend(self.core.on_report(update));
        }
        self.links.log_sink.do_send(Record {
            updates,
            done: Some(done),
        });
        self.execute(actions, ctx);
        Box::pin(async move {
            recorded
                .await
                .map_err(|_| "the log sink stopped".to_string())?
        })
    }
}

impl Handler<KillRun> for Dispatcher {
    type Result = Result<(), KillError>;

    fn handle(&mut self, KillRun(run_id): KillRun, ctx: &mut Context<Self>) -> Self::Result {
        if self.core.term().is_none() {
            return Err(KillError::NotLeader);
        }
        let actions = self.core.kill(&run_id).ok_or(KillError::NotActive)?;
        self.execute(actions, ctx);
        Ok(())
    }
}

impl Handler<ExecutorLost> for Dispatcher {
    type Result = ();

    fn handle(&mut self, ExecutorLost(endpoint): ExecutorLost, ctx: &mut Context<Self>) {
        if self.core.term().is_some() {
            let actions = self.core.on_executor_lost(&endpoint);
            self.execute(actions, ctx);
        }
    }
}

impl Handler<AppliedCommand> for Dispatcher {
    type Result = ();

    fn handle(&mut self, AppliedCommand(applied): AppliedCommand, ctx: &mut Context<Self>) {
        if self.core.term().is_none() {
            return;
        }
        let actions = match (&*applied.cmd, &*applied.outcome) {
            (
                MetaCommand::PutJob { .. } | MetaCommand::SetJobEnabled { .. },
                Outcome::JobPut { job, .. },
            ) => self.core.on_job_changed(job),
            (MetaCommand::DeleteJob { key, .. }, _) => self.core.on_job_deleted(key),
            _ => return,
        };
        self.execute(actions, ctx);
    }
}

impl Handler<SetReportTo> for Dispatcher {
    type Result = ();

    fn handle(&mut self, SetReportTo(urls): SetReportTo, _: &mut Context<Self>) {
        self.core.set_report_to(urls);
    }
}

impl Handler<Leadership> for Dispatcher {
    type Result = ();

    fn handle(&mut self, Leadership { term }: Leadership, ctx: &mut Context<Self>) {
        // A new term starts afresh even without a gap: another leader may
        // have moved runs meanwhile, and the store says where they are.
        if term == self.core.term() {
            return;
        }
        // The counts of runs on executors start again from what this term
        // takes over (a stale count would leave an executor's room taken
        // for good).
        self.links.load.do_send(ExecutorLoad::Forget);
        match term {
            Some(term) => {
                self.core.lead(term);
                self.drop_queued_creations(ctx);
                self.resume(ctx);
            }
            None => {
                self.core.clear();
                self.drop_queued_creations(ctx);
            }
        }
    }
}
