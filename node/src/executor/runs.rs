//! The run table: every run this agent has, running or recently finished,
//! keyed by run id. It is what makes dispatch idempotent (invariant 6).

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use protocol::{dispatch::RunReport, run::RunStatus};
use tokio::sync::{watch, Notify};

use super::output::SharedOutput;

/// Why a run is being stopped before it ended by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `POST /v1/runs/{id}/kill`.
    Killed,
    /// The agent is shutting down.
    Shutdown,
    /// No scheduler was reachable for the fence time: the run may have been
    /// given to another executor, so this one stops it.
    Fenced,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
}

impl Outcome {
    pub fn succeeded(exit_code: Option<i32>) -> Self {
        Self {
            status: RunStatus::Succeeded,
            exit_code,
            error: None,
        }
    }

    pub fn failed(exit_code: Option<i32>, error: impl Into<String>) -> Self {
        Self {
            status: RunStatus::Failed,
            exit_code,
            error: Some(error.into()),
        }
    }

    pub fn timed_out(error: impl Into<String>) -> Self {
        Self {
            status: RunStatus::TimedOut,
            exit_code: None,
            error: Some(error.into()),
        }
    }

    /// The outcome of a run stopped for `reason`.
    pub fn stopped(reason: StopReason) -> Self {
        match reason {
            StopReason::Killed => Self {
                status: RunStatus::Killed,
                exit_code: None,
                error: Some("killed on request".into()),
            },
            // Failed, not killed: nobody asked for it, so the scheduler's
            // retry policy should apply.
            StopReason::Shutdown => Self::failed(None, "the executor shut down during the run"),
            StopReason::Fenced => Self::failed(
                None,
                "fenced: this executor reached no scheduler for too long, so the run may have moved elsewhere",
            ),
        }
    }
}

/// The answer to a dispatch, as far as the table is concerned.
pub enum Admission {
    /// A run id not seen before: the caller starts it.
    New {
        stop: watch::Receiver<Option<StopReason>>,
        output: SharedOutput,
    },
    /// The run is known; nothing new starts.
    Duplicate { finished: bool },
}

/// The answer to a kill.
pub enum StopRequest {
    Unknown,
    AlreadyFinished,
    /// Stop requested; the receiver turns true when the run has finished.
    Stopping(watch::Receiver<bool>),
}

/// What to do about delivering a run's final report.
pub enum DeliveryStart {
    /// Start a delivery loop; notify the handle to make it retry at once.
    Start(Arc<Notify>),
    /// A loop is delivering already and was told to retry at once.
    AlreadyActive,
    /// The run is unknown or not finished.
    NotFinished,
}

enum Output {
    Live(SharedOutput),
    Done(String),
}

enum Delivery {
    /// No final report was sent yet (the run is active, or just ended).
    Idle,
    /// A loop is delivering the final report.
    Active(Arc<Notify>),
    /// The final report was delivered, refused or given up on: the run
    /// may be forgotten.
    Settled,
}

struct RunEntry {
    report_to: Vec<String>,
    status: RunStatus,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    exit_code: Option<i32>,
    error: Option<String>,
    output: Output,
    /// Present while the run is active.
    stop: Option<watch::Sender<Option<StopReason>>>,
    done: watch::Sender<bool>,
    delivery: Delivery,
}

/// Runs by id, with finished runs retained in a bounded window. A
/// finished run is forgotten only once its final report is settled: a
/// burst of runs ending together must not push out runs whose reports
/// are still on their way (the scheduler would time them out).
pub struct RunTable {
    runs: HashMap<String, RunEntry>,
    /// Finished run ids, oldest first.
    finished: VecDeque<String>,
    /// Finished run ids whose output is still kept, oldest first (a
    /// subsequence of `finished`).
    with_output: VecDeque<String>,
    kept_output_bytes: usize,
    retain_finished: usize,
    retain_output_bytes: usize,
}

impl RunTable {
    pub fn new(retain_finished: usize, retain_output_bytes: usize) -> Self {
        Self {
            runs: HashMap::new(),
            finished: VecDeque::new(),
            with_output: VecDeque::new(),
            kept_output_bytes: 0,
            retain_finished,
            retain_output_bytes,
        }
    }

    /// Whether `run_id` is known, running or finished.
    pub fn contains(&self, run_id: &str) -> bool {
        self.runs.contains_key(run_id)
    }

