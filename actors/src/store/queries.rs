//! Reads of the state machine for the API and the actors.

use chrono::{DateTime, Utc};
use protocol::{Job, JobKey, Run, RunStatus};

use super::{
    decode, keys, run_book,
    run_index::{nanos, RunIndex, Source},
    JobState, StateMachine, StoreError, StoredRun,
};

/// Runs of the index read per taking of its lock, in a list of runs.
const PAGE: usize = 256;

/// Which jobs a list returns.
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    pub namespace: Option<String>,
    /// Every pair must be among the job's labels.
    pub labels: Vec<(String, String)>,
    pub enabled: Option<bool>,
}

impl JobFilter {
    fn matches(&self, job: &Job) -> bool {
        self.enabled.is_none_or(|e| job.enabled == e)
            && self
                .labels
                .iter()
                .all(|(k, v)| job.labels.get(k) == Some(v))
    }
}

/// Which runs a list returns.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    pub job: Option<JobKey>,
    pub status: Option<RunStatus>,
    /// Scheduled at or after.
    pub since: Option<DateTime<Utc>>,
    /// Scheduled before.
    pub until: Option<DateTime<Utc>>,
}

impl RunFilter {
    fn matches(&self, run: &Run) -> bool {
        self.job
            .as_ref()
            .is_none_or(|k| k.namespace == run.namespace && k.id == run.job_id)
            && self.status.is_none_or(|s| s == run.status)
            && self.since.is_none_or(|t| run.scheduled_at >= t)
            && self.until.is_none_or(|t| run.scheduled_at < t)
    }
}

impl StateMachine {
    pub fn job(&self, key: &JobKey) -> Result<Option<Job>, StoreError> {
        self.get(&keys::job(key))
    }

    /// The job's state as the trigger and the API read it: the cursor
    /// moved up to its newest slot that has a run, and the counts of its
    /// runs (see `JobState`).
    pub fn job_state(&self, key: &JobKey) -> Result<Option<JobState>, StoreError> {
        let Some(state) = self.get::<JobState>(&keys::job_state(key))? else {
            return Ok(None);
        };
        Ok(Some(as_read(&self.index(), key, state)))
    }

    /// Jobs in key order after `after`, at most `limit`; the second value is
    /// the key to continue from when more may follow.
    pub fn jobs(
        &self,
        filter: &JobFilter,
        after: Option<&JobKey>,
        limit: usize,
    ) -> Result<(Vec<Job>, Option<JobKey>), StoreError> {
        let prefix = keys::job_prefix(filter.namespace.as_deref());
        let mut start = after.map(keys::job).unwrap_or_else(|| prefix.clone());
        if after.is_some() {
            start.push(0);
        }
        let mut items = Vec::new();
        for entry in self.tree().range(start..) {
            let (k, v) = entry?;
            if !k.starts_with(&prefix) {
                break;
            }
            let job: Job = decode(&k, &v)?;
            if !filter.matches(&job) {
                continue;
            }
            if items.len() == limit {
                let last: &Job = items.last().expect("limit is at least one");
                return Ok((items.clone(), Some(last.key())));
            }
            items.push(job);
        }
        Ok((items, None))
    }

    /// The jobs of `key`'s namespace that name it as a child, by id (a
    /// walk over the namespace's jobs).
    pub fn parents(&self, key: &JobKey) -> Result<Vec<Job>, StoreError> {
        let mut parents = Vec::new();
        for entry in self
            .tree()
            .scan_prefix(keys::job_prefix(Some(&key.namespace)))
        {
            let (k, v) = entry?;
            let job: Job = decode(&k, &v)?;
            if job.key() != *key && job.children.iter().any(|link| link.job == key.id) {
                parents.push(job);
            }
        }
        Ok(parents)
    }

    /// How many jobs there are.
    pub fn count_jobs(&self) -> Result<usize, StoreError> {
        let mut count = 0;
        for entry in self.tree().scan_prefix(keys::job_prefix(None)).keys() {
            entry?;
            count += 1;
        }
        Ok(count)
    }

    /// Every job with its state, for the trigger.
    pub fn all_jobs(&self) -> Result<Vec<(Job, JobState)>, StoreError> {
        let tree = self.tree();
        let mut out = Vec::new();
        for entry in tree.scan_prefix(keys::job_prefix(None)) {
            let (k, v) = entry?;
            let job: Job = decode(&k, &v)?;
            let key = keys::job_state(&job.key());
            if let Some(state) = tree.get(&key)? {
                let state: JobState = decode(&key, &state)?;
                out.push((job, state));
            }
        }
        let index = self.index();
        Ok(out
            .into_iter()
            .map(|(job, state)| {
                let state = as_read(&index, &job.key(), state);
                (job, state)
            })
            .collect())
    }

