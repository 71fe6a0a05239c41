//! The live stream of recent runs, newest first.

use ratatui::{
    layout::{Constraint, Rect},
    style::{Modifier, Style},
    widgets::{Cell, Row, Table, TableState},
    Frame,
};

use super::{
    counted_title,
    fmt::{clip, clock, duration, status_style},
    highlight, pane_block, waiting,
};
use crate::app::{App, Pane};

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let focused = app.focus == Pane::Runs;
    let Some(snapshot) = &app.snapshot else {
        frame.render_widget(
            waiting(app).block(pane_block(" Recent runs ".into(), focused)),
            area,
        );
        return;
    };
    let runs = app.visible_runs();
    let title = counted_title("Recent runs", runs.len(), snapshot.runs.len(), &app.filter);
    let now = app.now;
    let rows = runs.iter().map(|run| {
        let at = run.created_at.or(run.scheduled_at);
        let took = match (run.started_at, run.finished_at) {
            (Some(start), Some(end)) => duration(start, end),
            (Some(start), None) => format!("{}…", duration(start, now)),
            _ => "-".into(),
        };
        let shard = if run.shard.count > 1 {
            format!("{}/{} #{}", run.shard.index, run.shard.count, run.attempt)
        } else {
            format!("#{}", run.attempt)
        };
        let result = match (&run.error, run.exit_code) {
            (Some(e), _) if !e.is_empty() => clip(e, 60),
            (_, Some(code)) => format!("exit {code}"),
            _ => String::new(),
        };
        Row::new([
            Cell::from(at.map(|t| clock(now, t)).unwrap_or_default()),
            Cell::from(run.job_label()),
            Cell::from(run.status.clone()).style(status_style(&run.status)),
            Cell::from(run.trigger.clone()),
            Cell::from(shard),
            Cell::from(took),
            Cell::from(run.executor.clone().unwrap_or_default()),
            Cell::from(result),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(9),
            Constraint::Fill(2),
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Fill(2),
            Constraint::Fill(4),
        ],
    )
    .header(
        Row::new([
            "CREATED", "JOB", "STATUS", "TRIGGER", "ATTEMPT", "TOOK", "EXECUTOR", "RESULT",
        ])
        .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(highlight(app, Pane::Runs))
    .block(pane_block(title, focused));
    let mut state = TableState::default().with_selected((!runs.is_empty()).then_some(app.run_sel));
    frame.render_stateful_widget(table, area, &mut state);
}
