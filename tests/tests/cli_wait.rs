//! Scripts can run a job and act on how it ended: `job trigger --wait`
//! and `run output --follow` wait for the run and exit 5 unless it
//! succeeded; `--follow` prints the output as it is written.

use cronmesh_tests::{api::Api, process};
use serde_json::json;

fn shell_job(id: &str, command: &str) -> serde_json::Value {
    json!({"id": id, "schedule": "@manual", "target": {"type": "shell", "command": command}})
}

#[tokio::test]
async fn trigger_wait_exits_with_the_runs_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let node = process::dev(dir.path(), &[]);
    let api = Api::new(node.url.clone());
    api.create_job(shell_job("passes", "sleep 1; echo fine"))
        .await;
    api.create_job(shell_job("breaks", "echo broken; exit 3"))
        .await;

    let (code, stdout, stderr) = process::cli(&node.url, &["job", "trigger", "passes", "--wait"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("succeeded"), "{stdout}");
    let runs = api.runs_of("passes").await;
    assert_eq!(
        runs[0]["status"], "succeeded",
        "it returned only once the run ended"
    );

    let (code, stdout, stderr) = process::cli(&node.url, &["job", "trigger", "breaks", "--wait"]);
    assert_eq!(code, Some(5), "{stdout}{stderr}");
    assert!(stderr.contains("ended failed"), "{stderr}");
}

#[tokio::test]
async fn output_follow_prints_as_the_run_writes_and_exits_with_its_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let node = process::dev(dir.path(), &[]);
    let api = Api::new(node.url.clone());
    api.create_job(shell_job(
        "steps",
        "echo one; sleep 1; echo two; sleep 1; echo three",
    ))
    .await;
    let (status, body) = api.post("/v1/jobs/steps/trigger", json!({})).await;
    assert_eq!(status, 202, "{body}");
    let id = body["runs"][0]["id"].as_str().unwrap().to_string();

    let (code, stdout, stderr) = process::cli(&node.url, &["run", "output", &id, "--follow"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "one\ntwo\nthree\n", "each line once, in order");

    api.create_job(shell_job("dies", "echo bye; exit 1")).await;
    let (_, body) = api.post("/v1/jobs/dies/trigger", json!({})).await;
    let id = body["runs"][0]["id"].as_str().unwrap().to_string();
    let (code, stdout, _) = process::cli(&node.url, &["run", "output", &id, "-f"]);
    assert_eq!(code, Some(5));
    assert_eq!(stdout, "bye\n");
}
