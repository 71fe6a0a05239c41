//! Messages between the actors.

use std::sync::Arc;

use actix::Message;
use protocol::{api::ExecutorInfo, RunUpdate};
use tokio::sync::oneshot;

use crate::{
    backlog::Ticket,
    fire::{Fire, FireReply},
    proposer::Applied,
    router::{Assignment, ExecutorEntry, PlaceRequest, Route},
};

/// A command was applied to this node's state machine.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct AppliedCommand(pub Applied);

/// Whether this node leads, and in which Raft term.
#[derive(Message, Clone, Copy, Debug, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct Leadership {
    /// The term this node leads in; `None` while it does not lead.
    pub term: Option<u64>,
}

impl Leadership {
    pub fn leading(term: u64) -> Self {
        Self { term: Some(term) }
    }

    pub fn following() -> Self {
        Self { term: None }
    }
}

/// Fires for the Router to turn into runs.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Fires {
    pub fires: Vec<Fire>,
    pub reply: Option<FireReply>,
    /// The trigger's backlog ticket for these fires: held until their runs
    /// are created (see `backlog`). `None` for fires outside the trigger's
    /// budget (manual triggers, retries, child jobs).
    pub ticket: Option<Arc<Ticket>>,
}

/// Runs for the Dispatcher to create and deliver.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Assign {
    pub assignments: Vec<Assignment>,
    pub reply: Option<FireReply>,
    /// The ticket of the fires these runs come from (see `Fires`).
    pub ticket: Option<Arc<Ticket>>,
}

/// Executor reports (one or many); resolves once all are recorded durably.
#[derive(Message, Debug)]
#[rtype(result = "Result<(), String>")]
pub struct Reports(pub Vec<RunUpdate>);

/// Kill an active run.
#[derive(Message, Debug)]
#[rtype(result = "Result<(), KillError>")]
pub struct KillRun(pub String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KillError {
    #[error("the run is not active on this scheduler")]
    NotActive,
    #[error("this node is not the leader")]
    NotLeader,
}

/// A run transition for the LogSink to batch into the log.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Record {
    pub updates: Vec<RunUpdate>,
    /// Told once the batch holding the updates is committed.
    pub done: Option<oneshot::Sender<Result<(), String>>>,
}

/// A change of the Router's in-flight count for an endpoint, or a request
/// to place runs that waited for room (one channel, so a release and the
/// placement it allows arrive in order).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub enum ExecutorLoad {
    Acquire(String),
    Release(String),
    /// Forget every count: leadership changed, and the new leader counts
    /// its active runs afresh (`Acquire` each).
    Forget,
    /// Place these runs where there is room; `reply` gets each run's
    /// route (counted in flight there) or `None`, in order.
    Place {
        requests: Vec<PlaceRequest>,
        reply: oneshot::Sender<Vec<(String, Option<Route>)>>,
    },
}

/// Replace the executors the Router knows.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SetExecutors(pub Vec<ExecutorEntry>);

/// An executor was declared dead by the membership: fail its runs over.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ExecutorLost(pub String);

/// Scheduler URLs executors report to, preferred first.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SetReportTo(pub Vec<String>);

/// The executors the Router knows, with their load.
#[derive(Message, Debug)]
#[rtype(result = "Vec<ExecutorInfo>")]
pub struct ListExecutors;
