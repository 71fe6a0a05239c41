//! The JobStore state machine: jobs, runs and their indexes in one sled
//! tree, changed only by applying `MetaCommand`s in log order.
//!
//! - `apply`: the one `match` that turns a command into writes.
//! - `queries`: reads for the API and the actors.
//! - `local_log`: the single-node proposer that applies durably in place of Raft.
//! - `snapshot`: the whole state as one blob, for Raft snapshots.
//! - `keys`, `records`, `txn`: key layout, stored records, write overlay.

mod apply;
pub mod backup;
pub mod keys;
pub mod local_log;
mod queries;
pub mod records;
mod snapshot;
#[cfg(test)]
mod tests;
mod txn;

use std::path::Path;

use protocol::{Job, JobKey, Run};
use serde::de::DeserializeOwned;

pub use queries::{JobFilter, RunFilter};
pub use records::{JobState, StoredRun};

/// Runs kept per job unless configured otherwise.
pub const DEFAULT_HISTORY_LIMIT: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt record under key {key:?}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("cannot encode record: {0}")]
    Encode(String),
}

/// What applying one command did, handed back to the proposer and to the
/// actors that follow the log.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The log index was applied before (replay after restart).
    AlreadyApplied,
    JobPut {
        job: Box<Job>,
        created: bool,
    },
    /// `CreateJobs` stored every job, in order.
    JobsCreated(Vec<Job>),
    JobDeleted {
        key: JobKey,
        existed: bool,
    },
    /// Runs that were new; runs whose id existed are left out.
    RunsCreated(Vec<Run>),
    /// Runs whose status changed, as they are now.
    RunsChanged(Vec<Run>),
    NodeRegistered(protocol::meta::NodeInfo),
    /// `MoveRun` applied (`moved`), or found the run no longer active on
    /// the executor it was moving from.
    RunMoved {
        run_id: String,
        moved: bool,
    },
    Rejected(Rejection),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    JobExists(JobKey),
    JobNotFound(JobKey),
}

/// The replicated state of one node.
pub struct StateMachine {
    db: sled::Db,
    tree: sled::Tree,
    /// Terminal runs beyond this many per job are dropped, oldest first.
    history_limit: usize,
    /// Held while a command is applied or the whole state is read or
    /// replaced, so a backup taken from any thread sees whole commands.
    apply_gate: std::sync::Mutex<()>,
}

impl StateMachine {
    pub fn open(dir: &Path, history_limit: usize) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(dir).open()?;
        Self::with_db(db, history_limit)
    }

    pub fn with_db(db: sled::Db, history_limit: usize) -> Result<Self, StoreError> {
        let tree = db.open_tree("state")?;
        Ok(Self {
            db,
            tree,
            history_limit: history_limit.max(1),
            apply_gate: std::sync::Mutex::new(()),
        })
    }

    /// Makes everything applied so far survive a crash of the process.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Whether nothing was ever applied or restored here.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    pub fn applied_index(&self) -> Result<u64, StoreError> {
        Ok(match self.tree.get(keys::APPLIED)? {
            Some(bytes) => {
                u64::from_be_bytes(bytes.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    key: "applied".into(),
                    reason: "not 8 bytes".into(),
                })?)
            }
            None => 0,
        })
    }
}

fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    protocol::wire::decode(bytes).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).replace('\0', "/"),
        reason: e.to_string(),
    })
}
