//! The agent's core, independent of HTTP: admits dispatches once per run
//! id, runs them, kills them, and hands their reports to the reporter.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use protocol::dispatch::{
    DispatchAck, DispatchRequest, DispatchResult, RunReport, Task, EXPIRED_REASON,
};
use protocol::run::RunStatus;
use protocol::signing::Signer;
use serde::Serialize;
use tokio::{runtime::Handle, sync::watch, task::JoinHandle};
use tracing::Instrument;

use super::{
    config::ExecutorConfig,
    fence::StaleTerm,
    forward, handlers,
    ledger::{FinalResult, RunRecord},
    output::SharedOutput,
    process::{format_duration, ShellProcess},
    procfs,
    reporter::{Delivery, Reporter},
    runs::{Admission, DeliveryStart, Outcome, RunTable, StopReason, StopRequest},
    state::AgentState,
    tasks::Tasks,
};

/// How long a run must have been running before its `running` report goes.
const RUNNING_REPORT_DELAY: Duration = Duration::from_millis(20);
/// Longest accepted run id; ids are digests, far shorter.
const MAX_RUN_ID_LEN: usize = 128;

/// Why a dispatch was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum DispatchError {
    /// The request is malformed: `field` is to blame.
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The agent is shutting down and starts nothing new.
    ShuttingDown,
    /// The sender was deposed: a newer leader has been seen.
    StaleTerm(StaleTerm),
    /// A new run while `max_concurrent` runs are running here.
    Busy { running: usize, max: u32 },
    /// A new run whose `expires_at` had passed on this executor's clock
    /// when it was about to start: the scheduler may have given its slot
    /// to another executor meanwhile, so it does not start.
    Expired {
        expires_at: DateTime<Utc>,
        /// How long ago, at admission.
        late_ms: i64,
    },
}

impl DispatchError {
    /// The refusal of an expired dispatch, beginning with [`EXPIRED_REASON`].
    pub fn expired_reason(expires_at: DateTime<Utc>, late_ms: i64) -> String {
        format!(
            "{EXPIRED_REASON} at {}, {late_ms} ms ago on this executor's clock; it was not started",
            expires_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
    }
}

impl std::fmt::Display for DispatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DispatchError::Invalid { field, message } => write!(f, "{field} {message}"),
            DispatchError::ShuttingDown => {
                f.write_str("this executor is shutting down and starts no new runs")
            }
            DispatchError::StaleTerm(stale) => write!(f, "{stale}"),
            DispatchError::Busy { running, max } => write!(
                f,
                "this executor is running {running} runs, its max_concurrent of {max}; it starts no more until one ends"
            ),
            DispatchError::Expired {
                expires_at,
                late_ms,
            } => f.write_str(&Self::expired_reason(*expires_at, *late_ms)),
        }
    }
}

impl From<StaleTerm> for DispatchError {
    fn from(stale: StaleTerm) -> Self {
        DispatchError::StaleTerm(stale)
    }
}

/// The answer to a kill.
#[derive(Debug)]
pub enum KillResult {
    Unknown,
    /// The run has ended (possibly before the kill arrived).
    Finished(RunReport),
    /// The kill is under way but the run had not ended within the wait.
    Stopping(RunReport),
}

/// `GET /v1/info`.
#[derive(Debug, Serialize)]
pub struct Info {
    pub group: String,
    pub endpoint: String,
    pub weight: u32,
    pub labels: BTreeMap<String, String>,
    pub handlers: Vec<String>,
    pub running: usize,
    /// Most runs held at once; 0: no limit.
    pub max_concurrent: u32,
    /// The newest leader term seen (see `fence`).
    pub term: u64,
    /// Stopping: new dispatches are refused while the runs here finish.
    pub draining: bool,
}

pub struct Agent {
    config: ExecutorConfig,
    endpoint: String,
    runs: Mutex<RunTable>,
    client: reqwest::Client,
    reporter: Reporter,
    tasks: Tasks,
    stopping: AtomicBool,
    /// The leader-term fence, the records of running processes and the
    /// data directory's lock.
    state: AgentState,
}

