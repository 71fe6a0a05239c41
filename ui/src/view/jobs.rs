//! The jobs pane: schedule, paused or not, next fire and last run.

use ratatui::{
    layout::{Constraint, Rect},
    style::{Color, Modifier, Style},
    widgets::{Cell, Row, Table, TableState},
    Frame,
};

use super::{
    counted_title,
    fmt::{clock, relative, status_style},
    highlight, pane_block, waiting,
};
use crate::app::{App, Pane};

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let focused = app.focus == Pane::Jobs;
    let Some(snapshot) = &app.snapshot else {
        frame.render_widget(
            waiting(app).block(pane_block(" Jobs ".into(), focused)),
            area,
        );
        return;
    };
    let jobs = app.visible_jobs();
    let title = counted_title("Jobs", jobs.len(), snapshot.jobs.len(), &app.filter);
    let now = app.now;
    let rows = jobs.iter().map(|job| {
        let state = if job.enabled {
            Cell::from("enabled").style(Style::default().fg(Color::Green))
        } else {
            Cell::from("paused").style(Style::default().fg(Color::Yellow))
        };
        let next = match job.next_fire_times.first() {
            Some(t) if job.enabled => format!("{} ({})", relative(now, *t), clock(now, *t)),
            Some(_) => "-".into(),
            None => "never".into(),
        };
        let last = match &job.last_run {
            Some(run) => {
                let when = run
                    .finished_at
                    .or(run.scheduled_at)
                    .map(|t| format!(" {}", relative(now, t)))
                    .unwrap_or_default();
                Cell::from(format!("{}{when}", run.status)).style(status_style(&run.status))
            }
            None => Cell::from("-"),
        };
        Row::new([
            Cell::from(job.label()),
            Cell::from(job.schedule.clone()),
            state,
            Cell::from(next),
            last,
            Cell::from(job.target_summary()),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Fill(2),
            Constraint::Length(18),
            Constraint::Length(8),
            Constraint::Length(22),
            Constraint::Length(24),
            Constraint::Fill(3),
        ],
    )
    .header(
        Row::new([
            "JOB",
            "SCHEDULE",
            "STATE",
            "NEXT FIRE",
            "LAST RUN",
            "TARGET",
        ])
        .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(highlight(app, Pane::Jobs))
    .block(pane_block(title, focused));
    let mut state = TableState::default().with_selected((!jobs.is_empty()).then_some(app.job_sel));
    frame.render_stateful_widget(table, area, &mut state);
}
