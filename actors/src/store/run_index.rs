//! The in-memory index of the stored runs: by creation order (`seq`), by
//! job, active ones by status, with each job's runs by outcome and its
//! newest scheduled slot, and which run ids are stored.
//!
//! sled holds one record per run (`r\0{id}`); everything here is derived
//! from those records (and the job states' keys), built by one scan when
//! the store opens or switches trees, and kept up to date by the applies.
//! An apply changes the index as it goes and keeps an [`Undo`] log: if its
//! batch is not written, the log puts the index back as it was.
//!
//! Nothing here is persisted, so nothing here may decide a write in a way
//! a freshly built index would decide otherwise: job numbers are local
//! (callers order jobs by key), and the newest slot of a job is only a
//! lower bound of its cursor (see `Book::remove`).
//!
//! Kept small, for a million runs and more: about 60 bytes per run in
//! creation order (its id as 12 bytes when it is a digest, as run ids
//! are), 8 per job and outcome queue, 16 for the hash of its id.

use std::{
    collections::{hash_map::DefaultHasher, BTreeSet, HashMap, VecDeque},
    hash::{Hash, Hasher},
};

use chrono::{DateTime, Utc};
use protocol::{JobKey, Run, RunStatus, TriggerKind};

use super::{keys, StoreError, StoredRun};

/// A job's number in the index: its key is kept once.
pub(super) type JobNo = u32;

/// A run id as kept: the 24 lowercase hex digits of a digest as their 12
/// bytes, any other id as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum RunId {
    Digest([u8; 12]),
    Text(Box<str>),
}

impl RunId {
    pub fn new(id: &str) -> Self {
        let lower_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
        let mut digest = [0u8; 12];
        if id.len() == 24
            && id.bytes().all(|b| lower_hex(&b))
            && hex::decode_to_slice(id, &mut digest).is_ok()
        {
            return RunId::Digest(digest);
        }
        RunId::Text(id.into())
    }

    /// The id as the run carries it.
    pub fn text(&self) -> String {
        match self {
            RunId::Digest(digest) => hex::encode(digest),
            RunId::Text(text) => text.to_string(),
        }
    }

    /// The key of the run's record.
    pub fn record_key(&self) -> Vec<u8> {
        keys::run(&self.text())
    }
}

/// A time as kept: nanoseconds since 1970 (saturated past 1677 and 2262),
/// which compares as the time does.
pub(super) fn nanos(time: DateTime<Utc>) -> i64 {
    time.timestamp_nanos_opt()
        .unwrap_or(if time.timestamp() < 0 {
            i64::MIN
        } else {
            i64::MAX
        })
}

/// What the index keeps of one run.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Meta {
    /// The key of its record.
    pub id: RunId,
    /// When it was created ([`nanos`]): `recent_runs` and the age rule
    /// walk in creation order and stop at a time.
    pub created_at: i64,
    /// Its end, or its creation if it has none: what the age rule compares.
    pub ended_at: i64,
    pub job: JobNo,
    /// Bytes of its record, key included (`keys::run_footprint`): what the
    /// byte rule takes off the total when the run goes.
    pub footprint: u32,
    pub status: RunStatus,
}

impl Meta {
    fn of(run: &Run, id: RunId, job: JobNo, footprint: u64) -> Self {
        Self {
            id,
            created_at: nanos(run.created_at),
            ended_at: nanos(run.finished_at.unwrap_or(run.created_at)),
            job,
            footprint: u32::try_from(footprint).unwrap_or(u32::MAX),
            status: run.status,
        }
    }
}

/// One place in creation order; `None` once its run is removed, until the
/// order is compacted (between applies, see [`RunIndex::settle`]).
#[derive(Debug)]
struct Entry {
    seq: u64,
    meta: Option<Meta>,
}

/// The runs of one job, each queue oldest first.
#[derive(Debug)]
pub(super) struct JobRuns {
    pub key: JobKey,
    /// Whether the job's state is stored: runs of other jobs are not
    /// created.
    pub exists: bool,
    /// Every run of the job.
    pub seqs: VecDeque<u64>,
    /// The succeeded ones (the count rule trims from the front).
    pub succeeded: VecDeque<u64>,
    /// The ones that ended otherwise.
    pub failed: VecDeque<u64>,
    /// The greatest (scheduled_at, seq) of the job's runs triggered by its
    /// schedule or a misfire since the index was built: the cursor is at
    /// least its time while that run is stored.
    pub slot: Option<(DateTime<Utc>, u64)>,
}

