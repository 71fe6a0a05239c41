//! The viewer's state: what was read, which pane and row are selected, the
//! filter, the open overlay and the notices on screen. Plain data, changed
//! only by keys (see `keys`) and by [`Update`]s, so it is tested without a
//! terminal.

use chrono::{DateTime, Utc};

use crate::{
    conn::Link,
    model::{Job, Run, Snapshot},
    msg::{Action, Update},
};

/// The panes that have rows to select.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Jobs,
    Runs,
}

/// What the keys act on at the moment.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    Normal,
    /// Typing the filter after `/`.
    Filter,
    /// The key list after `?`.
    Help,
    /// Waiting for y/n before killing a run.
    Confirm(KillTarget),
    /// One run with its output, after Enter.
    Details(Box<Details>),
}

/// The run a kill would hit, with enough to name it in the prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KillTarget {
    pub run_id: String,
    pub job: String,
}

/// The details view of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Details {
    pub run_id: String,
    /// `None` until the first answer; then refreshed while the run is active.
    pub run: Option<Run>,
    /// Live output while the run is active, stored output after.
    pub output: String,
    /// Why the run could not be read, when it could not.
    pub error: Option<String>,
    /// Lines scrolled off the top of the output.
    pub scroll: u16,
}

/// A one-line message at the bottom, until the next one replaces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    /// Shown in red: an action failed.
    pub error: bool,
}

pub struct App {
    /// The `--api` URL, named on screen before anything answers.
    pub api_url: String,
    /// Which node answers, or that none does.
    pub link: Link,
    /// The last snapshot read; kept (and shown) while reconnecting so the
    /// screen never goes blank on a transient failure.
    pub snapshot: Option<Snapshot>,
    /// Why the last refresh failed, cleared by the next good one.
    pub refresh_error: Option<String>,
    /// "leader changed …", kept on screen after a change of leader.
    pub leader_note: Option<String>,
    pub focus: Pane,
    /// Index into the filtered jobs.
    pub job_sel: usize,
    /// Index into the filtered runs.
    pub run_sel: usize,
    /// Case-insensitive text a job or run must contain to be listed.
    pub filter: String,
    pub mode: Mode,
    pub notice: Option<Notice>,
    /// The clock the screen's relative times are computed from; set by the
    /// event loop, fixed by tests.
    pub now: DateTime<Utc>,
    /// Set by `q`: the event loop ends.
    pub quit: bool,
}

impl App {
    pub fn new(api_url: &str, now: DateTime<Utc>) -> Self {
        Self {
            api_url: api_url.to_string(),
            link: Link::Connecting {
                url: api_url.to_string(),
            },
            snapshot: None,
            refresh_error: None,
            leader_note: None,
            focus: Pane::Jobs,
            job_sel: 0,
            run_sel: 0,
            filter: String::new(),
            mode: Mode::Normal,
            notice: None,
            now,
            quit: false,
        }
    }

    /// The jobs the filter lets through, in API order.
    pub fn visible_jobs(&self) -> Vec<&Job> {
        let filter = self.filter.to_lowercase();
        self.snapshot
            .iter()
            .flat_map(|s| &s.jobs)
            .filter(|job| filter.is_empty() || job_matches(job, &filter))
            .collect()
    }

    /// The runs the filter lets through, newest first.
    pub fn visible_runs(&self) -> Vec<&Run> {
        let filter = self.filter.to_lowercase();
        self.snapshot
            .iter()
            .flat_map(|s| &s.runs)
            .filter(|run| filter.is_empty() || run_matches(run, &filter))
            .collect()
    }

    pub fn selected_job(&self) -> Option<&Job> {
        self.visible_jobs().get(self.job_sel).copied()
    }

    pub fn selected_run(&self) -> Option<&Run> {
        self.visible_runs().get(self.run_sel).copied()
    }

