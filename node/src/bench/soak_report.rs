//! The soak's result: one JSON object (`--json`, and `soak.json`), or a
//! table for people: a row per interval, then the totals, the derived
//! figures and which targets were met. Also the chart's panels, taken from
//! the same intervals.

use std::fmt::Write as _;

use serde::Serialize;

use super::{
    analysis::Lateness,
    api_probe::{KindFigures, StretchLatency},
    args::Scenario,
    load::Creation,
    processes::Role,
    report::Window,
    soak_chart::{Panel, Series},
    soak_sample::{ProcessSample, ServerDisk},
    soak_series::{IntervalRuns, RunTotals},
    soak_targets::{Drift, IntervalInputs, TargetCheck},
};

const MIB: f64 = 1024.0 * 1024.0;
const MB: f64 = 1e6;

/// Everything a soak measured.
#[derive(Clone, Debug, Serialize)]
pub struct SoakReport {
    /// Always `soak`: tells this object from the other scenarios'.
    pub scenario: Scenario,
    pub setup: SoakSetup,
    pub job_creation: Creation,
    pub window: Window,
    pub leader_at_start: u64,
    /// Null when the nodes did not agree on one after the drain.
    pub leader_at_end: Option<u64>,
    /// One per interval, in order.
    pub intervals: Vec<SoakInterval>,
    pub totals: RunTotals,
    /// Receipt lines that could not be read.
    pub malformed_receipts: u64,
    pub drift: Drift,
    pub targets: Vec<TargetCheck>,
}

/// What was measured: the flags that shape the run.
#[derive(Clone, Debug, Serialize)]
pub struct SoakSetup {
    pub nodes: usize,
    pub executors: u32,
    pub jobs: u32,
    pub schedule: String,
    pub duration_seconds: u64,
    pub sample_seconds: u64,
    pub drain_seconds: u64,
    /// Runs each server keeps per job: its default, so retention trims
    /// for most of a long run.
    pub history_limit: usize,
    /// Whether the API probe ran (not with `--no-api-probe`).
    pub api_probe: bool,
    /// Logs, receipts and node data; gone after the run unless kept.
    pub data_dir: String,
    pub data_dir_kept: bool,
    /// Where `soak.json` and `soak.svg` are written.
    pub output_dir: String,
}

/// One interval of the window.
#[derive(Clone, Debug, Serialize)]
pub struct SoakInterval {
    /// Numbered from 1.
    pub interval: usize,
    /// Seconds from the window's start to the interval's start and end.
    pub start_seconds: f64,
    pub end_seconds: f64,
    #[serde(flatten)]
    pub runs: IntervalRuns,
    /// The API probe's requests answered during the interval; null
    /// without the probe.
    pub api_latency: Option<StretchLatency>,
    /// Every server and executor at the interval's end.
    pub processes: Vec<ProcessSample>,
    /// Every server's disk at the interval's end.
    pub servers: Vec<ServerDisk>,
}

impl SoakInterval {
    /// The largest RSS of the servers at its end.
    pub fn max_server_rss(&self) -> Option<u64> {
        self.processes
            .iter()
            .filter(|p| p.role == Role::Server)
            .filter_map(|p| p.rss_bytes)
            .max()
    }

    /// The largest server data directory at its end.
    pub fn max_data_dir(&self) -> Option<u64> {
        self.servers.iter().filter_map(|s| s.data_dir_bytes).max()
    }

    /// What the derived figures take of it.
    pub fn inputs(&self, sample_seconds: u64) -> IntervalInputs {
        IntervalInputs {
            end_seconds: self.end_seconds,
            full: self.end_seconds - self.start_seconds >= sample_seconds as f64 - 1e-9,
            lateness_p99_ms: self.runs.lateness_ms.map(|l| l.p99),
            max_server_rss_bytes: self.max_server_rss(),
            max_data_dir_bytes: self.max_data_dir(),
        }
    }

    fn of_role(&self, role: Role) -> impl Iterator<Item = &ProcessSample> {
        self.processes.iter().filter(move |p| p.role == role)
    }
}

