//! Reads of the state machine for the API and the actors.

use chrono::{DateTime, Utc};
use protocol::{Job, JobKey, Run, RunStatus};

use super::{decode, keys, keys::IndexTarget, JobState, StateMachine, StoreError, StoredRun};

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

    pub fn job_state(&self, key: &JobKey) -> Result<Option<JobState>, StoreError> {
        self.get(&keys::job_state(key))
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
        let mut out = Vec::new();
        for entry in self.tree().scan_prefix(keys::job_prefix(None)) {
            let (k, v) = entry?;
            let job: Job = decode(&k, &v)?;
            if let Some(state) = self.job_state(&job.key())? {
                out.push((job, state));
            }
        }
        Ok(out)
    }

    pub fn run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        Ok(self.get::<StoredRun>(&keys::run(id))?.map(|s| s.run))
    }

    /// Runs newest first, older than the `before` cursor, at most `limit`;
    /// the second value is the cursor for the next page.
    pub fn runs(
        &self,
        filter: &RunFilter,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<Run>, Option<u64>), StoreError> {
        let prefix = match (&filter.job, filter.status) {
            (Some(job), _) => keys::runs_of_job_prefix(job),
            (None, Some(status)) => keys::runs_by_status_prefix(status),
            (None, None) => keys::ALL_RUNS_PREFIX.to_vec(),
        };
        let mut end = prefix.clone();
        end.extend_from_slice(&before.unwrap_or(u64::MAX).to_be_bytes());
        let mut items: Vec<Run> = Vec::new();
        let mut last_seq = None;
        for entry in self.tree().range(prefix.clone()..end).rev() {
            let (k, value) = entry?;
            let Some(run) = self.indexed(&k, &value)? else {
                continue;
            };
            if !filter.matches(&run) {
                continue;
            }
            if items.len() == limit {
                return Ok((items, last_seq));
            }
            last_seq = keys::seq_of(&k);
            items.push(run);
        }
        Ok((items, None))
    }

    /// Runs created at or after `since`, newest first, at most `max`: the
    /// scan walks back through creation order and stops at the first
    /// older run, so its cost is the window's, not the history's.
    pub fn recent_runs(&self, since: DateTime<Utc>, max: usize) -> Result<Vec<Run>, StoreError> {
        let mut out = Vec::new();
        for entry in self.tree().scan_prefix(keys::ALL_RUNS_PREFIX).rev() {
            let (k, value) = entry?;
            let Some(run) = self.indexed(&k, &value)? else {
                continue;
            };
            if run.created_at < since || out.len() == max {
                break;
            }
            out.push(run);
        }
        Ok(out)
    }

    /// Runs that are pending, dispatched or running.
    pub fn active_runs(&self) -> Result<Vec<Run>, StoreError> {
        let mut out = Vec::new();
        for status in [
            RunStatus::Pending,
            RunStatus::Dispatched,
            RunStatus::Running,
        ] {
            for entry in self.tree().scan_prefix(keys::runs_by_status_prefix(status)) {
                let (k, value) = entry?;
                if let Some(run) = self.indexed(&k, &value)? {
                    out.push(run);
                }
            }
        }
        Ok(out)
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
        match self
            .tree()
            .scan_prefix(keys::runs_of_job_prefix(key))
            .next_back()
        {
            Some(entry) => {
                let (k, value) = entry?;
                self.indexed(&k, &value)
            }
            None => Ok(None),
        }
    }

    /// The run an `rj`, `rs` or `ra` entry points at: by the id it holds,
    /// or through the `ra` entry of its `seq` (see `keys`).
    fn indexed(&self, key: &[u8], value: &[u8]) -> Result<Option<Run>, StoreError> {
        let run_id = match keys::index_target(key, value) {
            IndexTarget::Id(id) => id,
            IndexTarget::All(seq) => match self.tree().get(keys::run_in_all(seq))? {
                Some(id) => String::from_utf8_lossy(&id).into_owned(),
                None => return Ok(None),
            },
            IndexTarget::Unknown => return Ok(None),
        };
        self.run(&run_id)
    }

    fn get<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.tree().get(key)?.map(|v| decode(key, &v)).transpose()
    }
}