    /// Registers `run_id` unless it is known. A duplicate's `report_to`
    /// replaces the stored one: the scheduler that sent it is the one
    /// alive now.
    pub fn admit(&mut self, run_id: &str, report_to: &[String]) -> Admission {
        if let Some(entry) = self.runs.get_mut(run_id) {
            if !report_to.is_empty() {
                entry.report_to = report_to.to_vec();
            }
            return Admission::Duplicate {
                finished: entry.status.is_terminal(),
            };
        }
        let (stop_tx, stop_rx) = watch::channel(None);
        let output = SharedOutput::default();
        self.runs.insert(
            run_id.to_string(),
            RunEntry {
                report_to: report_to.to_vec(),
                status: RunStatus::Pending,
                started_at: None,
                finished_at: None,
                exit_code: None,
                error: None,
                output: Output::Live(output.clone()),
                stop: Some(stop_tx),
                done: watch::Sender::new(false),
                delivery: Delivery::Idle,
            },
        );
        Admission::New {
            stop: stop_rx,
            output,
        }
    }

    /// Registers a run an earlier life of the executor left behind (ended
    /// while no agent watched it, or finished with its report not yet
    /// taken), so it is known by id like any finished run, with `output`,
    /// and its final report can be delivered. Returns false,
    /// changing nothing, when the id is known already.
    pub fn insert_ended(
        &mut self,
        run_id: &str,
        report_to: &[String],
        started_at: DateTime<Utc>,
        outcome: Outcome,
        finished_at: DateTime<Utc>,
        output: &str,
    ) -> bool {
        if self.runs.contains_key(run_id) {
            return false;
        }
        if let Admission::New { output: kept, .. } = self.admit(run_id, report_to) {
            kept.push(output.as_bytes());
        }
        self.mark_running(run_id, started_at);
        self.finish(run_id, outcome, finished_at)
    }

    /// The process (or handler call) started.
    pub fn mark_running(&mut self, run_id: &str, at: DateTime<Utc>) {
        if let Some(entry) = self.runs.get_mut(run_id) {
            if !entry.status.is_terminal() {
                entry.status = RunStatus::Running;
                entry.started_at = Some(at);
            }
        }
    }

    /// Records how the run ended and freezes its output. Returns false if
    /// the run is unknown or had finished already.
    pub fn finish(&mut self, run_id: &str, outcome: Outcome, at: DateTime<Utc>) -> bool {
        let Some(entry) = self.runs.get_mut(run_id) else {
            return false;
        };
        if entry.status.is_terminal() {
            return false;
        }
        let text = match &entry.output {
            Output::Live(shared) => shared.text(),
            Output::Done(text) => text.clone(),
        };
        self.kept_output_bytes += text.len();
        entry.output = Output::Done(text);
        entry.status = outcome.status;
        entry.exit_code = outcome.exit_code;
        entry.error = outcome.error;
        entry.finished_at = Some(at);
        entry.stop = None;
        entry.done.send_replace(true);
        self.finished.push_back(run_id.to_string());
        self.with_output.push_back(run_id.to_string());
        self.enforce_retention();
        true
    }

    fn enforce_retention(&mut self) {
        while self.finished.len() > self.retain_finished {
            let settled = self.finished.front().is_some_and(|id| {
                self.runs
                    .get(id)
                    .is_none_or(|e| matches!(e.delivery, Delivery::Settled))
            });
            if !settled {
                // The oldest still reports; `end_delivery` comes back.
                break;
            }
            let Some(id) = self.finished.pop_front() else {
                break;
            };
            if self.with_output.front() == Some(&id) {
                self.with_output.pop_front();
            }
            if let Some(entry) = self.runs.remove(&id) {
                if let Output::Done(text) = entry.output {
                    self.kept_output_bytes -= text.len();
                }
            }
        }
        while self.kept_output_bytes > self.retain_output_bytes {
            let Some(id) = self.with_output.pop_front() else {
                break;
            };
            if let Some(entry) = self.runs.get_mut(&id) {
                if let Output::Done(text) = &mut entry.output {
                    self.kept_output_bytes -= text.len();
                    *text = String::new();
                }
            }
        }
    }

