//! The cluster's `Proposer`: a command goes into the engine's mailbox and
//! is answered once its entry is committed and applied on this node.

use std::time::Duration;

use actors::proposer::{ProposeError, ProposeResult, Proposer};
use futures::{future::BoxFuture, FutureExt};
use protocol::MetaCommand;
use tokio::sync::oneshot;

use super::engine::{EngineHandle, Input};

/// How long a proposal may wait for its commit (an election in between
/// takes well under this).
const COMMIT_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct RaftProposer {
    pub engine: EngineHandle,
}

impl Proposer for RaftProposer {
    fn propose(&self, cmd: MetaCommand) -> BoxFuture<'static, ProposeResult> {
        let (reply, answer) = oneshot::channel();
        let sent = self.engine.input.send(Input::Propose { cmd, reply });
        async move {
            sent.map_err(|_| ProposeError::Closed)?;
            match tokio::time::timeout(COMMIT_WAIT, answer).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(ProposeError::Closed),
                Err(_) => Err(ProposeError::Timeout),
            }
        }
        .boxed()
    }
}
