//! Drawing the screen from an [`App`]: the header with leader, term and
//! connection, the four panes, the bottom line, and any overlay on top.

mod cluster;
mod executors;
pub mod fmt;
mod jobs;
mod overlay;
mod runs;
#[cfg(test)]
mod tests;

use ratatui::{
    layout::{Constraint, Flex, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Paragraph},
    Frame,
};

use crate::{
    app::{node_name, App, Mode, Pane},
    conn::Link,
};

/// Rows the cluster and executors panes may take, borders included.
const TOP_MAX: u16 = 10;

pub fn draw(frame: &mut Frame, app: &App) {
    let top = app
        .snapshot
        .as_ref()
        .map(|s| s.cluster.members.len().max(s.executors.len() + 1) as u16 + 4)
        .unwrap_or(5)
        .clamp(5, TOP_MAX);
    let [header, top_area, jobs_area, runs_area, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(top),
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let [cluster_area, executors_area] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
            .areas(top_area);

    frame.render_widget(Paragraph::new(header_line(app)), header);
    cluster::draw(frame, cluster_area, app);
    executors::draw(frame, executors_area, app);
    jobs::draw(frame, jobs_area, app);
    runs::draw(frame, runs_area, app);
    frame.render_widget(Paragraph::new(footer_line(app)), footer);

    match &app.mode {
        Mode::Help => overlay::help(frame),
        Mode::Confirm(target) => overlay::confirm(frame, target),
        Mode::Details(details) => overlay::details(frame, details, app.now),
        Mode::Normal | Mode::Filter => {}
    }
}

/// ` cronmesh  leader node 1  term 3  │ connected to http://…  │ leader changed …`
fn header_line(app: &App) -> Line<'static> {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut spans = vec![Span::styled(" cronmesh ", bold.fg(Color::Cyan))];
    if let Some(snapshot) = &app.snapshot {
        let cluster = &snapshot.cluster;
        let leader = match cluster.leader_id {
            Some(_) => Span::styled(node_name(cluster.leader_id), bold.fg(Color::Green)),
            None => Span::styled("none (election under way)", bold.fg(Color::Red)),
        };
        spans.extend([
            Span::raw(" leader "),
            leader,
            Span::raw("  term "),
            Span::styled(cluster.term.to_string(), bold),
        ]);
        // Said only when something is wrong: a full disk refuses writes.
        if let Some(storage) = cluster.storage.as_ref().filter(|s| s.state != "ok") {
            let free = storage
                .free_bytes
                .map(|free| format!(", {:.1} MiB free", free as f64 / 1048576.0))
                .unwrap_or_default();
            spans.push(Span::raw("  │ "));
            spans.push(Span::styled(
                format!("disk {}{free}", storage.state.replace('_', " ")),
                bold.fg(Color::Red),
            ));
        }
    }
    spans.push(Span::raw("  │ "));
    spans.push(link_span(&app.link));
    if let Some(note) = &app.leader_note {
        spans.push(Span::raw("  │ "));
        spans.push(Span::styled(
            note.clone(),
            Style::default().fg(Color::Yellow),
        ));
    }
    spans.push(Span::styled(
        "  │ times UTC",
        Style::default().fg(Color::DarkGray),
    ));
    Line::from(spans)
}

fn link_span(link: &Link) -> Span<'static> {
    match link {
        Link::Connecting { url } => Span::styled(
            format!("connecting to {url}…"),
            Style::default().fg(Color::Yellow),
        ),
        Link::Connected { url, lost: None } => Span::styled(
            format!("connected to {url}"),
            Style::default().fg(Color::Green),
        ),
        Link::Connected {
            url,
            lost: Some(lost),
        } => Span::styled(
            format!("node {lost} unreachable — reconnected to {url}"),
            Style::default().fg(Color::Yellow),
        ),
        Link::Reconnecting { url, error } => Span::styled(
            format!("node {url} unreachable ({error}) — reconnecting…"),
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
    }
}

/// The filter being typed, else the last notice, else the key hints.
fn footer_line(app: &App) -> Line<'static> {
    let dim = Style::default().fg(Color::DarkGray);
    if app.mode == Mode::Filter {
        return Line::from(vec![
            Span::styled(" filter: /", Style::default().fg(Color::Yellow)),
            Span::raw(app.filter.clone()),
            Span::styled("█", dim),
            Span::styled("   Enter keep · Esc clear", dim),
        ]);
    }
    if let Some(notice) = &app.notice {
        let color = if notice.error {
            Color::Red
        } else {
            Color::Green
        };
        return Line::from(Span::styled(
            format!(" {}", notice.text),
            Style::default().fg(color),
        ));
    }
    if let Some(error) = &app.refresh_error {
        return Line::from(Span::styled(
            format!(" refresh failed: {error}"),
            Style::default().fg(Color::Red),
        ));
    }
    Line::from(Span::styled(
        " ↑↓/jk move · Tab pane · Enter details · t trigger · p pause/resume · K kill · / filter · ? help · q quit",
        dim,
    ))
}

/// A bordered block, its title bold and its border cyan when focused.
fn pane_block(title: String, focused: bool) -> Block<'static> {
    let border = if focused {
        Style::default().fg(Color::Cyan)
    } else {
        Style::default().fg(Color::DarkGray)
    };
    Block::bordered().border_style(border).title(Span::styled(
        title,
        Style::default().add_modifier(Modifier::BOLD),
    ))
}

/// The selected row's look, when its pane has the focus.
fn highlight(app: &App, pane: Pane) -> Style {
    if app.focus == pane && matches!(app.mode, Mode::Normal | Mode::Filter) {
        Style::default().add_modifier(Modifier::REVERSED)
    } else {
        Style::default().add_modifier(Modifier::BOLD)
    }
}

/// A rectangle of `width` x `height` cells centred in `area`, clipped to it.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [rect] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    rect
}

/// The text a pane shows before the first snapshot arrives.
fn waiting(app: &App) -> Paragraph<'static> {
    let text = match &app.refresh_error {
        Some(e) => format!("no answer yet: {e}"),
        None => "waiting for the first answer…".into(),
    };
    Paragraph::new(Span::styled(text, Style::default().fg(Color::DarkGray)))
}

/// ` Jobs · 12 `, or with a filter ` Jobs · 3 of 12 match /nightly `.
pub(crate) fn counted_title(name: &str, shown: usize, total: usize, filter: &str) -> String {
    if filter.is_empty() {
        format!(" {name} · {total} ")
    } else {
        format!(" {name} · {shown} of {total} match /{filter} ")
    }
}
