//! Backups: the whole state at one applied index, in a file that says what
//! it is, and its restore into a new node's empty store.

use super::{keys, StateMachine, StoreError};

/// The first bytes of a backup file, with the format's version.
const MAGIC: &[u8; 16] = b"cronmesh-backup1";

/// What a restore found in a backup.
#[derive(Debug, PartialEq, Eq)]
pub struct Restored {
    /// The applied index of the cluster the backup was taken from.
    pub source_index: u64,
    pub jobs: usize,
}

impl StateMachine {
    /// The whole state, as of one applied index (applies wait meanwhile).
    pub fn backup(&self) -> Result<Vec<u8>, StoreError> {
        let (_, state) = self.snapshot()?;
        let mut out = Vec::with_capacity(MAGIC.len() + state.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&state);
        Ok(out)
    }

    /// Makes this (empty) store the backup's state for a new node: the
    /// old cluster's registered nodes are dropped and the applied index
    /// starts again at 0, so the new node's own log applies on top.
    pub fn restore_backup(&self, backup: &[u8]) -> Result<Restored, StoreError> {
        let state = backup
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| StoreError::Corrupt {
                key: "backup".into(),
                reason: "not a cronmesh backup (its first bytes are wrong)".into(),
            })?;
        self.restore(state)?;
        let source_index = self.applied_index()?;
        let whole = self.gate();
        let mut batch = sled::Batch::default();
        for entry in self.tree.scan_prefix(keys::NODES_PREFIX) {
            batch.remove(entry?.0);
        }
        batch.remove(keys::APPLIED);
        self.tree.apply_batch(batch)?;
        drop(whole);
        self.flush()?;
        let jobs = self.all_jobs()?.len();
        Ok(Restored { source_index, jobs })
    }
}