impl Agent {
    /// `runtime` runs the processes and report deliveries; `client`
    /// reports to the schedulers and forwards handler tasks.
    pub fn new(
        config: ExecutorConfig,
        endpoint: String,
        client: reqwest::Client,
        runtime: Handle,
        state: AgentState,
    ) -> Arc<Self> {
        let reporter = Reporter::new(
            client.clone(),
            config
                .secret
                .as_deref()
                .map(|secret| Signer::new(secret, config.v1)),
            config.report_max_backoff,
        );
        Arc::new(Self {
            runs: Mutex::new(RunTable::new(
                config.retain_finished,
                config.retain_output_bytes,
            )),
            config,
            endpoint,
            client,
            reporter,
            tasks: Tasks::new(runtime),
            stopping: AtomicBool::new(false),
            state,
        })
    }

    pub fn config(&self) -> &ExecutorConfig {
        &self.config
    }

    fn runs(&self) -> MutexGuard<'_, RunTable> {
        // The table's invariants hold between statements, so a panic
        // elsewhere while holding the lock leaves it usable.
        self.runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts `req` unless its run id is known (invariant 6) or its
    /// sender was deposed. A duplicate of a finished run makes the final
    /// report go out again.
    pub fn dispatch(self: &Arc<Self>, req: DispatchRequest) -> Result<DispatchAck, DispatchError> {
        self.admit_term(req.term)?;
        self.admit_all(vec![req])
            .pop()
            .unwrap_or(Err(DispatchError::ShuttingDown))
    }

    /// Admits each run of a batch as [`Agent::dispatch`] would, one result
    /// per run, in order; or none of them when any entry's term is stale
    /// (one leader sends a frame: if one entry comes from a deposed leader,
    /// they all do).
    pub fn dispatch_batch(
        self: &Arc<Self>,
        runs: Vec<DispatchRequest>,
    ) -> Result<Vec<DispatchResult>, StaleTerm> {
        self.admit_terms(runs.iter().map(|r| r.term))?;
        let run_ids: Vec<String> = runs.iter().map(|r| r.run_id.clone()).collect();
        Ok(run_ids
            .into_iter()
            .zip(self.admit_all(runs))
            .map(|(run_id, result)| match result {
                Ok(ack) => DispatchResult::Accepted {
                    run_id: ack.run_id,
                    duplicate: ack.duplicate,
                },
                Err(DispatchError::Invalid { field, message }) => DispatchResult::Refused {
                    run_id,
                    reason: format!("{field} {message}"),
                },
                Err(DispatchError::ShuttingDown) => DispatchResult::Refused {
                    run_id,
                    reason: "this executor is shutting down and starts no new runs".into(),
                },
                Err(DispatchError::StaleTerm(stale)) => DispatchResult::Refused {
                    run_id,
                    reason: stale.to_string(),
                },
                Err(e @ DispatchError::Busy { .. }) => DispatchResult::Busy {
                    run_id,
                    reason: e.to_string(),
                },
                Err(DispatchError::Expired {
                    expires_at,
                    late_ms,
                }) => DispatchResult::Refused {
                    run_id,
                    reason: DispatchError::expired_reason(expires_at, late_ms),
                },
            })
            .collect())
    }

    /// The newest leader term this executor has seen.
    pub fn term(&self) -> u64 {
        self.state.fence.current()
    }

    /// Raises the fence to a term a scheduler gossips.
    pub fn learn_term(&self, term: u64) {
        if self.state.fence.raise(term) {
            tracing::info!(term, "a newer leader term seen in the schedulers' gossip");
        }
    }

    /// Admits a request of `term` (refused if stale) and raises the fence
    /// to it.
    fn admit_term(&self, term: u64) -> Result<(), StaleTerm> {
        self.admit_terms([term])
    }

