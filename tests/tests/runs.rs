//! Jobs run end to end: a real scheduler process dispatches to real
//! executor processes over HTTP and records every run.

use std::time::Duration;

use cronmesh_tests::{
    api::{with_status, Api},
    fleet::Fleet,
    process::{executor, server},
    wait,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn output_lines(run: &Value) -> Vec<String> {
    run["output"]
        .as_str()
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_second_job_succeeds_with_output_and_environment() {
    let c = Fleet::start(1);
    let command = "echo hello; echo \"$CRONMESH_JOB_ID|$CRONMESH_NAMESPACE|$CRONMESH_RUN_ID|$CRONMESH_SCHEDULED_AT|$CRONMESH_ATTEMPT|$CRONMESH_SHARD_INDEX|$CRONMESH_SHARD_COUNT|$CRONMESH_SHARD_PARAM|$CRONMESH_PARAMS\"";
    c.api
        .create_job(json!({
            "id": "hello", "schedule": "@every 1s", "params": "p=1",
            "shard_params": ["first"],
            "target": {"type": "shell", "command": command}
        }))
        .await;
    let runs = wait::until("two succeeded runs", Duration::from_secs(15), || async {
        let runs = c.api.runs_of("hello").await;
        (with_status(&runs, "succeeded").len() >= 2).then_some(runs)
    })
    .await;
    for run in with_status(&runs, "succeeded") {
        let lines = output_lines(run);
        assert_eq!(lines[0], "hello");
        let scheduled =
            chrono::DateTime::parse_from_rfc3339(run["scheduled_at"].as_str().unwrap()).unwrap();
        let expected = format!(
            "hello|default|{}|{}|1|0|1|first|p=1",
            run["id"].as_str().unwrap(),
            scheduled
                .to_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        assert_eq!(lines[1], expected);
        assert_eq!(run["exit_code"], 0);
        assert_eq!(run["trigger"], "schedule");
        assert!(run["executor"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"));
    }
    // One slot, one run.
    let mut slots: Vec<&str> = runs
        .iter()
        .map(|r| r["scheduled_at"].as_str().unwrap())
        .collect();
    let before = slots.len();
    slots.sort();
    slots.dedup();
    assert_eq!(slots.len(), before, "a slot has two runs");
    let (status, job) = c.api.get("/v1/jobs/hello").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["next_fire_times"].as_array().unwrap().len(), 5);
    assert!(job["last_run"]["id"].is_string());
}

#[tokio::test]
async fn failing_command_is_retried_with_growing_backoff() {
    let c = Fleet::start(1);
    c.api
        .create_job(json!({
            "id": "flaky", "schedule": "@manual",
            "retry": {"max_retries": 2, "backoff": "400ms", "max_backoff": "10s"},
            "target": {"type": "shell", "command": "echo attempt $CRONMESH_ATTEMPT; exit 3"}
        }))
        .await;
    let (status, _) = c.api.post("/v1/jobs/flaky/trigger", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let runs = wait::until("three failed attempts", Duration::from_secs(20), || async {
        let runs = c.api.runs_of("flaky").await;
        (with_status(&runs, "failed").len() == 3).then_some(runs)
    })
    .await;
    let mut attempts: Vec<&Value> = runs.iter().collect();
    attempts.sort_by_key(|r| r["attempt"].as_u64());
    let numbers: Vec<u64> = attempts
        .iter()
        .map(|r| r["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![1, 2, 3]);
    for run in &attempts {
        assert_eq!(run["exit_code"], 3);
        assert_eq!(output_lines(run)[0], format!("attempt {}", run["attempt"]));
    }
    assert_eq!(attempts[0]["trigger"], "manual");
    assert_eq!(attempts[1]["trigger"], "retry");
    assert_eq!(attempts[1]["retry_of"], attempts[0]["id"]);
    assert_eq!(attempts[2]["retry_of"], attempts[1]["id"]);
    let time =
        |r: &Value, f: &str| chrono::DateTime::parse_from_rfc3339(r[f].as_str().unwrap()).unwrap();
    let first_wait = time(attempts[1], "created_at") - time(attempts[0], "finished_at");
    let second_wait = time(attempts[2], "created_at") - time(attempts[1], "finished_at");
    assert!(
        first_wait >= chrono::Duration::milliseconds(400),
        "first backoff {first_wait}"
    );
    assert!(
        second_wait >= chrono::Duration::milliseconds(800),
        "second backoff doubles: {second_wait}"
    );
    // No fourth attempt follows.
    assert_eq!(c.api.runs_of("flaky").await.len(), 3);
}

#[tokio::test]
async fn timeout_ends_the_run_and_leaves_no_process() {
    let c = Fleet::start(1);
    let pid_file = c.dir.path().join("pgid");
    c.api
        .create_job(json!({
            "id": "slow", "schedule": "@manual", "timeout": "1s",
            "target": {"type": "shell", "command": format!("echo $$ > {}; sleep 30 & sleep 30; wait", pid_file.display())}
        }))
        .await;
    c.api.post("/v1/jobs/slow/trigger", json!({})).await;
    let run = wait::until("a timed_out run", Duration::from_secs(15), || async {
        c.api
            .runs_of("slow")
            .await
            .into_iter()
            .find(|r| r["status"] == "timed_out")
    })
    .await;
    assert!(
        run["error"].as_str().unwrap().contains("timed out"),
        "{run}"
    );
    cronmesh_tests::process::assert_group_gone(&pid_file).await;
}

#[tokio::test]
async fn kill_ends_a_running_run_as_killed() {
    let c = Fleet::start(1);
    let pid_file = c.dir.path().join("pgid");
    c.api
        .create_job(json!({
            "id": "long", "schedule": "@manual",
            "target": {"type": "shell", "command": format!("echo $$ > {}; echo started; sleep 30", pid_file.display())}
        }))
        .await;
    let (_, trigger) = c.api.post("/v1/jobs/long/trigger", json!({})).await;
    let id = trigger["runs"][0]["id"].as_str().unwrap().to_string();
    wait::until("the run to be running", Duration::from_secs(10), || async {
        let (_, run) = c.api.get(&format!("/v1/runs/{id}")).await;
        (run["status"] == "running").then_some(())
    })
    .await;
    let (_, live) = c.api.get(&format!("/v1/runs/{id}/output")).await;
    assert_eq!(
        live,
        Value::String("started\n".into()),
        "output while running comes from the executor"
    );
    let (status, run) = c.api.post(&format!("/v1/runs/{id}/kill"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    assert_eq!(run["status"], "killed");
    cronmesh_tests::process::assert_group_gone(&pid_file).await;
    let (status, again) = c.api.post(&format!("/v1/runs/{id}/kill"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
}

#[tokio::test]
async fn manual_trigger_passes_params_and_http_targets_are_called_directly() {
    let c = Fleet::start(1);
    c.api
        .create_job(json!({"id": "echo", "schedule": "@manual", "target": {"type": "shell", "command": "printf %s \"$CRONMESH_PARAMS\""}}))
        .await;
    let (status, body) = c
        .api
        .post("/v1/jobs/echo/trigger", json!({"params": "region=eu"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["runs"][0]["trigger"], "manual");
    let id = body["runs"][0]["id"].as_str().unwrap().to_string();
    let run = wait::until("the manual run", Duration::from_secs(10), || async {
        let (_, run) = c.api.get(&format!("/v1/runs/{id}")).await;
        (run["status"] == "succeeded").then_some(run)
    })
    .await;
    assert_eq!(run["output"], "region=eu");

    let health = format!("{}/healthz", c.api.base);
    c.api
        .create_job(
            json!({"id": "ping", "schedule": "@manual", "target": {"type": "http", "url": health}}),
        )
        .await;
    c.api.post("/v1/jobs/ping/trigger", json!({})).await;
    let run = wait::until("the HTTP run", Duration::from_secs(10), || async {
        c.api
            .runs_of("ping")
            .await
            .into_iter()
            .find(|r| r["status"] == "succeeded")
    })
    .await;
    assert_eq!(run["exit_code"], 200);
    assert!(run["output"].as_str().unwrap().contains("ok"));
}

#[tokio::test]
async fn runs_spread_round_robin_and_fail_over_from_a_dead_executor() {
    let c = Fleet::start(2);
    c.api
        .create_job(json!({"id": "spread", "schedule": "@manual", "target": {"type": "shell", "command": "true"}}))
        .await;
    for _ in 0..4 {
        c.api.post("/v1/jobs/spread/trigger", json!({})).await;
    }
    let runs = wait::until("four runs", Duration::from_secs(10), || async {
        let runs = c.api.runs_of("spread").await;
        (with_status(&runs, "succeeded").len() == 4).then_some(runs)
    })
    .await;
    let mut executors: Vec<&str> = runs
        .iter()
        .map(|r| r["executor"].as_str().unwrap())
        .collect();
    executors.sort();
    executors.dedup();
    assert_eq!(executors.len(), 2, "round robin uses both executors");

    // A scheduler that knows a dead executor first fails over to the live one.
    let dir = tempfile::tempdir().unwrap();
    let live = executor("default");
    // Port 1 sorts before any ephemeral port, so `first` picks it; nothing listens.
    let dead = "http://127.0.0.1:1";
    let node = server(dir.path(), "127.0.0.1:0", &[dead, &live.url]);
    let api = Api::new(node.url.clone());
    api.create_job(json!({"id": "fo", "schedule": "@manual", "routing": "first", "target": {"type": "shell", "command": "true"}}))
        .await;
    api.post("/v1/jobs/fo/trigger", json!({})).await;
    let run = wait::until("the failed-over run", Duration::from_secs(15), || async {
        api.runs_of("fo")
            .await
            .into_iter()
            .find(|r| r["status"] == "succeeded")
    })
    .await;
    assert_eq!(run["executor"], live.url.as_str());
}
