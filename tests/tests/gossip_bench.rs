//! Measurements of gossip membership, for docs/PERFORMANCE.md. Ignored by
//! default: they print figures and assert nothing about time. Run with
//!
//! ```text
//! cargo build --release -p cronmesh
//! cargo test --release -p cronmesh-tests --test gossip_bench -- --ignored --nocapture --test-threads 1
//! ```

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cronmesh_tests::{
    api::Api,
    cluster::free_port,
    process::{executor_with, server_with},
    wait,
};
use serde_json::json;

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

async fn alive(api: &Api) -> usize {
    let (_, list) = api.get("/v1/executors").await;
    list.as_array()
        .map(|l| l.iter().filter(|e| e["alive"] == true).count())
        .unwrap_or_default()
}

#[tokio::test]
#[ignore]
async fn bench_executor_kill_to_failover_dispatch() {
    let dir = tempfile::tempdir().unwrap();
    let gossip = format!("127.0.0.1:{}", free_port());
    let server = server_with(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &[],
        &["--gossip", &gossip],
    );
    let api = Api::new(server.url.clone());
    let record = dir.path().join("starts.log");
    let mut executors: Vec<_> = (0..3)
        .map(|_| executor_with("default", &["--seeds", &gossip]))
        .collect();
    wait::until("3 executors", Duration::from_secs(20), || async {
        (alive(&api).await == 3).then_some(())
    })
    .await;
    api.create_job(json!({
        "id": "long", "schedule": "@manual", "shards": 6, "timeout": "10m",
        "target": {"type": "shell", "command": format!("echo \"$CRONMESH_RUN_ID $(date +%s%N)\" >> {}; sleep 600", record.display())}
    }))
    .await;
    let mut gaps = Vec::new();
    for _ in 0..5 {
        let (_, trigger) = api.post("/v1/jobs/long/trigger", json!({})).await;
        let ids: Vec<String> = trigger["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        wait::until("all shards running", Duration::from_secs(20), || async {
            let text = std::fs::read_to_string(&record).unwrap_or_default();
            ids.iter()
                .all(|id| text.contains(id.as_str()))
                .then_some(())
        })
        .await;
        let before: std::collections::HashSet<String> = std::fs::read_to_string(&record)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').next().map(str::to_string))
            .collect();
        let victim = executors.remove(0);
        let killed = now_nanos();
        victim.kill9();
        let first = wait::until("a failover start", Duration::from_secs(30), || async {
            let text = std::fs::read_to_string(&record).unwrap_or_default();
            text.lines()
                .filter_map(|l| l.split_once(' '))
                .filter(|(id, _)| !before.contains(*id))
                .filter_map(|(_, t)| t.parse::<u128>().ok())
                .min()
        })
        .await;
        gaps.push(Duration::from_nanos(first.saturating_sub(killed) as u64));
        executors.push(executor_with("default", &["--seeds", &gossip]));
        wait::until("3 executors again", Duration::from_secs(20), || async {
            (alive(&api).await == 3).then_some(())
        })
        .await;
    }
    gaps.sort();
    println!(
        "executor kill -9 -> failover run started on another executor: median {:?}, min {:?}, max {:?} over {} kills",
        gaps[gaps.len() / 2],
        gaps[0],
        gaps[gaps.len() - 1],
        gaps.len()
    );
}

#[tokio::test]
#[ignore]
async fn bench_gossip_convergence_with_50_executors() {
    let dir = tempfile::tempdir().unwrap();
    let gossip = format!("127.0.0.1:{}", free_port());
    let server = server_with(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &[],
        &["--gossip", &gossip],
    );
    let api = Api::new(server.url.clone());
    let started = Instant::now();
    let executors: Vec<_> = (0..50)
        .map(|_| executor_with("default", &["--seeds", &gossip]))
        .collect();
    let spawned = started.elapsed();
    wait::until("50 executors alive", Duration::from_secs(120), || async {
        (alive(&api).await == 50).then_some(())
    })
    .await;
    println!(
        "50 executor processes: all alive at the scheduler {:?} after the first start ({:?} to start them all)",
        started.elapsed(),
        spawned
    );
    // Stability: no executor flaps to dead over the next 10 s.
    let mut low = 50;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        low = low.min(alive(&api).await);
    }
    println!("lowest alive count over the next 10 s: {low} of 50");
    drop(executors);
}
