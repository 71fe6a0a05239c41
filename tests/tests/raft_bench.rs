//! Measurements of a 3-node cluster, for docs/PERFORMANCE.md. Ignored by
//! default: they print figures and assert nothing about time. Run with
//!
//! ```text
//! cargo build --release -p cronmesh
//! cargo test --release -p cronmesh-tests --test raft_bench -- --ignored --nocapture --test-threads 1
//! ```

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cronmesh_tests::{cluster::Cluster, process::executor, wait};
use reqwest::StatusCode;
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

#[tokio::test]
#[ignore]
async fn bench_leader_kill_to_first_dispatch() {
    let exec = executor("default");
    let mut cluster = Cluster::start(3, &[&exec.url], &[]);
    let record = cluster.dir.path().join("starts.log");
    let leader = cluster.leader().await;
    for i in 0..20 {
        cluster
            .api(leader)
            .create_job(json!({
                "id": format!("f{i}"), "schedule": "@every 1s",
                "target": {"type": "shell", "command": format!("date +%s%N >> {}", record.display())}
            }))
            .await;
    }
    let mut gaps = Vec::new();
    for _ in 0..10 {
        let leader = cluster.leader().await;
        // Kill half-way between two slots, so nothing the old leader sent is still arriving.
        let into_second = now_nanos() % 1_000_000_000;
        tokio::time::sleep(Duration::from_nanos(
            ((1_500_000_000 - into_second) % 1_000_000_000) as u64 + 1_000_000_000,
        ))
        .await;
        let killed = now_nanos();
        cluster.kill(leader);
        let first = wait::until(
            "a dispatch by the new leader",
            Duration::from_secs(30),
            || async {
                let text = std::fs::read_to_string(&record).unwrap_or_default();
                text.lines()
                    .filter_map(|l| l.trim().parse::<u128>().ok())
                    .filter(|t| *t > killed)
                    .min()
            },
        )
        .await;
        gaps.push(Duration::from_nanos((first - killed) as u64));
        cluster.restart(leader);
    }
    gaps.sort();
    println!(
        "kill -9 leader -> first dispatch by the new leader: median {:?}, min {:?}, max {:?} over {} kills",
        percentile(&gaps, 0.5),
        gaps[0],
        gaps[gaps.len() - 1],
        gaps.len()
    );
}

#[tokio::test]
#[ignore]
async fn bench_job_create_latency() {
    let cluster = Cluster::start(3, &[], &[]);
    let leader = cluster.leader().await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    for (name, node) in [("leader", leader), ("follower (forwarded)", follower)] {
        let api = cluster.api(node);
        let mut latencies = Vec::new();
        for i in 0..1000 {
            let job = json!({"id": format!("{name}-{i}").replace(' ', "-").replace(['(', ')'], ""), "schedule": "@daily", "target": {"type": "shell", "command": "true"}});
            let started = Instant::now();
            let (status, body) = api.post("/v1/jobs", job).await;
            latencies.push(started.elapsed());
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        latencies.sort();
        println!(
            "job create through the {name}: p50 {:?}, p99 {:?}, max {:?} (1000 sequential creates)",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies[latencies.len() - 1]
        );
    }
}

#[tokio::test]
#[ignore]
async fn bench_run_records_per_second() {
    let cluster = Cluster::start(3, &[], &[]);
    let leader = cluster.leader().await;
    let api = cluster.api(leader);
    let target = format!("{}/healthz", api.base);
    let jobs = 1000;
    for i in 0..jobs {
        api.create_job(json!({"id": format!("h{i}"), "schedule": "@every 1s", "target": {"type": "http", "url": target}})).await;
    }
    let (_, before) = api.get("/v1/cluster").await;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (_, after) = api.get("/v1/cluster").await;
    let elapsed = started.elapsed().as_secs_f64();
    let entries =
        after["commit_index"].as_u64().unwrap() - before["commit_index"].as_u64().unwrap();
    let (_, page) = api.get("/v1/runs?status=succeeded&limit=1000").await;
    let sample = page["items"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or_default();
    println!(
        "{jobs} HTTP jobs every second on 3 nodes: {:.0} log entries committed/s (each a batch of run creations or transitions); {sample} recent succeeded runs sampled",
        entries as f64 / elapsed
    );
    let mut succeeded = 0u64;
    for i in 0..jobs {
        let (_, runs) = api
            .get(&format!("/v1/runs?job=h{i}&status=succeeded&limit=1000"))
            .await;
        succeeded += runs["items"]
            .as_array()
            .map(|a| a.len() as u64)
            .unwrap_or_default();
    }
    println!("runs succeeded so far: {succeeded} ({:.0} runs/s, each 3 run records: created, running, succeeded)", succeeded as f64 / elapsed);
}