impl JobRuns {
    fn new(key: JobKey) -> Self {
        Self {
            key,
            exists: false,
            seqs: VecDeque::new(),
            succeeded: VecDeque::new(),
            failed: VecDeque::new(),
            slot: None,
        }
    }

    fn ended(&mut self, status: RunStatus) -> Option<&mut VecDeque<u64>> {
        match status {
            RunStatus::Pending | RunStatus::Dispatched | RunStatus::Running => None,
            RunStatus::Succeeded => Some(&mut self.succeeded),
            RunStatus::Failed | RunStatus::TimedOut | RunStatus::Killed | RunStatus::Skipped => {
                Some(&mut self.failed)
            }
        }
    }
}

/// Puts `seq` in its place in an ordered queue (at the back but after a
/// restore, see `create_runs`).
fn enqueue(queue: &mut VecDeque<u64>, seq: u64) {
    match queue.back() {
        Some(last) if *last >= seq => {
            if let Err(at) = queue.binary_search(&seq) {
                queue.insert(at, seq);
            }
        }
        _ => queue.push_back(seq),
    }
}

fn dequeue(queue: &mut VecDeque<u64>, seq: u64) {
    if let Ok(at) = queue.binary_search(&seq) {
        queue.remove(at);
    }
}

/// The index of `status` among the active statuses.
fn active(status: RunStatus) -> Option<usize> {
    match status {
        RunStatus::Pending => Some(0),
        RunStatus::Dispatched => Some(1),
        RunStatus::Running => Some(2),
        _ => None,
    }
}

/// The hash an id is known by in [`RunIndex::ids`]; the same in every
/// process (SipHash with fixed keys).
fn id_hash(id: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish()
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
    /// Every run in creation order, with the places of removed ones.
    /// A deque: retention removes the oldest runs, whose places are then
    /// dropped from the front, so once retention is reached its length
    /// and its memory stay put instead of growing until a compaction.
    order: VecDeque<Entry>,
    /// Places in `order` whose run was removed.
    removed: usize,
    /// Active runs by status (pending, dispatched, running).
    active: [BTreeSet<u64>; 3],
    /// How many stored runs have an id of each hash: a run whose id is
    /// not here is not stored (one slot, one run); one whose id is, is
    /// looked up in the tree.
    ids: HashMap<u64, u32>,
    jobs: Vec<JobRuns>,
    job_numbers: HashMap<JobKey, JobNo>,
}

