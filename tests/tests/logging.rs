//! Logs: with `--log-format json` every line is a JSON object, and the
//! lines about one run carry a `run` span with its id on both sides, the
//! scheduler that dispatched it and the executor that ran it.

use std::time::Duration;

use cronmesh_tests::{
    api::Api,
    process::{executor_with, server_with, Proc},
    wait,
};
use serde_json::{json, Value};

/// `proc`'s JSON log lines; panics on a line that is not JSON.
fn json_lines(proc: &Proc) -> Vec<Value> {
    proc.log_lines()
        .iter()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
        })
        .collect()
}

/// The first line with `message` logged inside the `run` span of `run_id`.
fn run_line(lines: &[Value], message: &str, run_id: &str) -> Option<Value> {
    lines
        .iter()
        .find(|line| {
            line["fields"]["message"] == message
                && line["span"]["name"] == "run"
                && line["span"]["run_id"] == run_id
        })
        .cloned()
}

#[tokio::test]
async fn json_logs_carry_the_run_span_on_scheduler_and_executor() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor_with("default", &["--log-format", "json"]);
    let node = server_with(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &[&executor.url],
        &["--log-format", "json"],
    );
    let api = Api::new(node.url.clone());
    api.create_job(json!({"id": "breaks", "schedule": "@manual",
        "target": {"type": "shell", "command": "exit 3"}}))
        .await;
    let (status, body) = api.post("/v1/jobs/breaks/trigger", json!({})).await;
    assert_eq!(status, 202, "{body}");
    let run_id = body["runs"][0]["id"].as_str().unwrap().to_string();

    let ended = wait::until(
        "the scheduler's run-ended line",
        Duration::from_secs(30),
        || {
            let lines = json_lines(&node);
            let run_id = run_id.clone();
            async move { run_line(&lines, "run ended", &run_id) }
        },
    )
    .await;
    assert_eq!(ended["level"], "INFO");
    assert_eq!(ended["fields"]["status"], "failed");
    assert_eq!(ended["span"]["job"], "breaks");
    assert_eq!(ended["span"]["attempt"], 1);

    let finished = wait::until(
        "the executor's run-finished line",
        Duration::from_secs(30),
        || {
            let lines = json_lines(&executor);
            let run_id = run_id.clone();
            async move { run_line(&lines, "run finished", &run_id) }
        },
    )
    .await;
    assert_eq!(finished["fields"]["exit_code"], 3);
    assert_eq!(finished["span"]["job"], "breaks");
}

#[tokio::test]
async fn text_logs_are_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let node = server_with(&dir.path().join("data"), "127.0.0.1:0", &[], &[]);
    // Warnings about the node's flags come first; the node is serving once an
    // INFO line shows up.
    let lines = wait::until("an INFO log line", Duration::from_secs(30), || {
        let lines = node.log_lines();
        async move {
            lines
                .iter()
                .any(|line| line.contains("INFO"))
                .then_some(lines)
        }
    })
    .await;
    assert!(
        lines
            .iter()
            .all(|line| serde_json::from_str::<Value>(line).is_err()),
        "{lines:?}"
    );
}
