//! What opens over the panes: the help, the kill prompt and run details.

use chrono::{DateTime, Utc};
use ratatui::{
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Clear, Paragraph, Wrap},
    Frame,
};

use super::{
    centered,
    fmt::{clock, duration, status_style},
};
use crate::app::{Details, KillTarget};

/// Every key, as `?` lists them.
const KEYS: &[(&str, &str)] = &[
    ("↑ ↓  j k", "move in the focused pane"),
    ("Tab ← →", "switch between jobs and runs"),
    ("PgUp PgDn g G", "move by a page, to the top, to the bottom"),
    (
        "Enter",
        "details of the run (or the job's last run), with output",
    ),
    ("t", "trigger the job now"),
    ("p", "pause the job, or resume a paused one"),
    ("K  x", "kill the run (or the job's running run), after y/n"),
    ("k", "in run details: kill that run, after y/n"),
    ("/", "filter jobs and runs; Enter keeps it, Esc clears it"),
    ("?", "this help"),
    ("q  Ctrl-C", "quit (q closes an open view first)"),
];

pub fn help(frame: &mut Frame) {
    let key_style = Style::default()
        .fg(Color::Cyan)
        .add_modifier(Modifier::BOLD);
    let mut lines: Vec<Line> = KEYS
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!(" {key:<15}"), key_style),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " The viewer refreshes every second and moves to another member when its node stops answering.",
        Style::default().fg(Color::DarkGray),
    ));
    lines.push(Line::styled(
        " Any key closes this help.",
        Style::default().fg(Color::DarkGray),
    ));
    let area = centered(frame.area(), 100, lines.len() as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Help · keys ")),
        area,
    );
}

pub fn confirm(frame: &mut Frame, target: &KillTarget) {
    let lines = vec![
        Line::from(vec![
            Span::raw(" Kill run "),
            Span::styled(
                target.run_id.clone(),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw(" of job "),
            Span::styled(
                target.job.clone(),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw("?"),
        ]),
        Line::raw(""),
        Line::styled(
            " y  kill      n / Esc  keep it running",
            Style::default().fg(Color::Yellow),
        ),
    ];
    let width = (target.run_id.len() + target.job.len() + 24).clamp(50, 120) as u16;
    let area = centered(frame.area(), width, 5);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .border_style(Style::default().fg(Color::Red))
                .title(" Kill run? "),
        ),
        area,
    );
}

pub fn details(frame: &mut Frame, details: &Details, now: DateTime<Utc>) {
    let area = centered(
        frame.area(),
        frame.area().width.saturating_sub(8),
        frame.area().height.saturating_sub(4),
    );
    let label = Style::default().fg(Color::DarkGray);
    let mut lines: Vec<Line> = Vec::new();
    match (&details.run, &details.error) {
        (None, None) => lines.push(Line::styled(" loading…", label)),
        (None, Some(e)) => lines.push(Line::styled(
            format!(" {e}"),
            Style::default().fg(Color::Red),
        )),
        (Some(run), error) => {
            let field = |name: &str, value: String| {
                Line::from(vec![
                    Span::styled(format!(" {name:<10}"), label),
                    Span::raw(value),
                ])
            };
            let time =
                |t: Option<DateTime<Utc>>| t.map(|t| clock(now, t)).unwrap_or_else(|| "-".into());
            lines.push(Line::from(vec![
                Span::styled(format!(" {:<10}", "status"), label),
                Span::styled(run.status.clone(), status_style(&run.status)),
                Span::raw(match run.exit_code {
                    Some(code) => format!("  exit {code}"),
                    None => String::new(),
                }),
            ]));
            lines.push(field("job", run.job_label()));
            lines.push(field(
                "trigger",
                format!(
                    "{} · attempt {} · shard {}/{}",
                    run.trigger, run.attempt, run.shard.index, run.shard.count
                ),
            ));
            lines.push(field(
                "executor",
                run.executor.clone().unwrap_or_else(|| "-".into()),
            ));
            lines.push(field(
                "times",
                format!(
                    "scheduled {} · started {} · finished {}{}",
                    time(run.scheduled_at),
                    time(run.started_at),
                    time(run.finished_at),
                    match (run.started_at, run.finished_at) {
                        (Some(s), Some(f)) => format!(" · took {}", duration(s, f)),
                        _ => String::new(),
                    }
                ),
            ));
            if !run.params.is_empty() {
                lines.push(field("params", run.params.clone()));
            }
            if let Some(retry_of) = &run.retry_of {
                lines.push(field("retry of", retry_of.clone()));
            }
            if let Some(e) = run.error.as_ref().filter(|e| !e.is_empty()) {
                lines.push(Line::from(vec![
                    Span::styled(format!(" {:<10}", "error"), label),
                    Span::styled(e.clone(), Style::default().fg(Color::Red)),
                ]));
            }
            if let Some(e) = error {
                lines.push(Line::styled(
                    format!(" refresh failed: {e}"),
                    Style::default().fg(Color::Red),
                ));
            }
            lines.push(Line::raw(""));
            lines.push(Line::styled(" ── output ──", label));
            if details.output.is_empty() {
                lines.push(Line::styled(" (no output)", label));
            }
            lines.extend(details.output.lines().map(|l| Line::raw(format!(" {l}"))));
        }
    }
    let title = format!(" Run {} ", details.run_id);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((details.scroll, 0))
            .block(
                Block::bordered()
                    .title(title)
                    .title_bottom(" ↑↓ PgUp PgDn scroll · t trigger again · k kill · Esc close "),
            ),
        area,
    );
}
