//! The in-memory index of the stored runs: by id, by creation order
//! (`seq`), by job and by status, with each job's counts by outcome and its
//! newest scheduled slot.
//!
//! sled holds one record per run (`r\0{id}`); everything here is derived
//! from those records (and the job states' keys), built by one scan when
//! the store opens or switches trees, and kept up to date by the applies.
//! An apply changes the index as it goes and keeps an [`Undo`] log: if its
//! batch is not written, the log puts the index back as it was.
//!
//! Nothing here is persisted, so nothing here may decide a write on its
//! own in a way a freshly built index would decide otherwise: job numbers
//! are local (callers order jobs by key), and the newest slot of a job is
//! only a lower bound of its cursor (see `Book::remove`).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use protocol::{JobKey, Run, RunStatus, TriggerKind};

use super::{decode, keys, StoreError, StoredRun};

/// A job's number in the index: its key is kept once.
pub(super) type JobNo = u32;

/// What the index keeps of one run (about 48 bytes, plus its id once).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Meta {
    /// The run's id, shared with `by_id`: the key of its record.
    pub id: Arc<str>,
    pub job: JobNo,
    pub status: RunStatus,
    /// For `recent_runs` and the age rule, which walk in creation order.
    pub created_at: DateTime<Utc>,
    /// Its end, or its creation if it has none: what the age rule compares.
    pub ended_at: DateTime<Utc>,
    /// Bytes of its record, key included (`keys::run_footprint`): what the
    /// byte rule takes off the total when the run goes.
    pub footprint: u32,
}

impl Meta {
    pub fn of(run: &Run, id: Arc<str>, job: JobNo, footprint: u64) -> Self {
        Self {
            id,
            job,
            status: run.status,
            created_at: run.created_at,
            ended_at: run.finished_at.unwrap_or(run.created_at),
            footprint: u32::try_from(footprint).unwrap_or(u32::MAX),
        }
    }
}

/// The runs of one job.
#[derive(Debug)]
pub(super) struct JobRuns {
    pub key: JobKey,
    /// Whether the job's state is stored: runs of other jobs are not
    /// created.
    pub exists: bool,
    /// Every run of the job, oldest first.
    pub seqs: BTreeSet<u64>,
    /// The succeeded ones, oldest first (the count rule trims from here).
    pub succeeded: BTreeSet<u64>,
    /// The ones that ended otherwise.
    pub failed: BTreeSet<u64>,
    /// The greatest (scheduled_at, seq) of the job's runs triggered by its
    /// schedule or a misfire since the index was built: the cursor is at
    /// least its time while that run is stored.
    pub slot: Option<(DateTime<Utc>, u64)>,
}

impl JobRuns {
    fn ended(&mut self, status: RunStatus) -> Option<&mut BTreeSet<u64>> {
        match status {
            RunStatus::Pending | RunStatus::Dispatched | RunStatus::Running => None,
            RunStatus::Succeeded => Some(&mut self.succeeded),
            RunStatus::Failed | RunStatus::TimedOut | RunStatus::Killed | RunStatus::Skipped => {
                Some(&mut self.failed)
            }
        }
    }
}

/// One change to take back if the apply that made it fails.
#[derive(Debug)]
pub(super) enum Undo {
    Inserted {
        seq: u64,
        slot_before: Option<(DateTime<Utc>, u64)>,
    },
    Changed {
        seq: u64,
        before: Meta,
    },
    Removed {
        seq: u64,
        meta: Meta,
    },
    Job {
        job: JobNo,
        exists: bool,
        slot: Option<(DateTime<Utc>, u64)>,
    },
}

/// Where a list of runs is read from, newest first.
#[derive(Clone, Copy, Debug)]
pub(super) enum Source {
    All,
    Job(JobNo),
    Status(RunStatus),
}

#[derive(Debug, Default)]
pub(super) struct RunIndex {
    by_id: HashMap<Arc<str>, u64>,
    by_seq: BTreeMap<u64, Meta>,
    /// By `RunStatus as usize`.
    by_status: [BTreeSet<u64>; 8],
    jobs: Vec<JobRuns>,
    job_numbers: HashMap<JobKey, JobNo>,
}

