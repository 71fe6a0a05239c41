//! Backups: the whole state at one applied index, in a dump (see `dump`),
//! and its restore into a new node's empty store.

use std::io::{Read, Write};

use super::{keys, view::Written, StateMachine, StoreError};

/// What a restore found in a backup.
#[derive(Debug, PartialEq, Eq)]
pub struct Restored {
    /// The applied index of the cluster the backup was taken from.
    pub source_index: u64,
    pub jobs: usize,
}

impl StateMachine {
    /// Writes the whole state, as of one applied index, to `out`. Applies
    /// go on meanwhile (see `view`); memory stays flat.
    pub fn backup_to(&self, out: impl Write) -> Result<Written, StoreError> {
        self.view()?.write_dump(out, |_, _| true)
    }

    /// The whole backup in memory (small states and tests).
    pub fn backup(&self) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        self.backup_to(&mut out)?;
        Ok(out)
    }

    /// Makes this (empty) store the backup's state for a new node: the old
    /// cluster's registered nodes are left out and the applied index starts
    /// again at 0, so the new node's own log applies on top. Read as a
    /// stream: a backup larger than memory restores.
    pub fn restore_backup(&self, backup: impl Read) -> Result<Restored, StoreError> {
        // The old cluster's applied index and nodes stay out: the new
        // node's log starts at 1, and its members register themselves.
        let mut source_index = 0;
        self.install_dump(backup, |key, value| {
            if key == keys::APPLIED {
                source_index = value.try_into().map(u64::from_be_bytes).unwrap_or(0);
                return false;
            }
            !key.starts_with(keys::NODES_PREFIX)
        })?;
        let jobs = self.count_jobs()?;
        Ok(Restored { source_index, jobs })
    }
}