impl SoakReport {
    /// The table printed without `--json`.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let s = &self.setup;
        let _ = writeln!(
            out,
            "cronmesh bench --scenario soak: {} node{}, {} executor{}, {} jobs ({}), {} s in {} interval{} of {} s + {} s drain; {} runs kept per job",
            s.nodes,
            plural(s.nodes),
            s.executors,
            plural(s.executors as usize),
            s.jobs,
            s.schedule,
            s.duration_seconds,
            self.intervals.len(),
            plural(self.intervals.len()),
            s.sample_seconds,
            s.drain_seconds,
            s.history_limit
        );
        let c = &self.job_creation;
        let _ = writeln!(
            out,
            "jobs created in {:.2} s ({:.0} jobs/s); window {} to {}\n",
            c.seconds, c.jobs_per_second, self.window.start, self.window.end
        );
        out.push_str(&self.interval_table());
        out.push_str(&self.totals_table());
        out
    }

    fn interval_table(&self) -> String {
        let header = [
            "#",
            "end s",
            "runs",
            "lost",
            "late p50",
            "late p99",
            "late max",
            "api p50",
            "api p99",
            "api max",
            "rss MiB nodes",
            "executors",
            "cpu s nodes",
            "executors",
            "disk MB",
            "sled MB",
        ];
        let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
        for i in &self.intervals {
            let late = i.runs.lateness_ms;
            let pick =
                |f: fn(&Lateness) -> f64| late.as_ref().map_or("-".to_string(), |l| ms(f(l)));
            let api_at = |f: fn(&KindFigures) -> Option<f64>| {
                i.api_latency
                    .as_ref()
                    .and_then(|a| f(&a.all))
                    .map_or("-".to_string(), ms)
            };
            let rss = |role| {
                joined(
                    i.of_role(role).map(|p| p.rss_bytes.map(|b| b as f64 / MIB)),
                    0,
                )
            };
            let cpu = |role| joined(i.of_role(role).map(|p| p.cpu_seconds), 1);
            rows.push(vec![
                i.interval.to_string(),
                format!("{:.0}", i.end_seconds),
                i.runs.runs_received.to_string(),
                i.runs.lost_slots.to_string(),
                pick(|l| l.p50),
                pick(|l| l.p99),
                pick(|l| l.max),
                api_at(|a| a.p50_ms),
                api_at(|a| a.p99_ms),
                api_at(|a| a.max_ms),
                rss(Role::Server),
                rss(Role::Executor),
                cpu(Role::Server),
                cpu(Role::Executor),
                joined(
                    i.servers
                        .iter()
                        .map(|s| s.data_dir_bytes.map(|b| b as f64 / MB)),
                    1,
                ),
                joined(
                    i.servers
                        .iter()
                        .map(|s| s.sled_bytes.map(|b| b as f64 / MB)),
                    1,
                ),
            ]);
        }
        let columns = header.len();
        let widths: Vec<usize> = (0..columns)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for row in &rows {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:>width$}"))
                .collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        }
        let _ = writeln!(
            out,
            "(late: lateness of the interval's slots, ms; runs: received in it; api: the probe's requests in it, ms;\n RSS at its end and CPU during it per process, disk at its end per node, \"/\" between them)\n"
        );
        out
    }

    fn totals_table(&self) -> String {
        let t = &self.totals;
        let d = &self.drift;
        let mut rows: Vec<(&str, String)> = vec![
            ("slots expected", t.slots_expected.to_string()),
            (
                "runs received",
                format!(
                    "{} ({} before the window, {} in the drain)",
                    t.runs_received, t.runs_before_window, t.runs_after_window
                ),
            ),
            ("lost slots", t.lost_slots.to_string()),
            ("duplicate slots", t.duplicate_slots.to_string()),
            ("late slots (> 1 s)", t.late_slots.to_string()),
            (
                "runs kept (est.)",
                format!(
                    "{} (per job its runs received, at most {})",
                    t.runs_retained_estimate, self.setup.history_limit
                ),
            ),
        ];
        if self.malformed_receipts > 0 {
            rows.push(("malformed receipts", self.malformed_receipts.to_string()));
        }
        rows.push((
            "p99 drift",
            match (
                d.p99_drift_percent,
                d.p99_last_interval,
                d.p99_base_interval,
            ) {
                (Some(p), Some(last), Some(base)) => format!(
                    "{p:+.1} % (interval {last}: {} ms against interval {base}: {} ms)",
                    opt_ms(d.p99_last_ms),
                    opt_ms(d.p99_base_ms)
                ),
                _ => "unknown (needs 3 full intervals with runs)".to_string(),
            },
        ));
        rows.push((
            "RSS drift",
            match (d.rss_drift_percent, d.rss_base_interval) {
                (Some(p), Some(base)) => format!(
                    "{p:+.1} % (largest server: {} MiB at the end against {} MiB at interval {base})",
                    opt_mib(d.rss_last_bytes),
                    opt_mib(d.rss_base_bytes)
                ),
                _ => "unknown".to_string(),
            },
        ));
        rows.push((
            "bytes per run kept",
            match (d.bytes_per_retained_run, d.data_dir_bytes_at_end) {
                (Some(per), Some(bytes)) => format!(
                    "{per:.0} (largest data directory {:.1} MB over {} runs)",
                    bytes as f64 / MB,
                    d.runs_retained_estimate
                ),
                _ => "unknown".to_string(),
            },
        ));
        let mut out = String::new();
        for (name, value) in rows {
            let _ = writeln!(out, "{name:<20}{value}");
        }
        out.push('\n');
        for check in &self.targets {
            let verdict = match check.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "unknown",
            };
            let value = check.value.map_or("unknown".to_string(), |v| {
                if v == v.trunc() {
                    format!("{v:.0}")
                } else {
                    format!("{v:.1}")
                }
            });
            let _ = writeln!(
                out,
                "{verdict:<8}{} {} (is {value})",
                check.figure, check.target
            );
        }
        let _ = writeln!(
            out,
            "\nfiles: {}/soak.json, {}/soak.svg",
            self.setup.output_dir, self.setup.output_dir
        );
        out
    }

    /// The chart's panels: lateness, server RSS, data directories, API.
    pub fn panels(&self) -> Vec<Panel> {
        let lateness = |name: &str, f: fn(&Lateness) -> f64| Series {
            name: name.to_string(),
            values: self
                .intervals
                .iter()
                .map(|i| i.runs.lateness_ms.as_ref().map(f))
                .collect(),
        };
        let nodes: Vec<u64> = self
            .intervals
            .first()
            .map(|i| i.servers.iter().map(|s| s.node).collect())
            .unwrap_or_default();
        let per_node = |f: &dyn Fn(&SoakInterval, u64) -> Option<f64>| -> Vec<Series> {
            nodes
                .iter()
                .map(|node| Series {
                    name: format!("node{node}"),
                    values: self.intervals.iter().map(|i| f(i, *node)).collect(),
                })
                .collect()
        };
        let mut panels = vec![
            Panel {
                title: "Lateness of the interval's slots (ms)".into(),
                series: vec![lateness("p50", |l| l.p50), lateness("p99", |l| l.p99)],
            },
            Panel {
                title: "Server RSS (MiB)".into(),
                series: per_node(&|i, node| {
                    i.of_role(Role::Server)
                        .find(|p| p.node_id == Some(node))
                        .and_then(|p| p.rss_bytes)
                        .map(|b| b as f64 / MIB)
                }),
            },
            Panel {
                title: "Data directory (MB)".into(),
                series: per_node(&|i, node| {
                    i.servers
                        .iter()
                        .find(|s| s.node == node)
                        .and_then(|s| s.data_dir_bytes)
                        .map(|b| b as f64 / MB)
                }),
            },
        ];
        if self.setup.api_probe {
            panels.push(Panel {
                title: "Admin API p99, all requests (ms)".into(),
                series: vec![Series {
                    name: "p99".into(),
                    values: self
                        .intervals
                        .iter()
                        .map(|i| i.api_latency.as_ref().and_then(|a| a.all.p99_ms))
                        .collect(),
                }],
            });
        }
        panels
    }

    /// The chart's title and subtitle.
    pub fn chart_title(&self) -> (String, String) {
        let s = &self.setup;
        (
            format!(
                "cronmesh soak: {} node{}, {} executor{}, {} jobs ({}), {} s",
                s.nodes,
                plural(s.nodes),
                s.executors,
                plural(s.executors as usize),
                s.jobs,
                s.schedule,
                s.duration_seconds,
            ),
            format!(
                "window {} to {}; {} runs kept per job; lost {}, duplicate {}",
                self.window.start,
                self.window.end,
                s.history_limit,
                self.totals.lost_slots,
                self.totals.duplicate_slots
            ),
        )
    }
}

