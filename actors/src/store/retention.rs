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
//! Each rule walks the in-memory index (`run_index`) oldest first and
//! stops once it has removed what it must. What it passes over without
//! removing is bounded: for the age, the job's runs created before the
//! cut that are kept (active or ended after it); for the count, nothing
//! (the index keeps each outcome's runs apart); for the bytes, active
//! runs. A command removes at most [`TRIM_BUDGET`] runs; a lowered limit
//! takes effect over the following commands instead of in one long apply.
//! Jobs are trimmed in the order of their keys, so that where the budget
//! runs out is the same on every node.

use std::{collections::BTreeSet, time::Duration};

use chrono::{DateTime, Utc};
use protocol::RunStatus;

use super::{
    run_book::Book,
    run_index::{nanos, JobNo},
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
    /// by `keys::run_footprint` (the run records).
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
    jobs: &BTreeSet<JobNo>,
    now: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let mut budget = TRIM_BUDGET;
    let cut = policy
        .max_age
        .zip(now)
        .and_then(|(age, now)| now.checked_sub_signed(chrono::TimeDelta::from_std(age).ok()?));
    let mut jobs: Vec<JobNo> = jobs.iter().copied().collect();
    jobs.sort_by(|a, b| book.index.job(*a).key.cmp(&book.index.job(*b).key));
    for job in jobs {
        if let Some(cut) = cut {
            trim_older(txn, book, job, cut, &mut budget)?;
        }
        for ending in [Ending::Succeeded, Ending::Failed] {
            trim_ending(txn, book, job, ending, ending.limit(policy), &mut budget)?;
        }
    }
    if let Some(max) = policy.max_bytes {
        trim_to_bytes(txn, book, max, &mut budget)?;
    }
    Ok(())
}

/// Removes the runs at `doomed` and charges them to the budget.
fn remove_all(
    txn: &mut Txn,
    book: &mut Book,
    doomed: &[u64],
    budget: &mut usize,
) -> Result<(), StoreError> {
    for seq in doomed {
        book.remove(txn, *seq)?;
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
    job: JobNo,
    cut: DateTime<Utc>,
    budget: &mut usize,
) -> Result<(), StoreError> {
    let cut = nanos(cut);
    let mut doomed = Vec::new();
    for seq in &book.index.job(job).seqs {
        if doomed.len() >= *budget {
            break;
        }
        let Some(meta) = book.index.meta(*seq) else {
            continue;
        };
        if meta.created_at >= cut {
            break;
        }
        if meta.status.is_terminal() && meta.ended_at < cut {
            doomed.push(*seq);
        }
    }
    remove_all(txn, book, &doomed, budget)
}

/// The count rule for the runs of one job that ended as `ending`: the
/// oldest beyond `limit` go.
fn trim_ending(
    txn: &mut Txn,
    book: &mut Book,
    job: JobNo,
    ending: Ending,
    limit: u64,
    budget: &mut usize,
) -> Result<(), StoreError> {
    let runs = book.index.job(job);
    let ended = match ending {
        Ending::Succeeded => &runs.succeeded,
        Ending::Failed => &runs.failed,
    };
    let excess = (ended.len() as u64).saturating_sub(limit);
    let wanted = excess.min(*budget as u64) as usize;
    if wanted == 0 {
        return Ok(());
    }
    let doomed: Vec<u64> = ended.iter().take(wanted).copied().collect();
    remove_all(txn, book, &doomed, budget)
}

/// The byte rule: the oldest finished runs of all jobs, in creation
/// order, until the stored runs fit in `max`.
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
    for (seq, meta) in book.index.all() {
        if total <= max || doomed.len() >= *budget {
            break;
        }
        if meta.status.is_terminal() {
            total = total.saturating_sub(u64::from(meta.footprint));
            doomed.push(seq);
        }
    }
    remove_all(txn, book, &doomed, budget)
}
