//! How a node changes replicated metadata: it proposes a `MetaCommand` and
//! waits until the command is committed and applied. A single node
//! satisfies this with `store::local_log::LocalLog`; the Raft engine
//! satisfies it for a cluster.

use std::sync::Arc;

use futures::future::BoxFuture;
use protocol::MetaCommand;

use crate::store::Outcome;

pub type ProposeResult = Result<Outcome, ProposeError>;

pub trait Proposer: Send + Sync + 'static {
    /// Resolves once the command is durable and applied on this node.
    fn propose(&self, cmd: MetaCommand) -> BoxFuture<'static, ProposeResult>;
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("this node is not the leader")]
    NotLeader { leader: Option<u64> },
    #[error("the change was not committed in time")]
    Timeout,
    #[error("storage failed: {0}")]
    Storage(String),
    /// Refused before it reached the log: the node's disk has too little
    /// room for it (the reason says how much is left).
    #[error("not enough disk space: {0}")]
    NoSpace(String),
    #[error("the log is shut down")]
    Closed,
}

/// A command applied at a log index, as the actors that follow the log see it.
#[derive(Clone, Debug)]
pub struct Applied {
    pub index: u64,
    pub cmd: Arc<MetaCommand>,
    /// Shared: every subscriber gets the same outcome, and an outcome of
    /// thousands of runs is not copied per subscriber.
    pub outcome: Arc<Outcome>,
}
