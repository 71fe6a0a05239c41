//! Executors with `--max-concurrent`: the scheduler never sends one more
//! runs than it announced, the rest wait at the scheduler as `pending`
//! with a reason and run as room frees, and a run that waits past its
//! job's `start_deadline` ends `skipped`, saying why.

use std::{path::Path, time::Duration};

use cronmesh_tests::{
    api::{with_status, Api},
    cluster::free_port,
    process::{executor_with, server_with, Proc},
    wait,
};
use serde_json::{json, Value};

/// Where a scheduler listens and gossips, kept across its restarts.
struct Addresses {
    http: String,
    gossip: String,
    cluster: String,
}

impl Addresses {
    fn new() -> Self {
        Self {
            http: format!("127.0.0.1:{}", free_port()),
            gossip: format!("127.0.0.1:{}", free_port()),
            cluster: format!("test-{}", free_port()),
        }
    }

    fn scheduler(&self, dir: &Path) -> Proc {
        server_with(
            &dir.join("data"),
            &self.http,
            &[],
            &["--gossip", &self.gossip, "--gossip-cluster", &self.cluster],
        )
    }
}

/// A scheduler with a gossip port and one executor that joins it with
/// `--max-concurrent max` (the limit travels by gossip).
async fn start(dir: &Path, max: &str) -> (Api, Proc, Proc) {
    let (api, node, exec, _) = start_at(dir, max, Addresses::new()).await;
    (api, node, exec)
}

async fn start_at(dir: &Path, max: &str, at: Addresses) -> (Api, Proc, Proc, Addresses) {
    let node = at.scheduler(dir);
    let (gossip, cluster) = (at.gossip.clone(), at.cluster.clone());
    let exec = executor_with(
        "default",
        &[
            "--seeds",
            &gossip,
            "--gossip-cluster",
            &cluster,
            "--max-concurrent",
            max,
        ],
    );
    let api = Api::new(node.url.clone());
    executor_known(&api, max).await;
    (api, node, exec, at)
}

/// Waits until the scheduler sees the executor alive with its limit.
async fn executor_known(api: &Api, max: &str) {
    let want: u64 = max.parse().unwrap();
    wait::until(
        "the executor and its limit known",
        Duration::from_secs(20),
        || async {
            let (_, list) = api.get("/v1/executors").await;
            list.as_array()?
                .iter()
                .any(|e| e["alive"] == true && e["max_concurrent"] == want)
                .then_some(())
        },
    )
    .await;
}

fn ended(runs: &[Value]) -> bool {
    runs.iter().all(|r| {
        !["pending", "dispatched", "running"].contains(&r["status"].as_str().unwrap_or_default())
    })
}

#[tokio::test]
async fn an_executor_with_max_concurrent_2_never_holds_more_than_2_and_every_run_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (api, node, exec) = start(dir.path(), "2").await;
    // Each run counts the runs running beside it (itself included) as it
    // starts: a third run started beside two would count 3.
    let marks = dir.path().join("marks");
    std::fs::create_dir(&marks).unwrap();
    let command = counting_command(&marks, "0.4");
    api.create_job(json!({
        "id": "burst", "schedule": "@manual", "shards": 20, "timeout": "5m",
        "start_deadline": "10m",
        "target": {"type": "shell", "command": command}
    }))
    .await;
    let (status, _) = api.post("/v1/jobs/burst/trigger", json!({})).await;
    assert!(status.is_success(), "{status}");
    // The runs beyond the limit wait as `pending`, saying why, in the API
    // and on the console's run page.
    let (id, reason) = wait::until(
        "a run waiting for room",
        Duration::from_secs(20),
        || async {
            let runs = api.runs_of("burst").await;
            runs.iter()
                .filter(|r| r["status"] == "pending")
                .find_map(|r| {
                    let reason = r["pending_reason"].as_str()?;
                    Some((r["id"].as_str()?.to_string(), reason.to_string()))
                })
        },
    )
    .await;
    assert!(reason.contains("max_concurrent"), "{reason}");
    let page = reqwest::get(format!("{}/runs/{id}", node.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("pending-reason") || !page.contains("status-pending"),
        "a waiting run's page shows why it waits"
    );
    let runs = wait::until("all 20 runs ended", Duration::from_secs(120), || async {
        let runs = api.runs_of("burst").await;
        (runs.len() == 20 && ended(&runs)).then_some(runs)
    })
    .await;
    assert_eq!(
        with_status(&runs, "succeeded").len(),
        20,
        "none lost: {runs:?}"
    );
    for run in &runs {
        assert_eq!(run["executor"], exec.url.as_str());
        assert!(run["pending_reason"].is_null(), "{run}");
    }
    let counts = std::fs::read_to_string(marks.join("counts")).unwrap();
    let counts: Vec<u32> = counts.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(counts.len(), 20, "each run started once");
    let most = counts.iter().max().copied().unwrap_or_default();
    assert!(
        most <= 2,
        "the executor held {most} runs at once: {counts:?}"
    );
}

