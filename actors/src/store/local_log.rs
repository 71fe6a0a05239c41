//! The single-node log: proposals are applied in arrival order on one
//! thread, a batch at a time, and acknowledged only after the batch is
//! flushed (group commit).

use std::{
    sync::{mpsc, Arc},
    thread,
};

use futures::{future::BoxFuture, FutureExt};
use protocol::MetaCommand;
use tokio::sync::{mpsc::UnboundedSender, oneshot};

use super::StateMachine;
use crate::proposer::{Applied, ProposeError, ProposeResult, Proposer};

/// Most proposals applied between two flushes.
const MAX_BATCH: usize = 1024;

/// When an applied batch counts as durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Flush sled before acknowledging: survives kill -9 of the process.
    #[default]
    Flush,
    /// Acknowledge once applied in memory; sled writes back within its own
    /// flush interval. Only for benchmarks of everything else.
    Buffered,
}

struct Proposal {
    cmd: MetaCommand,
    reply: oneshot::Sender<ProposeResult>,
}

/// Proposer for a node that is its own quorum.
#[derive(Clone)]
pub struct LocalLog {
    tx: mpsc::Sender<Proposal>,
}

impl LocalLog {
    /// Starts the log thread. Applied commands are published on `applied`.
    pub fn start(
        store: Arc<StateMachine>,
        applied: UnboundedSender<Applied>,
        durability: Durability,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Proposal>();
        thread::Builder::new()
            .name("cronmesh-log".into())
            .spawn(move || run_log(store, rx, applied, durability))
            .expect("spawning the log thread");
        Self { tx }
    }
}

impl Proposer for LocalLog {
    fn propose(&self, cmd: MetaCommand) -> BoxFuture<'static, ProposeResult> {
        let (reply, answer) = oneshot::channel();
        let sent = self.tx.send(Proposal { cmd, reply });
        async move {
            sent.map_err(|_| ProposeError::Closed)?;
            answer.await.map_err(|_| ProposeError::Closed)?
        }
        .boxed()
    }
}

fn run_log(
    store: Arc<StateMachine>,
    rx: mpsc::Receiver<Proposal>,
    applied: UnboundedSender<Applied>,
    durability: Durability,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let _writing = store.write_watch().begin();
        let mut index = match store.applied_index() {
            Ok(i) => i,
            Err(e) => {
                fail_all(batch, &e.to_string());
                continue;
            }
        };
        let mut results = Vec::with_capacity(batch.len());
        for proposal in batch {
            index += 1;
            let outcome = store.apply(index, &proposal.cmd);
            results.push((index, proposal, outcome));
        }
        let flushed = match durability {
            Durability::Flush => store.flush().map_err(|e| e.to_string()),
            Durability::Buffered => Ok(()),
        };
        for (index, proposal, outcome) in results {
            let result = match (&flushed, outcome) {
                (Ok(()), Ok(outcome)) => {
                    let cmd = Arc::new(proposal.cmd);
                    let _ = applied.send(Applied {
                        index,
                        cmd,
                        outcome: Arc::new(outcome.clone()),
                    });
                    Ok(outcome)
                }
                (Err(e), _) => Err(ProposeError::Storage(e.clone())),
                (_, Err(e)) => Err(ProposeError::Storage(e.to_string())),
            };
            let _ = proposal.reply.send(result);
        }
    }
}

fn fail_all(batch: Vec<Proposal>, reason: &str) {
    for p in batch {
        let _ = p.reply.send(Err(ProposeError::Storage(reason.to_string())));
    }
}
