//! How the console writes times, durations and statuses.

use chrono::{DateTime, Utc};
use maud::{html, Markup};
use protocol::RunStatus;

/// `2026-11-22 05:11:03 UTC`, or a dash.
pub fn timestamp(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "—".into(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// `12s ago`, `in 3m`, `just now`.
pub fn relative(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let seconds = (t - now).num_seconds();
    let span = span(seconds.unsigned_abs());
    match seconds {
        -1..=1 => "just now".into(),
        s if s > 0 => format!("in {span}"),
        _ => format!("{span} ago"),
    }
}

/// A time with its distance from now, the exact time on hover.
pub fn when(now: DateTime<Utc>, t: Option<DateTime<Utc>>) -> Markup {
    match t {
        Some(t) => {
            html! { time datetime=(t.to_rfc3339()) title=(timestamp(Some(t))) { (relative(now, t)) } }
        }
        None => html! { "—" },
    }
}

fn span(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A run's duration: start to end, or to now while it runs.
pub fn duration(
    started: Option<DateTime<Utc>>,
    finished: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> String {
    let Some(started) = started else {
        return "—".into();
    };
    let ms = (finished.unwrap_or(now) - started)
        .num_milliseconds()
        .max(0);
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        span((ms / 1000) as u64)
    }
}

/// A size in the largest binary unit that keeps it at 1 or more (`3.2 GiB`).
pub fn bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub fn status(status: RunStatus) -> Markup {
    let name = status.to_string();
    html! { span class={ "badge status-" (name) } { (name) } }
}

pub fn enabled(enabled: bool) -> Markup {
    if enabled {
        html! { span class="badge status-enabled" { "enabled" } }
    } else {
        html! { span class="badge status-paused" { "paused" } }
    }
}

/// An enum's JSON name (`round_robin`), as users write it.
pub fn plain<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `path?k=v&...` with the empty values left out.
pub fn link(path: &str, pairs: &[(&str, &str)]) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().filter(|(_, v)| !v.is_empty()))
        .finish();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// `/jobs/{namespace}/{id}` with both parts escaped for a path.
pub fn job_path(namespace: &str, id: &str) -> String {
    format!("/jobs/{}/{}", segment(namespace), segment(id))
}

pub fn run_path(id: &str) -> String {
    format!("/runs/{}", segment(id))
}

/// Names are limited to `A-Z a-z 0-9 . _ -`, which need no escaping; this
/// guards the console against anything else all the same.
pub fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        assert_eq!(relative(now, now), "just now");
        assert_eq!(relative(now, now - Duration::seconds(12)), "12s ago");
        assert_eq!(relative(now, now + Duration::minutes(3)), "in 3m");
        assert_eq!(relative(now, now - Duration::hours(26)), "1d 2h ago");
    }

    #[test]
    fn sizes_pick_their_unit() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
        assert_eq!(bytes((5 << 30) + (1 << 29)), "5.5 GiB");
    }

    #[test]
    fn durations_pick_their_unit() {
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        assert_eq!(
            duration(Some(t), Some(t + Duration::milliseconds(250)), t),
            "250 ms"
        );
        assert_eq!(
            duration(Some(t), Some(t + Duration::milliseconds(2500)), t),
            "2.5 s"
        );
        assert_eq!(duration(None, None, t), "—");
    }
}