    pub fn notify(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            error: false,
        });
    }

    pub fn warn(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            error: true,
        });
    }

    /// What to reload on a tick besides the snapshot: the run in the details
    /// view, while it can still change.
    pub fn detail_refresh(&self) -> Option<Action> {
        match &self.mode {
            Mode::Details(d) if d.run.as_ref().is_none_or(Run::is_active) => {
                Some(Action::LoadRun {
                    run_id: d.run_id.clone(),
                })
            }
            _ => None,
        }
    }

    /// Takes in what the worker reports.
    pub fn apply(&mut self, update: Update) {
        match update {
            Update::Refreshed { link, snapshot } => {
                self.link = link;
                match snapshot {
                    Ok(snapshot) => self.take_snapshot(snapshot),
                    Err(e) => self.refresh_error = Some(e),
                }
            }
            Update::Triggered { job, runs } => match runs {
                Ok(runs) if runs.is_empty() => self.notify(format!("triggered {job}")),
                Ok(runs) => self.notify(format!("triggered {job}: run {}", runs.join(", "))),
                Err(e) => self.warn(format!("trigger {job} failed: {e}")),
            },
            Update::EnabledSet {
                job,
                enabled,
                result,
            } => {
                let verb = if enabled { "resume" } else { "pause" };
                match result {
                    Ok(()) => self.notify(format!("{verb}d {job}")),
                    Err(e) => self.warn(format!("{verb} {job} failed: {e}")),
                }
            }
            Update::Killed { run_id, status } => match status {
                Ok(status) => self.notify(format!("kill sent to run {run_id}: now {status}")),
                Err(e) => self.warn(format!("kill {run_id} failed: {e}")),
            },
            Update::RunLoaded { run_id, run } => {
                let Mode::Details(details) = &mut self.mode else {
                    return;
                };
                if details.run_id != run_id {
                    return;
                }
                match run {
                    Ok((run, output)) => {
                        details.run = Some(run);
                        details.output = output;
                        details.error = None;
                    }
                    Err(e) => details.error = Some(e),
                }
            }
        }
    }

    fn take_snapshot(&mut self, snapshot: Snapshot) {
        let job_key = self
            .selected_job()
            .map(|j| (j.namespace.clone(), j.id.clone()));
        let run_id = self.selected_run().map(|r| r.id.clone());
        if let Some(old) = &self.snapshot {
            let (was, is) = (&old.cluster, &snapshot.cluster);
            if was.leader_id != is.leader_id {
                self.leader_note = Some(format!(
                    "leader changed: {} → {} (term {})",
                    node_name(was.leader_id),
                    node_name(is.leader_id),
                    is.term
                ));
            }
        }
        self.snapshot = Some(snapshot);
        self.refresh_error = None;
        // Keep the same job and run selected as rows come and go.
        let jobs = self.visible_jobs();
        self.job_sel = job_key
            .and_then(|(ns, id)| jobs.iter().position(|j| j.namespace == ns && j.id == id))
            .unwrap_or(self.job_sel)
            .min(jobs.len().saturating_sub(1));
        let runs = self.visible_runs();
        self.run_sel = run_id
            .and_then(|id| runs.iter().position(|r| r.id == id))
            .unwrap_or(self.run_sel)
            .min(runs.len().saturating_sub(1));
    }

    /// Keeps both selections inside their filtered lists.
    pub fn clamp_selection(&mut self) {
        self.job_sel = self
            .job_sel
            .min(self.visible_jobs().len().saturating_sub(1));
        self.run_sel = self
            .run_sel
            .min(self.visible_runs().len().saturating_sub(1));
    }
}

/// `node 3`, or `none` while there is no leader.
pub fn node_name(id: Option<u64>) -> String {
    match id {
        Some(id) => format!("node {id}"),
        None => "none".into(),
    }
}

fn job_matches(job: &Job, filter: &str) -> bool {
    let last = job.last_run.as_ref().map(|r| r.status.as_str());
    [
        job.label().as_str(),
        job.schedule.as_str(),
        job.target_summary().as_str(),
        if job.enabled { "enabled" } else { "paused" },
        last.unwrap_or_default(),
    ]
    .iter()
    .any(|field| field.to_lowercase().contains(filter))
}

fn run_matches(run: &Run, filter: &str) -> bool {
    [
        run.job_label().as_str(),
        run.id.as_str(),
        run.status.as_str(),
        run.trigger.as_str(),
        run.executor.as_deref().unwrap_or_default(),
    ]
    .iter()
    .any(|field| field.to_lowercase().contains(filter))
}