    pub fn run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        let key = keys::run(id);
        self.tree()
            .get(&key)?
            .map(|bytes| StoredRun::decode(&key, &bytes).map(|s| s.run))
            .transpose()
    }

    /// Runs newest first, older than the `before` cursor, at most `limit`;
    /// the second value is the cursor for the next page.
    pub fn runs(
        &self,
        filter: &RunFilter,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<Run>, Option<u64>), StoreError> {
        let tree = self.tree();
        let source = match (&filter.job, filter.status) {
            (Some(job), _) => match self.index().job_no(&job.namespace, &job.id) {
                Some(no) => Source::Job(no),
                None => return Ok((Vec::new(), None)),
            },
            (None, Some(status)) => Source::Status(status),
            (None, None) => Source::All,
        };
        let mut items: Vec<Run> = Vec::new();
        let mut last_seq = None;
        let mut from = before.unwrap_or(u64::MAX);
        loop {
            // A page of the index at a time: applies wait for one page of
            // index at most, never for the reads of the records.
            let page = self.index().page(source, from, PAGE);
            let Some((oldest, _)) = page.last() else {
                return Ok((items, None));
            };
            from = *oldest;
            let exhausted = page.len() < PAGE;
            for (seq, key) in page {
                let Some(run) = read_run(&tree, &key)? else {
                    continue;
                };
                if !filter.matches(&run) {
                    continue;
                }
                if items.len() == limit {
                    return Ok((items, last_seq));
                }
                last_seq = Some(seq);
                items.push(run);
            }
            if exhausted {
                return Ok((items, None));
            }
        }
    }

    /// Runs created at or after `since`, newest first, at most `max`: the
    /// walk goes back through creation order and stops at the first
    /// older run, so its cost is the window's, not the history's.
    pub fn recent_runs(&self, since: DateTime<Utc>, max: usize) -> Result<Vec<Run>, StoreError> {
        let tree = self.tree();
        let since = nanos(since);
        let keys: Vec<Vec<u8>> = self
            .index()
            .all()
            .rev()
            .take_while(|(_, meta)| meta.created_at >= since)
            .take(max)
            .map(|(_, meta)| meta.id.record_key())
            .collect();
        read_runs(&tree, &keys)
    }

    /// The runs of `key` for the slot `slot` (every shard and attempt of
    /// one fire), looking at no more than the job's `max_scan` newest runs.
    pub fn fire_runs(
        &self,
        key: &JobKey,
        slot: DateTime<Utc>,
        max_scan: usize,
    ) -> Result<Vec<Run>, StoreError> {
        let tree = self.tree();
        let keys: Vec<Vec<u8>> = {
            let index = self.index();
            match index.job_by_key(key) {
                Some(job) => job
                    .seqs
                    .iter()
                    .rev()
                    .take(max_scan)
                    .filter_map(|seq| index.meta(*seq).map(|meta| meta.id.record_key()))
                    .collect(),
                None => Vec::new(),
            }
        };
        Ok(read_runs(&tree, &keys)?
            .into_iter()
            .filter(|run| run.scheduled_at == slot)
            .collect())
    }

    /// Runs that are pending, dispatched or running.
    pub fn active_runs(&self) -> Result<Vec<Run>, StoreError> {
        self.active_runs_in(&[
            RunStatus::Pending,
            RunStatus::Dispatched,
            RunStatus::Running,
        ])
    }

    /// The runs with one of `statuses`, read through the index of active
    /// runs: an ended status there finds nothing.
    pub fn active_runs_in(&self, statuses: &[RunStatus]) -> Result<Vec<Run>, StoreError> {
        let tree = self.tree();
        let keys: Vec<Vec<u8>> = {
            let index = self.index();
            statuses
                .iter()
                .flat_map(|status| index.active(*status))
                .filter_map(|seq| index.meta(seq).map(|meta| meta.id.record_key()))
                .collect()
        };
        read_runs(&tree, &keys)
    }

    /// Scheduler nodes that announced themselves, by id.
    pub fn nodes(&self) -> Result<Vec<protocol::meta::NodeInfo>, StoreError> {
        self.tree()
            .scan_prefix(keys::NODES_PREFIX)
            .map(|entry| {
                let (k, v) = entry?;
                decode(&k, &v)
            })
            .collect()
    }

    /// The most recently created run of a job.
    pub fn last_run(&self, key: &JobKey) -> Result<Option<Run>, StoreError> {
        let tree = self.tree();
        let record = {
            let index = self.index();
            index
                .job_by_key(key)
                .and_then(|job| job.seqs.back())
                .and_then(|seq| index.meta(*seq))
                .map(|meta| meta.id.record_key())
        };
        match record {
            Some(record) => read_run(&tree, &record),
            None => Ok(None),
        }
    }

    fn get<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.tree().get(key)?.map(|v| decode(key, &v)).transpose()
    }
}

/// The run whose record is at `key` in `tree`.
fn read_run(tree: &sled::Tree, key: &[u8]) -> Result<Option<Run>, StoreError> {
    Ok(match tree.get(key)? {
        Some(bytes) => Some(StoredRun::decode(key, &bytes)?.run),
        None => None,
    })
}

/// The runs whose records are at `keys` in `tree` and still stored, in
/// that order.
fn read_runs(tree: &sled::Tree, keys: &[Vec<u8>]) -> Result<Vec<Run>, StoreError> {
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some(run) = read_run(tree, key)? {
            out.push(run);
        }
    }
    Ok(out)
}

/// `state` of `key` as callers read it (see `run_book::as_read`).
fn as_read(index: &RunIndex, key: &JobKey, state: JobState) -> JobState {
    match index.job_by_key(key) {
        Some(job) => run_book::as_read(
            state,
            job.slot.map(|(slot, _)| slot),
            (
                job.seqs.len() as u64,
                job.succeeded.len() as u64,
                job.failed.len() as u64,
            ),
        ),
        None => run_book::as_read(state, None, (0, 0, 0)),
    }
}