    /// The run's state as a report from `executor`.
    pub fn report(&self, run_id: &str, executor: &str) -> Option<RunReport> {
        let entry = self.runs.get(run_id)?;
        Some(RunReport {
            run_id: run_id.to_string(),
            executor: executor.to_string(),
            status: entry.status,
            started_at: entry.started_at,
            finished_at: entry.finished_at,
            exit_code: entry.exit_code,
            output: match &entry.output {
                Output::Live(shared) => shared.text(),
                Output::Done(text) => text.clone(),
            },
            error: entry.error.clone(),
        })
    }

    /// Output so far (live while the run is active).
    pub fn output(&self, run_id: &str) -> Option<String> {
        Some(match &self.runs.get(run_id)?.output {
            Output::Live(shared) => shared.text(),
            Output::Done(text) => text.clone(),
        })
    }

    pub fn report_to(&self, run_id: &str) -> Option<Vec<String>> {
        Some(self.runs.get(run_id)?.report_to.clone())
    }

    pub fn request_stop(&mut self, run_id: &str, reason: StopReason) -> StopRequest {
        let Some(entry) = self.runs.get_mut(run_id) else {
            return StopRequest::Unknown;
        };
        match &entry.stop {
            None => StopRequest::AlreadyFinished,
            Some(stop) => {
                // The first reason wins: a kill during shutdown stays a kill.
                stop.send_if_modified(|current| {
                    let unset = current.is_none();
                    if unset {
                        *current = Some(reason);
                    }
                    unset
                });
                StopRequest::Stopping(entry.done.subscribe())
            }
        }
    }

