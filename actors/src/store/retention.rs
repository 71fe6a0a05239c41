//! Bounded run history: which finished runs the state machine drops, and
//! when. After a command writes runs (`CreateRuns`, `RecordRuns`), for
//! each job it touched:
//!
//! 1. **age** — a finished run whose end (its creation if it has no end)
//!    is older than the newest time the command carries minus `max_age`;
//! 2. **count by outcome** — the oldest succeeded runs beyond
//!    `succeeded_limit`, and apart from them the oldest runs that ended
//!    otherwise (failed, timed out, killed, skipped) beyond
//!    `failed_limit`, as a Kubernetes CronJob's successful and failed
//!    jobs history limits;
//!
//! then, across all jobs (also after `MoveRun`, which rewrites a run):
//!
//! 3. **bytes** — while the stored runs take more than `max_bytes`, the
//!    oldest finished run of any job.
//!
//! Active runs (pending, dispatched, running) are never dropped. Nothing
//! reads the clock: every time compared comes from the command or the
//! runs, so every node applying the same log with the same policy drops
//! the same runs. The totals these rules read are kept by `run_book`.
//!
//! Each rule walks runs oldest first and stops once it has removed what it
//! must. What it passes over without removing is bounded: for the age,
//! the job's runs created before the cut that are kept (active or ended
//! after it); for the count, runs of the other outcome, each passed over
//! once (the job state keeps where the walk resumes); for the bytes,
//! active runs. A command removes at most [`TRIM_BUDGET`] runs; a
//! lowered limit takes effect over the following commands instead of in
//! one long apply.

use std::{collections::BTreeSet, time::Duration};

use chrono::{DateTime, Utc};
use protocol::{JobKey, RunStatus};

use super::{
    keys,
    records::JobHistory,
    run_book::{find_indexed, Book, Found},
    txn::Txn,
    StoreError, DEFAULT_HISTORY_LIMIT,
};

/// Most runs one command removes, all rules together.
pub const TRIM_BUDGET: usize = 10_000;

/// Which finished runs a store keeps. Every node of a cluster must have
/// the same policy: it decides what applying the log writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryPolicy {
    /// Succeeded runs kept per job, newest first (0 counts as 1).
    pub succeeded_limit: usize,
    /// Runs kept per job that ended otherwise: failed, timed out, killed
    /// or skipped (0 counts as 1).
    pub failed_limit: usize,
    /// Finished runs whose end is older than this, before the newest time
    /// of the command that touches their job, are dropped.
    pub max_age: Option<Duration>,
    /// The stored runs of all jobs take at most this many bytes, counted
    /// by `keys::run_footprint` (records and index entries).
    pub max_bytes: Option<u64>,
}

impl Default for HistoryPolicy {
    fn default() -> Self {
        Self::keeping(DEFAULT_HISTORY_LIMIT)
    }
}

impl HistoryPolicy {
    /// `limit` runs of each outcome per job, whatever their age and size.
    pub fn keeping(limit: usize) -> Self {
        Self {
            succeeded_limit: limit,
            failed_limit: limit,
            max_age: None,
            max_bytes: None,
        }
    }
}

/// How a finished run ended, for the count rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Succeeded,
    /// Failed, timed out, killed or skipped.
    Failed,
}

impl Ending {
    /// `None` for an active run.
    pub fn of(status: RunStatus) -> Option<Self> {
        match status {
            RunStatus::Pending | RunStatus::Dispatched | RunStatus::Running => None,
            RunStatus::Succeeded => Some(Ending::Succeeded),
            RunStatus::Failed | RunStatus::TimedOut | RunStatus::Killed | RunStatus::Skipped => {
                Some(Ending::Failed)
            }
        }
    }

    /// The job's count of runs that ended so.
    pub fn count(self, history: &mut JobHistory) -> &mut u64 {
        match self {
            Ending::Succeeded => &mut history.succeeded,
            Ending::Failed => &mut history.failed,
        }
    }

    /// Where the walk for runs that ended so resumes.
    fn from(self, history: &mut JobHistory) -> &mut u64 {
        match self {
            Ending::Succeeded => &mut history.succeeded_from,
            Ending::Failed => &mut history.failed_from,
        }
    }

    fn limit(self, policy: &HistoryPolicy) -> u64 {
        let limit = match self {
            Ending::Succeeded => policy.succeeded_limit,
            Ending::Failed => policy.failed_limit,
        };
        limit.max(1) as u64
    }
}

