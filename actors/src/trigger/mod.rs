//! The Trigger actor: on the leader, wakes at each job's next fire time
//! from one timer and hands due fires to the Router, no more at a time
//! than the backlog has room for (see `backlog`).

mod core;

use std::{collections::VecDeque, sync::Arc, time::Duration};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use protocol::MetaCommand;

pub use self::core::TriggerCore;
use crate::{
    backlog::Backlog,
    clock::SharedClock,
    fire::Fire,
    messages::{AppliedCommand, Fires, Leadership},
    store::{Outcome, StateMachine},
};

pub struct Trigger {
    core: TriggerCore,
    store: Arc<StateMachine>,
    clock: SharedClock,
    router: Recipient<Fires>,
    /// The term this node fires in; `None` while it does not lead.
    leading_term: Option<u64>,
    /// The one pending timer and the instant it is set for.
    timer: Option<(SpawnHandle, DateTime<Utc>)>,
    /// Fires handed over and not yet created, shared with the tickets.
    backlog: Backlog,
    /// Missed slots found when leadership began, handed over before any
    /// newer fire as the backlog makes room.
    catch_up: VecDeque<Fire>,
    /// Fires are due but the backlog is full: the pending wait for room.
    /// The timer is idle meanwhile; the wait hands over and re-arms.
    room_wait: Option<SpawnHandle>,
}

impl Trigger {
    pub fn new(
        core: TriggerCore,
        store: Arc<StateMachine>,
        clock: SharedClock,
        router: Recipient<Fires>,
        backlog: Backlog,
    ) -> Self {
        Self {
            core,
            store,
            clock,
            router,
            leading_term: None,
            timer: None,
            backlog,
            catch_up: VecDeque::new(),
            room_wait: None,
        }
    }

    fn send(&self, fires: Vec<Fire>) {
        if !fires.is_empty() {
            let ticket = Arc::new(self.backlog.take(fires.len()));
            self.router.do_send(Fires {
                fires,
                reply: None,
                ticket: Some(ticket),
            });
        }
    }

    /// Hands over what is due (missed slots first), as much as the backlog
    /// has room for. If fires are left due, waits for room and comes back.
    fn hand_over(&mut self, ctx: &mut Context<Self>) {
        if self.leading_term.is_none() {
            return;
        }
        let mut room = self.backlog.room();
        let missed = self.catch_up.len().min(room);
        let mut fires: Vec<Fire> = self.catch_up.drain(..missed).collect();
        room -= missed;
        let now = self.clock.now();
        fires.extend(self.core.due_at_most(now, room));
        self.send(fires);
        let overdue = match self.catch_up.front() {
            Some(missed) => Some(missed.scheduled_at),
            None => self.core.overdue_since(now),
        };
        self.backlog.set_behind_since(overdue);
        let behind = !self.catch_up.is_empty() || self.core.next_wake().is_some_and(|at| at <= now);
        if behind && self.room_wait.is_none() {
            let backlog = self.backlog.clone();
            let wait = async move { backlog.freed().await }
                .into_actor(self)
                .map(|_, act, ctx| {
                    act.room_wait = None;
                    act.hand_over(ctx);
                    act.rearm(ctx);
                });
            self.room_wait = Some(ctx.spawn(wait));
        }
    }

    /// Points the one timer at the earliest fire.
    fn rearm(&mut self, ctx: &mut Context<Self>) {
        let next = if self.leading_term.is_some() && self.room_wait.is_none() {
            self.core.next_wake()
        } else {
            None
        };
        if self.timer.as_ref().map(|(_, at)| *at) == next {
            return;
        }
        if let Some((handle, _)) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        let Some(at) = next else { return };
        let wait = (at - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
        let handle = ctx.run_later(wait, |act, ctx| {
            act.timer = None;
            act.tick(ctx);
        });
        self.timer = Some((handle, at));
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        self.hand_over(ctx);
        self.rearm(ctx);
    }

    fn start_firing(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        let jobs = match self.store.all_jobs() {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::error!(error = %e, "cannot load jobs; the trigger stays idle");
                return;
            }
        };
        let mut fires = Vec::new();
        for (job, state) in &jobs {
            fires.extend(self.core.catch_up(job, state.cursor, now));
        }
        tracing::info!(jobs = jobs.len(), missed = fires.len(), "trigger started");
        self.catch_up = fires.into();
        self.hand_over(ctx);
    }
}

impl Actor for Trigger {
    type Context = Context<Self>;
}

impl Handler<Leadership> for Trigger {
    type Result = ();

    fn handle(&mut self, Leadership { term }: Leadership, ctx: &mut Context<Self>) {
        // A new term is a new leadership even without a gap in between:
        // another leader may have fired meanwhile, so start afresh.
        if term == self.leading_term {
            return;
        }
        self.leading_term = term;
        self.core.clear();
        self.catch_up.clear();
        self.backlog.set_behind_since(None);
        if let Some(wait) = self.room_wait.take() {
            ctx.cancel_future(wait);
        }
        if term.is_some() {
            self.start_firing(ctx);
        }
        self.rearm(ctx);
    }
}

impl Handler<AppliedCommand> for Trigger {
    type Result = ();

    fn handle(&mut self, AppliedCommand(applied): AppliedCommand, ctx: &mut Context<Self>) {
        if self.leading_term.is_none() {
            return;
        }
        match (&*applied.cmd, &*applied.outcome) {
            (
                MetaCommand::PutJob { .. } | MetaCommand::SetJobEnabled { .. },
                Outcome::JobPut { job, .. },
            ) => {
                self.core.track(job, self.clock.now());
            }
            (MetaCommand::CreateJobs { .. }, Outcome::JobsCreated(jobs)) => {
                let now = self.clock.now();
                for job in jobs {
                    self.core.track(job, now);
                }
            }
            (MetaCommand::DeleteJob { key, .. }, _) => self.core.untrack(key),
            _ => return,
        }
        self.rearm(ctx);
    }
}
