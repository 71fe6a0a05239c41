//! The dashboard's chart: runs ended per minute over the last hour,
//! succeeded and failed stacked, drawn by plotters into an SVG string.

use plotters::prelude::*;
use protocol::api::MinuteCounts;

const WIDTH: u32 = 720;
const HEIGHT: u32 = 220;
const SUCCEEDED: RGBColor = RGBColor(46, 160, 67);
const FAILED: RGBColor = RGBColor(218, 54, 51);
const OTHER: RGBColor = RGBColor(150, 150, 150);

/// The chart as an `<svg>` element, or the reason it could not be drawn.
pub fn runs_per_minute(minutes: &[MinuteCounts]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, minutes).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    // Scale with its container instead of a fixed pixel size.
    Ok(svg.replacen(
        &format!("width=\"{WIDTH}\" height=\"{HEIGHT}\""),
        "class=\"chart\" role=\"img\" aria-label=\"runs per minute, last hour\"",
        1,
    ))
}

fn draw<DB: DrawingBackend>(
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
}
