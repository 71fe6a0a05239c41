//! The one function that applies a `MetaCommand` to the state machine.

use std::{
    borrow::Cow,
    collections::{BTreeSet, HashMap},
};

use chrono::{DateTime, Utc};
use protocol::{
    alert::{AlertDelivery, MAX_RUN_ALERT_DELIVERIES},
    run::{logged_run_id, tail, OUTPUT_LIMIT},
    Job, JobKey, MetaCommand, PutMode, Run, RunStatus, RunUpdate,
};

use super::{
    keys, links,
    retention::{self, HistoryPolicy},
    run_book::{self, Book},
    txn::Txn,
    JobState, Outcome, Rejection, StateMachine, StoreError,
};

impl StateMachine {
    /// Applies the command at log `index` atomically. Commands at or below
    /// the applied index are ignored, so replaying the log is harmless.
    /// Deterministic: the same log gives the same state on every node.
    ///
    /// The run index changes as the command goes, under its lock (readers
    /// wait for one command at most); unless the batch is written, the
    /// index is put back as it was (see `Book`).
    pub fn apply(&self, index: u64, cmd: &MetaCommand) -> Result<Outcome, StoreError> {
        let _whole = self.gate();
        if index <= self.applied_index()? {
            return Ok(Outcome::AlreadyApplied);
        }
        let tree = self.tree();
        let mut runs = self.index_mut();
        let mut book = Book::new(&mut runs);
        let mut txn = Txn::new(&tree);
        let applied = self
            .apply_to(&mut txn, &mut book, index, cmd)
            .and_then(|outcome| {
                txn.put_raw(keys::APPLIED.to_vec(), index.to_be_bytes().to_vec());
                self.write(&tree, txn)?;
                Ok(outcome)
            });
        if applied.is_ok() {
            book.commit();
        }
        applied.map_err(|e| self.note_failure(e))
    }

    fn apply_to(
        &self,
        txn: &mut Txn,
        book: &mut Book,
        index: u64,
        cmd: &MetaCommand,
    ) -> Result<Outcome, StoreError> {
        Ok(match cmd {
            MetaCommand::PutJob { job, mode, at } => put_job(txn, book, job, *mode, *at, true)?,
            MetaCommand::CreateJobs { jobs, at } => create_jobs(txn, book, jobs, *at)?,
            MetaCommand::DeleteJob { key, force } => delete_job(txn, book, key, *force)?,
            MetaCommand::SetJobEnabled { key, enabled, at } => {
                set_enabled(txn, key, *enabled, *at)?
            }
            MetaCommand::CreateRuns { runs } => create_runs(txn, book, index, runs, &self.history)?,
            MetaCommand::RecordRuns { updates } => record_runs(txn, book, updates, &self.history)?,
            MetaCommand::MoveRun { run_id, from, to } => {
                move_run(txn, book, run_id, from, to, &self.history)?
            }
            MetaCommand::PlaceRun { run_id, to } => {
                place_run(txn, book, run_id, to, &self.history)?
            }
            MetaCommand::RecordAlertDeliveries { deliveries } => {
                record_alert_deliveries(txn, book, deliveries, &self.history)?
            }
            MetaCommand::RegisterNode { node } => {
                txn.put(keys::node(node.node_id), node)?;
                Outcome::NodeRegistered(node.clone())
            }
        })
    }
}

impl StateMachine {
    /// Records that the log entry at `index` carried no command (a new
    /// leader's empty entry, a membership change), so the applied index
    /// always matches the log's.
    pub fn skip_entry(&self, index: u64) -> Result<(), StoreError> {
        let _whole = self.gate();
        if index > self.applied_index()? {
            let tree = self.tree();
            let mut txn = Txn::new(&tree);
            txn.put_raw(keys::APPLIED.to_vec(), index.to_be_bytes().to_vec());
            self.write(&tree, txn)?;
        }
        Ok(())
    }
}

