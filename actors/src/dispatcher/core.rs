//! The dispatcher's decisions, free of I/O: concurrency policies, delivery
//! with failover, deadlines, retries with backoff, queues and child jobs.
//! Every method returns the `Action`s the actor must carry out; results of
//! those actions come back through the `on_*` methods.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use protocol::{
    dispatch::{DispatchRequest, Task},
    job::Concurrency,
    Job, JobKey, Run, RunStatus, RunUpdate, Target, TriggerKind,
};

use super::{
    fan_in::{FanIn, FireKey, Step},
    phase::{Phase, SendOutcome},
    run_span::{log_created, log_ended, run_span},
};
use crate::{
    clock::SharedClock,
    fire::{Fire, ParentFire, RetryOf},
    router::{Assignment, PlaceRequest, Route},
};

/// Something the actor must do.
#[derive(Debug)]
pub enum Action {
    /// Propose the creation of these runs; report with `on_created`.
    Create(Vec<Planned>),
    /// Deliver a run to an executor; report with `on_sent`.
    Send {
        endpoint: String,
        request: DispatchRequest,
    },
    /// Call an HTTP target, not before `call.not_before`; report with
    /// `on_http_done`.
    CallHttp {
        run_id: String,
        call: HttpCall,
    },
    /// Propose that the run moves from one executor to another; report
    /// with `on_moved`. Nothing is sent to `to` before that commits.
    Move {
        run_id: String,
        from: String,
        to: String,
    },
    /// Ask an executor to kill a run (best effort).
    Kill {
        run_id: String,
        endpoint: String,
    },
    /// Record a run transition through the LogSink.
    Record(RunUpdate),
    /// Hand fires (retries, child jobs) to the Router.
    Fire(Vec<Fire>),
    /// Read the runs of a parent's fire from the store and report them
    /// with `on_fire_loaded` (see `fan_in`).
    LoadFire {
        key: FireKey,
        job: Arc<Job>,
    },
    /// Tell the job's alert webhooks and addresses how a run ended.
    Alert {
        webhooks: Vec<protocol::alert::Webhook>,
        emails: Vec<String>,
        run: Box<Run>,
    },
    /// The router's in-flight count for an endpoint changes.
    Acquire(String),
    Release(String),
    /// Ask the router to place runs waiting for room; report with
    /// `on_placed`.
    Place(Vec<PlaceRequest>),
    /// Propose that a run that waited for room goes to `to`; report with
    /// `on_place_committed`. Nothing is sent to `to` before that commits.
    PlaceRun {
        run_id: String,
        to: String,
    },
}

/// An assignment after the concurrency policy looked at it.
#[derive(Debug)]
pub struct Planned {
    pub assignment: Assignment,
    /// Queued behind the job's active run (`concurrency = queue`).
    pub hold: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HttpCall {
    pub url: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub timeout: Duration,
    /// The run's slot: the call never leaves before it.
    pub not_before: DateTime<Utc>,
}

/// Outcome of an HTTP target call.
#[derive(Clone, Debug, PartialEq)]
pub enum HttpResult {
    Answered { status: u16, body: String },
    TimedOut,
    Failed(String),
}

struct Active {
    job: Arc<Job>,
    run: Run,
    /// Executors to move to, in order, when one certainly cannot take it.
    fallbacks: Vec<String>,
    /// When the dispatcher gives up waiting for a result.
    deadline: DateTime<Utc>,
    phase: Phase,
    /// The last dispatch's `expires_at`: its executor starts it only before.
    admit_until: Option<DateTime<Utc>>,
    /// An earlier send may have reached its executor (it went unanswered,
    /// or an earlier leader sent it). A later refusal then proves nothing
    /// about that send, so the run never moves to another executor: only
    /// the executor's death fails it over, as a new run.
    may_have_reached: bool,
    /// Its executor reported the run started: a process exists there.
    reported: bool,
}

/// How long after it is sent (or after its slot, if later) a dispatch may
/// still start on its executor; after that the executor refuses it.
const ADMIT_WINDOW: chrono::Duration = chrono::Duration::seconds(2);
/// Output an alert may show (an e-mail shows 4 KiB of it).
const OUTPUT_TAIL_OF_ALERTS: usize = 4 * 1024;

/// How far executors' clocks may be behind this node's: a run is failed
/// over from an executor that never answered only this long after its
/// dispatch expired.
const CLOCK_MARGIN: chrono::Duration = chrono::Duration::milliseconds(500);

/// How long a run whose send was not answered waits before it is sent to
/// the same executor again.
const RESEND_AFTER: chrono::Duration = chrono::Duration::seconds(1);

/// Most runs waiting for room the router is asked to place at once.
const PLACE_BATCH: usize = 256;

pub struct DispatcherCore {
    clock: SharedClock,
    /// Scheduler URLs executors report to.
    report_to: Vec<String>,
    /// Time past a run's timeout the dispatcher waits for the executor's
    /// own timed_out report before it declares the run timed out itself.
    grace: chrono::Duration,
    active: HashMap<String, Active>,
    by_job: HashMap<JobKey, BTreeSet<String>>,
    retries: BTreeMap<(DateTime<Utc>, String), Fire>,
    /// How long after an executor accepted a run its `dispatched` status
    /// is recorded if no report came meanwhile.
    dispatched_record_delay: chrono::Duration,
    /// Runs created ahead of their slot, by slot: released together when
    /// the slot comes, so one timer sends a whole second's runs.
    waiting: BTreeSet<(DateTime<Utc>, String)>,
    /// The Raft term this node leads in; every request it sends carries
    /// it, so executors can refuse a deposed leader.
    term: Option<u64>,
    /// Fires of jobs with children, until every run of each has ended.
    fan_in: FanIn,
    /// Runs waiting for room on an executor (`Phase::AwaitingRoom`), in the
    /// order they get it: by slot, then shard.
    room_queue: BTreeSet<RoomKey>,
    /// A `Place` is with the router; `place_again` notes that room may
    /// have freed meanwhile, so the next one goes when it answers.
    placing: bool,
    place_again: bool,
}

/// A run's place in the queue for room.
type RoomKey = (DateTime<Utc>, u32, String);

fn room_key(run: &Run) -> RoomKey {
    (run.scheduled_at, run.shard.index, run.id.clone())
}

impl DispatcherCore {
    pub fn new(clock: SharedClock, report_to: Vec<String>, grace: Duration) -> Self {
        Self {
            clock,
            report_to,
            grace: chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::seconds(5)),
            active: HashMap::new(),
            by_job: HashMap::new(),
            retries: BTreeMap::new(),
            dispatched_record_delay: chrono::Duration::milliseconds(500),
            waiting: BTreeSet::new(),
            term: None,
            room_queue: BTreeSet::new(),
            placing: false,
            place_again: false,
            fan_in: FanIn::default(),
        }
    }

