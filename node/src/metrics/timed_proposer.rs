//! A [`Proposer`] that measures each proposal, from the call to the
//! command's being applied on this node, and otherwise passes it through.

use std::{sync::Arc, time::Instant};

use actors::proposer::{ProposeResult, Proposer};
use futures::{future::BoxFuture, FutureExt};
use protocol::MetaCommand;

use super::Metrics;

pub struct TimedProposer {
    pub inner: Arc<dyn Proposer>,
    pub metrics: Metrics,
}

impl Proposer for TimedProposer {
    fn propose(&self, cmd: MetaCommand) -> BoxFuture<'static, ProposeResult> {
        let started = Instant::now();
        let metrics = self.metrics.clone();
        self.inner
            .propose(cmd)
            .map(move |result| {
                if result.is_ok() {
                    metrics.proposal_took(started.elapsed());
                }
                result
            })
            .boxed()
    }
}
