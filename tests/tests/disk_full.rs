//! A full disk is an error, not a hang: a node on a small tmpfs whose disk
//! fills refuses writes at once with 507 and says why in `/readyz` and
//! `/metrics`, takes them again once the file system grows, without a
//! restart, and loses no acknowledged write; a Raft leader whose disk
//! fills hands leadership over and the cluster keeps firing.
//!
//! The tmpfs needs root (CI runs as root).

use std::time::{Duration, Instant};

use cronmesh_tests::{
    api::Api,
    cluster::Cluster,
    ports::free_port,
    process::{executor, server_with, Proc},
    tmpfs::{Tmpfs, MIB},
    wait,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A job whose `params` take `bytes`, so that a few fill a small disk.
fn job(id: &str, bytes: usize) -> Value {
    json!({
        "id": id,
        "schedule": "@manual",
        "params": "x".repeat(bytes),
        "target": {"type": "shell", "command": "true"}
    })
}

/// Every acknowledged job is there, whole.
async fn assert_all_present(api: &Api, acknowledged: &[String]) {
    for id in acknowledged {
        let (status, body) = api.get(&format!("/v1/jobs/{id}")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "acknowledged job {id} is gone: {body}"
        );
    }
}

/// Creates jobs of 16 KiB, `during-1`, `during-2`, ..., until one is
/// refused: 507, or 503 with the store's error. Each must be answered
/// within `answer_limit`, and the refusal must come within
/// `refusal_limit`. The ids taken, the refusal (status and body), and
/// when it came.
async fn create_until_refused(
    api: &Api,
    answer_limit: Duration,
    refusal_limit: Duration,
) -> (Vec<String>, (StatusCode, Value), Duration) {
    let started = Instant::now();
    let mut taken = Vec::new();
    for n in 1.. {
        let id = format!("during-{n}");
        let sent = Instant::now();
        let (status, body) = api.post("/v1/jobs", job(&id, 16 * 1024)).await;
        let answered_in = sent.elapsed();
        assert!(
            answered_in < answer_limit,
            "a write on a full disk took {answered_in:?} to answer"
        );
        match status {
            StatusCode::CREATED => taken.push(id),
            StatusCode::INSUFFICIENT_STORAGE | StatusCode::SERVICE_UNAVAILABLE => {
                return (taken, (status, body), started.elapsed())
            }
            other => panic!("a write on a full disk answered {other}: {body}"),
        }
        assert!(
            started.elapsed() < refusal_limit,
            "writes still taken {:?} after the disk filled",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unreachable!("the loop returns or panics")
}

/// `/readyz` answers 503 and names the full disk; its body.
async fn not_ready_for_a_full_disk(api: &Api) -> Value {
    let (status, ready) = api.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert!(
        ready["reason"]
            .as_str()
            .is_some_and(|r| r.contains("disk full")),
        "{ready}"
    );
    ready
}

async fn metric(api: &Api, line_start: &str) -> Option<f64> {
    let (_, body) = api.get("/metrics").await;
    body.as_str()?
        .lines()
        .find(|l| l.starts_with(line_start))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

/// A lone node on a tmpfs of `mib` MiB with `--min-free-space floor`,
/// holding `jobs` acknowledged jobs of 16 KiB (`before-N`).
struct LoneNode {
    disk: Tmpfs,
    data: std::path::PathBuf,
    http: String,
    node: Proc,
    api: Api,
    acknowledged: Vec<String>,
}

impl LoneNode {
    async fn start(mib: u64, floor: &str, jobs: usize) -> Self {
        let disk = Tmpfs::mount(mib);
        let data = disk.path().join("node");
        let http = format!("127.0.0.1:{}", free_port());
        let node = server_with(&data, &http, &[], &["--min-free-space", floor]);
        let api = Api::new(node.url.clone());
        let mut acknowledged = Vec::new();
        for n in 0..jobs {
            let id = format!("before-{n}");
            api.create_job(job(&id, 16 * 1024)).await;
            acknowledged.push(id);
        }
        Self {
            disk,
            data,
            http,
            node,
            api,
            acknowledged,
        }
    }
}

#[tokio::test]
async fn a_full_disk_refuses_writes_at_once_says_why_and_takes_them_again_when_room_returns() {
    let LoneNode {
        mut disk,
        data,
        http,
        node,
        api,
        mut acknowledged,
    } = LoneNode::start(48, "16MiB", 20).await;
    let (status, _) = api.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);

    // Something else fills the disk (a runaway log beside the data).
    disk.fill_leaving(10 * MIB);
    let (taken, (status, refusal), after) =
        create_until_refused(&api, Duration::from_secs(5), Duration::from_secs(20)).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{refusal}");
    println!(
        "first 507 {after:?} after the disk filled ({} writes taken before it)",
        taken.len()
    );
    acknowledged.extend(taken);
    assert_eq!(
        refusal["error"]["code"], "insufficient_storage",
        "{refusal}"
    );
    assert!(
        refusal["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("disk full")),
        "{refusal}"
    );
    // A manual trigger is new work too; a deletion makes room and is taken.
    let (status, body) = api.post("/v1/jobs/before-0/trigger", json!({})).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");

    let (status, body) = api.delete("/v1/jobs/before-19").await;
    assert!(
        status.is_success(),
        "a deletion on a short disk: {status} {body}"
    );
    acknowledged.retain(|id| id != "before-19");

    let ready = not_ready_for_a_full_disk(&api).await;
    assert_eq!(ready["storage"]["state"], "low_space", "{ready}");
    let (_, cluster) = api.get("/v1/cluster").await;
    assert_eq!(cluster["storage"]["state"], "low_space", "{cluster}");
    let free = metric(&api, "cronmesh_data_dir_free_bytes ").await;
    assert!(
        free.is_some_and(|f| f < (16 * MIB) as f64),
        "free bytes metric: {free:?}"
    );
    let refused = metric(
        &api,
        "cronmesh_storage_errors_total{event=\"refused_no_space\"}",
    )
    .await;
    assert!(
        refused.is_some_and(|r| r >= 2.0),
        "refusals counted: {refused:?}"
    );
    let state = metric(&api, "cronmesh_storage_state{state=\"low_space\"}").await;
    assert_eq!(state, Some(1.0));

    // Room comes back: the file system grows; the node takes writes again
    // by itself, the same process.
    let pid = node.pid();
    disk.resize(256);
    let grown = Instant::now();
    wait::until("a write taken again", Duration::from_secs(15), || async {
        let (status, _) = api.post("/v1/jobs", job("after", 1024)).await;
        (status == StatusCode::CREATED).then_some(())
    })
    .await;
    println!(
        "writes taken again {:?} after the disk grew",
        grown.elapsed()
    );
    acknowledged.push("after".into());
    assert_eq!(node.pid(), pid);
    let (status, ready) = api.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_all_present(&api, &acknowledged).await;

    // And they were durable: all there after a restart.
    assert_eq!(node.terminate(Duration::from_secs(20)), Some(0));
    let node = server_with(&data, &http, &[], &["--min-free-space", "16MiB"]);
    assert_all_present(&Api::new(node.url.clone()), &acknowledged).await;
}

#[tokio::test]
async fn a_store_wedged_by_a_disk_full_to_the_last_byte_answers_and_starts_over_once_there_is_room()
{
    // No floor: nothing keeps sled from meeting the full disk.
    let LoneNode {
        mut disk,
        node,
        api,
        mut acknowledged,
        ..
    } = LoneNode::start(32, "0", 10).await;
    disk.fill_leaving(0);
    // Writes now meet the full disk. Each is answered, none hangs: taken
    // (sled still had room in its buffers), or refused once the wedge is
    // seen.
    let (taken, (status, refusal), after) =
        create_until_refused(&api, Duration::from_secs(15), Duration::from_secs(60)).await;
    println!("first refusal ({status}) {after:?} after the disk filled: {refusal}");
    assert!(
        refusal["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("space") || m.contains("stalled")),
        "the refusal says why: {refusal}"
    );
    acknowledged.extend(taken);
    // The monitor reads the store's state every 200 ms.
    let ready = wait::until(
        "readyz names the wedge",
        Duration::from_secs(10),
        || async {
            let (status, ready) = api.get("/readyz").await;
            (status == StatusCode::SERVICE_UNAVAILABLE && ready["storage"]["state"] == "stalled")
                .then_some(ready)
        },
    )
    .await;
    println!("readyz: {ready}");
    // Every write is refused at once now, 507.
    let (status, body) = api.post("/v1/jobs", job("refused", 1024)).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");

    // Room again: the node serves writes once more, the same process.
    let pid = node.pid();
    disk.resize(256);
    let grown = Instant::now();
    wait::until("a write taken again", Duration::from_secs(30), || async {
        let answer = reqwest::Client::new()
            .post(format!("{}/v1/jobs", node.url))
            .header("content-type", "application/json")
            .body(job("after", 1024).to_string())
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        answer
            .ok()
            .filter(|r| r.status() == StatusCode::CREATED)
            .map(|_| ())
    })
    .await;
    println!(
        "writes taken again {:?} after the disk grew",
        grown.elapsed()
    );
    assert_eq!(node.pid(), pid, "started over in place, not replaced");
    acknowledged.push("after".into());
    assert_all_present(&api, &acknowledged).await;
}

#[tokio::test]
async fn a_node_with_a_wedged_store_stops_on_sigterm() {
    let LoneNode {
        mut disk,
        node,
        api,
        ..
    } = LoneNode::start(32, "0", 5).await;
    disk.fill_leaving(0);
    create_until_refused(&api, Duration::from_secs(15), Duration::from_secs(60)).await;
    wait::until("the wedge seen", Duration::from_secs(10), || async {
        let (_, ready) = api.get("/readyz").await;
        (ready["storage"]["state"] == "stalled").then_some(())
    })
    .await;
    // Stopping neither hands leadership over nor waits on the store's
    // last flush for long: it exits, well within what a service manager
    // gives it.
    let sent = Instant::now();
    let code = node.terminate(Duration::from_secs(15));
    println!(
        "stopped {:?} after SIGTERM, exit code {code:?}",
        sent.elapsed()
    );
    assert!(code.is_some(), "still running 15 s after SIGTERM");
}

#[tokio::test]
async fn a_leader_whose_disk_fills_hands_over_and_the_cluster_keeps_firing() {
    let exec = executor("default");
    let mut cluster = Cluster::prepare(3, &[&exec.url], &["--min-free-space", "16MiB"]);
    let mut disks: Vec<Tmpfs> = (1..=3)
        .map(|id| Tmpfs::mount_at(&cluster.data_dir(id), 64))
        .collect();
    for id in 1..=3 {
        cluster.restart(id);
    }
    let leader = cluster.leader().await;
    let api = cluster.api(leader);
    api.create_job(json!({
        "id": "beat", "schedule": "@every 1s",
        "target": {"type": "shell", "command": "true"}
    }))
    .await;
    wait::until("the job fires", Duration::from_secs(15), || async {
        (!api.runs_of("beat").await.is_empty()).then_some(())
    })
    .await;

    disks[(leader - 1) as usize].fill_leaving(10 * MIB);
    let filled = Instant::now();
    let other = wait::until("another node leads", Duration::from_secs(30), || async {
        let status = cluster.status(cluster.follower_of(leader)).await;
        status["leader_id"].as_u64().filter(|id| *id != leader)
    })
    .await;
    println!(
        "node {other} leads {:?} after node {leader}'s disk filled",
        filled.elapsed()
    );
    not_ready_for_a_full_disk(&cluster.api(leader)).await;

    // The new leader fires: slots after the handover get runs.
    let handed_over = chrono::Utc::now();
    let new = cluster.api(other);
    wait::until(
        "runs of slots after the handover",
        Duration::from_secs(30),
        || async {
            let later = new
                .runs_of("beat")
                .await
                .iter()
                .filter(|r| {
                    r["scheduled_at"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .is_some_and(|t| t > handed_over)
                        && r["status"] == "succeeded"
                })
                .count();
            (later >= 3).then_some(())
        },
    )
    .await;

    // Room again: the old leader is ready again and follows.
    disks[(leader - 1) as usize].resize(256);
    wait::until(
        "the old leader ready again",
        Duration::from_secs(15),
        || async {
            let (status, _) = cluster.api(leader).get("/readyz").await;
            (status == StatusCode::OK).then_some(())
        },
    )
    .await;
    drop(cluster);
}
