//! A scheduler killed with SIGKILL keeps its jobs and history, and the
//! slots it missed while down follow each job's misfire policy.

use std::{collections::HashSet, time::Duration};

use cronmesh_tests::{
    api::Api,
    process::{executor, server},
    wait,
};
use serde_json::{json, Value};

fn slot_key(run: &Value) -> (String, String, u64) {
    (
        run["job_id"].as_str().unwrap().to_string(),
        run["scheduled_at"].as_str().unwrap().to_string(),
        run["shard"]["index"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn restart_keeps_history_and_applies_the_misfire_policy() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor("default");
    let node = server(dir.path(), "127.0.0.1:0", &[&exec.url]);
    let port = node.url.rsplit(':').next().unwrap().to_string();
    let api = Api::new(node.url.clone());
    for (id, policy) in [("once", "fire_once"), ("skipper", "skip")] {
        api.create_job(json!({
            "id": id, "schedule": "@every 1s",
            "misfire": {"policy": policy, "threshold": "5m"},
            "target": {"type": "shell", "command": "echo ran"}
        }))
        .await;
    }
    wait::until(
        "history before the crash",
        Duration::from_secs(15),
        || async {
            let ok = api
                .runs_of("once")
                .await
                .iter()
                .filter(|r| r["status"] == "succeeded")
                .count()
                >= 2;
            ok.then_some(())
        },
    )
    .await;
    let down_since = chrono::Utc::now();
    node.kill9();
    // The scenario: stay down across at least three whole slots.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let node = server(dir.path(), &format!("127.0.0.1:{port}"), &[&exec.url]);
    let api = Api::new(node.url.clone());
    let (_, jobs) = api.get("/v1/jobs").await;
    let ids: Vec<&str> = jobs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["once", "skipper"]);

    let once = wait::until(
        "the misfire run of fire_once",
        Duration::from_secs(15),
        || async {
            let runs = api.runs_of("once").await;
            runs.iter()
                .any(|r| r["trigger"] == "misfire" && r["status"] == "succeeded")
                .then_some(runs)
        },
    )
    .await;
    let misfires: Vec<&Value> = once.iter().filter(|r| r["trigger"] == "misfire").collect();
    let fired: Vec<&&Value> = misfires
        .iter()
        .filter(|r| r["status"] != "skipped")
        .collect();
    assert_eq!(
        fired.len(),
        1,
        "fire_once runs one missed slot: {misfires:?}"
    );
    assert!(
        misfires.len() >= 3,
        "every missed slot has a record: {misfires:?}"
    );
    for skipped in misfires.iter().filter(|r| r["status"] == "skipped") {
        assert!(skipped["error"].as_str().unwrap().contains("fire_once"));
    }
    let scheduled_before_crash = |r: &&Value| {
        r["trigger"] == "schedule"
            && chrono::DateTime::parse_from_rfc3339(r["scheduled_at"].as_str().unwrap()).unwrap()
                < down_since
    };
    assert!(
        once.iter().any(|r| scheduled_before_crash(&r)),
        "history from before the crash survives"
    );

    let skipper = wait::until(
        "skipped records of skip",
        Duration::from_secs(15),
        || async {
            let runs = api.runs_of("skipper").await;
            (runs.iter().filter(|r| r["trigger"] == "misfire").count() >= 3).then_some(runs)
        },
    )
    .await;
    for run in skipper.iter().filter(|r| r["trigger"] == "misfire") {
        assert_eq!(run["status"], "skipped", "{run}");
        assert!(run["error"].as_str().unwrap().contains("skip"));
    }

    // One slot, one run, across the crash.
    let mut seen = HashSet::new();
    for run in once
        .iter()
        .chain(&skipper)
        .filter(|r| r["trigger"] == "schedule" || r["trigger"] == "misfire")
    {
        assert!(seen.insert(slot_key(run)), "slot has two runs: {run}");
    }
}
