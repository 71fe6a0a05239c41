//! SIGTERM on an executor drains it: the run it has finishes and is
//! reported, new runs are handed to another executor of the group, and
//! the process exits cleanly once its work is done.

use std::time::Duration;

use cronmesh_tests::{
    api::{with_status, Api},
    process::{executor_with, server},
    wait,
};
use serde_json::json;

#[tokio::test]
async fn sigterm_lets_running_work_finish_and_hands_new_runs_to_another_executor() {
    let dir = tempfile::tempdir().unwrap();
    let first = executor_with("default", &["--drain-timeout", "60s"]);
    let second = executor_with("default", &["--drain-timeout", "60s"]);
    let node = server(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &[&first.url, &second.url],
    );
    let api = Api::new(node.url.clone());
    api.create_job(json!({"id": "long", "schedule": "@manual",
        "target": {"type": "shell", "command": "sleep 3; echo done"}}))
        .await;
    api.create_job(json!({"id": "quick", "schedule": "@manual",
        "target": {"type": "shell", "command": "echo quick"}}))
        .await;
    let (status, body) = api.post("/v1/jobs/long/trigger", json!({})).await;
    assert_eq!(status, 202, "{body}");
    let long = wait::until("the long run to start", Duration::from_secs(30), || async {
        let runs = api.runs_of("long").await;
        runs.into_iter().find(|r| r["status"] == "running")
    })
    .await;
    let busy_url = long["executor"].as_str().unwrap().to_string();
    let (busy, idle) = if busy_url == first.url {
        (first, second)
    } else {
        (second, first)
    };

    let stopping = std::thread::spawn(move || busy.terminate(Duration::from_secs(60)));
    // Once it says it drains, no new run may land on it.
    wait::until(
        "the busy executor to drain",
        Duration::from_secs(30),
        || async {
            let info = reqwest::get(format!("{busy_url}/v1/info")).await.ok()?;
            let info: serde_json::Value = serde_json::from_slice(&info.bytes().await.ok()?).ok()?;
            (info["draining"] == true).then_some(())
        },
    )
    .await;
    for _ in 0..4 {
        let (status, body) = api.post("/v1/jobs/quick/trigger", json!({})).await;
        assert_eq!(status, 202, "{body}");
    }
    let exit = tokio::task::spawn_blocking(move || stopping.join().expect("terminate"))
        .await
        .unwrap();
    assert_eq!(exit, Some(0), "the executor exits cleanly after draining");

    let long = wait::until("the long run to end", Duration::from_secs(30), || async {
        let runs = api.runs_of("long").await;
        runs.into_iter().find(|r| {
            r["status"] != "running" && r["status"] != "pending" && r["status"] != "dispatched"
        })
    })
    .await;
    assert_eq!(long["status"], "succeeded", "{long}");
    assert_eq!(long["output"], "done\n");

    let quick = wait::until(
        "the quick runs to succeed",
        Duration::from_secs(30),
        || async {
            let runs = api.runs_of("quick").await;
            (with_status(&runs, "succeeded").len() == 4).then_some(runs)
        },
    )
    .await;
    for run in &quick {
        assert_eq!(run["executor"], idle.url.as_str(), "{run}");
    }
}
