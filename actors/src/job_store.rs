//! The JobStore actor: the node's door to replicated metadata. Writes are
//! proposed through the log; every applied command is passed on to the
//! actors that follow the log.

use std::sync::Arc;

use actix::prelude::*;
use protocol::MetaCommand;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::{
    messages::AppliedCommand,
    proposer::{Applied, ProposeResult, Proposer},
};

/// Propose a metadata change; resolves when it is applied.
#[derive(Message, Debug)]
#[rtype(result = "ProposeResult")]
pub struct Propose(pub MetaCommand);

pub struct JobStore {
    /// Where writes go: the single-node log, or Raft in a cluster.
    proposer: Arc<dyn Proposer>,
    /// Actors that react to applied commands (the Trigger re-plans a job).
    followers: Vec<Recipient<AppliedCommand>>,
    /// The log's stream of applied commands, taken when the actor starts.
    applied: Option<UnboundedReceiver<Applied>>,
}

impl JobStore {
    pub fn new(
        proposer: Arc<dyn Proposer>,
        applied: UnboundedReceiver<Applied>,
        followers: Vec<Recipient<AppliedCommand>>,
    ) -> Self {
        Self {
            proposer,
            followers,
            applied: Some(applied),
        }
    }
}

impl Actor for JobStore {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(applied) = self.applied.take() {
            ctx.add_stream(stream_of(applied));
        }
    }
}

fn stream_of(mut rx: UnboundedReceiver<Applied>) -> impl futures::Stream<Item = Applied> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

impl StreamHandler<Applied> for JobStore {
    fn handle(&mut self, applied: Applied, _: &mut Context<Self>) {
        for follower in &self.followers {
            follower.do_send(AppliedCommand(applied.clone()));
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {
        tracing::debug!("the log stopped publishing applied commands");
    }
}

impl Handler<Propose> for JobStore {
    type Result = ResponseFuture<ProposeResult>;

    fn handle(&mut self, Propose(cmd): Propose, _: &mut Context<Self>) -> Self::Result {
        Box::pin(self.proposer.propose(cmd))
    }
}