impl RunIndex {
    /// Reads the index out of `tree`: the job states' keys and every run
    /// record.
    pub fn build(tree: &sled::Tree) -> Result<Self, StoreError> {
        let mut index = Self::default();
        for key in tree.scan_prefix(keys::job_state_prefix()).keys() {
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
        // Records come in the order of their ids: gathered, then filed in
        // creation order, so that every queue is filled at its back.
        let mut runs = Vec::new();
        for entry in tree.scan_prefix(keys::run("")) {
            let (key, value) = entry?;
            let stored = StoredRun::decode(&key, &value)?;
            let run = &stored.run;
            let job = index.intern(&run.namespace, &run.job_id);
            let footprint = (key.len() + value.len()) as u64;
            let slot = matches!(run.trigger, TriggerKind::Schedule | TriggerKind::Misfire)
                .then_some(run.scheduled_at);
            index.count_id(&run.id, true);
            runs.push((
                stored.seq,
                Meta::of(run, RunId::new(&run.id), job, footprint),
                slot,
            ));
        }
        runs.sort_unstable_by_key(|(seq, _, _)| *seq);
        index.order.reserve_exact(runs.len());
        for (seq, meta, slot) in runs {
            let job = &mut index.jobs[meta.job as usize];
            if let Some(slot) = slot {
                job.slot = job.slot.max(Some((slot, seq)));
            }
            index.link(seq, meta);
        }
        Ok(index)
    }

    /// The number of the job `namespace`/`id`, if the index knows it.
    pub fn job_no(&self, namespace: &str, id: &str) -> Option<JobNo> {
        // A borrowed lookup would need a key type of two `&str`s; a job
        // key is short, and built once per run created.
        self.job_numbers.get(&JobKey::new(namespace, id)).copied()
    }

    /// The number of the job, given one if it had none.
    fn intern(&mut self, namespace: &str, id: &str) -> JobNo {
        if let Some(no) = self.job_no(namespace, id) {
            return no;
        }
        let no = self.jobs.len() as JobNo;
        let key = JobKey::new(namespace, id);
        self.jobs.push(JobRuns::new(key.clone()));
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

    /// Whether a run `id` may be stored: when not, it is not.
    pub fn may_contain(&self, id: &str) -> bool {
        self.ids.contains_key(&id_hash(id))
    }

    fn count_id(&mut self, id: &str, add: bool) {
        let hash = id_hash(id);
        if add {
            *self.ids.entry(hash).or_default() += 1;
        } else if let Some(count) = self.ids.get_mut(&hash) {
            *count -= 1;
            if *count == 0 {
                self.ids.remove(&hash);
            }
        }
    }

    fn place(&self, seq: u64) -> Option<usize> {
        self.order.binary_search_by_key(&seq, |e| e.seq).ok()
    }

    pub fn meta(&self, seq: u64) -> Option<&Meta> {
        self.order.get(self.place(seq)?)?.meta.as_ref()
    }

    /// The newest `seq` stored.
    pub fn newest_seq(&self) -> Option<u64> {
        self.order
            .iter()
            .rev()
            .find(|e| e.meta.is_some())
            .map(|e| e.seq)
    }

    /// Every run, oldest first.
    pub fn all(&self) -> impl DoubleEndedIterator<Item = (u64, &Meta)> {
        self.order
            .iter()
            .filter_map(|e| e.meta.as_ref().map(|m| (e.seq, m)))
    }

    /// The active runs with `status`, oldest first (none for an end).
    pub fn active(&self, status: RunStatus) -> impl Iterator<Item = u64> + '_ {
        active(status)
            .map(|at| self.active[at].iter().copied())
            .into_iter()
            .flatten()
    }

    /// The bytes of every stored run (`keys::run_footprint`).
    pub fn footprint(&self) -> u64 {
        self.all().map(|(_, m)| u64::from(m.footprint)).sum()
    }

    /// Up to `n` runs of `source` older than `before`, newest first, as
    /// (seq, record key).
    pub fn page(&self, source: Source, before: u64, n: usize) -> Vec<(u64, Vec<u8>)> {
        let key_of = |seq: u64| self.meta(seq).map(|m| (seq, m.id.record_key()));
        let older = || {
            let end = self.order.partition_point(|e| e.seq < before);
            self.order
                .range(..end)
                .rev()
                .filter_map(|e| e.meta.as_ref().map(|m| (e.seq, m)))
        };
        match source {
            Source::All => older()
                .take(n)
                .map(|(seq, m)| (seq, m.id.record_key()))
                .collect(),
            Source::Status(status) => match active(status) {
                Some(at) => self.active[at]
                    .range(..before)
                    .rev()
                    .filter_map(|seq| key_of(*seq))
                    .take(n)
                    .collect(),
                None => older()
                    .filter(|(_, m)| m.status == status)
                    .take(n)
                    .map(|(seq, m)| (seq, m.id.record_key()))
                    .collect(),
            },
            // A number of an index since replaced (a dump was installed
            // between two pages) may name no job here.
            Source::Job(no) => match self.jobs.get(no as usize) {
                Some(job) => {
                    let end = job.seqs.partition_point(|seq| *seq < before);
                    job.seqs
                        .range(..end)
                        .rev()
                        .filter_map(|seq| key_of(*seq))
                        .take(n)
                        .collect()
                }
                None => Vec::new(),
            },
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
        let meta = Meta::of(run, RunId::new(&run.id), job, footprint);
        let entry = &mut self.jobs[job as usize];
        let slot_before = entry.slot;
        if matches!(run.trigger, TriggerKind::Schedule | TriggerKind::Misfire) {
            entry.slot = entry.slot.max(Some((run.scheduled_at, seq)));
        }
        undo.push(Undo::Inserted { seq, slot_before });
        self.count_id(&run.id, true);
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
        self.count_id(&meta.id.text(), false);
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
                        self.count_id(&meta.id.text(), false);
                        self.jobs[meta.job as usize].slot = slot_before;
                    }
                }
                Undo::Changed { seq, before } => {
                    self.unlink(seq);
                    self.link(seq, before);
                }
                Undo::Removed { seq, meta } => {
                    self.count_id(&meta.id.text(), true);
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

    /// Drops the places of removed runs: at once from the front (the
    /// oldest, as retention removes them), elsewhere once they are many;
    /// between applies only, so that an undo finds the places it refers to.
    pub fn settle(&mut self) {
        while self.order.front().is_some_and(|e| e.meta.is_none()) {
            self.order.pop_front();
            self.removed -= 1;
        }
        if self.removed > 1024 && self.removed * 2 > self.order.len() {
            self.order.retain(|e| e.meta.is_some());
            self.order
                .shrink_to(self.order.len() + self.order.len() / 8);
            self.removed = 0;
        }
    }

    /// Files `meta` under `seq` everywhere but `ids`.
    fn link(&mut self, seq: u64, meta: Meta) {
        let job = &mut self.jobs[meta.job as usize];
        enqueue(&mut job.seqs, seq);
        if let Some(ended) = job.ended(meta.status) {
            enqueue(ended, seq);
        }
        if let Some(at) = active(meta.status) {
            self.active[at].insert(seq);
        }
        match self.order.back() {
            Some(last) if last.seq >= seq => {
                match self.order.binary_search_by_key(&seq, |e| e.seq) {
                    Ok(at) => {
                        if self.order[at].meta.is_none() {
                            self.removed -= 1;
                        }
                        self.order[at].meta = Some(meta);
                    }
                    Err(at) => self.order.insert(
                        at,
                        Entry {
                            seq,
                            meta: Some(meta),
                        },
                    ),
                }
            }
            _ => self.order.push_back(Entry {
                seq,
                meta: Some(meta),
            }),
        }
    }

    /// Takes `seq` out of everything but `ids`.
    fn unlink(&mut self, seq: u64) -> Option<Meta> {
        let at = self.place(seq)?;
        let meta = self.order[at].meta.take()?;
        self.removed += 1;
        let job = &mut self.jobs[meta.job as usize];
        dequeue(&mut job.seqs, seq);
        if let Some(ended) = job.ended(meta.status) {
            dequeue(ended, seq);
        }
        if let Some(at) = active(meta.status) {
            self.active[at].remove(&seq);
        }
        Some(meta)
    }
}

#[cfg(test)]
impl RunIndex {
    /// Places in creation order, those of removed runs included: what the
    /// index's memory of the runs follows.
    pub fn places(&self) -> usize {
        self.order.len()
    }

    /// The bytes the index allocates, by the capacities of its parts (the
    /// allocator's own overhead aside): (for the runs, for the jobs).
    pub fn heap_bytes(&self) -> (usize, usize) {
        use std::mem::size_of;
        let texts: usize = self
            .all()
            .map(|(_, m)| match &m.id {
                RunId::Text(text) => text.len(),
                RunId::Digest(_) => 0,
            })
            .sum();
        let runs = self.order.capacity() * size_of::<Entry>()
            + self.ids.capacity() * (size_of::<(u64, u32)>() + 1)
            + self.active.iter().map(|set| set.len() * 16).sum::<usize>()
            + self
                .jobs
                .iter()
                .map(|j| (j.seqs.capacity() + j.succeeded.capacity() + j.failed.capacity()) * 8)
                .sum::<usize>()
            + texts;
        let jobs = self.jobs.capacity() * size_of::<JobRuns>()
            + self.job_numbers.capacity() * (size_of::<(JobKey, JobNo)>() + 1)
            + self
                .jobs
                .iter()
                .map(|j| 2 * (j.key.namespace.len() + j.key.id.len()))
                .sum::<usize>();
        (runs, jobs)
    }
}

#[cfg(test)]
impl PartialEq for RunIndex {
    /// The same runs with the same metadata and ids, jobs compared by key.
    fn eq(&self, other: &Self) -> bool {
        let runs = |index: &Self| -> Vec<(u64, Meta, JobKey)> {
            index
                .all()
                .map(|(seq, m)| {
                    (
                        seq,
                        Meta {
                            job: 0,
                            ..m.clone()
                        },
                        index.job(m.job).key.clone(),
                    )
                })
                .collect()
        };
        runs(self) == runs(other) && self.ids == other.ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_id_is_kept_in_twelve_bytes_and_any_other_as_it_is() {
        let digest = "0123456789abcdef01234567";
        assert!(matches!(RunId::new(digest), RunId::Digest(_)));
        assert_eq!(RunId::new(digest).text(), digest);
        for other in ["0123456789ABCDEF01234567", "r1", "0123456789abcdef0123456g"] {
            assert_eq!(RunId::new(other), RunId::Text(other.into()));
            assert_eq!(RunId::new(other).text(), other);
        }
    }
}
