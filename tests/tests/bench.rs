//! `cronmesh bench` end to end: it starts its own cluster of real
//! processes, and its JSON figures must show every slot of the window
//! received exactly once and recorded. Nothing about time is asserted.

use std::{
    io::Read,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use cronmesh_tests::process::binary;
use serde_json::Value;

/// Longest a bench of a few seconds may take, start-up and shutdown included.
const LIMIT: Duration = Duration::from_secs(240);

/// Runs `cronmesh bench ARGS --json` with its data in a temporary
/// directory and returns the parsed report; on failure shows the logs.
fn bench(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    bench_in(dir.path(), args)
}

/// Runs `cronmesh bench ARGS --json` with its data in `dir/bench` and
/// returns the parsed report; on failure shows the logs.
fn bench_in(dir: &Path, args: &[&str]) -> Value {
    let data = dir.join("bench");
    let data_arg = data.to_string_lossy().to_string();
    let mut child = Command::new(binary())
        .arg("bench")
        .args(args)
        .args(["--json", "--data-dir", &data_arg])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn cronmesh bench");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the bench") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            show_logs(&data);
            panic!("cronmesh bench {args:?} did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = reader.join().unwrap_or_default();
    if !status.success() {
        show_logs(&data);
        panic!("cronmesh bench {args:?} failed ({status}); stdout: {text}");
    }
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("the bench's stdout is not one JSON object ({e}): {text}"))
}

/// The last lines of every child log the bench kept.
fn show_logs(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("--- {} (last 30 lines)", path.display());
            for line in &lines[lines.len().saturating_sub(30)..] {
                eprintln!("{line}");
            }
        }
    }
}

fn figure(report: &Value, name: &str) -> u64 {
    report[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} missing from {report}"))
}

/// The correctness figures of a bench of 50 `@every 1s` jobs over 5 s.
fn assert_every_slot_once(report: &Value, nodes: u64) {
    assert_eq!(report["setup"]["nodes"], nodes, "{report}");
    let expected = figure(report, "slots_expected");
    assert_eq!(expected, 50 * 5, "{report}");
    assert_eq!(figure(report, "lost_slots"), 0, "{report}");
    assert_eq!(figure(report, "duplicate_slots"), 0, "{report}");
    assert!(figure(report, "runs_received") >= expected, "{report}");
    assert!(figure(report, "run_records") >= expected, "{report}");
    assert_eq!(
        figure(report, "slots_with_run_record"),
        expected,
        "{report}"
    );
    assert_eq!(report["job_creation"]["jobs"], 50, "{report}");
    let processes = report["processes"].as_array().cloned().unwrap_or_default();
    assert_eq!(processes.len() as u64, nodes + 2, "{report}");
}

/// 50 jobs for 5 s on `nodes` nodes and 2 executors.
fn small_bench(nodes: u64) -> Value {
    let nodes_arg = nodes.to_string();
    bench(&[
        "--nodes",
        &nodes_arg,
        "--executors",
        "2",
        "--jobs",
        "50",
        "--duration",
        "5",
    ])
}

#[test]
fn bench_three_nodes_receives_every_slot_once() {
    assert_every_slot_once(&small_bench(3), 3);
}

#[test]
fn bench_one_node_receives_every_slot_once() {
    assert_every_slot_once(&small_bench(1), 1);
}

/// A short soak on one node: every interval has the server's memory and
/// disk, the middle ones received runs, nothing was lost or doubled, and
/// the chart was written beside the data directory.
#[test]
fn bench_soak_samples_every_interval() {
    let dir = tempfile::tempdir().expect("temp dir");
    let report = bench_in(
        dir.path(),
        &[
            "--scenario",
            "soak",
            "--nodes",
            "1",
            "--executors",
            "1",
            "--jobs",
            "20",
            "--duration",
            "12",
            "--sample-seconds",
            "3",
        ],
    );
    assert_eq!(report["scenario"], "soak", "{report}");
    let intervals = report["intervals"].as_array().cloned().unwrap_or_default();
    assert!(intervals.len() >= 3, "{report}");
    for interval in &intervals {
        let processes = interval["processes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let server = processes
            .iter()
            .find(|p| p["role"] == "server")
            .unwrap_or_else(|| panic!("no server in {interval}"));
        assert!(server["rss_bytes"].as_u64().unwrap_or(0) > 0, "{interval}");
        assert!(
            interval["servers"][0]["data_dir_bytes"]
                .as_u64()
                .unwrap_or(0)
                > 0,
            "{interval}"
        );
        assert!(
            interval["servers"][0]["sled_bytes"].as_u64().unwrap_or(0) > 0,
            "sled's own size, from /metrics: {interval}"
        );
    }
    for interval in &intervals[1..intervals.len() - 1] {
        assert!(figure(interval, "runs_received") > 0, "{interval}");
    }
    let totals = &report["totals"];
    assert!(figure(totals, "slots_expected") > 0, "{report}");
    assert_eq!(figure(totals, "lost_slots"), 0, "{report}");
    assert_eq!(figure(totals, "duplicate_slots"), 0, "{report}");

    let output = dir.path().join("bench-soak");
    let svg = std::fs::read_to_string(output.join("soak.svg")).expect("soak.svg beside the data");
    assert!(svg.starts_with("<svg"), "{svg}");
    let json =
        std::fs::read_to_string(output.join("soak.json")).expect("soak.json beside the data");
    let written: Value = serde_json::from_str(&json).expect("soak.json is JSON");
    assert_eq!(
        written["intervals"].as_array().map(Vec::len),
        Some(intervals.len())
    );
}