    fn admit_terms(&self, terms: impl IntoIterator<Item = u64>) -> Result<(), StaleTerm> {
        let before = self.term();
        let result = self.state.fence.admit_all(terms);
        match result {
            Err(stale) => tracing::warn!(
                term = stale.term,
                fence = stale.fence,
                "refused a request from a deposed leader"
            ),
            Ok(()) if self.term() > before => {
                tracing::info!(term = self.term(), "a newer leader term seen in a request");
            }
            Ok(()) => {}
        }
        result
    }

    /// Admits runs under one lock of the run table and starts the new ones
    /// with one hand-over to the runtime: the cost of a run's admission is
    /// what decides how late the last run of a large batch starts.
    fn admit_all(
        self: &Arc<Self>,
        runs: Vec<DispatchRequest>,
    ) -> Vec<Result<DispatchAck, DispatchError>> {
        let stopping = self.stopping.load(Ordering::SeqCst);
        let mut results = Vec::with_capacity(runs.len());
        let mut starts = Vec::new();
        let mut redeliver = Vec::new();
        // Batches repeat one list of schedulers: check each distinct list once.
        let mut checked_report_to: Option<Vec<String>> = None;
        {
            let mut table = self.runs();
            for req in runs {
                let valid = validate_fields(&req).and_then(|()| {
                    if checked_report_to.as_ref() == Some(&req.report_to) {
                        return Ok(());
                    }
                    validate_report_to(&req.report_to)?;
                    checked_report_to = Some(req.report_to.clone());
                    Ok(())
                });
                if let Err(e) = valid {
                    results.push(Err(e));
                    continue;
                }
                if stopping {
                    results.push(Err(DispatchError::ShuttingDown));
                    continue;
                }
                let run_id = req.run_id.clone();
                // A known run id is answered as a duplicate even once
                // expired; only a new run's start is refused. Checked here,
                // under the table's lock, just before the run is started:
                // a dispatch may have waited in a socket buffer while this
                // executor was stopped.
                if let Some(expires_at) = req.expires_at {
                    let now = Utc::now();
                    if now > expires_at && !table.contains(&run_id) {
                        let late_ms = (now - expires_at).num_milliseconds();
                        tracing::warn!(
                            run_id = %run_id,
                            %expires_at,
                            late_ms,
                            "refused an expired dispatch; its slot may have gone to another executor"
                        );
                        results.push(Err(DispatchError::Expired {
                            expires_at,
                            late_ms,
                        }));
                        continue;
                    }
                }
                // A limit is a safety net: the scheduler counts the runs it
                // sends and keeps the rest waiting, so this refuses only
                // when the two counts disagree for a moment.
                let max = self.config.max_concurrent;
                if max > 0 && !table.contains(&run_id) {
                    let running = table.active_count();
                    if running >= max as usize {
                        results.push(Err(DispatchError::Busy { running, max }));
                        continue;
                    }
                }
                match table.admit(&req.run_id, &req.report_to) {
                    Admission::Duplicate { finished } => {
                        tracing::info!(run_id = %run_id, finished, "duplicate dispatch; nothing new started");
                        if finished {
                            redeliver.push(run_id.clone());
                        }
                        results.push(Ok(DispatchAck {
                            run_id,
                            duplicate: true,
                        }));
                    }
                    Admission::New { stop, output } => {
                        if let Some(receipts) = &self.config.receipts {
                            receipts.record(&req);
                        }
                        // Everything the run logs carries its run id.
                        let span = tracing::info_span!(
                            "run",
                            run_id = %req.run_id,
                            job = %req.job_id,
                            attempt = req.attempt
                        );
                        starts.push(self.clone().execute(req, stop, output).instrument(span));
                        results.push(Ok(DispatchAck {
                            run_id,
                            duplicate: false,
                        }));
                    }
                }
            }
        }
        for run_id in redeliver {
            self.start_delivery(&run_id, None);
        }
        self.tasks.spawn_all(starts);
        results
    }