impl RunIndex {
    /// Reads the index out of `tree`: the job states' keys and every run
    /// record.
    pub fn build(tree: &sled::Tree) -> Result<Self, StoreError> {
        let mut index = Self::default();
        let states = keys::job_state_prefix();
        for key in tree.scan_prefix(&states).keys() {
            let key = key?;
            let Some(job) = keys::job_of_state(&key) else {
                return Err(StoreError::Corrupt {
                    key: String::from_utf8_lossy(&key).replace('\0', "/"),
                    reason: "a job state key without namespace and id".into(),
                });
            };
            let no = index.intern(&job.namespace, &job.id);
            index.jobs[no as usize].exists = true;
        }
        let mut undo = Vec::new();
        for entry in tree.scan_prefix(keys::run("")) {
            let (key, value) = entry?;
            let stored: StoredRun = decode(&key, &value)?;
            let footprint = (key.len() + value.len()) as u64;
            let job = index.intern(&stored.run.namespace, &stored.run.job_id);
            index.insert(stored.seq, &stored.run, job, footprint, &mut undo);
            undo.clear();
        }
        Ok(index)
    }

    /// The number of the job `namespace`/`id`, if the index knows it.
    pub fn job_no(&self, namespace: &str, id: &str) -> Option<JobNo> {
        // A borrowed lookup would need a key type of two `&str`s; a job
        // key is short and this is not on the path of every run.
        self.job_numbers.get(&JobKey::new(namespace, id)).copied()
    }

    /// The number of the job, given one if it had none.
    fn intern(&mut self, namespace: &str, id: &str) -> JobNo {
        if let Some(no) = self.job_no(namespace, id) {
            return no;
        }
        let no = self.jobs.len() as JobNo;
        let key = JobKey::new(namespace, id);
        self.jobs.push(JobRuns {
            key: key.clone(),
            exists: false,
            seqs: BTreeSet::new(),
            succeeded: BTreeSet::new(),
            failed: BTreeSet::new(),
            slot: None,
        });
        self.job_numbers.insert(key, no);
        no
    }

    pub fn job(&self, no: JobNo) -> &JobRuns {
        &self.jobs[no as usize]
    }

    /// The job `key`'s runs, if the index knows the job.
    pub fn job_by_key(&self, key: &JobKey) -> Option<&JobRuns> {
        self.job_numbers.get(key).map(|no| self.job(*no))
    }

    /// The job of `namespace`/`id` if its state is stored.
    pub fn existing_job(&self, namespace: &str, id: &str) -> Option<JobNo> {
        self.job_no(namespace, id)
            .filter(|no| self.jobs[*no as usize].exists)
    }

