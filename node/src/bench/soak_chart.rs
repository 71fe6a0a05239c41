//! The soak's chart, `soak.svg`: panels stacked one above the other, the
//! intervals along the x axis of each, a line per series. Plain SVG with
//! inline attributes and a fixed viewBox, no script and no stylesheet,
//! so a browser and a GitHub markdown page show it alike. A value that is
//! missing in an interval leaves a gap in its line.

use std::fmt::Write as _;

/// Width of the whole chart, in its own units.
const WIDTH: f64 = 960.0;
/// Left of the plots: room for the y labels.
const LEFT: f64 = 70.0;
/// Right of the plots: room for the legends.
const RIGHT: f64 = 190.0;
/// Height of the chart's title and subtitle.
const TITLE: f64 = 52.0;
/// Height of one plot, and the room above it for the interval numbers
/// of the plot before and its own title.
const PLOT: f64 = 170.0;
const PANEL_TITLE: f64 = 52.0;
/// Room under the last plot for the x axis' labels.
const BOTTOM: f64 = 46.0;
/// Up to this many intervals, each point is marked too.
const MARKED_POINTS: usize = 40;

/// Line colours, in the order of a panel's series.
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// One line: a value per interval, `None` where it is missing.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// One plot and the lines in it.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    /// With its unit: `Lateness (ms)`.
    pub title: String,
    pub series: Vec<Series>,
}

/// The SVG text of `panels` over `intervals` intervals of
/// `sample_seconds` each, under `title` and a smaller `subtitle`.
pub fn svg(
    (title, subtitle): (&str, &str),
    intervals: usize,
    sample_seconds: u64,
    panels: &[Panel],
) -> String {
    let height = TITLE + panels.len() as f64 * (PANEL_TITLE + PLOT) + BOTTOM;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r##"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        out,
        r##"<text x="20" y="24" font-size="16" font-weight="bold" fill="#222222">{}</text>"##,
        escape(title)
    );
    let _ = writeln!(
        out,
        r##"<text x="20" y="42" fill="#555555">{}</text>"##,
        escape(subtitle)
    );
    for (i, panel) in panels.iter().enumerate() {
        let top = TITLE + i as f64 * (PANEL_TITLE + PLOT) + PANEL_TITLE;
        draw_panel(&mut out, panel, top, intervals);
    }
    let axis_y = TITLE + panels.len() as f64 * (PANEL_TITLE + PLOT) + 34.0;
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{axis_y}" text-anchor="middle" fill="#444444">interval ({sample_seconds} s each)</text>"##,
        LEFT + plot_width() / 2.0
    );
    out.push_str("</svg>\n");
    out
}

fn plot_width() -> f64 {
    WIDTH - LEFT - RIGHT
}

/// The x of interval `i` (from 0) of `n`.
fn x_of(i: usize, n: usize) -> f64 {
    if n <= 1 {
        LEFT + plot_width() / 2.0
    } else {
        LEFT + i as f64 * plot_width() / (n - 1) as f64
    }
}

/// The y axis of a panel: from `low` to `high`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Scale {
    low: f64,
    high: f64,
}

impl Scale {
    /// From 0 (or below, for negative values) to a round number at or
    /// above the largest value.
    fn of(values: impl Iterator<Item = f64>) -> Self {
        let (mut low, mut high) = (0.0f64, 0.0f64);
        for v in values.filter(|v| v.is_finite()) {
            low = low.min(v);
            high = high.max(v);
        }
        let high = if high > 0.0 { round_up(high) } else { 1.0 };
        let low = if low < 0.0 { -round_up(-low) } else { 0.0 };
        Self { low, high }
    }

    /// The y of `value` in a plot whose top is at `top`.
    fn y(&self, value: f64, top: f64) -> f64 {
        top + PLOT - (value - self.low) / (self.high - self.low) * PLOT
    }
}

/// The least of 1, 2, 2.5, 5 times a power of ten at or above `v` (> 0).
fn round_up(v: f64) -> f64 {
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|r| *r >= v)
        .unwrap_or(10.0 * power)
}

fn draw_panel(out: &mut String, panel: &Panel, top: f64, intervals: usize) {
    let scale = Scale::of(
        panel
            .series
            .iter()
            .flat_map(|s| s.values.iter().flatten().copied()),
    );
    let right = LEFT + plot_width();
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="{}" font-size="14" font-weight="bold" fill="#222222">{}</text>"##,
        top - 10.0,
        escape(&panel.title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{top}" width="{}" height="{PLOT}" fill="#fafafa" stroke="#cccccc"/>"##,
        plot_width()
    );
    // Five grid lines, labelled.
    for step in 0..=4 {
        let value = scale.low + (scale.high - scale.low) * f64::from(step) / 4.0;
        let y = scale.y(value, top);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{right}" y2="{y:.1}" stroke="#e0e0e0"/>"##
        );
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#555555">{}</text>"##,
            LEFT - 6.0,
            y + 4.0,
            number(value)
        );
    }
    // Interval numbers under the plot: at most about ten.
    let every = intervals.div_ceil(10).max(1);
    for i in (0..intervals).filter(|i| i.is_multiple_of(every) || *i + 1 == intervals) {
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{}" text-anchor="middle" fill="#555555">{}</text>"##,
            x_of(i, intervals),
            top + PLOT + 15.0,
            i + 1
        );
    }
    for (n, series) in panel.series.iter().enumerate() {
        let colour = COLOURS[n % COLOURS.len()];
        for segment in segments(&series.values) {
            let points: Vec<String> = segment
                .iter()
                .map(|(i, v)| format!("{:.1},{:.1}", x_of(*i, intervals), scale.y(*v, top)))
                .collect();
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                points.join(" ")
            );
            if intervals <= MARKED_POINTS {
                for (i, v) in &segment {
                    let _ = writeln!(
                        out,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{colour}"/>"#,
                        x_of(*i, intervals),
                        scale.y(*v, top)
                    );
                }
            }
        }
        let legend_y = top + 14.0 + n as f64 * 18.0;
        let _ = writeln!(
            out,
            r#"<line x1="{}" y1="{legend_y}" x2="{}" y2="{legend_y}" stroke="{colour}" stroke-width="3"/>"#,
            right + 14.0,
            right + 34.0
        );
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" fill="#222222">{}</text>"##,
            right + 40.0,
            legend_y + 4.0,
            escape(&series.name)
        );
    }
}

