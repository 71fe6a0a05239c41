//! The executors pane: each executor gossip knows, alive or not, and how
//! many runs it has.

use ratatui::{
    layout::{Constraint, Rect},
    style::{Color, Modifier, Style},
    widgets::{Cell, Row, Table},
    Frame,
};

use super::{pane_block, waiting};
use crate::app::App;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let Some(snapshot) = &app.snapshot else {
        frame.render_widget(
            waiting(app).block(pane_block(" Executors ".into(), false)),
            area,
        );
        return;
    };
    let alive = snapshot
        .executors
        .iter()
        .filter(|e| e.alive && e.verified)
        .count();
    let title = format!(
        " Executors · {alive} alive of {} ",
        snapshot.executors.len()
    );
    let rows = snapshot.executors.iter().map(|e| {
        let state = if !e.verified {
            Cell::from("unverified").style(Style::default().fg(Color::Yellow))
        } else if e.alive {
            Cell::from("alive").style(Style::default().fg(Color::Green))
        } else {
            Cell::from("dead").style(Style::default().fg(Color::Red))
        };
        Row::new([
            Cell::from(e.endpoint.clone()),
            Cell::from(e.group.clone()),
            state,
            Cell::from(e.running.to_string()),
            Cell::from(e.handlers.join(",")),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Fill(2),
            Constraint::Length(12),
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Fill(1),
        ],
    )
    .header(
        Row::new(["ENDPOINT", "GROUP", "STATE", "RUNNING", "HANDLERS"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(pane_block(title, false));
    frame.render_widget(table, area);
}