    async fn execute(
        self: Arc<Self>,
        req: DispatchRequest,
        stop: watch::Receiver<Option<StopReason>>,
        output: SharedOutput,
    ) {
        let timeout = Duration::from_millis(req.timeout_ms);
        let mut running_report = None;
        // The shell run's record in the data directory, if any.
        let mut record = None;
        // Admitted in time, but this executor was held up (stopped,
        // starved) past the dispatch's expiry before the process could
        // start: the schedulers may have failed the run over meanwhile.
        let expired = req.expires_at.filter(|at| Utc::now() > *at);
        let outcome = if let Some(expires_at) = expired {
            Outcome::failed(
                None,
                format!("the dispatch expired at {expires_at} before the run could start on this executor; it was not started"),
            )
        } else {
            match &req.task {
                Task::Shell { command } => {
                    // Recorded before the process starts: an executor killed
                    // right after starting it knows at its next start that
                    // the run may have begun, and answers a dispatch of it
                    // again as a duplicate instead of running it twice.
                    record = self.record_process(&req, 0);
                    match ShellProcess::spawn(
                        &req,
                        command,
                        output.clone(),
                        &self.config.sandbox,
                        self.config.parent_death_signal,
                    ) {
                        Err(e) => Outcome::failed(None, format!("cannot start sh: {e}")),
                        Ok(process) => {
                            tracing::debug!(run_id = %req.run_id, pgid = process.pgid().as_raw(), "run started");
                            record = self.record_process(&req, process.pgid().as_raw());
                            running_report = self.mark_running(&req.run_id);
                            // The group has been killed at the end: nothing is left
                            // to reap, but the record stays, with the result, until
                            // the final report is acknowledged.
                            process.supervise(timeout, stop_requested(stop)).await
                        }
                    }
                }
                Task::Handler { handler } => {
                    let in_process = self.config.handlers.get(handler);
                    tracing::debug!(
                        run_id = %req.run_id,
                        handler = %handler,
                        in_process = in_process.is_some(),
                        "run started"
                    );
                    running_report = self.mark_running(&req.run_id);
                    if let Some(function) = in_process {
                        handlers::call(
                            function,
                            handler,
                            &req,
                            output.clone(),
                            timeout,
                            stop_requested(stop),
                        )
                        .await
                    } else {
                        self.forward_handler(handler, &req, output.clone(), timeout, stop)
                            .await
                    }
                }
            }
        };
        // Successes are routine (the scheduler records every run); what
        // went wrong is worth a line at the default level.
        if outcome.status == RunStatus::Succeeded {
            tracing::debug!(run_id = %req.run_id, "run finished");
        } else {
            tracing::info!(
                run_id = %req.run_id,
                status = %outcome.status,
                exit_code = outcome.exit_code,
                error = outcome.error.as_deref().unwrap_or(""),
                "run finished"
            );
        }
        let finished_at = Utc::now();
        if let Some(record) = record {
            // Before the run shows as finished, so that whatever delivers its
            // final report finds the record kept for it.
            self.record_result(record, &outcome, finished_at, &output.text());
        }
        self.runs().finish(&req.run_id, outcome, finished_at);
        self.start_delivery(&req.run_id, running_report);
    }

    /// Rewrites a run's record with how it ended, and keeps it until its
    /// final report is acknowledged: an executor that crashes before then
    /// knows the run at its next start as finished (a dispatch of it again
    /// is a duplicate, not a second start) and reports it then.
    fn record_result(
        &self,
        mut record: RunRecord,
        outcome: &Outcome,
        finished_at: DateTime<Utc>,
        output: &str,
    ) {
        let Some(ledger) = &self.state.ledger else {
            return;
        };
        record.result = Some(FinalResult::new(
            outcome.status,
            outcome.exit_code,
            finished_at,
            outcome.error.clone(),
            output,
        ));
        ledger.keep_until_reported(&record.run_id);
        ledger.record(&record);
    }

