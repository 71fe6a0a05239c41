//! `cronmesh backup` then `cronmesh restore` into a fresh single node gives
//! the same jobs (paused ones stay paused), the restored node takes new
//! writes, and a restore never overwrites a store.

use std::process::Command;

use cronmesh_tests::{api::Api, process};
use serde_json::{json, Value};

fn cronmesh(args: &[&str], api: Option<&str>) -> std::process::Output {
    let mut command = Command::new(process::binary());
    command.args(args);
    if let Some(api) = api {
        command.env("CRONMESH_API", api);
    }
    command.output().expect("run cronmesh")
}

/// The jobs as (id, schedule, enabled), sorted.
async fn jobs(api: &Api) -> Vec<(String, String, bool)> {
    let (status, body) = api.get("/v1/jobs?limit=1000").await;
    assert_eq!(status, 200, "{body}");
    let mut jobs: Vec<(String, String, bool)> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j: &Value| {
            (
                j["id"].as_str().unwrap().to_string(),
                j["schedule"].as_str().unwrap().to_string(),
                j["enabled"].as_bool().unwrap(),
            )
        })
        .collect();
    jobs.sort();
    jobs
}

#[tokio::test]
async fn a_backup_restored_into_a_fresh_node_has_the_same_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let source = process::dev(&dir.path().join("source"), &[]);
    let api = Api::new(source.url.clone());
    for (id, schedule) in [
        ("nightly", "0 0 23 * * *"),
        ("hourly", "@hourly"),
        ("ticker", "@every 1s"),
    ] {
        api.create_job(json!({"id": id, "schedule": schedule,
            "target": {"type": "shell", "command": "true"}}))
            .await;
    }
    let (status, _) = api.post("/v1/jobs/hourly/pause", json!({})).await;
    assert_eq!(status, 200);
    let before = jobs(&api).await;

    let file = dir.path().join("cronmesh.backup");
    let file_arg = file.to_string_lossy().to_string();
    let out = cronmesh(&["backup", "--out", &file_arg], Some(&source.url));
    assert!(out.status.success(), "{out:?}");
    drop(source);

    let restored_dir = dir.path().join("restored");
    let restored_arg = restored_dir.to_string_lossy().to_string();
    let out = cronmesh(&["restore", "--data-dir", &restored_arg, &file_arg], None);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("restored 3 jobs"));

    let node = process::server(&restored_dir, "127.0.0.1:0", &[]);
    let api = Api::new(node.url.clone());
    assert_eq!(jobs(&api).await, before);
    api.create_job(json!({"id": "after-restore", "schedule": "@manual",
        "target": {"type": "shell", "command": "true"}}))
        .await;
    assert_eq!(
        jobs(&api).await.len(),
        4,
        "the restored node takes new writes"
    );
    drop(node);

    let out = cronmesh(&["restore", "--data-dir", &restored_arg, &file_arg], None);
    assert_eq!(out.status.code(), Some(2), "a store is never overwritten");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds"));
}