    /// The term this node leads in, if it leads.
    pub fn term(&self) -> Option<u64> {
        self.term
    }

    /// This node leads in `term`, with nothing active yet.
    pub fn lead(&mut self, term: u64) {
        self.clear();
        self.term = Some(term);
    }

    pub fn set_report_to(&mut self, report_to: Vec<String>) {
        self.report_to = report_to;
    }

    pub fn active_count(&self) -> usize {
        self.active.len()
    }

    pub fn is_active(&self, run_id: &str) -> bool {
        self.active.contains_key(run_id)
    }

    /// Forgets everything (leadership lost).
    pub fn clear(&mut self) {
        self.term = None;
        self.active.clear();
        self.by_job.clear();
        self.retries.clear();
        self.waiting.clear();
        self.room_queue.clear();
        self.placing = false;
        self.place_again = false;
        self.fan_in.clear();
    }

    /// The clock this core reads, for what acts on its behalf.
    pub fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The next slot that has runs waiting for it.
    pub fn next_release(&self) -> Option<DateTime<Utc>> {
        self.waiting.first().map(|(at, _)| *at)
    }

    /// Runs waiting for the slot `at`.
    pub fn waiting_at(&self, at: DateTime<Utc>) -> usize {
        self.waiting
            .range((at, String::new())..)
            .take_while(|(slot, _)| *slot == at)
            .count()
    }

    /// Sends every waiting run whose slot has come.
    pub fn release_due(&mut self) -> Vec<Action> {
        self.release_until(self.clock.now())
    }

    /// Sends every waiting run whose slot is at or before `until`. Sends
    /// of runs whose slot is still ahead carry their slot, and the transport
    /// holds them until then.
    pub fn release_until(&mut self, until: DateTime<Utc>) -> Vec<Action> {
        let mut actions = Vec::new();
        while let Some((at, _)) = self.waiting.first() {
            if *at > until {
                break;
            }
            let Some((_, id)) = self.waiting.pop_first() else {
                break;
            };
            if self.active.get(&id).map(|a| &a.phase) == Some(&Phase::Waiting) {
                actions.extend(self.start(&id));
            }
        }
        actions
    }

    /// A job changed: its runs waiting for their slot follow the change. A
    /// paused job's waiting runs are skipped, as are those whose slot the
    /// new schedule no longer has; the others are sent as the job is now.
    pub fn on_job_changed(&mut self, job: &Job) -> Vec<Action> {
        let mut actions = Vec::new();
        let ids = self.waiting_ids(&job.key());
        if ids.is_empty() {
            return actions;
        }
        let job = Arc::new(job.clone());
        for id in ids {
            let Some(active) = self.active.get_mut(&id) else {
                continue;
            };
            let slot = active.run.scheduled_at;
            let still_a_slot = active.run.trigger != TriggerKind::Schedule
                || (active.job.schedule == job.schedule && active.job.timezone == job.timezone)
                || is_slot_of(&job, slot);
            let reason = if !job.enabled {
                Some("the job was paused before this slot")
            } else if !still_a_slot {
                Some("the job's schedule changed before this slot")
            } else {
                None
            };
            match reason {
                Some(reason) => actions.extend(self.end(&id, RunStatus::Skipped, reason.into())),
                None => active.job = job.clone(),
            }
        }
        actions
    }

    /// A job was deleted: its runs waiting for their slot are skipped.
    pub fn on_job_deleted(&mut self, key: &JobKey) -> Vec<Action> {
        self.fan_in.forget_job(key);
        let mut actions = Vec::new();
        for id in self.waiting_ids(key) {
            actions.extend(self.end(
                &id,
                RunStatus::Skipped,
                "the job was deleted before this slot".into(),
            ));
        }
        actions
    }

    /// The job's runs that have not gone anywhere yet: waiting for their
    /// slot, or for room on an executor.
    fn waiting_ids(&self, key: &JobKey) -> Vec<String> {
        self.ids_of(key, |a| {
            matches!(
                a.phase,
                Phase::Waiting | Phase::AwaitingRoom { asked: false, .. }
            )
        })
    }

