//! The rendered screen, read back from ratatui's `TestBackend`.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::{backend::TestBackend, Terminal};

use crate::{
    app::{App, Pane},
    conn::Link,
    fixtures::{self, app, now},
    model::Run,
    msg::{Action, Update},
};

/// The screen `app` draws on a 160 x 48 terminal, one string per row.
fn screen(app: &App) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).expect("test terminal");
    terminal
        .draw(|frame| super::draw(frame, app))
        .expect("draw");
    let buffer = terminal.backend().buffer();
    (0..buffer.area.height)
        .map(|y| {
            (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
        })
        .collect()
}

/// The first row holding every one of `parts`.
fn row_with<'a>(screen: &'a [String], parts: &[&str]) -> Option<&'a String> {
    screen
        .iter()
        .find(|row| parts.iter().all(|part| row.contains(part)))
}

fn shows(screen: &[String], text: &str) -> bool {
    screen.iter().any(|row| row.contains(text))
}

fn press(app: &mut App, code: KeyCode) -> Option<Action> {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn dump(screen: &[String]) -> String {
    screen.join("\n")
}

#[test]
fn header_shows_the_leader_the_term_and_the_node_read() {
    let screen = screen(&app());
    let header = &screen[0];
    assert!(header.contains("leader node 1"), "{header}");
    assert!(header.contains("term 3"), "{header}");
    assert!(header.contains("connected to http://n1:7070"), "{header}");
    assert!(
        row_with(&screen, &["1", "leader", "http://n1:7070"]).is_some(),
        "{}",
        dump(&screen)
    );
    assert!(row_with(&screen, &["2", "follower", "http://n2:7070"]).is_some());
}

#[test]
fn header_says_when_the_node_s_disk_is_short() {
    let mut app = app();
    assert!(
        !screen(&app)[0].contains("disk"),
        "nothing said while the disk is fine"
    );
    if let Some(snapshot) = app.snapshot.as_mut() {
        snapshot.cluster.storage = Some(crate::model::Storage {
            state: "low_space".into(),
            free_bytes: Some(3 << 20),
            reason: Some("disk full".into()),
        });
    }
    let header = &screen(&app)[0];
    assert!(header.contains("disk low space, 3.0 MiB free"), "{header}");
}

#[test]
fn executors_show_alive_dead_and_unverified_with_running_counts() {
    let screen = screen(&app());
    assert!(
        shows(&screen, "Executors · 1 alive of 3"),
        "{}",
        dump(&screen)
    );
    assert!(row_with(&screen, &["http://10.0.0.9:7080", "default", "alive", "1"]).is_some());
    assert!(row_with(&screen, &["http://10.0.0.10:7080", "batch", "dead"]).is_some());
    assert!(
        row_with(&screen, &["http://10.0.0.66:7080", "default", "unverified"]).is_some(),
        "an unsigned gossip member is marked, not counted alive:\n{}",
        dump(&screen)
    );
}

#[test]
fn job_rows_show_schedule_state_next_fire_and_last_run() {
    let screen = screen(&app());
    let nightly = row_with(&screen, &["nightly-report", "0 0 23 * * *"]);
    let nightly = nightly.unwrap_or_else(|| panic!("no nightly row:\n{}", dump(&screen)));
    for part in [
        "enabled",
        "in 1m30s (12:01:30)",
        "succeeded 4m58s ago",
        "shell: make report",
    ] {
        assert!(nightly.contains(part), "{part:?} missing from {nightly}");
    }
    let cleanup = row_with(&screen, &["ops/cleanup", "@every 30s"]);
    let cleanup = cleanup.unwrap_or_else(|| panic!("no cleanup row:\n{}", dump(&screen)));
    assert!(cleanup.contains("paused"), "{cleanup}");
    assert!(cleanup.contains("running"), "{cleanup}");
    assert!(
        cleanup.contains("http: POST http://svc/cleanup"),
        "{cleanup}"
    );
}

#[test]
fn the_run_stream_shows_status_duration_and_result() {
    let screen = screen(&app());
    let failed = row_with(&screen, &["11:59:00", "nightly-report", "failed"]);
    let failed = failed.unwrap_or_else(|| panic!("no failed run:\n{}", dump(&screen)));
    assert!(failed.contains("2.0s"), "{failed}");
    assert!(
        failed.contains("exit status 1: report template missing"),
        "{failed}"
    );
    let running = row_with(&screen, &["11:59:55", "ops/cleanup", "running"]);
    assert!(
        running.is_some_and(|r| r.contains("5.0s…")),
        "{}",
        dump(&screen)
    );
}

#[test]
fn help_overlay_opens_on_question_mark_and_any_key_closes_it() {
    let mut app = app();
    assert!(!shows(&screen(&app), "Help · keys"));
    press(&mut app, KeyCode::Char('?'));
    let with_help = screen(&app);
    assert!(shows(&with_help, "Help · keys"), "{}", dump(&with_help));
    assert!(row_with(&with_help, &["t", "trigger the job now"]).is_some());
    assert!(row_with(&with_help, &["K  x", "kill the run"]).is_some());
    press(&mut app, KeyCode::Char('q'));
    assert!(!app.quit, "q closes the help, it does not quit");
    assert!(!shows(&screen(&app), "Help · keys"));
}

#[test]
fn kill_asks_for_confirmation_first() {
    let mut app = app();
    app.focus = Pane::Runs;
    assert_eq!(press(&mut app, KeyCode::Char('K')), None);
    let prompt = screen(&app);
    assert!(
        shows(&prompt, "Kill run r-3 of job ops/cleanup?"),
        "{}",
        dump(&prompt)
    );
    assert!(shows(&prompt, "y  kill"));
    assert_eq!(
        press(&mut app, KeyCode::Char('y')),
        Some(Action::Kill {
            run_id: "r-3".into()
        })
    );
    assert!(!shows(&screen(&app), "Kill run r-3"));
    assert!(shows(&screen(&app), "killing run r-3…"));
}

#[test]
fn k_in_the_details_view_kills_after_confirmation() {
    let mut app = app();
    app.focus = Pane::Runs;
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Action::LoadRun {
            run_id: "r-3".into()
        })
    );
    assert!(shows(&screen(&app), "loading…"));
    let run = fixtures::run("r-3", "ops", "cleanup", "running", 5);
    app.apply(Update::RunLoaded {
        run_id: "r-3".into(),
        run: Ok((run, "step 1 done\nstep 2 running".into())),
    });
    let details = screen(&app);
    assert!(shows(&details, "Run r-3"), "{}", dump(&details));
    assert!(shows(&details, "step 2 running"), "{}", dump(&details));
    assert!(row_with(&details, &["status", "running"]).is_some());
    press(&mut app, KeyCode::Char('k'));
    assert!(shows(&screen(&app), "Kill run r-3 of job ops/cleanup?"));
    assert_eq!(press(&mut app, KeyCode::Char('n')), None);
    assert!(shows(&screen(&app), "kill cancelled"));
}

