//! Every write and deletion of a run during one command: the record in the
//! tree, the run in the index (with what undoes it), and the bytes of all
//! stored runs (`m\0history_bytes`), which retention reads.
//!
//! The byte total is a running total so that no command scans the
//! history. A store without one (written by an earlier version, or whose
//! total counted the index entries of earlier versions: see `migrate`) is
//! counted once from the index, before the command changes any run, so it
//! counts the state the command found, the same on every node.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use protocol::{JobKey, Run};

use super::{
    keys,
    records::StoredRunRef,
    run_index::{JobNo, RunIndex, Undo},
    txn::Txn,
    JobState, StoreError, StoredRun,
};

/// A stored run as read, with the length of its record.
pub(super) struct Found {
    pub stored: StoredRun,
    pub len: usize,
}

impl Found {
    pub fn footprint(&self) -> u64 {
        keys::run_footprint(&self.stored.run.id, self.len)
    }
}

/// The run `run_id` as this command leaves it.
pub(super) fn find(txn: &Txn, run_id: &str) -> Result<Option<Found>, StoreError> {
    let key = keys::run(run_id);
    let Some(bytes) = txn.get_raw(&key)? else {
        return Ok(None);
    };
    Ok(Some(Found {
        stored: StoredRun::decode(&key, &bytes)?,
        len: bytes.len(),
    }))
}

/// One command's changes to the runs and their index. Dropped without
/// [`Book::commit`] (the batch failed, or the apply panicked), it takes
/// the index back to where the command found it.
pub(super) struct Book<'i> {
    pub index: &'i mut RunIndex,
    /// What takes the index back if the command's batch is not written.
    pub undo: Vec<Undo>,
    /// Whether the batch was written: the changes stay.
    committed: bool,
    /// The byte total as this command leaves it, once a run was written.
    bytes: Option<u64>,
    /// Job states this command moves the cursor of (see [`Book::remove`]):
    /// as found, and as the command leaves them.
    states: BTreeMap<JobKey, (Option<JobState>, Option<JobState>)>,
}

impl<'i> Book<'i> {
    pub fn new(index: &'i mut RunIndex) -> Self {
        Self {
            index,
            undo: Vec::new(),
            committed: false,
            bytes: None,
            states: BTreeMap::new(),
        }
    }

    /// The command's batch was written: its changes to the index stay.
    pub fn commit(&mut self) {
        self.committed = true;
        self.undo.clear();
        self.index.settle();
    }

    /// The byte total of the stored runs, counted from the index if no
    /// total was kept yet. Read before this command changes any run.
    pub fn bytes(&mut self, txn: &Txn) -> Result<u64, StoreError> {
        if let Some(bytes) = self.bytes {
            return Ok(bytes);
        }
        let bytes = match txn.get_raw(keys::HISTORY_BYTES)? {
            Some(raw) => {
                u64::from_be_bytes(raw.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                    key: "m/history_bytes".into(),
                    reason: "not 8 bytes".into(),
                })?)
            }
            None => self.index.footprint(),
        };
        self.bytes = Some(bytes);
        Ok(bytes)
    }

    fn add_bytes(&mut self, txn: &Txn, add: u64, remove: u64) -> Result<(), StoreError> {
        let bytes = self.bytes(txn)?;
        self.bytes = Some(bytes.saturating_add(add).saturating_sub(remove));
        Ok(())
    }

    /// Stores a new run of the job `job` at `seq`.
    pub fn insert(
        &mut self,
        txn: &mut Txn,
        job: JobNo,
        seq: u64,
        run: &Run,
    ) -> Result<(), StoreError> {
        let value = StoredRunRef { seq, run }.encode()?;
        let footprint = keys::run_footprint(&run.id, value.len());
        self.add_bytes(txn, footprint, 0)?;
        self.index.insert(seq, run, job, footprint, &mut self.undo);
        txn.put_raw(keys::run(&run.id), value);
        Ok(())
    }

    /// Stores `now` in place of the run `was` (same id and `seq`).
    pub fn rewrite(&mut self, txn: &mut Txn, was: &Found, now: &Run) -> Result<(), StoreError> {
        let seq = was.stored.seq;
        let value = StoredRunRef { seq, run: now }.encode()?;
        let footprint = keys::run_footprint(&now.id, value.len());
        self.add_bytes(txn, footprint, was.footprint())?;
        self.index.update(seq, now, footprint, &mut self.undo);
        txn.put_raw(keys::run(&now.id), value);
        Ok(())
    }

    /// Deletes the run at `seq`. When it is the run of its job's newest
    /// slot and the stored cursor is behind that slot, the cursor is
    /// stored there in the same batch: the cursor read is never behind a
    /// slot that had a run, before or after a restart.
    pub fn remove(&mut self, txn: &mut Txn, seq: u64) -> Result<(), StoreError> {
        // Counted (if it must be) before the index loses the run.
        self.bytes(txn)?;
        let Some(meta) = self.index.remove(seq, &mut self.undo) else {
            return Ok(());
        };
        self.add_bytes(txn, 0, u64::from(meta.footprint))?;
        txn.delete(meta.id.record_key());
        let job = self.index.job(meta.job);
        if let Some((slot, _)) = job.slot.filter(|(_, s)| *s == seq) {
            let key = job.key.clone();
            if !self.states.contains_key(&key) {
                let found: Option<JobState> = txn.get(&keys::job_state(&key))?;
                self.states.insert(key.clone(), (found.clone(), found));
            }
            if let Some((_, Some(state))) = self.states.get_mut(&key) {
                if state.cursor < slot {
                    state.cursor = slot;
                }
            }
        }
        Ok(())
    }

    /// The job is deleted in this command: its state is not written back.
    pub fn forget_state(&mut self, key: &JobKey) {
        self.states.remove(key);
    }

    /// Writes the job states whose cursor moved and the byte total.
    pub fn finish(&mut self, txn: &mut Txn) -> Result<(), StoreError> {
        for (key, (found, now)) in std::mem::take(&mut self.states) {
            if let Some(state) = now.filter(|now| found.as_ref() != Some(now)) {
                txn.put(keys::job_state(&key), &stored(state))?;
            }
        }
        if let Some(bytes) = self.bytes {
            txn.put_raw(keys::HISTORY_BYTES.to_vec(), bytes.to_be_bytes().to_vec());
        }
        Ok(())
    }
}

impl Drop for Book<'_> {
    fn drop(&mut self) {
        if !self.committed {
            let undo = std::mem::take(&mut self.undo);
            self.index.roll_back(undo);
        }
    }
}

/// A job state as callers read it: the stored one with the cursor moved
/// up to `slot` (the job's newest slot that has a run) and the counts of
/// its runs.
pub(super) fn as_read(
    mut state: JobState,
    slot: Option<DateTime<Utc>>,
    counts: (u64, u64, u64),
) -> JobState {
    if let Some(slot) = slot {
        state.cursor = state.cursor.max(slot);
    }
    let (runs, succeeded, failed) = counts;
    state.run_count = runs;
    state.history = Some(super::records::JobHistory {
        succeeded,
        failed,
        succeeded_from: 0,
        failed_from: 0,
    });
    state
}

/// A job state as stored: without the counts, which come from the runs.
pub(super) fn stored(state: JobState) -> JobState {
    JobState {
        run_count: 0,
        history: None,
        ..state
    }
}
