//! The JobStore state machine: jobs and runs in one sled tree, the runs'
//! indexes in memory, changed only by applying `MetaCommand`s in log order.
//!
//! - `apply`: the one `match` that turns a command into writes.
//! - `queries`: reads for the API and the actors.
//! - `local_log`: the single-node proposer that applies durably in place of Raft.
//! - `view`: a point-in-time view of the whole state, read while applies go on.
//! - `dump`: the file format of a whole state (Raft snapshots and backups).
//! - `install`: replacing the whole state with a dump's, crash-safely.
//! - `backup`: backups written from a view and restored into a new node.
//! - `retention`: the history policy: which finished runs are dropped, when.
//! - `run_book`: writes of runs, with the byte total retention reads.
//! - `run_index`: the runs by id, creation order, job and status, in memory.
//! - `migrate`: dropping what earlier versions stored and this one derives.
//! - `links`: child links checked at apply time (missing jobs, cycles).
//! - `keys`, `records`, `txn`: key layout, stored records, write overlay.
//! - `packed_run`: the form a run record is written in (times as integers).
//! - `write_watch`: how long the write in progress has gone on (a wedged store).

mod apply;
pub mod backup;
#[cfg(test)]
mod cost_tests;
pub mod dump;
#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod index_tests;
pub mod install;
pub mod keys;
pub mod links;
#[cfg(test)]
mod links_tests;
pub mod local_log;
mod migrate;
mod packed_run;
mod queries;
pub mod records;
pub mod retention;
#[cfg(test)]
mod retention_tests;
mod run_book;
mod run_index;
#[cfg(test)]
mod size_tests;
#[cfg(test)]
mod tests;
mod txn;
mod view;
pub mod write_watch;

use std::{
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, MutexGuard, PoisonError, RwLock,
    },
};

use protocol::{Job, JobKey, Run};
use serde::de::DeserializeOwned;

pub use install::Installed;
pub use queries::{JobFilter, RunFilter};
pub use records::{JobState, StoredRun};
pub use view::StateView;

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
    /// A view kept more old values than it may while it was read (the
    /// writes went on faster than the reading); it can begin again.
    #[error("the state changed by more than {limit} bytes while it was read; try again")]
    ViewOverflow { limit: u64 },
    #[error("cannot read or write a state dump: {0}")]
    Io(#[from] std::io::Error),
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
        /// Parents whose links to the deleted job a forced delete removed,
        /// as they are now.
        unlinked: Vec<Job>,
    },
    /// Runs that were new; runs whose id existed are left out.
    RunsCreated(Vec<Run>),
    /// Runs whose status changed, as they are now.
    RunsChanged(Vec<Run>),
    NodeRegistered(protocol::meta::NodeInfo),
    /// Runs that gained alert deliveries, as they are now.
    AlertsRecorded(Vec<Run>),
    /// `MoveRun` applied (`moved`), or found the run no longer active on
    /// the executor it was moving from.
    RunMoved {
        run_id: String,
        moved: bool,
    },
    /// `PlaceRun` applied (`placed`), or found the run no longer waiting
    /// for room (it ended, or another leader placed it).
    RunPlaced {
        run_id: String,
        placed: bool,
    },
    Rejected(Rejection),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    JobExists(JobKey),
    JobNotFound(JobKey),
    /// A child link names a missing job or closes a cycle.
    BadChildLink(links::BadLink),
    /// The job is a child of these jobs; deleting it needs `force`.
    JobIsChild {
        key: JobKey,
        parents: Vec<JobKey>,
    },
}

/// The replicated state of one node.
pub struct StateMachine {
    db: sled::Db,
    /// The tree the state lives in now. A snapshot or a backup is installed
    /// by loading a new tree beside it and switching to that one (see
    /// `install`), so readers see the old state or the new, never a
    /// half-loaded one.
    tree: RwLock<sled::Tree>,
    /// `store-meta`: the name of the current tree, so a switch is one write.
    meta: sled::Tree,
    /// Which finished runs are dropped (see `retention`).
    history: retention::HistoryPolicy,
    /// Held while a command is applied, a view begins or the tree is
    /// switched, so each of them sees whole commands.
    apply_gate: Mutex<()>,
    /// Views being read (snapshots, backups): a write first keeps there the
    /// old values of the keys it changes.
    views: view::Views,
    /// The runs by id, creation order, job and status, built from the
    /// tree (see `run_index`). Taken after `apply_gate` and `tree`.
    runs: RwLock<run_index::RunIndex>,
    /// Keys inserted or removed by applies since open: what the state
    /// machine costs sled, for `cronmesh_store_writes_total`.
    writes: AtomicU64,
    /// The write in progress, marked by whoever writes (the log thread,
    /// the Raft engine) so a watcher sees a store that stopped finishing
    /// its writes.
    write_watch: write_watch::WriteWatch,
}

