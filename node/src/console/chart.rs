//! The console's charts, drawn by plotters into SVG strings: runs ended
//! per minute over the last hour (succeeded and failed stacked) for the
//! dashboard, and how long each of a job's latest runs took for its page.

use chrono::{DateTime, Utc};
use plotters::prelude::*;
use protocol::{api::MinuteCounts, Run, RunStatus};

const WIDTH: u32 = 720;
const HEIGHT: u32 = 220;
/// Slots on the duration chart's x axis when a job has fewer runs.
const MIN_BAR_SLOTS: u32 = 40;
const SUCCEEDED: RGBColor = RGBColor(46, 160, 67);
const FAILED: RGBColor = RGBColor(218, 54, 51);
const OTHER: RGBColor = RGBColor(150, 150, 150);

/// The chart as an `<svg>` element, or the reason it could not be drawn.
pub fn runs_per_minute(minutes: &[MinuteCounts]) -> Result<String, String> {
    svg("runs per minute, last hour", |root| {
        draw_minutes(root, minutes)
    })
}

/// Seconds each run took, oldest first, coloured by how it ended.
pub fn run_durations(runs: &[Run], now: DateTime<Utc>) -> Result<String, String> {
    svg("duration of the latest runs", |root| {
        draw_durations(root, runs, now)
    })
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult<'a> =
    Result<(), DrawingAreaErrorKind<<SVGBackend<'a> as DrawingBackend>::ErrorType>>;

fn svg(
    label: &str,
    draw: impl for<'a> FnOnce(&Area<'a>) -> DrawResult<'a>,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    // Scale with its container instead of a fixed pixel size.
    Ok(svg.replacen(
        &format!("width=\"{WIDTH}\" height=\"{HEIGHT}\""),
        &format!("class=\"chart\" role=\"img\" aria-label=\"{label}\""),
        1,
    ))
}

fn color_of(status: RunStatus) -> RGBColor {
    match status {
        RunStatus::Succeeded => SUCCEEDED,
        RunStatus::Failed | RunStatus::TimedOut => FAILED,
        _ => OTHER,
    }
}

fn draw_durations<'a>(root: &Area<'a>, runs: &[Run], now: DateTime<Utc>) -> DrawResult<'a> {
    root.fill(&WHITE)?;
    let bars: Vec<(f64, RGBColor)> = runs
        .iter()
        .filter_map(|r| {
            let started = r.started_at?;
            let ms = (r.finished_at.unwrap_or(now) - started)
                .num_milliseconds()
                .max(0);
            Some((ms as f64 / 1000.0, color_of(r.status)))
        })
        .collect();
    let longest = bars.iter().map(|(s, _)| *s).fold(0.0, f64::max).max(0.001);
    let count = bars.len() as u32;
    let mut chart = ChartBuilder::on(root)
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(48)
        // A few runs stay thin bars on the left rather than filling the width.
        .build_cartesian_2d(0u32..count.max(MIN_BAR_SLOTS), 0f64..longest * 1.1)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .x_labels(2)
        .x_label_formatter(&|_| String::new())
        .y_labels(5)
        .y_desc("seconds")
        .label_style(("sans-serif", 12))
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (seconds, color))| {
        let x = i as u32;
        let mut bar = Rectangle::new([(x, 0.0), (x + 1, *seconds)], color.filled());
        bar.set_margin(0, 0, 1, 1);
        bar
    }))?;
    Ok(())
}

fn draw_minutes<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    minutes: &[MinuteCounts],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let highest = minutes
        .iter()
        .map(|m| m.succeeded + m.failed + m.other)
        .max()
        .unwrap_or(0)
        .max(1);
    let count = minutes.len() as u32;
    let mut chart = ChartBuilder::on(root)
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(40)
        .build_cartesian_2d(0u32..count.max(1), 0u64..highest + highest / 10 + 1)?;
    let label_of = |i: &u32| {
        minutes
            .get(*i as usize)
            .map(|m| m.minute.format("%H:%M").to_string())
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .x_labels(7)
        .x_label_formatter(&label_of)
        .y_labels(5)
        .label_style(("sans-serif", 12))
        .draw()?;
    let bars = minutes.iter().enumerate().flat_map(|(i, m)| {
        let x = i as u32;
        let layers = [
            (0, m.succeeded, SUCCEEDED),
            (m.succeeded, m.succeeded + m.failed, FAILED),
            (
                m.succeeded + m.failed,
                m.succeeded + m.failed + m.other,
                OTHER,
            ),
        ];
        layers
            .into_iter()
            .filter(|(low, high, _)| high > low)
            .map(move |(low, high, color)| {
                let mut bar = Rectangle::new([(x, low), (x + 1, high)], color.filled());
                bar.set_margin(0, 0, 1, 1);
                bar
            })
    });
    chart.draw_series(bars)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;

    #[test]
    fn draws_a_bar_per_outcome_and_minute() {
        let start = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let minutes: Vec<MinuteCounts> = (0..60)
            .map(|i| MinuteCounts {
                minute: start + Duration::minutes(i),
                succeeded: if i == 59 { 5 } else { 0 },
                failed: if i == 59 { 2 } else { 0 },
                other: 0,
            })
            .collect();
        let svg = runs_per_minute(&minutes).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("class=\"chart\""));
        let green = svg.matches("fill=\"#2EA043\"").count();
        let red = svg.matches("fill=\"#DA3633\"").count();
        assert_eq!((green, red), (1, 1), "{svg}");
        assert!(svg.contains("12:00"), "minutes label the x axis");
    }

    #[test]
    fn draws_one_bar_per_started_run_in_its_outcome_colour() {
        let start = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let run = |status, seconds: i64| -> Run {
            serde_json::from_value(serde_json::json!({
                "id": format!("r{seconds}"), "job_id": "j", "namespace": "default",
                "scheduled_at": start, "trigger": "schedule",
                "shard": {"index": 0, "count": 1, "param": ""}, "attempt": 1,
                "status": status, "executor": null, "created_at": start,
                "started_at": start, "finished_at": start + Duration::seconds(seconds),
                "exit_code": null, "error": null
            }))
            .unwrap()
        };
        let runs = vec![run("succeeded", 2), run("failed", 5), run("succeeded", 3)];
        let svg = run_durations(&runs, start).unwrap();
        assert_eq!(svg.matches("fill=\"#2EA043\"").count(), 2, "{svg}");
        assert_eq!(svg.matches("fill=\"#DA3633\"").count(), 1);
        assert!(
            run_durations(&[], start).is_ok(),
            "no runs is an empty chart"
        );
    }
}
