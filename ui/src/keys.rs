//! What each key does, per mode. A key changes the [`App`] and may ask for
//! an [`Action`] the event loop hands to the worker.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::{
    app::{App, Details, KillTarget, Mode, Pane},
    model::is_active,
    msg::Action,
};

/// Rows a page key moves.
const PAGE: usize = 10;

impl App {
    /// Handles one key press.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Action> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return None;
        }
        match &self.mode {
            Mode::Normal => self.normal_key(key),
            Mode::Filter => {
                self.filter_key(key);
                None
            }
            Mode::Help => {
                self.mode = Mode::Normal;
                None
            }
            Mode::Confirm(target) => {
                let target = target.clone();
                self.confirm_key(key, target)
            }
            Mode::Details(_) => self.details_key(key),
        }
    }

    fn normal_key(&mut self, key: KeyEvent) -> Option<Action> {
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char('/') => self.mode = Mode::Filter,
            KeyCode::Esc if !self.filter.is_empty() => {
                self.filter.clear();
                self.clamp_selection();
            }
            KeyCode::Tab | KeyCode::BackTab | KeyCode::Left | KeyCode::Right => {
                self.focus = match self.focus {
                    Pane::Jobs => Pane::Runs,
                    Pane::Runs => Pane::Jobs,
                }
            }
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::PageUp => self.move_by(-(PAGE as isize)),
            KeyCode::PageDown => self.move_by(PAGE as isize),
            KeyCode::Home | KeyCode::Char('g') => self.move_by(isize::MIN),
            KeyCode::End | KeyCode::Char('G') => self.move_by(isize::MAX),
            KeyCode::Enter => return self.open_details(),
            KeyCode::Char('t') => return self.trigger(),
            KeyCode::Char('p') => return self.pause_or_resume(),
            KeyCode::Char('K') | KeyCode::Char('x') => self.ask_kill(self.kill_target()),
            _ => {}
        }
        None
    }

    fn filter_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Enter => self.mode = Mode::Normal,
            KeyCode::Esc => {
                self.filter.clear();
                self.mode = Mode::Normal;
            }
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(c) => self.filter.push(c),
            _ => {}
        }
        self.clamp_selection();
    }

    fn confirm_key(&mut self, key: KeyEvent, target: KillTarget) -> Option<Action> {
        match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => {
                self.mode = Mode::Normal;
                self.notify(format!("killing run {}…", target.run_id));
                Some(Action::Kill {
                    run_id: target.run_id,
                })
            }
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {
                self.mode = Mode::Normal;
                self.notify("kill cancelled");
                None
            }
            _ => None,
        }
    }

    fn details_key(&mut self, key: KeyEvent) -> Option<Action> {
        let Mode::Details(details) = &mut self.mode else {
            return None;
        };
        match key.code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => self.mode = Mode::Normal,
            KeyCode::Up => details.scroll = details.scroll.saturating_sub(1),
            KeyCode::Down => details.scroll = details.scroll.saturating_add(1),
            KeyCode::PageUp => details.scroll = details.scroll.saturating_sub(PAGE as u16),
            KeyCode::PageDown => details.scroll = details.scroll.saturating_add(PAGE as u16),
            KeyCode::Home => details.scroll = 0,
            // Nothing to move in this view, so `k` is free to mean kill.
            KeyCode::Char('k') | KeyCode::Char('K') | KeyCode::Char('x') => {
                let target = details.run.as_ref().map(|run| {
                    (
                        KillTarget {
                            run_id: run.id.clone(),
                            job: run.job_label(),
                        },
                        run.status.clone(),
                    )
                });
                self.ask_kill(target);
            }
            KeyCode::Char('t') => {
                let job = match &self.mode {
                    Mode::Details(d) => d
                        .run
                        .as_ref()
                        .map(|r| (r.namespace.clone(), r.job_id.clone())),
                    _ => None,
                };
                return job.map(|(namespace, job)| {
                    self.notify(format!("triggering {job}…"));
                    Action::Trigger { namespace, job }
                });
            }
            _ => {}
        }
        None
    }

    fn move_by(&mut self, delta: isize) {
        let last = match self.focus {
            Pane::Jobs => self.visible_jobs().len(),
            Pane::Runs => self.visible_runs().len(),
        }
        .saturating_sub(1);
        let sel = match self.focus {
            Pane::Jobs => &mut self.job_sel,
            Pane::Runs => &mut self.run_sel,
        };
        *sel = sel.saturating_add_signed(delta).min(last);
    }

    /// The selected run, or the selected job's last run.
    fn open_details(&mut self) -> Option<Action> {
        let run_id = match self.focus {
            Pane::Runs => self.selected_run().map(|r| r.id.clone()),
            Pane::Jobs => match self.selected_job() {
                None => None,
                Some(job) => match &job.last_run {
                    Some(last) => Some(last.id.clone()),
                    None => {
                        let text = format!("{} has not run yet", job.label());
                        self.notify(text);
                        return None;
                    }
                },
            },
        }?;
        self.mode = Mode::Details(Box::new(Details {
            run_id: run_id.clone(),
            run: None,
            output: String::new(),
            error: None,
            scroll: 0,
        }));
        Some(Action::LoadRun { run_id })
    }

    /// The job of the selected row: the job itself, or the run's job.
    fn target_job(&self) -> Option<(String, String, bool)> {
        match self.focus {
            Pane::Jobs => self
                .selected_job()
                .map(|j| (j.namespace.clone(), j.id.clone(), j.enabled)),
            Pane::Runs => {
                let run = self.selected_run()?;
                let enabled = self
                    .snapshot
                    .iter()
                    .flat_map(|s| &s.jobs)
                    .find(|j| j.namespace == run.namespace && j.id == run.job_id)
                    .is_none_or(|j| j.enabled);
                Some((run.namespace.clone(), run.job_id.clone(), enabled))
            }
        }
    }

    fn trigger(&mut self) -> Option<Action> {
        let (namespace, job, _) = self.target_job()?;
        self.notify(format!("triggering {job}…"));
        Some(Action::Trigger { namespace, job })
    }

    fn pause_or_resume(&mut self) -> Option<Action> {
        let (namespace, job, enabled) = self.target_job()?;
        let verb = if enabled { "pausing" } else { "resuming" };
        self.notify(format!("{verb} {job}…"));
        Some(Action::SetEnabled {
            namespace,
            job,
            enabled: !enabled,
        })
    }

    /// The selected run, or the selected job's last run, with its status.
    fn kill_target(&self) -> Option<(KillTarget, String)> {
        match self.focus {
            Pane::Runs => self.selected_run().map(|run| {
                (
                    KillTarget {
                        run_id: run.id.clone(),
                        job: run.job_label(),
                    },
                    run.status.clone(),
                )
            }),
            Pane::Jobs => {
                let job = self.selected_job()?;
                let last = job.last_run.as_ref()?;
                Some((
                    KillTarget {
                        run_id: last.id.clone(),
                        job: job.label(),
                    },
                    last.status.clone(),
                ))
            }
        }
    }

    /// Opens the kill prompt for an active run; says why not otherwise.
    fn ask_kill(&mut self, target: Option<(KillTarget, String)>) {
        match target {
            None => self.notify("no run selected to kill"),
            Some((target, status)) if !is_active(&status) => self.notify(format!(
                "run {} has already ended ({status})",
                target.run_id
            )),
            Some((target, _)) => self.mode = Mode::Confirm(target),
        }
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use crate::{
        app::{App, Mode, Pane},
        conn::Link,
        fixtures::{self, app},
        msg::{Action, Update},
    };

    fn press(app: &mut App, code: KeyCode) -> Option<Action> {
        app.on_key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn selected_job(app: &App) -> Option<String> {
        app.selected_job().map(|j| j.label())
    }

    #[test]
    fn arrows_and_j_k_move_within_the_list_and_tab_switches_pane() {
        let mut app = app();
        assert_eq!(selected_job(&app).as_deref(), Some("nightly-report"));
        press(&mut app, KeyCode::Char('j'));
        assert_eq!(selected_job(&app).as_deref(), Some("ops/cleanup"));
        press(&mut app, KeyCode::Down);
        assert_eq!(app.job_sel, 1, "stops at the last row");
        press(&mut app, KeyCode::Char('k'));
        press(&mut app, KeyCode::Up);
        assert_eq!(app.job_sel, 0, "stops at the first row");

        press(&mut app, KeyCode::Tab);
        assert_eq!(app.focus, Pane::Runs);
        press(&mut app, KeyCode::End);
        assert_eq!(app.selected_run().map(|r| r.id.as_str()), Some("r-1"));
        press(&mut app, KeyCode::Char('g'));
        assert_eq!(app.run_sel, 0);
        assert_eq!(app.job_sel, 0, "the other pane keeps its row");
    }

    #[test]
    fn t_triggers_and_p_pauses_or_resumes_the_selected_job() {
        let mut app = app();
        assert_eq!(
            press(&mut app, KeyCode::Char('t')),
            Some(Action::Trigger {
                namespace: "default".into(),
                job: "nightly-report".into()
            })
        );
        assert_eq!(
            press(&mut app, KeyCode::Char('p')),
            Some(Action::SetEnabled {
                namespace: "default".into(),
                job: "nightly-report".into(),
                enabled: false
            })
        );
        press(&mut app, KeyCode::Char('j'));
        assert_eq!(
            press(&mut app, KeyCode::Char('p')),
            Some(Action::SetEnabled {
                namespace: "ops".into(),
                job: "cleanup".into(),
                enabled: true
            }),
            "a paused job is resumed"
        );
        press(&mut app, KeyCode::Tab);
        press(&mut app, KeyCode::Down);
        assert_eq!(
            press(&mut app, KeyCode::Char('t')),
            Some(Action::Trigger {
                namespace: "default".into(),
                job: "nightly-report".into()
            }),
            "in the runs pane, the run's job"
        );
    }

    #[test]
    fn kill_is_refused_for_an_ended_run_and_offered_for_a_running_job() {
        let mut app = app();
        // nightly-report's last run has succeeded.
        assert_eq!(press(&mut app, KeyCode::Char('K')), None);
        assert_eq!(app.mode, Mode::Normal);
        assert!(app
            .notice
            .as_ref()
            .is_some_and(|n| n.text.contains("already ended (succeeded)")));
        // ops/cleanup's last run is running.
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Char('x'));
        assert!(matches!(&app.mode, Mode::Confirm(t) if t.run_id == "r-3"));
        assert_eq!(press(&mut app, KeyCode::Esc), None);
        assert_eq!(app.mode, Mode::Normal);
    }

    #[test]
    fn enter_on_a_job_opens_its_last_run_or_says_it_never_ran() {
        let mut app = app();
        assert_eq!(
            press(&mut app, KeyCode::Enter),
            Some(Action::LoadRun {
                run_id: "r-1".into()
            })
        );
        assert_eq!(
            app.detail_refresh(),
            Some(Action::LoadRun {
                run_id: "r-1".into()
            }),
            "reloaded until it has been read"
        );
        press(&mut app, KeyCode::Esc);
        let mut snapshot = fixtures::snapshot();
        snapshot.jobs[0].last_run = None;
        app.apply(Update::Refreshed {
            link: Link::Connected {
                url: "http://n1:7070".into(),
                lost: None,
            },
            snapshot: Ok(snapshot),
        });
        assert_eq!(press(&mut app, KeyCode::Enter), None);
        assert!(app
            .notice
            .as_ref()
            .is_some_and(|n| n.text == "nightly-report has not run yet"));
    }

    #[test]
    fn the_selected_run_stays_selected_as_new_runs_arrive() {
        let mut app = app();
        press(&mut app, KeyCode::Tab);
        press(&mut app, KeyCode::Down);
        assert_eq!(app.selected_run().map(|r| r.id.clone()), Some("r-2".into()));
        let mut snapshot = fixtures::snapshot();
        snapshot.runs.insert(
            0,
            fixtures::run("r-4", "default", "nightly-report", "pending", 0),
        );
        app.apply(Update::Refreshed {
            link: Link::Connected {
                url: "http://n1:7070".into(),
                lost: None,
            },
            snapshot: Ok(snapshot),
        });
        assert_eq!(app.selected_run().map(|r| r.id.clone()), Some("r-2".into()));
        assert_eq!(app.run_sel, 2);
    }

    #[test]
    fn q_and_ctrl_c_quit() {
        let mut app = app();
        press(&mut app, KeyCode::Char('q'));
        assert!(app.quit);
        let mut app = fixtures::app();
        press(&mut app, KeyCode::Char('/'));
        press(&mut app, KeyCode::Char('q'));
        assert!(!app.quit, "q is text in the filter");
        assert_eq!(app.filter, "q");
        app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert!(app.quit);
    }

    #[test]
    fn action_results_become_notices() {
        let mut app = app();
        app.apply(Update::Triggered {
            job: "nightly-report".into(),
            runs: Ok(vec!["r-9".into()]),
        });
        assert_eq!(
            app.notice.as_ref().map(|n| (n.text.as_str(), n.error)),
            Some(("triggered nightly-report: run r-9", false))
        );
        app.apply(Update::Killed {
            run_id: "r-3".into(),
            status: Err("409: run r-3 has already ended (succeeded)".into()),
        });
        assert!(app.notice.as_ref().is_some_and(|n| n.error));
    }
}
