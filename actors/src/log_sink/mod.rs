//! The LogSink actor: batches run transitions and proposes them as one
//! `RecordRuns` command per batch.

mod core;

use std::{sync::Arc, time::Duration};

use actix::prelude::*;
use protocol::MetaCommand;

pub use self::core::LogSinkCore;
use crate::{messages::Record, proposer::Proposer};

pub struct LogSink {
    core: LogSinkCore,
    proposer: Arc<dyn Proposer>,
    /// Longest an update waits for companions before its batch is proposed.
    linger: Duration,
    flush_scheduled: bool,
}

impl LogSink {
    pub fn new(proposer: Arc<dyn Proposer>, max_batch: usize, linger: Duration) -> Self {
        Self {
            core: LogSinkCore::new(max_batch),
            proposer,
            linger,
            flush_scheduled: false,
        }
    }

    fn flush(&mut self) {
        if self.core.is_empty() {
            return;
        }
        let (batches, waiters) = self.core.take_batches();
        let proposals: Vec<_> = batches
            .into_iter()
            .map(|updates| self.proposer.propose(MetaCommand::RecordRuns { updates }))
            .collect();
        actix::spawn(async move {
            // A waiter's updates may lie in any of the batches: it hears
            // success only when every one was recorded.
            let result = futures::future::join_all(proposals)
                .await
                .into_iter()
                .map(|r| r.map(|_| ()).map_err(|e| e.to_string()))
                .find(Result::is_err)
                .unwrap_or(Ok(()));
            if let Err(e) = &result {
                tracing::warn!(error = %e, "run transitions were not recorded");
            }
            for waiter in waiters {
                let _ = waiter.send(result.clone());
            }
        });
    }
}

impl Actor for LogSink {
    type Context = Context<Self>;
}

impl Handler<Record> for LogSink {
    type Result = ();

    fn handle(&mut self, msg: Record, ctx: &mut Context<Self>) {
        if self.core.push(msg.updates, msg.done) {
            self.flush();
        } else if !self.flush_scheduled {
            self.flush_scheduled = true;
            ctx.run_later(self.linger, |act, _| {
                act.flush_scheduled = false;
                act.flush();
            });
        }
    }
}
