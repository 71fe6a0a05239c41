//! `cronmesh backup` then `cronmesh restore` into a fresh single node gives
//! the same jobs (paused ones stay paused), the restored node takes new
//! writes, and a restore never overwrites a store. A restored node grows
//! into a new Raft cluster by `--join`, whose other members get its state
//! and keep it once the restored node is gone; bootstrapping it beside
//! empty peers is refused.

use std::{process::Command, time::Duration};

use cronmesh_tests::{
    api::Api,
    cluster::{free_port, Cluster},
    process, wait,
};
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

/// A backup, written to a file in `dir`, of a node with three jobs (one of
/// them paused, one firing every second); the file's path and the jobs.
async fn backup_of_sample_jobs(dir: &std::path::Path) -> (String, Vec<(String, String, bool)>) {
    let source = process::dev(&dir.join("source"), &[]);
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
    let jobs = jobs(&api).await;
    let file = dir.join("cronmesh.backup").to_string_lossy().to_string();
    let out = cronmesh(&["backup", "--out", &file], Some(&source.url));
    assert!(out.status.success(), "{out:?}");
    (file, jobs)
}

#[tokio::test]
async fn a_backup_restored_into_a_fresh_node_has_the_same_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let (file_arg, before) = backup_of_sample_jobs(dir.path()).await;

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

#[tokio::test]
async fn a_restored_node_seeds_a_new_raft_cluster_whose_members_keep_its_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let (file_arg, before) = backup_of_sample_jobs(dir.path()).await;

    let executor = process::executor("default");
    let mut cluster = Cluster::prepare(1, &[&executor.url], &[]);
    let seed_dir = cluster.data_dir(1).to_string_lossy().to_string();
    let out = cronmesh(&["restore", "--data-dir", &seed_dir, &file_arg], None);
    assert!(out.status.success(), "{out:?}");

    // Bootstrapping the restored node with two empty peers would give
    // them a log without its state: refused, and nothing is written.
    let peers = format!(
        "1=127.0.0.1:{},2=127.0.0.1:{},3=127.0.0.1:{}",
        free_port(),
        free_port(),
        free_port()
    );
    let raft = peers[2..].split(',').next().unwrap().to_string();
    let out = cronmesh(
        &[
            "server",
            "--unsigned",
            "--data-dir",
            &seed_dir,
            "--http",
            "127.0.0.1:0",
            "--node-id",
            "1",
            "--raft",
            &raft,
            "--peers",
            &peers,
        ],
        None,
    );
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("restored from a backup"), "{stderr}");
    assert!(stderr.contains("--join"), "{stderr}");

    cluster.restart(1);
    let second = cluster.join();
    let third = cluster.join();
    assert_eq!(cluster.leader().await, 1);
    let (_, status) = cluster.api(1).get("/v1/cluster").await;
    let applied = status["applied_index"].as_u64().unwrap();
    cluster.caught_up(second, applied).await;
    cluster.caught_up(third, applied).await;

    // The restored node is lost for good; the two joiners carry on.
    cluster.kill(1);
    let leader = cluster.leader().await;
    assert!(leader == second || leader == third);
    for id in [second, third] {
        assert_eq!(jobs(&cluster.api(id)).await, before, "node {id}");
    }
    let api = cluster.api(leader);
    let restored_runs = api.runs_of("ticker").await.len();
    wait::until(
        "the new leader to fire the restored job",
        Duration::from_secs(30),
        || async { (api.runs_of("ticker").await.len() > restored_runs).then_some(()) },
    )
    .await;
}
