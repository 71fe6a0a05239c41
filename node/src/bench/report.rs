//! The bench's result: one JSON object with stable snake_case fields
//! (`--json`), or a table for people.

use std::{collections::BTreeMap, fmt::Write as _};

use serde::Serialize;

use super::{
    analysis::SlotFigures,
    api_probe::ApiLatency,
    args::Target,
    bursts::{self, Burst},
    calls::CallFigures,
    failover::{EventKind, FailoverFigures},
    follower_catch_up,
    load::Creation,
    per_run::{self, PerRun},
    processes::Role,
};

/// Everything `cronmesh bench` measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub setup: Setup,
    pub job_creation: Creation,
    pub window: Window,
    /// What became of the window's slots at the executors.
    #[serde(flatten)]
    pub slots: SlotFigures,
    /// Run records of the bench's jobs scheduled in the window, read from
    /// the leader after the drain.
    pub run_records: u64,
    pub run_records_by_status: BTreeMap<String, u64>,
    /// Distinct (job, slot, shard) with a run record.
    pub slots_with_run_record: u64,
    /// Runs received per second of window.
    pub dispatches_per_second: f64,
    /// Receipt lines that could not be read.
    pub malformed_receipts: u64,
    pub leader_at_start: u64,
    pub leader_at_end: Option<u64>,
    /// How far the Raft term moved from the window's start to the end of
    /// the drain: elections held, a failed one included (0 with one node,
    /// which has no Raft). Null when a leader's term could not be read.
    pub elections: Option<u64>,
    pub processes: Vec<ProcessFigures>,
    pub failover: Vec<FailoverFigures>,
    /// With `--target http`: the calls and how they matched their runs
    /// (the slot figures above are then the calls'); null otherwise.
    pub http_calls: Option<CallFigures>,
    /// Each slot of the window with at least two runs expected: how the
    /// burst of runs it fires arrived.
    pub bursts: Vec<Burst>,
    /// The admin API's latency on the leader during the window; null with
    /// `--no-api-probe` (or if the probe failed).
    pub api_latency: Option<ApiLatency>,
    /// Per scheduler node, the CPU and store writes a run received cost
    /// over the window.
    pub per_run: Vec<PerRun>,
}

/// What was measured: the flags that shape the load.
#[derive(Clone, Debug, Serialize)]
pub struct Setup {
    pub nodes: usize,
    pub executors: u32,
    pub jobs: u32,
    pub schedule: String,
    /// `executor`: runs received are executors' receipts; `http`: calls
    /// at the bench's receiver.
    pub target: Target,
    pub duration_seconds: u64,
    pub drain_seconds: u64,
    /// Logs, receipts and node data; gone after the run unless kept.
    pub data_dir: String,
    pub data_dir_kept: bool,
}

/// The measurement window: slots scheduled in [start, end) count.
#[derive(Clone, Debug, Serialize)]
pub struct Window {
    /// RFC 3339, UTC.
    pub start: String,
    /// Exclusive.
    pub end: String,
    pub seconds: u64,
}

/// One OS process (a restarted node has two).
#[derive(Clone, Debug, Serialize)]
pub struct ProcessFigures {
    pub label: String,
    pub role: Role,
    pub node_id: Option<u64>,
    /// 1 for the first start, 2 after a restart, ...
    pub incarnation: u32,
    pub pid: u32,
    /// Led the cluster at the window's start or at its end.
    pub leader: bool,
    /// Ended by the bench's kill -9 rather than at the end.
    pub killed: bool,
    /// User plus system CPU over the process's life.
    pub cpu_seconds: f64,
    /// The part of it spent inside the window (from its start, for a
    /// process started during the window).
    pub cpu_seconds_window: f64,
    /// Peak resident memory (VmHWM).
    pub peak_rss_bytes: u64,
}

