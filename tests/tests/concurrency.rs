//! The concurrency policies: forbid skips, replace kills, queue holds one.

use std::time::Duration;

use cronmesh_tests::{
    api::{with_status, Api},
    process::{executor, server, Proc},
    wait,
};
use serde_json::{json, Value};

async fn start() -> (Api, Proc, Proc, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor("default");
    let node = server(dir.path(), "127.0.0.1:0", &[&exec.url]);
    (Api::new(node.url.clone()), node, exec, dir)
}

fn errors(runs: &[&Value]) -> Vec<String> {
    runs.iter()
        .map(|r| r["error"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn forbid_skips_fires_while_a_run_is_active() {
    let (api, _node, _exec, _dir) = start().await;
    api.create_job(json!({"id": "f", "schedule": "@every 1s", "concurrency": "forbid", "target": {"type": "shell", "command": "sleep 30"}}))
        .await;
    let runs = wait::until("two skipped fires", Duration::from_secs(15), || async {
        let runs = api.runs_of("f").await;
        (with_status(&runs, "skipped").len() >= 2).then_some(runs)
    })
    .await;
    let active: Vec<&Value> = runs
        .iter()
        .filter(|r| ["pending", "dispatched", "running"].contains(&r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(active.len(), 1, "exactly one run is active: {runs:?}");
    let active_id = active[0]["id"].as_str().unwrap();
    for error in errors(&with_status(&runs, "skipped")) {
        assert!(
            error.contains("forbid") && error.contains(active_id),
            "{error}"
        );
    }
}

#[tokio::test]
async fn replace_kills_the_active_run() {
    let (api, _node, _exec, _dir) = start().await;
    api.create_job(json!({"id": "r", "schedule": "@every 1s", "concurrency": "replace", "target": {"type": "shell", "command": "sleep 30"}}))
        .await;
    let runs = wait::until("a replaced run", Duration::from_secs(15), || async {
        let runs = api.runs_of("r").await;
        (!with_status(&runs, "killed").is_empty()).then_some(runs)
    })
    .await;
    for error in errors(&with_status(&runs, "killed")) {
        assert!(error.contains("replace"), "{error}");
    }
    assert!(with_status(&runs, "skipped").is_empty());
}

#[tokio::test]
async fn queue_holds_one_run_and_starts_it_after_the_active_one() {
    let (api, _node, _exec, _dir) = start().await;
    api.create_job(json!({"id": "q", "schedule": "@every 1s", "concurrency": "queue", "target": {"type": "shell", "command": "sleep 2"}}))
        .await;
    // While the first run sleeps, one fire waits and the next are skipped.
    let runs = wait::until(
        "a queued run and a skipped fire",
        Duration::from_secs(15),
        || async {
            let runs = api.runs_of("q").await;
            let queued = with_status(&runs, "pending").len();
            (queued == 1 && !with_status(&runs, "skipped").is_empty()).then_some(runs)
        },
    )
    .await;
    let queued_id = with_status(&runs, "pending")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for error in errors(&with_status(&runs, "skipped")) {
        assert!(error.contains("queue"), "{error}");
    }
    let queued = wait::until(
        "the queued run to succeed",
        Duration::from_secs(20),
        || async {
            let (_, run) = api.get(&format!("/v1/runs/{queued_id}")).await;
            (run["status"] == "succeeded").then_some(run)
        },
    )
    .await;
    assert_eq!(queued["exit_code"], 0);
    // Never two running at once.
    let runs = api.runs_of("q").await;
    let time = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let mut spans: Vec<_> = runs
        .iter()
        .filter(|r| {
            r["started_at"].is_string()
                && r["finished_at"].is_string()
                && r["status"] == "succeeded"
        })
        .map(|r| (time(&r["started_at"]), time(&r["finished_at"])))
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "runs overlap: {pair:?}");
    }
}