    /// Records a shell process: before it starts (`pgid` 0) and once it
    /// has, so that if the executor dies during the run its next start
    /// kills what is left and knows the run (see `orphans`).
    fn record_process(&self, req: &DispatchRequest, pgid: i32) -> Option<RunRecord> {
        let ledger = self.state.ledger.as_ref()?;
        let record = RunRecord {
            run_id: req.run_id.clone(),
            job_id: req.job_id.clone(),
            attempt: req.attempt,
            report_to: req.report_to.clone(),
            pgid,
            start_ticks: (pgid > 0).then(|| procfs::start_ticks(pgid)).flatten(),
            boot_id: self.state.boot_id.clone(),
            started_at: Utc::now(),
            result: None,
        };
        ledger.record(&record);
        Some(record)
    }

    /// Registers a run an earlier life of this executor left behind while
    /// it ran, ended now with `outcome`, and delivers its final report. Its
    /// record is rewritten with that end (so a crash before the report is
    /// taken sends the same report after the next start) and goes once the
    /// report is delivered. False when the run id is known already.
    pub fn adopt_ended(self: &Arc<Self>, record: &RunRecord, outcome: Outcome) -> bool {
        let result = FinalResult::new(
            outcome.status,
            outcome.exit_code,
            Utc::now(),
            outcome.error,
            "",
        );
        let mut ended = record.clone();
        ended.result = Some(result.clone());
        self.adopt(&ended, &result, true)
    }

    /// Registers a run an earlier life of this executor finished, recorded
    /// with its `result` but not yet acknowledged, and delivers its final
    /// report again; its record goes once the report is delivered. False
    /// when the run id is known already.
    pub fn adopt_finished(self: &Arc<Self>, record: &RunRecord, result: &FinalResult) -> bool {
        self.adopt(record, result, false)
    }

    fn adopt(self: &Arc<Self>, record: &RunRecord, result: &FinalResult, rewrite: bool) -> bool {
        let inserted = self.runs().insert_ended(
            &record.run_id,
            &record.report_to,
            record.started_at,
            Outcome {
                status: result.status,
                exit_code: result.exit_code,
                error: result.error.clone(),
            },
            result.finished_at,
            &result.output,
        );
        if inserted {
            if let Some(ledger) = &self.state.ledger {
                ledger.keep_until_reported(&record.run_id);
                if rewrite {
                    ledger.record(record);
                }
            }
            self.start_delivery(&record.run_id, None);
        }
        inserted
    }

    /// The records an earlier life of this executor left behind.
    pub fn ledger(&self) -> Option<&super::ledger::RunLedger> {
        self.state.ledger.as_ref()
    }

    /// This boot of the machine.
    pub fn boot_id(&self) -> Option<&str> {
        self.state.boot_id.as_deref()
    }

    /// A handler task with no in-process handler: forwarded to `--forward`
    /// when it serves that name (or failed with "no handler named X").
    async fn forward_handler(
        &self,
        handler: &str,
        req: &DispatchRequest,
        output: SharedOutput,
        timeout: Duration,
        stop: watch::Receiver<Option<StopReason>>,
    ) -> Outcome {
        let call = forward::call_handler(
            &self.client,
            self.config.forward_for(handler),
            self.reporter.signer(),
            handler,
            req,
        );
        tokio::select! {
            result = call => {
                output.push(result.output.as_bytes());
                result.outcome
            }
            () = tokio::time::sleep(timeout) => {
                Outcome::timed_out(format!("timed out after {}", format_duration(timeout)))
            }
            reason = stop_requested(stop) => Outcome::stopped(reason),
        }
    }

    /// Marks the run started and, if it is still running a moment later,
    /// sends the best-effort `running` report (a run that ends at once is
    /// reported once, by its final report); returns the report's task so
    /// the final report can go after it.
    fn mark_running(self: &Arc<Self>, run_id: &str) -> Option<JoinHandle<()>> {
        self.runs().mark_running(run_id, Utc::now());
        let agent = self.clone();
        let run_id = run_id.to_string();
        // Not tracked by `tasks`: the final delivery awaits it.
        Some(tokio::spawn(async move {
            tokio::time::sleep(RUNNING_REPORT_DELAY).await;
            let (report, targets) = {
                let runs = agent.runs();
                match (
                    runs.report(&run_id, &agent.endpoint),
                    runs.report_to(&run_id),
                ) {
                    (Some(report), Some(targets)) if !report.status.is_terminal() => {
                        (report, targets)
                    }
                    _ => return,
                }
            };
            agent.reporter.send_best_effort(&targets, &report).await;
        }))
    }