impl Report {
    /// The table printed without `--json`.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let s = &self.setup;
        let _ = writeln!(
            out,
            "cronmesh bench: {} node{}, {} executor{}, {} jobs ({}, {}), {} s window + {} s drain",
            s.nodes,
            plural(s.nodes as u64),
            s.executors,
            plural(u64::from(s.executors)),
            s.jobs,
            s.schedule,
            match s.target {
                Target::Executor => "noop on the executors",
                Target::Http => "HTTP calls of the bench's receiver",
            },
            s.duration_seconds,
            s.drain_seconds
        );
        let c = &self.job_creation;
        let mut rows: Vec<(&str, String)> = vec![
            (
                "job creation",
                format!(
                    "{} jobs in {:.2} s ({:.0} jobs/s, {} retries)",
                    c.jobs, c.seconds, c.jobs_per_second, c.retries
                ),
            ),
            (
                "window",
                format!("{} to {}", self.window.start, self.window.end),
            ),
            ("slots expected", self.slots.slots_expected.to_string()),
            (
                "run records",
                format!(
                    "{} ({})",
                    self.run_records,
                    self.run_records_by_status
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            (
                match self.http_calls {
                    Some(_) => "calls received",
                    None => "runs received",
                },
                format!(
                    "{} ({:.1} dispatches/s)",
                    self.slots.runs_received, self.dispatches_per_second
                ),
            ),
            ("lost slots", self.slots.lost_slots.to_string()),
            (
                "duplicate slots",
                format!(
                    "{} ({} of them one run id on two executors)",
                    self.slots.duplicate_slots, self.slots.duplicate_slots_same_run
                ),
            ),
            ("late slots (> 1 s)", self.slots.late_slots.to_string()),
            (
                "lateness",
                match &self.slots.lateness_ms {
                    Some(l) => format!(
                        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                        l.p50, l.p99, l.max
                    ),
                    None => "no run arrived".to_string(),
                },
            ),
            (
                "leader",
                match self.leader_at_end {
                    Some(end) if end == self.leader_at_start => format!("node{end}"),
                    Some(end) => format!(
                        "node{} at the start, node{end} at the end",
                        self.leader_at_start
                    ),
                    None => format!(
                        "node{} at the start, none agreed at the end",
                        self.leader_at_start
                    ),
                },
            ),
            (
                "elections",
                self.elections
                    .map_or_else(|| "unknown".to_string(), |n| n.to_string()),
            ),
        ];
        if let Some(calls) = &self.http_calls {
            rows.extend(call_rows(calls));
        }
        if let Some(api) = &self.api_latency {
            rows.extend([
                ("api health", api.health.text()),
                ("api list", api.list.text()),
                ("api create", api.create.text()),
            ]);
        }
        if self.malformed_receipts > 0 {
            rows.push(("malformed receipts", self.malformed_receipts.to_string()));
        }
        for (name, value) in rows {
            let _ = writeln!(out, "{name:<20}{value}");
        }
        for f in &self.failover {
            let _ = writeln!(
                out,
                "\n{} at {} s (node{} {}, leader after: {})",
                match f.event {
                    EventKind::KillLeader => "kill leader",
                    EventKind::RestartLeader => "restart leader",
                    EventKind::KillFollower => "kill follower",
                    EventKind::RestartFollower => "restart follower",
                },
                f.at_seconds,
                f.killed_node,
                match f.event {
                    EventKind::RestartFollower => "restarted",
                    _ => "killed",
                },
                f.leader_after
                    .map_or_else(|| "none agreed".to_string(), |l| format!("node{l}"))
            );
            for (name, value) in failover_rows(f) {
                let _ = writeln!(out, "  {name:<22}{value}");
            }
        }
        out.push_str(&bursts::table(&self.bursts));
        let _ = writeln!(
            out,
            "\n{:<14}{:>8}  {:>8}  {:>14}  {:>10}",
            "process", "pid", "cpu s", "cpu s (window)", "peak rss"
        );
        for p in &self.processes {
            let mut name = p.label.clone();
            if p.incarnation > 1 {
                name.push_str(&format!("#{}", p.incarnation));
            }
            if p.leader {
                name.push_str(" *");
            }
            if p.killed {
                name.push_str(" †");
            }
            let _ = writeln!(
                out,
                "{name:<14}{:>8}  {:>8.2}  {:>14.2}  {:>6.1} MiB",
                p.pid,
                p.cpu_seconds,
                p.cpu_seconds_window,
                p.peak_rss_bytes as f64 / (1024.0 * 1024.0)
            );
        }
        let _ = writeln!(out, "(* leader, † killed by the bench)");
        out.push_str(&per_run::table(&self.per_run, self.leader_at_end));
        out
    }
}

/// The table rows of `--target http`.
fn call_rows(calls: &CallFigures) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        (
            "early calls",
            match calls.earliest_call_ms {
                Some(ms) => format!(
                    "{} (the earliest {ms:.1} ms before its slot)",
                    calls.early_calls
                ),
                None => calls.early_calls.to_string(),
            },
        ),
        (
            "calls matched",
            format!(
                "{} succeeded runs, {} without a call; {} calls in all",
                calls.runs_succeeded, calls.runs_without_call, calls.calls_received
            ),
        ),
    ];
    if calls.other_requests > 0 {
        rows.push(("other requests", calls.other_requests.to_string()));
    }
    rows
}

/// The table rows of one failover event.
fn failover_rows(f: &FailoverFigures) -> Vec<(&'static str, String)> {
    let mut rows = vec![("time without dispatch", opt_ms(f.time_without_dispatch_ms))];
    // A follower's restart kills nothing.
    if f.event != EventKind::RestartFollower {
        rows.push(("kill to first run", opt_ms(f.kill_to_first_receipt_ms)));
    }
    if matches!(
        f.event,
        EventKind::RestartLeader | EventKind::RestartFollower
    ) {
        rows.push((
            "restart to first run",
            opt_ms(f.restart_to_first_receipt_ms),
        ));
    }
    rows.extend([
        (
            "slots counted",
            format!(
                "{} (scheduled {:.1} s to {:.1} s into the window)",
                f.slots_expected, f.slots_from_seconds, f.slots_until_seconds
            ),
        ),
        ("late (> 1 s)", f.late_slots.to_string()),
        ("skipped", f.skipped_slots.to_string()),
        ("lost", f.lost_slots.to_string()),
        ("doubled", f.duplicate_slots.to_string()),
    ]);
    if let Some(catch_up) = &f.follower_catch_up {
        rows.extend(follower_catch_up::rows(catch_up));
    }
    rows
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn opt_ms(ms: Option<f64>) -> String {
    ms.map_or_else(|| "none".to_string(), |ms| format!("{ms:.0} ms"))
}