    /// Applies each job's concurrency policy to new assignments.
    pub fn plan(&mut self, assignments: Vec<Assignment>) -> Vec<Action> {
        let now = self.clock.now();
        let mut actions = Vec::new();
        let mut planned = Vec::with_capacity(assignments.len());
        // The first fire of each job in this batch, and whether it is held.
        let mut batch_fire: HashMap<JobKey, ((DateTime<Utc>, TriggerKind), bool)> = HashMap::new();
        for mut assignment in assignments {
            let key = assignment.job.key();
            let fire_id = (assignment.run.scheduled_at, assignment.run.trigger);
            let mut hold = false;
            let governed = assignment.run.status == RunStatus::Pending
                && assignment.run.trigger != TriggerKind::Retry;
            if governed && assignment.job.concurrency != Concurrency::Allow {
                let running: Vec<String> = self.running_ids(&key);
                let earlier = batch_fire.get(&key).filter(|(id, _)| *id != fire_id);
                let same_fire_held = batch_fire
                    .get(&key)
                    .is_some_and(|(id, held)| *id == fire_id && *held);
                let busy = !running.is_empty() || earlier.is_some();
                let blocker = running
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "of the same batch".into());
                match assignment.job.concurrency {
                    Concurrency::Forbid if busy => {
                        actions.extend(skip(
                            &mut assignment.run,
                            now,
                            format!("concurrency is forbid and run {blocker} is still active"),
                        ));
                    }
                    Concurrency::Replace => {
                        for id in running {
                            actions.extend(self.end(
                                &id,
                                RunStatus::Killed,
                                "replaced by a newer run (concurrency is replace)".into(),
                            ));
                        }
                    }
                    Concurrency::Queue if same_fire_held => hold = true,
                    Concurrency::Queue if busy => {
                        let queued = self.held_ids(&key).into_iter().next().or_else(|| {
                            earlier
                                .filter(|(_, held)| *held)
                                .map(|_| "of the same batch".to_string())
                        });
                        match queued {
                            Some(queued) => actions.extend(skip(
                                &mut assignment.run,
                                now,
                                format!("concurrency is queue and run {queued} is already waiting"),
                            )),
                            None => hold = true,
                        }
                    }
                    _ => {}
                }
            }
            batch_fire.entry(key).or_insert((fire_id, hold));
            planned.push(Planned { assignment, hold });
        }
        actions.push(Action::Create(planned));
        actions
    }

    /// The runs of `plans` that the log created (in order; runs whose id
    /// existed are missing), or why nothing was created.
    pub fn on_created(
        &mut self,
        plans: Vec<Planned>,
        created: Result<Vec<Run>, String>,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let created = match created {
            Ok(created) => created,
            Err(e) => {
                tracing::warn!(error = %e, runs = plans.len(), "runs were not created; nothing is dispatched");
                for plan in plans {
                    actions.extend(release_of(&plan.assignment.job, &plan.assignment.run));
                }
                return actions;
            }
        };
        let now = self.clock.now();
        let mut created = created.into_iter().peekable();
        for plan in plans {
            let Planned { assignment, hold } = plan;
            let matches = created
                .peek()
                .is_some_and(|run| same_run(&assignment.run, run));
            if !matches {
                // The slot had its run already (one slot, one run).
                actions.extend(release_of(&assignment.job, &assignment.run));
                continue;
            }
            let Some(run) = created.next() else { break };
            log_created(&run);
            self.fan_in.started(&assignment.job, &run);
            if run.status.is_terminal() {
                let active = Active {
                    job: assignment.job,
                    run,
                    fallbacks: vec![],
                    deadline: now,
                    phase: Phase::Held,
                    admit_until: None,
                    may_have_reached: false,
                    reported: false,
                };
                actions.extend(self.after_end(active));
                continue;
            }
            let id = run.id.clone();
            self.by_job
                .entry(assignment.job.key())
                .or_default()
                .insert(id.clone());
            let phase = if hold {
                Phase::Held
            } else if run.scheduled_at > now {
                self.waiting.insert((run.scheduled_at, id.clone()));
                Phase::Waiting
            } else {
                Phase::Sending
            };
            let send = phase == Phase::Sending;
            self.active.insert(
                id.clone(),
                Active {
                    deadline: now + self.timeout_of(&assignment.job),
                    job: assignment.job,
                    run,
                    fallbacks: assignment.fallbacks,
                    phase,
                    admit_until: None,
                    may_have_reached: false,
                    reported: false,
                },
            );
            if send {
                actions.extend(self.start(&id));
            }
        }
        actions
    }

    /// The actor tried to deliver a run to `endpoint`.
    pub fn on_sent(&mut self, run_id: &str, endpoint: &str, outcome: SendOutcome) -> Vec<Action> {
        let now = self.clock.now();
        let Some(active) = self.active.get_mut(run_id) else {
            return Vec::new();
        };
        if active.run.executor.as_deref() != Some(endpoint) || active.phase != Phase::Sending {
            return Vec::new();
        }
        match outcome {
            SendOutcome::Accepted => {
                active.phase = Phase::Delivered {
                    record_dispatched_at: Some(now + self.dispatched_record_delay),
                };
                Vec::new()
            }
            SendOutcome::NotLeading => {
                active.phase = Phase::Unconfirmed {
                    resend_at: now + RESEND_AFTER,
                };
                Vec::new()
            }
            SendOutcome::Unknown(e) => {
                run_span(&active.run).in_scope(|| {
                    tracing::warn!(endpoint, error = %e, "the executor may or may not have the run; asking it again")
                });
                active.may_have_reached = true;
                active.phase = Phase::Unconfirmed {
                    resend_at: now + RESEND_AFTER,
                };
                Vec::new()
            }
            SendOutcome::Busy(e) => {
                run_span(&active.run).in_scope(|| {
                    tracing::info!(endpoint, reason = %e, "the executor has no room for the run yet; asking it again")
                });
                active.phase = Phase::Unconfirmed {
                    resend_at: now + RESEND_AFTER,
                };
                Vec::new()
            }
            SendOutcome::Refused(e) if active.may_have_reached => {
                run_span(&active.run).in_scope(|| {
                    tracing::warn!(endpoint, error = %e, "the executor refused the run now, but an earlier send may have reached it; asking it again, never another executor")
                });
                active.phase = Phase::Unconfirmed {
                    resend_at: now + RESEND_AFTER,
                };
                Vec::new()
            }
            SendOutcome::Refused(e) if !active.fallbacks.is_empty() => {
                let to = active.fallbacks.remove(0);
                run_span(&active.run).in_scope(|| {
                    tracing::warn!(from = endpoint, %to, error = %e, "executor could not take the run; failing over")
                });
                active.phase = Phase::Moving { to: to.clone() };
                vec![Action::Move {
                    run_id: run_id.to_string(),
                    from: endpoint.to_string(),
                    to,
                }]
            }
            SendOutcome::Refused(e) => self.end(
                run_id,
                RunStatus::Failed,
                format!("could not deliver the run to {endpoint}: {e}"),
            ),
        }
    }

    /// The log answered a `Move`: `Ok(true)` it records the run on `to`,
    /// `Ok(false)` the run was no longer where the move assumed (another
    /// leader took it over, or it ended), `Err` it was not committed.
    pub fn on_moved(
        &mut self,
        run_id: &str,
        to: &str,
        result: Result<bool, String>,
    ) -> Vec<Action> {
        let now = self.clock.now();
        let Some(active) = self.active.get_mut(run_id) else {
            return Vec::new();
        };
        if !matches!(&active.phase, Phase::Moving { to: moving } if moving == to) {
            return Vec::new();
        }
        match result {
            Ok(true) => {
                let from = active.run.executor.replace(to.to_string());
                let mut actions: Vec<Action> = from.into_iter().map(Action::Release).collect();
                actions.push(Action::Acquire(to.to_string()));
                active.phase = Phase::Sending;
                actions.extend(self.start(run_id));
                actions
            }
            Ok(false) => {
                // Someone else moved or ended it; its deadline still holds.
                active.phase = Phase::Delivered {
                    record_dispatched_at: None,
                };
                Vec::new()
            }
            Err(e) => {
                // Try the first executor again; if it still refuses, the
                // move is proposed again.
                run_span(&active.run).in_scope(|| {
                    tracing::warn!(%to, error = %e, "the move to another executor was not committed")
                });
                active.fallbacks.insert(0, to.to_string());
                active.phase = Phase::Unconfirmed {
                    resend_at: now + RESEND_AFTER,
                };
                Vec::new()
            }
        }
    }

    /// An executor reported on a run (the actor records the report itself).
    pub fn on_report(&mut self, update: &RunUpdate) -> Vec<Action> {
        let Some(status) = update.status else {
            return Vec::new();
        };
        if !status.is_terminal() {
            if let Some(active) = self.active.get_mut(&update.run_id) {
                active.reported = true;
                match active.phase {
                    // A report says where the run is: no separate record.
                    Phase::Sending
                    | Phase::Unconfirmed { .. }
                    | Phase::Delivered { .. }
                    | Phase::Lost { .. } => {
                        active.phase = Phase::Delivered {
                            record_dispatched_at: None,
                        };
                    }
                    Phase::Waiting
                    | Phase::Held
                    | Phase::AwaitingRoom { .. }
                    | Phase::Placing { .. }
                    | Phase::Moving { .. } => {}
                }
                active.run.status = active.run.status.max(status);
            }
            return Vec::new();
        }
        match self.active.remove(&update.run_id) {
            Some(mut active) => {
                active.run.status = status;
                active.run.exit_code = update.exit_code.or(active.run.exit_code);
                active.run.finished_at = update.finished_at.or(active.run.finished_at);
                active.run.error = update.error.clone().or(active.run.error);
                // An alert shows the output's tail; other runs skip the copy.
                if active.job.alerts.on.contains(&status) {
                    if let Some(output) = &update.output {
                        active.run.output =
                            protocol::run::tail(output, OUTPUT_TAIL_OF_ALERTS).to_string();
                    }
                }
                self.after_end(active)
            }
            None => Vec::new(),
        }
    }

    pub fn on_http_done(&mut self, run_id: &str, result: HttpResult) -> Vec<Action> {
        if !self.active.contains_key(run_id) {
            return Vec::new();
        }
        let now = self.clock.now();
        let mut update = RunUpdate {
            run_id: run_id.to_string(),
            finished_at: Some(now),
            ..Default::default()
        };
        let status = match result {
            HttpResult::Answered { status, body } => {
                update.exit_code = Some(i32::from(status));
                update.output = Some(body);
                if (200..300).contains(&status) {
                    RunStatus::Succeeded
                } else {
                    update.error = Some(format!("the target answered HTTP {status}"));
                    RunStatus::Failed
                }
            }
            HttpResult::TimedOut => {
                update.error = Some("the target did not answer within the timeout".into());
                RunStatus::TimedOut
            }
            HttpResult::Failed(e) => {
                update.error = Some(format!("the call failed: {e}"));
                RunStatus::Failed
            }
        };
        update.status = Some(status);
        let mut actions = vec![Action::Record(update.clone())];
        actions.extend(self.on_report(&update));
        actions
    }

    /// An executor was declared dead: its runs fail over to another
    /// executor (a new run with trigger `failover`) when the job allows it,
    /// or end `failed` with the reason (then the retry policy applies).
    pub fn on_executor_lost(&mut self, endpoint: &str) -> Vec<Action> {
        let lost: Vec<String> = self
            .active
            .iter()
            .filter(|(_, a)| {
                a.run.executor.as_deref() == Some(endpoint)
                    && !matches!(a.job.target, Target::Http { .. })
            })
            .map(|(id, _)| id.clone())
            .collect();
        let now = self.clock.now();
        let mut actions = Vec::new();
        for id in lost {
            let reason = format!("executor {endpoint} was declared dead");
            let Some(active) = self.active.get_mut(&id) else {
                continue;
            };
            // A dispatch it never answered may still be in its socket (a
            // stopped process, a partition that heals): only once that
            // dispatch can no longer start there may the run go elsewhere.
            // Accepted but not reported started is no different: the
            // executor may have been stopped before it started the process.
            let unanswered = match active.phase {
                Phase::Sending | Phase::Unconfirmed { .. } => true,
                Phase::Delivered { .. } => !active.reported,
                _ => false,
            };
            match active.admit_until {
                Some(until) if unanswered && until + CLOCK_MARGIN > now => {
                    active.phase = Phase::Lost {
                        decide_at: until + CLOCK_MARGIN,
                        reason,
                    };
                }
                _ => actions.extend(self.give_up_on_executor(&id, reason)),
            }
        }
        actions
    }

    /// Its executor is gone: the run fails over to a new run (trigger
    /// `failover`) when the job allows it, or ends `failed`.
    fn give_up_on_executor(&mut self, id: &str, reason: String) -> Vec<Action> {
        let Some(active) = self.active.get(id) else {
            return Vec::new();
        };
        if !active.job.failover {
            return self.end(id, RunStatus::Failed, reason);
        }
        let Some(active) = self.active.remove(id) else {
            return Vec::new();
        };
        let now = self.clock.now();
        let mut actions = vec![Action::Record(RunUpdate {
            run_id: id.to_string(),
            status: Some(RunStatus::Failed),
            finished_at: Some(now),
            error: Some(format!("{reason}; failed over to a new run")),
            ..Default::default()
        })];
        let run = &active.run;
        let fire = Fire {
            retry: Some(RetryOf {
                previous_run_id: run.id.clone(),
                attempt: run.attempt + 1,
                shard: run.shard.clone(),
                params: run.params.clone(),
                previous_executor: run.executor.clone(),
            }),
            parent: ParentFire::of_run(run),
            ..Fire::new(active.job.key(), run.scheduled_at, TriggerKind::Failover)
        };
        actions.push(Action::Fire(vec![fire]));
        actions.extend(release_of(&active.job, &active.run));
        if let Some(ids) = self.by_job.get_mut(&active.job.key()) {
            ids.remove(id);
        }
        actions
    }

    /// Ends an active run on request.
    pub fn kill(&mut self, run_id: &str) -> Option<Vec<Action>> {
        self.active
            .contains_key(run_id)
            .then(|| self.end(run_id, RunStatus::Killed, "killed on request".into()))
    }

    /// Due retries and runs past their deadline.
    pub fn on_tick(&mut self) -> Vec<Action> {
        let now = self.clock.now();
        let mut actions = Vec::new();
        let mut due = Vec::new();
        while let Some(entry) = self.retries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        if !due.is_empty() {
            actions.push(Action::Fire(due));
        }
        actions.extend(self.release_due());
        let mut resend = Vec::new();
        let mut given_up = Vec::new();
        for (id, active) in &mut self.active {
            match &mut active.phase {
                Phase::Delivered {
                    record_dispatched_at,
                } if record_dispatched_at.is_some_and(|at| at <= now) => {
                    *record_dispatched_at = None;
                    actions.push(Action::Record(RunUpdate {
                        run_id: id.clone(),
                        status: Some(RunStatus::Dispatched),
                        executor: active.run.executor.clone(),
                        ..Default::default()
                    }));
                }
                Phase::Unconfirmed { resend_at } if *resend_at <= now => resend.push(id.clone()),
                Phase::Lost { decide_at, reason } if *decide_at <= now => {
                    given_up.push((id.clone(), reason.clone()))
                }
                _ => {}
            }
        }
        for id in resend {
            actions.extend(self.send(&id));
        }
        for (id, reason) in given_up {
            actions.extend(self.give_up_on_executor(&id, reason));
        }
        let expired: Vec<(String, String)> = self
            .active
            .iter()
            .filter(|(_, a)| a.phase.has_deadline() && a.deadline <= now)
            .map(|(id, a)| (id.clone(), a.job.timeout.to_string()))
            .collect();
        for (id, timeout) in expired {
            actions.extend(self.end(
                &id,
                RunStatus::TimedOut,
                format!("no result within the timeout of {timeout}"),
            ));
        }
        actions.extend(self.skip_past_start_deadline(now));
        actions.extend(self.place_waiting());
        actions
    }

    /// Runs that waited for room past their job's `start_deadline` (from
    /// their slot) end `skipped`, saying why.
    fn skip_past_start_deadline(&mut self, now: DateTime<Utc>) -> Vec<Action> {
        let late: Vec<(String, String)> = self
            .room_queue
            .iter()
            .take_while(|(slot, _, _)| *slot <= now)
            .filter_map(|(slot, _, id)| {
                let active = self.active.get(id)?;
                let deadline = active.job.start_deadline();
                let waited_out = *slot + chrono::Duration::from_std(deadline).ok()? <= now;
                let idle = matches!(active.phase, Phase::AwaitingRoom { asked: false, .. });
                (waited_out && idle).then(|| {
                    let why = active.run.pending_reason.as_deref().unwrap_or("no room");
                    let reason = format!(
                        "not started within its start_deadline of {}: {why}",
                        protocol::duration::HumanDuration(deadline)
                    );
                    (id.clone(), reason)
                })
            })
            .collect();
        let mut actions = Vec::new();
        for (id, reason) in late {
            actions.extend(self.end(&id, RunStatus::Skipped, reason));
        }
        actions
    }

    /// Asks the router to place the oldest runs waiting for room (one
    /// request at a time; room freed meanwhile is asked about once it
    /// answers).
    fn place_waiting(&mut self) -> Vec<Action> {
        if self.room_queue.is_empty() {
            return Vec::new();
        }
        if self.placing {
            self.place_again = true;
            return Vec::new();
        }
        let mut requests = Vec::new();
        for (_, _, id) in &self.room_queue {
            if requests.len() == PLACE_BATCH {
                break;
            }
            let Some(active) = self.active.get_mut(id) else {
                continue;
            };
            if let Phase::AwaitingRoom { pinned, asked } = &mut active.phase {
                if *asked {
                    continue;
                }
                *asked = true;
                requests.push(PlaceRequest {
                    run_id: id.clone(),
                    job: active.job.clone(),
                    shard: active.run.shard.index,
                    pinned: pinned.clone(),
                });
            }
        }
        if requests.is_empty() {
            return Vec::new();
        }
        self.placing = true;
        vec![Action::Place(requests)]
    }

    /// The router answered a `Place`: each run that found room is proposed
    /// there; the others wait on. Room found for a run that ended
    /// meanwhile is given back.
    pub fn on_placed(&mut self, placed: Vec<(String, Option<Route>)>) -> Vec<Action> {
        self.placing = false;
        let mut actions = Vec::new();
        for (id, route) in placed {
            let Some(active) = self
                .active
                .get_mut(&id)
                .filter(|a| matches!(a.phase, Phase::AwaitingRoom { asked: true, .. }))
            else {
                actions.extend(route.map(|r| Action::Release(r.primary)));
                continue;
            };
            let pinned = match &active.phase {
                Phase::AwaitingRoom { pinned, .. } => pinned.clone(),
                _ => None,
            };
            match route {
                Some(route) => {
                    self.room_queue.remove(&room_key(&active.run));
                    active.fallbacks = if active.job.failover {
                        route.fallbacks
                    } else {
                        Vec::new()
                    };
                    active.phase = Phase::Placing {
                        to: route.primary.clone(),
                        pinned,
                    };
                    actions.push(Action::PlaceRun {
                        run_id: id,
                        to: route.primary,
                    });
                }
                None => {
                    active.phase = Phase::AwaitingRoom {
                        pinned,
                        asked: false,
                    }
                }
            }
        }
        if std::mem::take(&mut self.place_again) {
            actions.extend(self.place_waiting());
        }
        actions
    }

    /// The log answered a `PlaceRun`: `Ok(true)` the run is on `to` now
    /// and goes there (at its slot); `Ok(false)` it was no longer waiting
    /// (it ended, or another leader placed it); `Err` it was not
    /// committed, and the run waits again.
    pub fn on_place_committed(
        &mut self,
        run_id: &str,
        to: &str,
        result: Result<bool, String>,
    ) -> Vec<Action> {
        let now = self.clock.now();
        let release = vec![Action::Release(to.to_string())];
        let timeout = self.active.get(run_id).map(|a| self.timeout_of(&a.job));
        let Some(active) = self.active.get_mut(run_id) else {
            return release;
        };
        let pinned = match &active.phase {
            Phase::Placing {
                to: placing,
                pinned,
            } if placing == to => pinned.clone(),
            _ => return release,
        };
        match result {
            Ok(true) => {
                active.run.executor = Some(to.to_string());
                active.run.pending_reason = None;
                if active.run.scheduled_at > now {
                    active.phase = Phase::Waiting;
                    self.waiting
                        .insert((active.run.scheduled_at, run_id.to_string()));
                    Vec::new()
                } else {
                    active.phase = Phase::Sending;
                    self.start(run_id)
                }
            }
            Ok(false) => {
                // Someone else has it now; its deadline still holds.
                active.phase = Phase::Delivered {
                    record_dispatched_at: None,
                };
                active.deadline = now + timeout.unwrap_or_default();
                release
            }
            Err(e) => {
                run_span(&active.run).in_scope(|| {
                    tracing::warn!(%to, error = %e, "placing the run was not committed; it waits again")
                });
                active.phase = Phase::AwaitingRoom {
                    pinned,
                    asked: false,
                };
                self.room_queue.insert(room_key(&active.run));
                release
            }
        }
    }

    /// The store's runs of a parent's fire, asked for by `LoadFire`.
    pub fn on_fire_loaded(&mut self, key: FireKey, runs: Result<Vec<Run>, String>) -> Vec<Action> {
        let now = self.clock.now();
        let step = self.fan_in.loaded(key, runs, now);
        Self::fan_in_step(step)
    }

    /// A new leader checks again the fires of recently ended runs of jobs
    /// with children that have no active run here (see `fan_in`).
    pub fn recheck_fires(&mut self, runs: &[(Run, Arc<Job>)]) -> Vec<Action> {
        self.fan_in
            .recheck(runs)
            .into_iter()
            .map(|(key, job)| Action::LoadFire { key, job })
            .collect()
    }

    fn fan_in_step(step: Step) -> Vec<Action> {
        match step {
            Step::Wait => Vec::new(),
            Step::Load(key, job) => vec![Action::LoadFire { key, job }],
            Step::Fire(children) if children.is_empty() => Vec::new(),
            Step::Fire(children) => vec![Action::Fire(children)],
        }
    }

    /// Takes over unfinished runs this leader created through a proposal
    /// that went unanswered: as `resume`, for the ones not active already.
    pub fn adopt(&mut self, runs: Vec<(Run, Arc<Job>)>) -> Vec<Action> {
        let runs = runs
            .into_iter()
            .filter(|(run, _)| !run.status.is_terminal() && !self.active.contains_key(&run.id))
            .collect();
        self.resume(runs)
    }

    /// Takes over runs left active by an earlier leader or process: each
    /// is delivered again (executors ignore a run id they already have and
    /// answer with its result), or held behind its job's active run.
    pub fn resume(&mut self, runs: Vec<(Run, Arc<Job>)>) -> Vec<Action> {
        let now = self.clock.now();
        let mut actions = Vec::new();
        let mut ids = Vec::new();
        for (run, job) in runs {
            let key = job.key();
            let started = run.status != RunStatus::Pending;
            let run_reported = run.status == RunStatus::Running;
            let queue_busy =
                job.concurrency == Concurrency::Queue && !self.running_ids(&key).is_empty();
            let phase = if !started && queue_busy {
                Phase::Held
            } else if !started && run.scheduled_at > now {
                Phase::Waiting
            } else {
                Phase::Sending
            };
            let run_slot = run.scheduled_at;
            let id = run.id.clone();
            self.fan_in.started(&job, &run);
            // A run waiting for room holds none (a broadcast run names the
            // executor it waits for).
            if let Some(executor) = run.executor.clone().filter(|_| {
                !matches!(job.target, Target::Http { .. }) && run.pending_reason.is_none()
            }) {
                actions.push(Action::Acquire(executor));
            }
            self.by_job.entry(key).or_default().insert(id.clone());
            match phase {
                Phase::Waiting => {
                    self.waiting.insert((run_slot, id.clone()));
                }
                Phase::Sending => ids.push(id.clone()),
                _ => {}
            }
            self.active.insert(
                id,
                Active {
                    deadline: now + self.timeout_of(&job),
                    job,
                    run,
                    fallbacks: vec![],
                    phase,
                    admit_until: None,
                    may_have_reached: started,
                    reported: run_reported,
                },
            );
        }
        for id in ids {
            actions.extend(self.start(&id));
        }
        actions
    }

    fn timeout_of(&self, job: &Job) -> chrono::Duration {
        chrono::Duration::from_std(job.timeout.0).unwrap_or(chrono::Duration::days(7)) + self.grace
    }

    /// The job's active runs that `wanted` picks.
    fn ids_of(&self, key: &JobKey, wanted: impl Fn(&Active) -> bool) -> Vec<String> {
        self.by_job
            .get(key)
            .map(|ids| {
                ids.iter()
                    .filter(|id| self.active.get(*id).is_some_and(&wanted))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn running_ids(&self, key: &JobKey) -> Vec<String> {
        self.ids_of(key, |a| a.phase.occupies_job())
    }

    fn held_ids(&self, key: &JobKey) -> Vec<String> {
        self.ids_of(key, |a| a.phase == Phase::Held)
    }

    /// Starts an active run: arms its deadline and sends (or calls) it.
    fn start(&mut self, run_id: &str) -> Vec<Action> {
        let now = self.clock.now();
        if let Some(active) = self.active.get_mut(run_id) {
            if active.run.pending_reason.is_some() {
                // No executor had room when it was routed: it waits here.
                let pinned = active.run.executor.take();
                active.phase = Phase::AwaitingRoom {
                    pinned,
                    asked: false,
                };
                self.room_queue.insert(room_key(&active.run));
                return self.place_waiting();
            }
        }
        let Some(timeout) = self.active.get(run_id).map(|a| self.timeout_of(&a.job)) else {
            return Vec::new();
        };
        if let Some(active) = self.active.get_mut(run_id) {
            active.deadline = now + timeout;
        }
        self.send(run_id)
    }

    /// Sends an active run to its executor, or calls its HTTP target.
    fn send(&mut self, run_id: &str) -> Vec<Action> {
        let now = self.clock.now();
        let term = self.term.unwrap_or_default();
        let report_to = self.report_to.clone();
        let Some(active) = self.active.get_mut(run_id) else {
            return Vec::new();
        };
        let run = &active.run;
        let task = match &active.job.target {
            Target::Http {
                url,
                method,
                headers,
                body,
            } => {
                // Held to its slot by the transport, so never called early.
                let started_at = now.max(run.scheduled_at);
                active.phase = Phase::Delivered {
                    record_dispatched_at: None,
                };
                return vec![
                    Action::Record(RunUpdate {
                        run_id: run_id.to_string(),
                        status: Some(RunStatus::Running),
                        executor: Some(url.clone()),
                        started_at: Some(started_at),
                        ..Default::default()
                    }),
                    Action::CallHttp {
                        run_id: run_id.to_string(),
                        call: HttpCall {
                            url: url.clone(),
                            method: method.clone(),
                            headers: headers.clone(),
                            body: body.clone(),
                            timeout: active.job.timeout.0,
                            not_before: run.scheduled_at,
                        },
                    },
                ];
            }
            Target::Shell { command, .. } => Task::Shell {
                command: command.clone(),
            },
            Target::Executor { handler, .. } => Task::Handler {
                handler: handler.clone(),
            },
        };
        let Some(endpoint) = run.executor.clone() else {
            return self.end(run_id, RunStatus::Failed, "the run has no executor".into());
        };
        let expires_at = now.max(run.scheduled_at) + ADMIT_WINDOW;
        let request = DispatchRequest {
            run_id: run.id.clone(),
            job_id: run.job_id.clone(),
            namespace: run.namespace.clone(),
            scheduled_at: run.scheduled_at,
            attempt: run.attempt,
            shard: run.shard.clone(),
            params: run.params.clone(),
            task,
            timeout_ms: u64::try_from(active.job.timeout.0.as_millis()).unwrap_or(u64::MAX),
            report_to,
            term,
            expires_at: Some(expires_at),
            parent_run_ids: run.parent_run_ids.clone(),
            parent_scheduled_at: run.parent_scheduled_at,
        };
        active.admit_until = Some(expires_at);
        active.phase = Phase::Sending;
        vec![Action::Send { endpoint, request }]
    }

    /// Ends an active run with `status` on the dispatcher's own authority.
    fn end(&mut self, run_id: &str, status: RunStatus, error: String) -> Vec<Action> {
        let Some(mut active) = self.active.remove(run_id) else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        let on_executor =
            active.phase.maybe_on_executor() && !matches!(active.job.target, Target::Http { .. });
        if let (true, Some(endpoint)) = (on_executor, active.run.executor.clone()) {
            if matches!(status, RunStatus::Killed | RunStatus::TimedOut) {
                actions.push(Action::Kill {
                    run_id: run_id.to_string(),
                    endpoint,
                });
            }
        }
        actions.push(Action::Record(RunUpdate {
            run_id: run_id.to_string(),
            status: Some(status),
            finished_at: Some(self.clock.now()),
            error: Some(error.clone()),
            ..Default::default()
        }));
        active.run.status = status;
        active.run.error = Some(error);
        actions.extend(self.after_end(active));
        actions
    }

    /// Bookkeeping once a run is terminal: release its executor, schedule a
    /// retry, start the job's queued run; once no retry follows, fire child
    /// jobs and alert.
    fn after_end(&mut self, active: Active) -> Vec<Action> {
        let now = self.clock.now();
        let Active { job, run, .. } = active;
        log_ended(&run);
        let key = job.key();
        self.room_queue.remove(&room_key(&run));
        let mut actions = release_of(&job, &run);
        if let Some(ids) = self.by_job.get_mut(&key) {
            ids.remove(&run.id);
            if ids.is_empty() {
                self.by_job.remove(&key);
            }
        }
        let failed = matches!(run.status, RunStatus::Failed | RunStatus::TimedOut);
        let retrying = failed && run.attempt <= job.retry.max_retries;
        if retrying {
            let attempt = run.attempt + 1;
            let delay =
                chrono::Duration::from_std(job.retry.delay_before(attempt)).unwrap_or_default();
            let fire = Fire {
                retry: Some(RetryOf {
                    previous_run_id: run.id.clone(),
                    attempt,
                    shard: run.shard.clone(),
                    params: run.params.clone(),
                    previous_executor: run.executor.clone(),
                }),
                parent: ParentFire::of_run(&run),
                ..Fire::new(key.clone(), run.scheduled_at, TriggerKind::Retry)
            };
            self.retries.insert((now + delay, run.id.clone()), fire);
        }
        if self.running_ids(&key).is_empty() {
            for id in self.held_ids(&key) {
                actions.extend(self.start(&id));
            }
        }
        // Its executor has room again.
        actions.extend(self.place_waiting());
        if retrying {
            return actions;
        }
        actions.extend(Self::fan_in_step(self.fan_in.ended(&job, &run, now)));
        let alerts = &job.alerts;
        if alerts.on.contains(&run.status)
            && !(alerts.webhooks.is_empty() && alerts.emails.is_empty())
        {
            actions.push(Action::Alert {
                webhooks: alerts.webhooks.clone(),
                emails: alerts.emails.clone(),
                run: Box::new(run),
            });
        }
        actions
    }
}

/// Whether `slot` is one of the slots `job`'s schedule names.
fn is_slot_of(job: &Job, slot: DateTime<Utc>) -> bool {
    let (Ok(schedule), Ok(tz)) = (
        protocol::schedule::Schedule::parse(&job.schedule),
        protocol::schedule::parse_timezone(&job.timezone),
    ) else {
        return false;
    };
    schedule.next_after(slot - chrono::Duration::nanoseconds(1), tz) == Some(slot)
}

fn release_of(job: &Job, run: &Run) -> Vec<Action> {
    match (&job.target, &run.executor) {
        (Target::Http { .. }, _) | (_, None) => Vec::new(),
        (_, Some(endpoint)) => vec![Action::Release(endpoint.clone())],
    }
}

fn skip(run: &mut Run, now: DateTime<Utc>, reason: String) -> Vec<Action> {
    let released = run.executor.take().map(Action::Release);
    run.status = RunStatus::Skipped;
    run.error = Some(reason);
    run.finished_at = Some(now);
    released.into_iter().collect()
}

/// Whether `created` is the run planned as `planned` (ids of manual runs
/// are assigned by the log, so those match by job, slot and shard).
fn same_run(planned: &Run, created: &Run) -> bool {
    if planned.id.is_empty() {
        planned.namespace == created.namespace
            && planned.job_id == created.job_id
            && planned.scheduled_at == created.scheduled_at
            && planned.shard.index == created.shard.index
            && planned.trigger == created.trigger
    } else {
        planned.id == created.id
    }
}
