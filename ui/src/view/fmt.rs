//! Times, durations and statuses as the panes print them.

use chrono::{DateTime, Utc};
use ratatui::style::{Color, Modifier, Style};

/// `in 12s`, `3m ago`, `now`: how far `t` is from `now`.
pub fn relative(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    match secs {
        0 => "now".into(),
        s if s > 0 => format!("in {}", span(s.unsigned_abs())),
        s => format!("{} ago", span(s.unsigned_abs())),
    }
}

/// `12:00:05` (UTC), with the date when it is not today's.
pub fn clock(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M:%S").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S").to_string()
    }
}

/// `850ms`, `12.3s`, `4m05s`, `2h10m`, `3d4h`.
pub fn duration(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let ms = (to - from).num_milliseconds().max(0).unsigned_abs();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        span(ms / 1000)
    }
}

/// Whole seconds as the two largest units: `45s`, `4m05s`, `2h10m`, `3d4h`.
fn span(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Green for success, red for failure, cyan while running, ...
pub fn status_style(status: &str) -> Style {
    let color = match status {
        "succeeded" => Color::Green,
        "failed" | "timed_out" => Color::Red,
        "killed" => Color::Magenta,
        "running" => Color::Cyan,
        "dispatched" => Color::Blue,
        "pending" => Color::Yellow,
        _ => Color::DarkGray,
    };
    let style = Style::default().fg(color);
    if matches!(status, "failed" | "timed_out") {
        style.add_modifier(Modifier::BOLD)
    } else {
        style
    }
}

/// At most `max` characters of the first line, with `…` when cut.
pub fn clip(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() <= max && !text.contains('\n') {
        return line.to_string();
    }
    let mut out: String = line.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_780_000_000 + secs, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn relative_times_and_durations() {
        assert_eq!(relative(at(0), at(12)), "in 12s");
        assert_eq!(relative(at(0), at(-185)), "3m05s ago");
        assert_eq!(relative(at(0), at(0)), "now");
        assert_eq!(relative(at(0), at(90_000)), "in 1d1h");
        assert_eq!(duration(at(0), at(0)), "0ms");
        assert_eq!(duration(at(0), at(7)), "7.0s");
        assert_eq!(duration(at(0), at(7300)), "2h01m");
    }

    #[test]
    fn clip_cuts_long_and_multiline_text() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("a longer line", 6), "a lon…");
        assert_eq!(clip("one\ntwo", 10), "one…");
    }
}
