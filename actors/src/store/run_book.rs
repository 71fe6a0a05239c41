//! Every write and deletion of a run during one command, with what it
//! changes in the bookkeeping that retention reads: the bytes of all stored
//! runs (`m\0history_bytes`) and each job's counts of finished runs.
//!
//! Both are kept as running totals so that no command scans the history.
//! A store written by an earlier version has neither: the byte total is
//! counted once, from every run, by the first command that writes a run;
//! a job's counts once, from that job's runs, by the first command that
//! touches the job. Each is done before the command writes any run, so it
//! counts the state the command found, the same on every node.

use std::collections::BTreeMap;

use protocol::{JobKey, Run};

use super::{
    decode, keys,
    keys::IndexTarget,
    records::{JobHistory, StoredRunRef},
    retention::Ending,
    txn::Txn,
    JobState, StoreError, StoredRun,
};

/// A stored run as read, with the length of its record.
pub(super) struct Found {
    pub stored: StoredRun,
    pub len: usize,
}

impl Found {
    pub fn job(&self) -> JobKey {
        JobKey::new(
            self.stored.run.namespace.clone(),
            self.stored.run.job_id.clone(),
        )
    }

    pub fn footprint(&self) -> u64 {
        let run = &self.stored.run;
        keys::run_footprint(&self.job(), &run.id, run.status, self.len)
    }
}

/// The run `run_id` as this command leaves it.
pub(super) fn find(txn: &Txn, run_id: &str) -> Result<Option<Found>, StoreError> {
    let key = keys::run(run_id);
    let Some(bytes) = txn.get_raw(&key)? else {
        return Ok(None);
    };
    Ok(Some(Found {
        stored: decode(&key, &bytes)?,
        len: bytes.len(),
    }))
}

/// The run an `rj`, `rs` or `ra` entry points at, if it is stored.
pub(super) fn find_indexed(
    txn: &Txn,
    index_key: &[u8],
    value: &[u8],
) -> Result<Option<Found>, StoreError> {
    let run_id = match keys::index_target(index_key, value) {
        IndexTarget::Id(id) => id,
        IndexTarget::All(seq) => match txn.get_raw(&keys::run_in_all(seq))? {
            Some(id) => String::from_utf8_lossy(&id).into_owned(),
            None => return Ok(None),
        },
        IndexTarget::Unknown => return Ok(None),
    };
    find(txn, &run_id)
}

/// One command's bookkeeping of runs; [`Book::finish`] writes it.
#[derive(Default)]
pub(super) struct Book {
    /// The byte total as this command leaves it, once a run was written.
    bytes: Option<u64>,
    /// The states of the jobs this command touched: as found, and as the
    /// command leaves them (`None`: no such job, or deleted).
    jobs: BTreeMap<JobKey, (Option<JobState>, Option<JobState>)>,
}

impl Book {
    /// The state of `key`, read once per command, with its history counts
    /// (counted from its runs if an earlier version wrote the state).
    pub fn job(&mut self, txn: &Txn, key: &JobKey) -> Result<Option<&mut JobState>, StoreError> {
        if !self.jobs.contains_key(key) {
            let found: Option<JobState> = txn.get(&keys::job_state(key))?;
            let mut current = found.clone();
            if let Some(state) = current.as_mut().filter(|s| s.history.is_none()) {
                recount_job(txn, key, state)?;
            }
            self.jobs.insert(key.clone(), (found, current));
        }
        Ok(self.jobs.get_mut(key).and_then(|(_, now)| now.as_mut()))
    }

    /// The job is being deleted: its runs are removed without counting,
    /// and its state is not written back.
    pub fn drop_job(&mut self, key: &JobKey) {
        self.jobs.insert(key.clone(), (None, None));
    }