/// Tree of the store's own bookkeeping (which tree is current).
const META_TREE: &str = "store-meta";
/// `store-meta` key naming the current state tree.
const ACTIVE_KEY: &[u8] = b"active";
/// The state tree of a store that never installed a dump.
const FIRST_TREE: &str = "state";

impl StateMachine {
    pub fn open(dir: &Path, history: retention::HistoryPolicy) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(dir).open()?;
        Self::with_db(db, history)
    }

    pub fn with_db(db: sled::Db, history: retention::HistoryPolicy) -> Result<Self, StoreError> {
        let meta = db.open_tree(META_TREE)?;
        let active = match meta.get(ACTIVE_KEY)? {
            Some(name) => String::from_utf8_lossy(&name).into_owned(),
            None => FIRST_TREE.to_string(),
        };
        install::drop_stale_trees(&db, &active)?;
        let tree = db.open_tree(&active)?;
        migrate::drop_old_indexes(&tree)?;
        let runs = run_index::RunIndex::build(&tree)?;
        Ok(Self {
            db,
            tree: RwLock::new(tree),
            runs: RwLock::new(runs),
            meta,
            history,
            apply_gate: Mutex::new(()),
            views: view::Views::default(),
            writes: AtomicU64::new(0),
            write_watch: Default::default(),
        })
    }

    /// The current state tree (a cheap handle). A read that takes it once
    /// reads one state even if a snapshot is installed meanwhile.
    pub(crate) fn tree(&self) -> sled::Tree {
        self.tree
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The run index, for a read.
    fn index(&self) -> std::sync::RwLockReadGuard<'_, run_index::RunIndex> {
        self.runs.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The run index, for an apply (under the gate) or a switch of trees.
    /// An apply that panics while it holds it rolls its changes back
    /// (`Book`'s drop), so a poisoned lock is taken all the same.
    fn index_mut(&self) -> std::sync::RwLockWriteGuard<'_, run_index::RunIndex> {
        self.runs.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes one command's changes in one atomic batch, keeping the old
    /// values for the views being read first.
    fn write(&self, tree: &sled::Tree, txn: txn::Txn) -> Result<(), StoreError> {
        self.views.keep_old_values(tree, txn.keys())?;
        let keys = txn.changed_keys() as u64;
        tree.apply_batch(txn.into_batch())?;
        self.writes.fetch_add(keys, Ordering::Relaxed);
        Ok(())
    }

    /// Keys inserted or removed by applies since the store was opened.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Bytes the node's sled database (the state and the Raft log) takes
    /// on disk, as sled counts them: its files' lengths.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// Excludes applies while held (see `apply_gate`). A panic while it was
    /// held leaves no half-applied command (each is one sled batch), so a
    /// poisoned gate is taken all the same.
    pub(crate) fn gate(&self) -> MutexGuard<'_, ()> {
        self.apply_gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes everything applied so far survive a crash of the process.
    pub fn flush(&self) -> Result<(), StoreError> {
        let _writing = self.write_watch.begin();
        self.db.flush().map_err(|e| self.note_failure(e.into()))?;
        Ok(())
    }

    /// Records an I/O error of sled in the write watch (sled keeps failing
    /// after one); any error is handed back as it was.
    fn note_failure(&self, error: StoreError) -> StoreError {
        if let StoreError::Sled(sled::Error::Io(io)) = &error {
            self.write_watch.failed(write_watch::WriteFailure {
                error: io.to_string(),
                out_of_space: write_watch::is_out_of_space(io),
            });
        }
        error
    }

    /// The write in progress (see [`write_watch`]).
    pub fn write_watch(&self) -> &write_watch::WriteWatch {
        &self.write_watch
    }

    /// Whether nothing was ever applied or restored here.
    pub fn is_empty(&self) -> bool {
        self.tree().is_empty()
    }

    pub fn applied_index(&self) -> Result<u64, StoreError> {
        Ok(match self.tree().get(keys::APPLIED)? {
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