#[test]
fn details_show_a_finished_run_with_its_error_and_output() {
    let mut app = app();
    app.focus = Pane::Runs;
    press(&mut app, KeyCode::Down);
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Action::LoadRun {
            run_id: "r-2".into()
        })
    );
    let mut run: Run = fixtures::run("r-2", "default", "nightly-report", "failed", 60);
    run.error = Some("report template missing".into());
    app.apply(Update::RunLoaded {
        run_id: "r-2".into(),
        run: Ok((run, "rendering…\nno such file: report.tmpl".into())),
    });
    let details = screen(&app);
    assert!(
        row_with(&details, &["status", "failed", "exit 1"]).is_some(),
        "{}",
        dump(&details)
    );
    assert!(row_with(&details, &["error", "report template missing"]).is_some());
    assert!(shows(&details, "no such file: report.tmpl"));
    assert_eq!(app.detail_refresh(), None, "a finished run is not reloaded");
    press(&mut app, KeyCode::Esc);
    assert!(!shows(&screen(&app), "no such file"));
}

#[test]
fn filter_narrows_jobs_and_runs_as_it_is_typed() {
    let mut app = app();
    press(&mut app, KeyCode::Char('/'));
    for c in "clean".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    let filtered = screen(&app);
    assert!(shows(&filtered, "filter: /clean"), "{}", dump(&filtered));
    assert!(
        shows(&filtered, "Jobs · 1 of 2 match /clean"),
        "{}",
        dump(&filtered)
    );
    assert!(shows(&filtered, "Recent runs · 1 of 3 match /clean"));
    assert!(shows(&filtered, "ops/cleanup"));
    assert!(!shows(&filtered, "nightly-report"), "{}", dump(&filtered));
    press(&mut app, KeyCode::Enter);
    assert!(
        !shows(&screen(&app), "filter: /clean"),
        "Enter keeps the filter, closes the prompt"
    );
    assert!(shows(&screen(&app), "1 of 2 match /clean"));
    press(&mut app, KeyCode::Esc);
    assert!(shows(&screen(&app), "nightly-report"), "Esc clears it");
}

