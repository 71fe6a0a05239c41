//! The Router actor: turns fires into runs placed on executors.
//!
//! - `core`: the routing policies over the executors this node knows,
//!   and their room.
//! - `selector`: which executors may take a job's runs (group, labels,
//!   handler), and why none may.
//! - `assign`: a fire into runs, one per shard, each placed, waiting for
//!   room, or failed.
//! - `place`: a run that waited for room goes to an executor that has it.

mod assign;
mod core;
mod place;
mod selector;

use std::sync::Arc;

use actix::prelude::*;
use protocol::api::ExecutorInfo;

pub use self::{
    assign::{assign, Assignment},
    core::{ExecutorEntry, Route, RouterCore},
    place::{place, PlaceRequest},
    selector::{eligible, NoMatch},
};
use crate::{
    clock::SharedClock,
    messages::{Assign, ExecutorLoad, Fires, ListExecutors, SetExecutors},
    store::StateMachine,
};

pub struct Router {
    core: RouterCore,
    store: Arc<StateMachine>,
    clock: SharedClock,
    dispatcher: Recipient<Assign>,
}

impl Router {
    pub fn new(
        core: RouterCore,
        store: Arc<StateMachine>,
        clock: SharedClock,
        dispatcher: Recipient<Assign>,
    ) -> Self {
        Self {
            core,
            store,
            clock,
            dispatcher,
        }
    }
}

impl Actor for Router {
    type Context = Context<Self>;
}

impl Handler<Fires> for Router {
    type Result = ();

    fn handle(&mut self, msg: Fires, _: &mut Context<Self>) {
        let now = self.clock.now();
        let mut assignments = Vec::new();
        for fire in &msg.fires {
            match self.store.job(&fire.job) {
                Ok(Some(job)) => {
                    assignments.extend(assign(&mut self.core, fire, &Arc::new(job), now))
                }
                Ok(None) => tracing::warn!(job = %fire.job, "fire for a job that no longer exists"),
                Err(e) => tracing::error!(job = %fire.job, error = %e, "cannot read job"),
            }
        }
        if assignments.is_empty() {
            if let Some(reply) = msg.reply {
                let _ = reply.send(Err("the job does not exist".into()));
            }
            return;
        }
        self.dispatcher.do_send(Assign {
            assignments,
            reply: msg.reply,
            ticket: msg.ticket,
        });
    }
}

impl Handler<ExecutorLoad> for Router {
    type Result = ();

    fn handle(&mut self, msg: ExecutorLoad, _: &mut Context<Self>) {
        match msg {
            ExecutorLoad::Acquire(endpoint) => self.core.acquire(&endpoint),
            ExecutorLoad::Release(endpoint) => self.core.release(&endpoint),
            ExecutorLoad::Forget => self.core.forget_load(),
            ExecutorLoad::Place { requests, reply } => {
                let placed = requests
                    .iter()
                    .map(|request| (request.run_id.clone(), place(&mut self.core, request)))
                    .collect();
                let _ = reply.send(placed);
            }
        }
    }
}

impl Handler<SetExecutors> for Router {
    type Result = ();

    fn handle(&mut self, SetExecutors(list): SetExecutors, _: &mut Context<Self>) {
        self.core.set_executors(list);
    }
}

impl Handler<ListExecutors> for Router {
    type Result = MessageResult<ListExecutors>;

    fn handle(&mut self, _: ListExecutors, _: &mut Context<Self>) -> Self::Result {
        let list = self
            .core
            .executors()
            .iter()
            .map(|e| ExecutorInfo {
                id: e.id.clone(),
                group: e.group.clone(),
                endpoint: e.endpoint.clone(),
                handlers: e.handlers.clone(),
                weight: e.weight,
                labels: e.labels.clone(),
                running: self.core.inflight(&e.endpoint),
                alive: true,
                last_seen: None,
                max_concurrent: e.max_concurrent,
                // Only verified executors are given to the Router.
                verified: true,
            })
            .collect();
        MessageResult(list)
    }
}