/// The runs of consecutive finite values: a missing one ends a line.
fn segments(values: &[Option<f64>]) -> Vec<Vec<(usize, f64)>> {
    let mut out: Vec<Vec<(usize, f64)>> = Vec::new();
    let mut current = Vec::new();
    for (i, value) in values.iter().enumerate() {
        match value.filter(|v| v.is_finite()) {
            Some(v) => current.push((i, v)),
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// An axis label: no more digits than it needs.
fn number(value: f64) -> String {
    if value == value.trunc() && value.abs() < 1e15 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// `text` with the characters XML gives a meaning escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panels(n: usize) -> Vec<Panel> {
        let line = |name: &str, f: &dyn Fn(usize) -> f64| Series {
            name: name.to_string(),
            values: (0..n).map(|i| Some(f(i))).collect(),
        };
        vec![
            Panel {
                title: "Lateness (ms)".into(),
                series: vec![
                    line("p50", &|i| 2.0 + i as f64),
                    line("p99", &|i| 20.0 + 3.0 * i as f64),
                ],
            },
            Panel {
                title: "Server RSS (MiB)".into(),
                series: vec![line("node1", &|i| 50.0 + i as f64)],
            },
            Panel {
                title: "Data directory (MB) <per server>".into(),
                series: vec![line("node1", &|_| 0.0)],
            },
        ]
    }

    /// The numbers of the `points` attribute of each polyline.
    fn polylines(svg: &str) -> Vec<Vec<(f64, f64)>> {
        svg.split("<polyline")
            .skip(1)
            .map(|rest| {
                let points = rest
                    .split("points=\"")
                    .nth(1)
                    .and_then(|p| p.split('"').next())
                    .unwrap_or_default();
                points
                    .split(' ')
                    .filter_map(|p| {
                        let (x, y) = p.split_once(',')?;
                        Some((x.parse().ok()?, y.parse().ok()?))
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_polyline_per_series_with_a_point_per_interval() {
        let svg = svg(("soak", "sub"), 30, 60, &panels(30));
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("viewBox=\"0 0 960 "));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        let lines = polylines(&svg);
        assert_eq!(lines.len(), 4);
        for line in &lines {
            assert_eq!(line.len(), 30);
            assert!(line.windows(2).all(|w| w[0].0 < w[1].0), "x grows");
            assert!(line
                .iter()
                .all(|(x, y)| (0.0..=WIDTH).contains(x) && *y >= 0.0));
        }
        assert!(svg.contains("&lt;per server&gt;"));
        assert!(!svg.contains("<per server>"));
        // Opening and closing tags balance.
        assert_eq!(svg.matches("<svg").count(), 1);
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    }

    #[test]
    fn a_missing_value_leaves_a_gap_and_nothing_is_nan() {
        let panel = Panel {
            title: "API p99 (ms)".into(),
            series: vec![Series {
                name: "all".into(),
                values: vec![Some(1.0), None, Some(f64::NAN), Some(3.0), Some(4.0)],
            }],
        };
        let svg = svg(("soak", "sub"), 5, 3, &[panel]);
        let lines = polylines(&svg);
        assert_eq!(
            lines.iter().map(Vec::len).collect::<Vec<_>>(),
            [1, 2],
            "{svg}"
        );
        assert!(!svg.contains("NaN"));
        // A single interval draws at the middle, and a panel of nothing
        // still has an axis.
        let one = svg_of_one();
        assert_eq!(polylines(&one)[0].len(), 1);
        assert!(!one.contains("NaN"));
    }

    fn svg_of_one() -> String {
        let empty = Panel {
            title: "nothing".into(),
            series: vec![Series {
                name: "none".into(),
                values: vec![None],
            }],
        };
        let one = Panel {
            title: "one".into(),
            series: vec![Series {
                name: "one".into(),
                values: vec![Some(-3.0)],
            }],
        };
        svg(("soak", "sub"), 1, 60, &[empty, one])
    }

    #[test]
    fn scales_end_on_round_numbers() {
        assert_eq!(round_up(7.0), 10.0);
        assert_eq!(round_up(1.2), 2.0);
        assert_eq!(round_up(2.2), 2.5);
        assert_eq!(round_up(250.0), 250.0);
        assert_eq!(round_up(0.03), 0.05);
        let scale = Scale::of([3.0, -12.0, f64::NAN].into_iter());
        assert_eq!(
            scale,
            Scale {
                low: -20.0,
                high: 5.0
            }
        );
        assert_eq!(
            Scale::of(std::iter::empty()),
            Scale {
                low: 0.0,
                high: 1.0
            }
        );
        assert_eq!(number(2.5), "2.50");
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(100.0), "100");
    }
}
