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

    /// Makes this (empty) store the backup's state for a new node, in one
    /// batch: the old cluster's registered nodes are left out and the
    /// applied index starts again at 0, so the new node's own log applies
    /// on top.
    pub fn restore_backup(&self, backup: &[u8]) -> Result<Restored, StoreError> {
        let state = backup
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| StoreError::Corrupt {
                key: "backup".into(),
                reason: "not a cronmesh backup (its first bytes are wrong)".into(),
            })?;
        // The old cluster's applied index and nodes stay out: the new
        // node's log starts at 1, and its members register themselves.
        let mut source_index = 0;
        self.restore_keeping(state, |key, value| {
            if key == keys::APPLIED {
                source_index = value.try_into().map(u64::from_be_bytes).unwrap_or(0);
                return false;
            }
            !key.starts_with(keys::NODES_PREFIX)
        })?;
        let jobs = self.all_jobs()?.len();
        Ok(Restored { source_index, jobs })
    }
}