    /// Asks every active run to stop; returns how many were asked.
    pub fn stop_all(&mut self, reason: StopReason) -> usize {
        let ids: Vec<String> = self
            .runs
            .iter()
            .filter(|(_, entry)| entry.stop.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        for id in &ids {
            self.request_stop(id, reason);
        }
        ids.len()
    }

    pub fn active_count(&self) -> usize {
        self.runs
            .values()
            .filter(|entry| !entry.status.is_terminal())
            .count()
    }

    /// Called when a final report should be (re)sent.
    pub fn begin_delivery(&mut self, run_id: &str) -> DeliveryStart {
        let Some(entry) = self.runs.get_mut(run_id) else {
            return DeliveryStart::NotFinished;
        };
        if !entry.status.is_terminal() {
            return DeliveryStart::NotFinished;
        }
        match &entry.delivery {
            Delivery::Active(wake) => {
                wake.notify_one();
                DeliveryStart::AlreadyActive
            }
            Delivery::Idle | Delivery::Settled => {
                let wake = Arc::new(Notify::new());
                entry.delivery = Delivery::Active(wake.clone());
                DeliveryStart::Start(wake)
            }
        }
    }

    /// The delivery loop ended (delivered, refused or abandoned).
    pub fn end_delivery(&mut self, run_id: &str) {
        if let Some(entry) = self.runs.get_mut(run_id) {
            entry.delivery = Delivery::Settled;
        }
        self.enforce_retention();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Vec<String> {
        vec!["http://127.0.0.1:1".to_string()]
    }

    #[test]
    fn a_known_run_id_is_a_duplicate_running_or_finished() {
        let mut table = RunTable::new(10, 1 << 20);
        assert!(matches!(
            table.admit("a", &targets()),
            Admission::New { .. }
        ));
        assert!(matches!(
            table.admit("a", &[]),
            Admission::Duplicate { finished: false }
        ));
        assert_eq!(table.active_count(), 1);
        assert!(table.finish("a", Outcome::succeeded(Some(0)), Utc::now()));
        assert!(!table.finish("a", Outcome::failed(None, "late"), Utc::now()));
        assert!(matches!(
            table.admit("a", &["http://new".to_string()]),
            Admission::Duplicate { finished: true }
        ));
        assert_eq!(table.report_to("a"), Some(vec!["http://new".to_string()]));
        let report = table.report("a", "me").expect("known");
        assert_eq!(report.status, RunStatus::Succeeded);
        assert_eq!(table.active_count(), 0);
    }

    #[test]
    fn a_run_ended_unwatched_is_known_as_finished() {
        let mut table = RunTable::new(10, 1 << 20);
        let started = Utc::now() - chrono::Duration::seconds(5);
        let outcome = Outcome::failed(None, "the executor restarted");
        assert!(table.insert_ended(
            "x",
            &targets(),
            started,
            outcome.clone(),
            Utc::now(),
            "last words"
        ));
        assert!(!table.insert_ended("x", &[], started, outcome, Utc::now(), ""));
        let report = table.report("x", "me").expect("known");
        assert_eq!(report.status, RunStatus::Failed);
        assert_eq!(report.started_at, Some(started));
        assert_eq!(report.error.as_deref(), Some("the executor restarted"));
        assert_eq!(report.output, "last words");
        assert_eq!(table.report_to("x"), Some(targets()));
        assert_eq!(table.active_count(), 0);
        assert!(matches!(
            table.admit("x", &targets()),
            Admission::Duplicate { finished: true }
        ));
    }

    /// Finishes `id` and settles its final report, as the agent does.
    fn finish_and_report(table: &mut RunTable, id: &str) {
        table.admit(id, &targets());
        table.finish(id, Outcome::succeeded(Some(0)), Utc::now());
        assert!(matches!(table.begin_delivery(id), DeliveryStart::Start(_)));
        table.end_delivery(id);
    }

    #[test]
    fn oldest_finished_runs_are_forgotten_first() {
        let mut table = RunTable::new(2, 1 << 20);
        for id in ["a", "b", "c"] {
            finish_and_report(&mut table, id);
        }
        assert!(table.report("a", "me").is_none());
        assert!(table.report("b", "me").is_some());
        assert!(table.report("c", "me").is_some());
    }

    #[test]
    fn a_finished_run_whose_report_is_on_its_way_is_not_forgotten() {
        let mut table = RunTable::new(2, 1 << 20);
        // A burst: five runs end before any final report is delivered.
        for id in ["a", "b", "c", "d", "e"] {
            table.admit(id, &targets());
            table.finish(id, Outcome::succeeded(Some(0)), Utc::now());
            assert!(matches!(table.begin_delivery(id), DeliveryStart::Start(_)));
        }
        for id in ["a", "b", "c", "d", "e"] {
            assert!(table.report(id, "me").is_some(), "{id} still reports");
        }
        // Delivered in turn, the oldest are forgotten down to the window.
        for id in ["a", "b", "c", "d", "e"] {
            table.end_delivery(id);
        }
        assert!(table.report("c", "me").is_none());
        assert!(table.report("d", "me").is_some());
        assert!(table.report("e", "me").is_some());
    }

    #[test]
    fn output_budget_drops_old_outputs_but_keeps_status() {
        let mut table = RunTable::new(10, 10);
        for id in ["a", "b"] {
            if let Admission::New { output, .. } = table.admit(id, &targets()) {
                output.push(b"123456");
            }
            table.finish(id, Outcome::succeeded(Some(0)), Utc::now());
            table.begin_delivery(id);
            table.end_delivery(id);
        }
        assert_eq!(table.output("a").as_deref(), Some(""));
        assert_eq!(table.output("b").as_deref(), Some("123456"));
        assert_eq!(
            table.report("a", "me").map(|r| r.status),
            Some(RunStatus::Succeeded)
        );
    }

    #[test]
    fn stop_signals_the_run_once_and_reports_finish() {
        let mut table = RunTable::new(10, 1 << 20);
        assert!(matches!(
            table.request_stop("x", StopReason::Killed),
            StopRequest::Unknown
        ));
        let Admission::New { stop, .. } = table.admit("x", &targets()) else {
            panic!("new run expected");
        };
        let StopRequest::Stopping(done) = table.request_stop("x", StopReason::Killed) else {
            panic!("stopping expected");
        };
        table.request_stop("x", StopReason::Shutdown);
        assert_eq!(*stop.borrow(), Some(StopReason::Killed));
        assert!(!*done.borrow());
        table.finish("x", Outcome::stopped(StopReason::Killed), Utc::now());
        assert!(*done.borrow());
        assert!(matches!(
            table.request_stop("x", StopReason::Killed),
            StopRequest::AlreadyFinished
        ));
    }

    #[test]
    fn one_delivery_loop_per_run() {
        let mut table = RunTable::new(10, 1 << 20);
        table.admit("x", &targets());
        assert!(matches!(
            table.begin_delivery("x"),
            DeliveryStart::NotFinished
        ));
        table.finish("x", Outcome::succeeded(Some(0)), Utc::now());
        assert!(matches!(table.begin_delivery("x"), DeliveryStart::Start(_)));
        assert!(matches!(
            table.begin_delivery("x"),
            DeliveryStart::AlreadyActive
        ));
        table.end_delivery("x");
        assert!(matches!(table.begin_delivery("x"), DeliveryStart::Start(_)));
    }
}