#[tokio::test]
async fn a_run_that_finds_no_room_within_its_start_deadline_is_skipped_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (api, _node, _exec) = start(dir.path(), "1").await;
    api.create_job(json!({
        "id": "slow", "schedule": "@manual", "shards": 3, "timeout": "5m",
        "start_deadline": "2s",
        "target": {"type": "shell", "command": "sleep 6"}
    }))
    .await;
    api.post("/v1/jobs/slow/trigger", json!({})).await;
    let runs = wait::until("every run ended", Duration::from_secs(60), || async {
        let runs = api.runs_of("slow").await;
        (runs.len() == 3 && ended(&runs)).then_some(runs)
    })
    .await;
    assert_eq!(with_status(&runs, "succeeded").len(), 1, "{runs:?}");
    let skipped = with_status(&runs, "skipped");
    assert_eq!(skipped.len(), 2, "{runs:?}");
    for run in skipped {
        let error = run["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("start_deadline of 2s") && error.contains("max_concurrent"),
            "{error}"
        );
        assert!(run["executor"].is_null(), "it never went anywhere: {run}");
    }
}

/// A file-based count of the runs running at once, kept by the runs.
fn counting_command(marks: &Path, seconds: &str) -> String {
    format!(
        "d={}; touch \"$d/run.$CRONMESH_RUN_ID\"; ls \"$d\" | grep -c '^run\\.' >> \"$d/counts\"; sleep {seconds}; rm \"$d/run.$CRONMESH_RUN_ID\"",
        marks.display()
    )
}

#[tokio::test]
async fn a_scheduler_killed_while_runs_wait_for_room_places_them_after_its_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (api, node, _exec, at) = start_at(dir.path(), "1", Addresses::new()).await;
    let marks = dir.path().join("marks");
    std::fs::create_dir(&marks).unwrap();
    api.create_job(json!({
        "id": "queue", "schedule": "@manual", "shards": 6, "timeout": "5m",
        "start_deadline": "10m",
        "target": {"type": "shell", "command": counting_command(&marks, "1")}
    }))
    .await;
    api.post("/v1/jobs/queue/trigger", json!({})).await;
    wait::until("runs waiting for room", Duration::from_secs(20), || async {
        let runs = api.runs_of("queue").await;
        let waiting = runs
            .iter()
            .filter(|r| r["pending_reason"].is_string())
            .count();
        (waiting >= 4).then_some(())
    })
    .await;
    node.kill9();
    let node = at.scheduler(dir.path());
    let api = Api::new(node.url.clone());
    executor_known(&api, "1").await;
    let runs = wait::until("all 6 runs ended", Duration::from_secs(120), || async {
        let runs = api.runs_of("queue").await;
        (runs.len() == 6 && ended(&runs)).then_some(runs)
    })
    .await;
    assert_eq!(
        with_status(&runs, "succeeded").len(),
        6,
        "none lost: {runs:?}"
    );
    let counts = std::fs::read_to_string(marks.join("counts")).unwrap();
    let counts: Vec<u32> = counts.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(counts.len(), 6, "each run started once: {counts:?}");
    assert!(
        counts.iter().all(|c| *c == 1),
        "never two at once: {counts:?}"
    );
}