    /// The byte total of the stored runs, counted from every run if no
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
            None => recount_bytes(txn)?,
        };
        self.bytes = Some(bytes);
        Ok(bytes)
    }

    fn add_bytes(&mut self, txn: &Txn, add: u64, remove: u64) -> Result<(), StoreError> {
        let bytes = self.bytes(txn)?;
        self.bytes = Some(bytes.saturating_add(add).saturating_sub(remove));
        Ok(())
    }

    /// Stores a new run of `key` at `seq`.
    pub fn insert(
        &mut self,
        txn: &mut Txn,
        key: &JobKey,
        seq: u64,
        run: &Run,
    ) -> Result<(), StoreError> {
        let value = StoredRunRef { seq, run }.encode()?;
        self.add_bytes(
            txn,
            keys::run_footprint(key, &run.id, run.status, value.len()),
            0,
        )?;
        if let Some(state) = self.job(txn, key)? {
            state.run_count += 1;
            let history = state.history.get_or_insert_with(JobHistory::default);
            // `seq`s only grow (see `create_runs`); were one ever lower,
            // the walks of trimming must still not start past it.
            history.succeeded_from = history.succeeded_from.min(seq);
            history.failed_from = history.failed_from.min(seq);
            if let Some(ending) = Ending::of(run.status) {
                *ending.count(history) += 1;
            }
        }
        txn.put_raw(keys::run(&run.id), value);
        txn.put_raw(keys::run_of_job(key, seq), Vec::new());
        txn.put_raw(keys::run_by_status(run.status, seq), Vec::new());
        txn.put_raw(keys::run_in_all(seq), run.id.clone().into_bytes());
        Ok(())
    }

    /// Stores `now` in place of the run `was` (same id and `seq`).
    pub fn rewrite(&mut self, txn: &mut Txn, was: &Found, now: &Run) -> Result<(), StoreError> {
        let seq = was.stored.seq;
        let value = StoredRunRef { seq, run: now }.encode()?;
        let job = was.job();
        let footprint = keys::run_footprint(&job, &now.id, now.status, value.len());
        self.add_bytes(txn, footprint, was.footprint())?;
        let before = was.stored.run.status;
        if now.status != before {
            if let (None, Some(ending)) = (Ending::of(before), Ending::of(now.status)) {
                if let Some(history) = self.job(txn, &job)?.and_then(|s| s.history.as_mut()) {
                    *ending.count(history) += 1;
                }
            }
            txn.delete(keys::run_by_status(before, seq));
            txn.put_raw(keys::run_by_status(now.status, seq), Vec::new());
        }
        txn.put_raw(keys::run(&now.id), value);
        Ok(())
    }

    /// Deletes a run and its three index entries.
    pub fn remove(&mut self, txn: &mut Txn, found: &Found) -> Result<(), StoreError> {
        let run = &found.stored.run;
        let job = found.job();
        self.add_bytes(txn, 0, found.footprint())?;
        if let Some(state) = self.job(txn, &job)? {
            state.run_count = state.run_count.saturating_sub(1);
            if let (Some(ending), Some(history)) = (Ending::of(run.status), &mut state.history) {
                let count = ending.count(history);
                *count = count.saturating_sub(1);
            }
        }
        let seq = found.stored.seq;
        txn.delete(keys::run(&run.id));
        txn.delete(keys::run_of_job(&job, seq));
        txn.delete(keys::run_by_status(run.status, seq));
        txn.delete(keys::run_in_all(seq));
        Ok(())
    }

    /// Writes the job states that changed and the byte total.
    pub fn finish(self, txn: &mut Txn) -> Result<(), StoreError> {
        for (key, (found, now)) in self.jobs {
            if let Some(state) = now.filter(|now| found.as_ref() != Some(now)) {
                txn.put(keys::job_state(&key), &state)?;
            }
        }
        if let Some(bytes) = self.bytes {
            txn.put_raw(keys::HISTORY_BYTES.to_vec(), bytes.to_be_bytes().to_vec());
        }
        Ok(())
    }
}

/// Counts a job's finished runs by outcome from its runs, for a state an
/// earlier version wrote. The scans of trimming start at the first run.
fn recount_job(txn: &Txn, key: &JobKey, state: &mut JobState) -> Result<(), StoreError> {
    let mut history = JobHistory::default();
    let mut runs = 0;
    let prefix = keys::runs_of_job_prefix(key);
    for entry in txn.scan(&prefix, &prefix) {
        let (index_key, value) = entry?;
        let Some(found) = find_indexed(txn, &index_key, &value)? else {
            continue;
        };
        runs += 1;
        if let Some(ending) = Ending::of(found.stored.run.status) {
            *ending.count(&mut history) += 1;
        }
    }
    state.run_count = runs;
    state.history = Some(history);
    Ok(())
}

/// The bytes of every stored run, for a store an earlier version wrote.
fn recount_bytes(txn: &Txn) -> Result<u64, StoreError> {
    let prefix = keys::run("");
    let mut total = 0u64;
    for entry in txn.scan(&prefix, &prefix) {
        let (key, value) = entry?;
        let stored: StoredRun = decode(&key, &value)?;
        let found = Found {
            stored,
            len: value.len(),
        };
        total = total.saturating_add(found.footprint());
    }
    Ok(total)
}