/// `values` with `digits` decimals, joined by `/`; `-` for a missing one.
fn joined(values: impl Iterator<Item = Option<f64>>, digits: usize) -> String {
    let cells: Vec<String> = values
        .map(|v| v.map_or("-".to_string(), |v| format!("{v:.digits$}")))
        .collect();
    if cells.is_empty() {
        "-".to_string()
    } else {
        cells.join("/")
    }
}

fn ms(value: f64) -> String {
    format!("{value:.1}")
}

fn opt_ms(value: Option<f64>) -> String {
    value.map_or("unknown".to_string(), |v| format!("{v:.1}"))
}

fn opt_mib(bytes: Option<u64>) -> String {
    bytes.map_or("unknown".to_string(), |b| format!("{:.1}", b as f64 / MIB))
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::soak_targets;

    fn process(label: &str, role: Role, node: Option<u64>, rss_mib: u64) -> ProcessSample {
        ProcessSample {
            label: label.into(),
            role,
            node_id: node,
            pid: Some(100),
            rss_bytes: Some(rss_mib << 20),
            cpu_seconds: Some(0.5),
        }
    }

    /// A report of `n` intervals of 3 s over one node and one executor.
    fn report(n: usize) -> SoakReport {
        let intervals: Vec<SoakInterval> = (0..n)
            .map(|i| SoakInterval {
                interval: i + 1,
                start_seconds: 3.0 * i as f64,
                end_seconds: 3.0 * (i + 1) as f64,
                runs: IntervalRuns {
                    runs_received: 60,
                    slots_expected: 60,
                    lateness_ms: Some(Lateness {
                        p50: 2.0,
                        p99: 5.0 + i as f64,
                        max: 9.0,
                    }),
                    ..IntervalRuns::default()
                },
                api_latency: Some(StretchLatency {
                    all: KindFigures {
                        count: 60,
                        p50_ms: Some(1.0),
                        p99_ms: Some(4.0),
                        max_ms: Some(6.0),
                        ..KindFigures::default()
                    },
                    ..StretchLatency::default()
                }),
                processes: vec![
                    process("node1", Role::Server, Some(1), 40 + i as u64),
                    process("executor1", Role::Executor, None, 20),
                ],
                servers: vec![ServerDisk {
                    node: 1,
                    data_dir_bytes: Some(2_000_000),
                    data_dir_apparent_bytes: Some(3_000_000),
                    sled_bytes: Some(2_500_000),
                }],
            })
            .collect();
        let inputs: Vec<IntervalInputs> = intervals.iter().map(|i| i.inputs(3)).collect();
        let drift = soak_targets::drift(&inputs, 3.0 * n as f64, 240);
        SoakReport {
            scenario: Scenario::Soak,
            setup: SoakSetup {
                nodes: 1,
                executors: 1,
                jobs: 20,
                schedule: "@every 1s".into(),
                duration_seconds: 3 * n as u64,
                sample_seconds: 3,
                drain_seconds: 5,
                history_limit: 1000,
                api_probe: true,
                data_dir: "/tmp/bench".into(),
                data_dir_kept: false,
                output_dir: "/tmp/bench-soak".into(),
            },
            job_creation: Creation {
                jobs: 20,
                seconds: 0.1,
                jobs_per_second: 200.0,
                retries: 0,
            },
            window: Window {
                start: "2026-12-01T00:00:00.000Z".into(),
                end: "2026-12-01T00:00:12.000Z".into(),
                seconds: 3 * n as u64,
            },
            leader_at_start: 1,
            leader_at_end: Some(1),
            targets: soak_targets::targets(&drift, 0, 0),
            drift,
            intervals,
            totals: RunTotals {
                slots_expected: 60 * n as u64,
                runs_received: 60 * n as u64 + 30,
                ..RunTotals::default()
            },
            malformed_receipts: 0,
        }
    }

    #[test]
    fn the_table_has_a_row_per_interval_and_the_verdicts() {
        let table = report(4).table();
        assert!(table.starts_with("cronmesh bench --scenario soak: 1 node, 1 executor, 20 jobs"));
        let rows: Vec<&str> = table
            .lines()
            .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
            .collect();
        assert_eq!(rows.len(), 4, "{table}");
        assert!(
            rows[3].contains("43/") || rows[3].contains(" 43 "),
            "{table}"
        );
        assert!(table.contains("p99 drift           +33.3 %"), "{table}");
        assert!(table.contains("MISSED  p99 drift ≤ 20 %"), "{table}");
        assert!(table.contains("met     lost slots ≤ 0 (is 0)"), "{table}");
        assert!(table.contains("bytes per run kept  8333"), "{table}");
        assert!(table.contains("/tmp/bench-soak/soak.svg"));
    }

    #[test]
    fn the_json_names_the_scenario_and_flattens_the_runs() -> anyhow::Result<()> {
        let json = serde_json::to_value(report(3))?;
        assert_eq!(json["scenario"], "soak");
        let intervals = json["intervals"].as_array().cloned().unwrap_or_default();
        assert_eq!(intervals.len(), 3);
        assert_eq!(intervals[1]["runs_received"], 60);
        assert_eq!(intervals[1]["lateness_ms"]["p99"], 6.0);
        assert_eq!(intervals[1]["processes"][0]["rss_bytes"], 41u64 << 20);
        assert_eq!(intervals[1]["servers"][0]["sled_bytes"], 2_500_000);
        assert_eq!(intervals[1]["api_latency"]["all"]["p99_ms"], 4.0);
        assert_eq!(json["targets"].as_array().map(Vec::len), Some(5));
        Ok(())
    }

    #[test]
    fn the_panels_follow_the_intervals() -> anyhow::Result<()> {
        let report = report(5);
        let panels = report.panels();
        assert_eq!(panels.len(), 4);
        assert!(panels
            .iter()
            .flat_map(|p| &p.series)
            .all(|s| s.values.len() == 5 && s.values.iter().all(Option::is_some)));
        assert_eq!(panels[1].series[0].name, "node1");
        assert_eq!(panels[2].series[0].values[0], Some(2.0));
        let (title, subtitle) = report.chart_title();
        let svg = super::super::soak_chart::svg((&title, &subtitle), 5, 3, &panels);
        assert_eq!(svg.matches("<polyline").count(), 5);
        Ok(())
    }
}