/// Applies the policy after a command that touched the runs of `jobs`;
/// `now` is the newest time the command carries (none: no age rule).
pub(super) fn trim(
    txn: &mut Txn,
    book: &mut Book,
    policy: &HistoryPolicy,
    jobs: &BTreeSet<JobKey>,
    now: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let mut budget = TRIM_BUDGET;
    let cut = policy
        .max_age
        .zip(now)
        .and_then(|(age, now)| now.checked_sub_signed(chrono::TimeDelta::from_std(age).ok()?));
    for key in jobs {
        if let Some(cut) = cut {
            trim_older(txn, book, key, cut, &mut budget)?;
        }
        for ending in [Ending::Succeeded, Ending::Failed] {
            trim_ending(txn, book, key, ending, ending.limit(policy), &mut budget)?;
        }
    }
    if let Some(max) = policy.max_bytes {
        trim_to_bytes(txn, book, max, &mut budget)?;
    }
    Ok(())
}

/// Removes `doomed` and charges them to the budget.
fn remove_all(
    txn: &mut Txn,
    book: &mut Book,
    doomed: &[Found],
    budget: &mut usize,
) -> Result<(), StoreError> {
    for found in doomed {
        book.remove(txn, found)?;
    }
    *budget = budget.saturating_sub(doomed.len());
    Ok(())
}

/// The age rule for one job. The walk stops at the first run created at
/// or after `cut`: runs are stored in about the order of their creation
/// times, so the ones after it ended later too. (A run created out of that
/// order, by a leader whose clock lagged, waits for the runs before it.)
fn trim_older(
    txn: &mut Txn,
    book: &mut Book,
    key: &JobKey,
    cut: DateTime<Utc>,
    budget: &mut usize,
) -> Result<(), StoreError> {
    let prefix = keys::runs_of_job_prefix(key);
    let mut doomed = Vec::new();
    for entry in txn.scan(&prefix, &prefix) {
        if doomed.len() >= *budget {
            break;
        }
        let (index_key, value) = entry?;
        let Some(found) = find_indexed(txn, &index_key, &value)? else {
            continue;
        };
        let run = &found.stored.run;
        if run.created_at >= cut {
            break;
        }
        if run.status.is_terminal() && run.finished_at.unwrap_or(run.created_at) < cut {
            doomed.push(found);
        }
    }
    remove_all(txn, book, &doomed, budget)
}

/// The count rule for the runs of one job that ended as `ending`. The
/// walk starts where the last one stopped: before that, the job has only
/// runs of the other outcome. It stops at an active run for the next walk
/// (the run may still end as `ending`), and walks on past it.
fn trim_ending(
    txn: &mut Txn,
    book: &mut Book,
    key: &JobKey,
    ending: Ending,
    limit: u64,
    budget: &mut usize,
) -> Result<(), StoreError> {
    let Some(mut history) = book.job(txn, key)?.and_then(|s| s.history.clone()) else {
        return Ok(());
    };
    let excess = ending.count(&mut history).saturating_sub(limit);
    if excess == 0 || *budget == 0 {
        return Ok(());
    }
    let from = *ending.from(&mut history);
    let prefix = keys::runs_of_job_prefix(key);
    let mut wanted = excess.min(*budget as u64);
    let mut doomed = Vec::new();
    let mut resume = from;
    let mut active = None;
    let mut walked_all = true;
    for entry in txn.scan(&prefix, &keys::run_of_job(key, from)) {
        if wanted == 0 {
            walked_all = false;
            break;
        }
        let (index_key, value) = entry?;
        let Some(seq) = keys::seq_of(&index_key) else {
            continue;
        };
        resume = seq.saturating_add(1);
        let Some(found) = find_indexed(txn, &index_key, &value)? else {
            continue;
        };
        match Ending::of(found.stored.run.status) {
            Some(e) if e == ending => {
                doomed.push(found);
                wanted -= 1;
            }
            Some(_) => {}
            None => {
                active.get_or_insert(seq);
            }
        }
    }
    remove_all(txn, book, &doomed, budget)?;
    if let Some(history) = book.job(txn, key)?.and_then(|s| s.history.as_mut()) {
        *ending.from(history) = active.unwrap_or(resume);
        if walked_all && wanted > 0 {
            // Fewer such runs than counted: every one left was walked and
            // removed, so there are none (a count is corrected, never
            // trusted past the runs themselves).
            *ending.count(history) = 0;
        }
    }
    Ok(())
}

/// The byte rule: the oldest finished runs of all jobs, by the global
/// index, until the stored runs fit in `max`.
fn trim_to_bytes(
    txn: &mut Txn,
    book: &mut Book,
    max: u64,
    budget: &mut usize,
) -> Result<(), StoreError> {
    let mut total = book.bytes(txn)?;
    if total <= max {
        return Ok(());
    }
    let mut doomed = Vec::new();
    for entry in txn.scan(keys::ALL_RUNS_PREFIX, keys::ALL_RUNS_PREFIX) {
        if total <= max || doomed.len() >= *budget {
            break;
        }
        let (index_key, value) = entry?;
        let Some(found) = find_indexed(txn, &index_key, &value)? else {
            continue;
        };
        if found.stored.run.status.is_terminal() {
            total = total.saturating_sub(found.footprint());
            doomed.push(found);
        }
    }
    remove_all(txn, book, &doomed, budget)
}
