//! The Trigger actor: on the leader, wakes at each job's next fire time
//! from one timer and hands due fires to the Router.

mod core;

use std::{sync::Arc, time::Duration};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use protocol::MetaCommand;

pub use self::core::TriggerCore;
use crate::{
    clock::SharedClock,
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
}

impl Trigger {
    pub fn new(
        core: TriggerCore,
        store: Arc<StateMachine>,
        clock: SharedClock,
        router: Recipient<Fires>,
    ) -> Self {
        Self {
            core,
            store,
            clock,
            router,
            leading_term: None,
            timer: None,
        }
    }

    fn send(&self, fires: Vec<crate::fire::Fire>) {
        if !fires.is_empty() {
            self.router.do_send(Fires { fires, reply: None });
        }
    }

    /// Points the one timer at the earliest fire.
    fn rearm(&mut self, ctx: &mut Context<Self>) {
        let next = if self.leading_term.is_some() {
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
        let fires = self.core.due(self.clock.now());
        self.send(fires);
        self.rearm(ctx);
    }

    fn start_firing(&mut self) {
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
        self.send(fires);
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
        if term.is_some() {
            self.start_firing();
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
            (MetaCommand::DeleteJob { key }, _) => self.core.untrack(key),
            _ => return,
        }
        self.rearm(ctx);
    }
}