fn put_job(
    txn: &mut Txn,
    book: &mut Book,
    job: &Job,
    mode: PutMode,
    at: DateTime<Utc>,
    check_links: bool,
) -> Result<Outcome, StoreError> {
    let key = job.key();
    let state: Option<JobState> = txn.get(&keys::job_state(&key))?;
    let state = match (mode, state) {
        (PutMode::Create, Some(_)) => return Ok(Outcome::Rejected(Rejection::JobExists(key))),
        (PutMode::Replace, None) => return Ok(Outcome::Rejected(Rejection::JobNotFound(key))),
        (PutMode::Create, None) => JobState {
            created_at: at,
            updated_at: at,
            cursor: at,
            run_count: 0,
            history: None,
        },
        (PutMode::Replace, Some(state)) => {
            // Slots before the new definition are not owed by it.
            JobState {
                updated_at: at,
                cursor: state.cursor.max(at),
                ..state
            }
        }
    };
    if check_links {
        if let Some(bad) = links::check(txn, &[job])? {
            return Ok(Outcome::Rejected(Rejection::BadChildLink(bad)));
        }
    }
    txn.put(keys::job(&key), job)?;
    txn.put(keys::job_state(&key), &run_book::stored(state))?;
    book.index.set_job(&key, true, &mut book.undo);
    Ok(Outcome::JobPut {
        job: Box::new(job.clone()),
        created: mode == PutMode::Create,
    })
}

/// Every job or none: the existence of any one (or an id twice), or a
/// child link to a job that exists neither in the store nor in the batch
/// (or one that closes a cycle), rejects the command before anything is
/// written.
fn create_jobs(
    txn: &mut Txn,
    book: &mut Book,
    jobs: &[Job],
    at: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let mut seen = std::collections::HashSet::new();
    for job in jobs {
        let key = job.key();
        if txn.exists(&keys::job_state(&key))? || !seen.insert(key.clone()) {
            return Ok(Outcome::Rejected(Rejection::JobExists(key)));
        }
    }
    if let Some(bad) = links::check(txn, &jobs.iter().collect::<Vec<_>>())? {
        return Ok(Outcome::Rejected(Rejection::BadChildLink(bad)));
    }
    for job in jobs {
        put_job(txn, book, job, PutMode::Create, at, false)?;
    }
    Ok(Outcome::JobsCreated(jobs.to_vec()))
}

fn set_enabled(
    txn: &mut Txn,
    key: &JobKey,
    enabled: bool,
    at: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let (Some(mut job), Some(mut state)) = (
        txn.get::<Job>(&keys::job(key))?,
        txn.get::<JobState>(&keys::job_state(key))?,
    ) else {
        return Ok(Outcome::Rejected(Rejection::JobNotFound(key.clone())));
    };
    if enabled && !job.enabled {
        // A paused job owes nothing for the time it was paused.
        state.cursor = state.cursor.max(at);
    }
    job.enabled = enabled;
    state.updated_at = at;
    txn.put(keys::job(key), &job)?;
    txn.put(keys::job_state(key), &run_book::stored(state))?;
    Ok(Outcome::JobPut {
        job: Box::new(job),
        created: false,
    })
}

/// Deletes a job and its runs. A job other jobs name as a child is
/// refused, naming them, unless `force`: then the links go from the
/// parents in the same write.
fn delete_job(
    txn: &mut Txn,
    book: &mut Book,
    key: &JobKey,
    force: bool,
) -> Result<Outcome, StoreError> {
    if !txn.exists(&keys::job(key))? {
        return Ok(Outcome::JobDeleted {
            key: key.clone(),
            existed: false,
            unlinked: Vec::new(),
        });
    }
    let mut parents = links::parents_of(txn, key)?;
    if !parents.is_empty() && !force {
        return Ok(Outcome::Rejected(Rejection::JobIsChild {
            key: key.clone(),
            parents: parents.iter().map(Job::key).collect(),
        }));
    }
    for parent in &mut parents {
        parent.children.retain(|link| link.job != key.id);
        txn.put(keys::job(&parent.key()), &*parent)?;
    }
    // Forgotten first: the runs go with the job, its cursor with its state.
    book.index.set_job(key, false, &mut book.undo);
    let seqs: Vec<u64> = book
        .index
        .job_by_key(key)
        .map(|job| job.seqs.iter().copied().collect())
        .unwrap_or_default();
    for seq in seqs {
        book.remove(txn, seq)?;
    }
    book.forget_state(key);
    txn.delete(keys::job(key));
    txn.delete(keys::job_state(key));
    book.finish(txn)?;
    Ok(Outcome::JobDeleted {
        key: key.clone(),
        existed: true,
        unlinked: parents,
    })
}