    /// Delivers the final report of a finished run, unless a delivery is
    /// under way already (which is then told to retry at once).
    fn start_delivery(self: &Arc<Self>, run_id: &str, after: Option<JoinHandle<()>>) {
        let wake = match self.runs().begin_delivery(run_id) {
            DeliveryStart::Start(wake) => wake,
            DeliveryStart::AlreadyActive | DeliveryStart::NotFinished => return,
        };
        let agent = self.clone();
        let run_id = run_id.to_string();
        let span = tracing::info_span!("run", run_id = %run_id);
        self.tasks.spawn(async move {
            if let Some(running_report) = after {
                // A `running` report not yet sent is not needed any more; one
                // already sent may arrive after the final one, which the
                // scheduler ignores (a run never moves back from terminal).
                running_report.abort();
                let _ = running_report.await;
            }
            let current = || {
                let runs = agent.runs();
                Some((
                    runs.report_to(&run_id)?,
                    runs.report(&run_id, &agent.endpoint)?,
                ))
            };
            let result = agent.reporter.deliver(current, &wake).await;
            agent.runs().end_delivery(&run_id);
            if let Some(ledger) = &agent.state.ledger {
                ledger.reported(&run_id);
            }
            match result {
                Delivery::Delivered { attempts } => {
                    tracing::debug!(run_id = %run_id, attempts, "final report delivered");
                }
                Delivery::Refused(reason) => {
                    tracing::error!(run_id = %run_id, "a scheduler refused the final report; not retrying: {reason}");
                }
                Delivery::Abandoned(reason) => {
                    tracing::warn!(run_id = %run_id, "final report not delivered: {reason}");
                }
            }
        }.instrument(span));
    }

    /// Kills the run's process group and waits up to `wait` for it to end,
    /// unless the request's `term` says its sender was deposed.
    pub async fn kill(
        &self,
        run_id: &str,
        term: u64,
        wait: Duration,
    ) -> Result<KillResult, StaleTerm> {
        self.admit_term(term)?;
        let request = self.runs().request_stop(run_id, StopReason::Killed);
        if let StopRequest::Stopping(mut done) = request {
            tracing::info!(run_id = %run_id, "kill requested");
            let _ = tokio::time::timeout(wait, done.wait_for(|done| *done)).await;
        } else if let StopRequest::Unknown = request {
            return Ok(KillResult::Unknown);
        }
        Ok(match self.report(run_id) {
            None => KillResult::Unknown,
            Some(report) if report.status.is_terminal() => KillResult::Finished(report),
            Some(report) => KillResult::Stopping(report),
        })
    }

    pub fn report(&self, run_id: &str) -> Option<RunReport> {
        self.runs().report(run_id, &self.endpoint)
    }

    pub fn output(&self, run_id: &str) -> Option<String> {
        self.runs().output(run_id)
    }

    pub fn running_count(&self) -> usize {
        self.runs().active_count()
    }

    pub fn info(&self) -> Info {
        Info {
            group: self.config.group.clone(),
            endpoint: self.endpoint.clone(),
            weight: self.config.weight,
            labels: self.config.labels.clone(),
            handlers: self.config.announced_handlers(),
            running: self.running_count(),
            max_concurrent: self.config.max_concurrent,
            term: self.term(),
            draining: self.stopping.load(Ordering::SeqCst),
        }
    }

    /// Refuses new dispatches, kills running processes (reported as failed
    /// so retry policies apply) and gives report deliveries up to `grace`.
    /// Stops every running run because no scheduler has been reachable;
    /// returns how many were stopped.
    pub fn fence(&self) -> usize {
        self.runs().stop_all(StopReason::Fenced)
    }

