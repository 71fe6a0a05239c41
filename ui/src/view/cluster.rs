//! The cluster pane: which node answers, indexes, and the members.

use ratatui::{
    layout::{Constraint, Rect},
    style::{Color, Modifier, Style},
    text::Line,
    widgets::{Cell, Row, Table},
    Frame,
};

use super::{pane_block, waiting};
use crate::app::App;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let Some(snapshot) = &app.snapshot else {
        frame.render_widget(
            waiting(app).block(pane_block(" Cluster ".into(), false)),
            area,
        );
        return;
    };
    let cluster = &snapshot.cluster;
    let title = format!(
        " Cluster · node {} answers · commit {} · applied {} ",
        cluster.node_id, cluster.commit_index, cluster.applied_index
    );
    let rows = cluster.members.iter().map(|m| {
        let is_leader = Some(m.node_id) == cluster.leader_id;
        let role_style = if is_leader {
            Style::default()
                .fg(Color::Green)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        let marker = if m.node_id == cluster.node_id {
            "▸"
        } else {
            " "
        };
        Row::new([
            Cell::from(format!("{marker}{}", m.node_id)),
            Cell::from(m.role.clone()).style(role_style),
            Cell::from(m.api_url.clone().unwrap_or_else(|| "-".into())),
            Cell::from(
                m.matched_index
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "-".into()),
            ),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(5),
            Constraint::Length(10),
            Constraint::Fill(1),
            Constraint::Length(8),
        ],
    )
    .header(
        Row::new(["NODE", "ROLE", "API", "MATCHED"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(
        pane_block(title, false)
            .title_bottom(Line::from(format!(" {} member(s) ", cluster.members.len()))),
    );
    frame.render_widget(table, area);
}