/// Stores the new runs, then trims the history of their jobs. The age
/// rule measures from the newest `created_at` among the runs.
fn create_runs(
    txn: &mut Txn,
    book: &mut Book,
    index: u64,
    runs: &[Run],
    policy: &HistoryPolicy,
) -> Result<Outcome, StoreError> {
    let mut touched = BTreeSet::new();
    let mut created = Vec::with_capacity(runs.len());
    // Runs are ordered by `seq`, which grows with the log index. A store
    // restored from a backup starts its log again, below the runs it
    // holds: a new run goes after the newest stored one all the same, so
    // it sorts as new and never takes the place of another run.
    let mut newest = book.index.newest_seq();
    for (position, run) in runs.iter().enumerate() {
        // The job was deleted after the fire was planned.
        let Some(job) = book.index.existing_job(&run.namespace, &run.job_id) else {
            continue;
        };
        let id = match run.id.as_str() {
            "" => Cow::Owned(logged_run_id(&run.namespace, &run.job_id, index, position)),
            id => Cow::Borrowed(id),
        };
        // Its job's history is trimmed even if the run existed already.
        touched.insert(job);
        // One slot, one run: an id that exists is never created twice.
        if book.index.may_contain(&id) && txn.exists(&keys::run(&id))? {
            continue;
        }
        let mut run = run.clone();
        if let Cow::Owned(id) = id {
            run.id = id;
        }
        if run.output.len() > OUTPUT_LIMIT {
            run.output = tail(&run.output, OUTPUT_LIMIT).to_string();
        }
        let seq = match newest {
            Some(newest) => keys::seq(index, position).max(newest.saturating_add(1)),
            None => keys::seq(index, position),
        };
        newest = Some(seq);
        book.insert(txn, job, seq, &run)?;
        created.push(run);
    }
    let now = runs.iter().map(|run| run.created_at).max();
    retention::trim(txn, book, policy, &touched, now)?;
    book.finish(txn)?;
    Ok(Outcome::RunsCreated(created))
}

/// Records the transitions, then trims the history of the runs' jobs. The
/// age rule measures from the newest start or end the updates carry.
fn record_runs(
    txn: &mut Txn,
    book: &mut Book,
    updates: &[RunUpdate],
    policy: &HistoryPolicy,
) -> Result<Outcome, StoreError> {
    let mut touched = BTreeSet::new();
    let mut changed: Vec<Run> = Vec::new();
    // Where each run's latest change sits in `changed`.
    let mut position: HashMap<String, usize> = HashMap::new();
    for update in updates {
        let Some(found) = run_book::find(txn, &update.run_id)? else {
            continue;
        };
        let mut run = found.stored.run.clone();
        merge(&mut run, update);
        book.rewrite(txn, &found, &run)?;
        if let Some(meta) = book.index.meta(found.stored.seq) {
            touched.insert(meta.job);
        }
        if run.status != found.stored.run.status {
            match position.get(&run.id) {
                Some(&at) => changed[at] = run,
                None => {
                    position.insert(run.id.clone(), changed.len());
                    changed.push(run);
                }
            }
        }
    }
    let now = updates
        .iter()
        .flat_map(|u| [u.started_at, u.finished_at])
        .flatten()
        .max();
    retention::trim(txn, book, policy, &touched, now)?;
    book.finish(txn)?;
    Ok(Outcome::RunsChanged(changed))
}

