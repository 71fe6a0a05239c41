//! What the agent keeps beside its run table: the leader-term fence, and
//! with a data directory the records of running processes and the
//! directory's lock. Opened before the agent serves anything, so a
//! directory another executor holds stops the start at once.

use std::{path::Path, sync::Mutex};

use super::{data_dir::DataDir, fence::TermFence, ledger::RunLedger, procfs};

pub struct AgentState {
    pub fence: TermFence,
    /// `None` without a data directory.
    pub ledger: Option<RunLedger>,
    /// This boot of the machine, recorded with each process.
    pub boot_id: Option<String>,
    /// Held until the executor stops; `None` without a data directory.
    pub lock: Mutex<Option<DataDir>>,
}

impl AgentState {
    /// The state kept in `data_dir`, or in memory alone without one.
    pub fn open(data_dir: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = data_dir else {
            return Ok(Self {
                fence: TermFence::in_memory(),
                ledger: None,
                boot_id: procfs::boot_id(),
                lock: Mutex::new(None),
            });
        };
        let dir = DataDir::open(path)?;
        let fence = TermFence::persistent(&dir.term_file())?;
        let ledger = RunLedger::open(dir.runs_dir())?;
        tracing::info!(
            data_dir = %dir.path().display(),
            term = fence.current(),
            "executor state opened"
        );
        Ok(Self {
            fence,
            ledger: Some(ledger),
            boot_id: procfs::boot_id(),
            lock: Mutex::new(Some(dir)),
        })
    }

    /// Lets another executor take the data directory: after this one has
    /// stopped, its runs killed and their records removed.
    pub fn release(&self) {
        let dir = self
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        drop(dir);
    }
}