#[test]
fn losing_the_node_and_a_new_leader_are_said_on_screen() {
    let mut app = app();
    app.apply(Update::Refreshed {
        link: Link::Reconnecting {
            url: "http://n1:7070".into(),
            error: "connection refused or failed".into(),
        },
        snapshot: Err("unreachable: connection refused or failed".into()),
    });
    let lost = screen(&app);
    assert!(
        lost[0].contains(
            "node http://n1:7070 unreachable (connection refused or failed) — reconnecting…"
        ),
        "{}",
        lost[0]
    );
    assert!(
        shows(&lost, "nightly-report"),
        "the last snapshot stays on screen"
    );

    let mut moved = fixtures::snapshot();
    moved.cluster.node_id = 2;
    moved.cluster.leader_id = Some(2);
    moved.cluster.term = 4;
    app.apply(Update::Refreshed {
        link: Link::Connected {
            url: "http://n2:7070".into(),
            lost: Some("http://n1:7070".into()),
        },
        snapshot: Ok(moved),
    });
    let header = &screen(&app)[0];
    assert!(
        header.contains("node http://n1:7070 unreachable — reconnected to http://n2:7070"),
        "{header}"
    );
    assert!(header.contains("leader node 2"), "{header}");
    assert!(header.contains("term 4"), "{header}");
    assert!(
        header.contains("leader changed: node 1 → node 2 (term 4)"),
        "{header}"
    );
}

#[test]
fn before_any_answer_the_screen_says_where_it_connects() {
    let app = App::new("http://n1:7070", now());
    let screen = screen(&app);
    assert!(
        screen[0].contains("connecting to http://n1:7070…"),
        "{}",
        screen[0]
    );
    assert!(shows(&screen, "waiting for the first answer…"));
}

#[test]
fn small_terminals_get_a_cut_down_screen_not_a_crash() {
    let mut app = app();
    app.focus = Pane::Runs;
    let mut modes = Vec::new();
    modes.push(app.mode.clone());
    press(&mut app, KeyCode::Char('?'));
    modes.push(app.mode.clone());
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('K'));
    modes.push(app.mode.clone());
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Enter);
    app.apply(Update::RunLoaded {
        run_id: "r-3".into(),
        run: Ok((
            fixtures::run("r-3", "ops", "cleanup", "running", 5),
            "out".into(),
        )),
    });
    modes.push(app.mode.clone());
    for (width, height) in [(1, 1), (20, 5), (80, 24)] {
        for mode in &modes {
            app.mode = mode.clone();
            let mut terminal =
                Terminal::new(TestBackend::new(width, height)).expect("test terminal");
            terminal
                .draw(|frame| super::draw(frame, &app))
                .expect("draw");
        }
    }
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("test terminal");
    app.mode = crate::app::Mode::Normal;
    terminal
        .draw(|frame| super::draw(frame, &app))
        .expect("draw");
    let top = terminal.backend().buffer()[(1, 0)].symbol().to_string();
    assert_eq!(top, "c", "the header still starts with the name");
}