    /// Refuses new dispatches from now on (the scheduler fails them over to
    /// another executor) and waits up to `limit` for the runs already here
    /// to finish. Returns how many are still running.
    pub async fn drain(&self, limit: Duration) -> usize {
        self.stopping.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + limit;
        let mut announced = false;
        loop {
            let active = self.runs().active_count();
            if active == 0 || tokio::time::Instant::now() >= deadline {
                return active;
            }
            if !announced {
                tracing::info!(
                    runs = active,
                    limit = ?limit,
                    "draining: new runs go to other executors; waiting for these to finish"
                );
                announced = true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn shutdown(&self, grace: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        let stopped = self.runs().stop_all(StopReason::Shutdown);
        if stopped > 0 {
            tracing::warn!(runs = stopped, "shutting down: killing running runs");
        }
        let cut_off = self.tasks.drain(grace).await;
        if cut_off > 0 {
            tracing::warn!(
                tasks = cut_off,
                "shut down with reports undelivered; the scheduler will time those runs out"
            );
        }
        self.state.release();
    }
}

/// Resolves when a stop is requested; never if the run ends first.
async fn stop_requested(mut stop: watch::Receiver<Option<StopReason>>) -> StopReason {
    loop {
        if let Some(reason) = *stop.borrow_and_update() {
            return reason;
        }
        if stop.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Checks what decoding cannot: ids safe to put in a URL path, a timeout,
/// and report targets that are URLs.
#[cfg(test)]
fn validate(req: &DispatchRequest) -> Result<(), DispatchError> {
    validate_fields(req)?;
    validate_report_to(&req.report_to)
}

/// Report targets must be http(s) URLs.
fn validate_report_to(report_to: &[String]) -> Result<(), DispatchError> {
    for (i, target) in report_to.iter().enumerate() {
        let ok = url::Url::parse(target)
            .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some());
        if !ok {
            return Err(DispatchError::Invalid {
                field: "report_to",
                message: format!("entry {i} ({target:?}) is not an http:// or https:// URL"),
            });
        }
    }
    Ok(())
}

/// Everything but the report targets.
fn validate_fields(req: &DispatchRequest) -> Result<(), DispatchError> {
    let invalid = |field, message: String| Err(DispatchError::Invalid { field, message });
    let id_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if req.run_id.is_empty() || req.run_id.len() > MAX_RUN_ID_LEN || !req.run_id.chars().all(id_ok)
    {
        return invalid(
            "run_id",
            format!("must be 1 to {MAX_RUN_ID_LEN} characters of letters, digits, '-', '_' or '.'"),
        );
    }
    if req.timeout_ms == 0 {
        return invalid("timeout_ms", "must be at least 1".into());
    }
    if let Task::Handler { handler } = &req.task {
        if handler.is_empty() {
            return invalid("task.handler", "must not be empty".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> DispatchRequest {
        DispatchRequest {
            run_id: "abc123".into(),
            job_id: "j".into(),
            namespace: "default".into(),
            scheduled_at: Utc::now(),
            attempt: 1,
            shard: Default::default(),
            params: String::new(),
            task: Task::Shell {
                command: "true".into(),
            },
            timeout_ms: 1000,
            report_to: vec!["http://127.0.0.1:7070".into()],
            term: 0,
            expires_at: None,
            parent_run_ids: Vec::new(),
            parent_scheduled_at: None,
        }
    }

    fn field_of(req: &DispatchRequest) -> Option<&'static str> {
        match validate(req) {
            Err(DispatchError::Invalid { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn validation_names_the_field() {
        assert_eq!(validate(&request()), Ok(()));
        let mut req = request();
        req.run_id = "../etc".into();
        assert_eq!(field_of(&req), Some("run_id"));
        let mut req = request();
        req.timeout_ms = 0;
        assert_eq!(field_of(&req), Some("timeout_ms"));
        let mut req = request();
        req.report_to = vec!["127.0.0.1:7070".into()];
        assert_eq!(field_of(&req), Some("report_to"));
        let mut req = request();
        req.task = Task::Handler {
            handler: String::new(),
        };
        assert_eq!(field_of(&req), Some("task.handler"));
    }
}