fn move_run(
    txn: &mut Txn,
    book: &mut Book,
    run_id: &str,
    from: &str,
    to: &str,
    policy: &HistoryPolicy,
) -> Result<Outcome, StoreError> {
    let moved = match run_book::find(txn, run_id)? {
        Some(found)
            if !found.stored.run.status.is_terminal()
                && found.stored.run.executor.as_deref() == Some(from) =>
        {
            let mut run = found.stored.run.clone();
            run.executor = Some(to.to_string());
            book.rewrite(txn, &found, &run)?;
            true
        }
        _ => false,
    };
    if moved {
        // A longer executor name may take the runs past the byte budget.
        retention::trim(txn, book, policy, &BTreeSet::new(), None)?;
        book.finish(txn)?;
    }
    Ok(Outcome::RunMoved {
        run_id: run_id.to_string(),
        moved,
    })
}

fn place_run(
    txn: &mut Txn,
    book: &mut Book,
    run_id: &str,
    to: &str,
    policy: &HistoryPolicy,
) -> Result<Outcome, StoreError> {
    let placed = match run_book::find(txn, run_id)? {
        Some(found)
            if found.stored.run.status == RunStatus::Pending
                && found.stored.run.pending_reason.is_some() =>
        {
            let mut run = found.stored.run.clone();
            run.executor = Some(to.to_string());
            run.pending_reason = None;
            book.rewrite(txn, &found, &run)?;
            true
        }
        _ => false,
    };
    if placed {
        retention::trim(txn, book, policy, &BTreeSet::new(), None)?;
        book.finish(txn)?;
    }
    Ok(Outcome::RunPlaced {
        run_id: run_id.to_string(),
        placed,
    })
}

/// Appends each delivery to its run, keeping the newest
/// `MAX_RUN_ALERT_DELIVERIES`; runs gone since are passed over.
fn record_alert_deliveries(
    txn: &mut Txn,
    book: &mut Book,
    deliveries: &[(String, AlertDelivery)],
    policy: &HistoryPolicy,
) -> Result<Outcome, StoreError> {
    let mut changed: Vec<Run> = Vec::new();
    let mut position: HashMap<&str, usize> = HashMap::new();
    for (run_id, delivery) in deliveries {
        let Some(found) = run_book::find(txn, run_id)? else {
            continue;
        };
        // The batch reads its own writes: a second delivery of the same
        // run finds the first.
        let mut run = found.stored.run.clone();
        run.alerts.push(delivery.clone().bounded());
        let excess = run.alerts.len().saturating_sub(MAX_RUN_ALERT_DELIVERIES);
        run.alerts.drain(..excess);
        book.rewrite(txn, &found, &run)?;
        match position.get(run_id.as_str()) {
            Some(&at) => changed[at] = run,
            None => {
                position.insert(run_id, changed.len());
                changed.push(run);
            }
        }
    }
    if !changed.is_empty() {
        // The deliveries may take the runs past the byte budget.
        retention::trim(txn, book, policy, &BTreeSet::new(), None)?;
        book.finish(txn)?;
    }
    Ok(Outcome::AlertsRecorded(changed))
}

/// Folds an update into a run. A terminal status is final: later updates
/// may only fill in what it lacked (output, exit code, times), and a run
/// never moves back (running never returns to dispatched).
fn merge(run: &mut Run, update: &RunUpdate) {
    if run.status.is_terminal() {
        if run.output.is_empty() {
            if let Some(output) = &update.output {
                run.output = tail(output, OUTPUT_LIMIT).to_string();
            }
        }
        run.exit_code = run.exit_code.or(update.exit_code);
        run.started_at = run.started_at.or(update.started_at);
        run.finished_at = run.finished_at.or(update.finished_at);
        return;
    }
    if let Some(status) = update.status {
        if status.progress() >= run.status.progress() {
            run.status = status;
        }
    }
    if run.status != RunStatus::Pending {
        // It is on its way or over: no longer waiting for room.
        run.pending_reason = None;
    }
    if let Some(executor) = &update.executor {
        run.executor = Some(executor.clone());
    }
    run.started_at = update.started_at.or(run.started_at);
    run.finished_at = update.finished_at.or(run.finished_at);
    run.exit_code = update.exit_code.or(run.exit_code);
    if let Some(output) = &update.output {
        run.output = tail(output, OUTPUT_LIMIT).to_string();
    }
    if update.error.is_some() {
        run.error = update.error.clone();
    }
}