    /// Marks the job stored (`put_job`) or deleted; a deleted job's slot is
    /// forgotten with its runs.
    pub fn set_job(&mut self, key: &JobKey, exists: bool, undo: &mut Vec<Undo>) {
        let no = self.intern(&key.namespace, &key.id);
        let job = &mut self.jobs[no as usize];
        undo.push(Undo::Job {
            job: no,
            exists: job.exists,
            slot: job.slot,
        });
        job.exists = exists;
        if !exists {
            job.slot = None;
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn meta(&self, seq: u64) -> Option<&Meta> {
        self.by_seq.get(&seq)
    }

    /// The newest `seq` stored.
    pub fn newest_seq(&self) -> Option<u64> {
        self.by_seq.last_key_value().map(|(seq, _)| *seq)
    }

    /// Every run, oldest first.
    pub fn all(&self) -> impl DoubleEndedIterator<Item = (&u64, &Meta)> {
        self.by_seq.iter()
    }

    /// The runs with `status`, oldest first.
    pub fn with_status(&self, status: RunStatus) -> &BTreeSet<u64> {
        &self.by_status[status as usize]
    }

    /// The bytes of every stored run (`keys::run_footprint`).
    pub fn footprint(&self) -> u64 {
        self.by_seq.values().map(|m| u64::from(m.footprint)).sum()
    }

    /// Up to `n` runs of `source` older than `before`, newest first, as
    /// (seq, id).
    pub fn page(&self, source: Source, before: u64, n: usize) -> Vec<(u64, Arc<str>)> {
        let ids = |seqs: &mut dyn Iterator<Item = u64>| {
            seqs.filter_map(|seq| self.by_seq.get(&seq).map(|m| (seq, m.id.clone())))
                .take(n)
                .collect()
        };
        match source {
            Source::All => self
                .by_seq
                .range(..before)
                .rev()
                .take(n)
                .map(|(seq, m)| (*seq, m.id.clone()))
                .collect(),
            // A number of an index since replaced (a dump was installed
            // between two pages) may name no job here.
            Source::Job(no) => match self.jobs.get(no as usize) {
                Some(job) => ids(&mut job.seqs.range(..before).rev().copied()),
                None => Vec::new(),
            },
            Source::Status(status) => {
                ids(&mut self.with_status(status).range(..before).rev().copied())
            }
        }
    }

    /// Adds `run`, of the job `job`, at `seq`.
    pub fn insert(
        &mut self,
        seq: u64,
        run: &Run,
        job: JobNo,
        footprint: u64,
        undo: &mut Vec<Undo>,
    ) {
        let id: Arc<str> = Arc::from(run.id.as_str());
        let meta = Meta::of(run, id.clone(), job, footprint);
        let entry = &mut self.jobs[job as usize];
        let slot_before = entry.slot;
        if matches!(run.trigger, TriggerKind::Schedule | TriggerKind::Misfire) {
            entry.slot = entry.slot.max(Some((run.scheduled_at, seq)));
        }
        undo.push(Undo::Inserted { seq, slot_before });
        self.by_id.insert(id, seq);
        self.link(seq, meta);
    }

    /// Records that the run at `seq` is now `run`, its record `footprint`
    /// bytes.
    pub fn update(&mut self, seq: u64, run: &Run, footprint: u64, undo: &mut Vec<Undo>) {
        let Some(before) = self.unlink(seq) else {
            return;
        };
        let meta = Meta::of(run, before.id.clone(), before.job, footprint);
        undo.push(Undo::Changed { seq, before });
        self.link(seq, meta);
    }

    /// Takes the run at `seq` out; answers what the index had of it.
    pub fn remove(&mut self, seq: u64, undo: &mut Vec<Undo>) -> Option<Meta> {
        let meta = self.unlink(seq)?;
        self.by_id.remove(&meta.id);
        undo.push(Undo::Removed {
            seq,
            meta: meta.clone(),
        });
        Some(meta)
    }

    /// Takes back the changes of `undo`, newest first.
    pub fn roll_back(&mut self, undo: Vec<Undo>) {
        for change in undo.into_iter().rev() {
            match change {
                Undo::Inserted { seq, slot_before } => {
                    if let Some(meta) = self.unlink(seq) {
                        self.by_id.remove(&meta.id);
                        self.jobs[meta.job as usize].slot = slot_before;
                    }
                }
                Undo::Changed { seq, before } => {
                    self.unlink(seq);
                    self.link(seq, before);
                }
                Undo::Removed { seq, meta } => {
                    self.by_id.insert(meta.id.clone(), seq);
                    self.link(seq, meta);
                }
                Undo::Job { job, exists, slot } => {
                    let entry = &mut self.jobs[job as usize];
                    entry.exists = exists;
                    entry.slot = slot;
                }
            }
        }
    }

    /// Files `meta` under `seq` everywhere but `by_id`.
    fn link(&mut self, seq: u64, meta: Meta) {
        let job = &mut self.jobs[meta.job as usize];
        job.seqs.insert(seq);
        if let Some(ended) = job.ended(meta.status) {
            ended.insert(seq);
        }
        self.by_status[meta.status as usize].insert(seq);
        self.by_seq.insert(seq, meta);
    }

    /// Takes `seq` out of everything but `by_id`.
    fn unlink(&mut self, seq: u64) -> Option<Meta> {
        let meta = self.by_seq.remove(&seq)?;
        let job = &mut self.jobs[meta.job as usize];
        job.seqs.remove(&seq);
        if let Some(ended) = job.ended(meta.status) {
            ended.remove(&seq);
        }
        self.by_status[meta.status as usize].remove(&seq);
        Some(meta)
    }
}

#[cfg(test)]
impl PartialEq for RunIndex {
    /// The same runs with the same metadata, jobs compared by key.
    fn eq(&self, other: &Self) -> bool {
        let runs = |index: &Self| -> Vec<(u64, Meta, JobKey)> {
            index
                .by_seq
                .iter()
                .map(|(seq, m)| {
                    (
                        *seq,
                        Meta {
                            job: 0,
                            ..m.clone()
                        },
                        index.job(m.job).key.clone(),
                    )
                })
                .collect()
        };
        runs(self) == runs(other) && self.by_id == other.by_id
    }
}
