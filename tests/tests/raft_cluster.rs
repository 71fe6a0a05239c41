//! A 3-node Raft cluster of real `cronmesh server` processes: killing the
//! leader over and over never loses or doubles a slot, acknowledged writes
//! survive the loss of any one node, and a node that missed compacted log
//! entries catches up by snapshot.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use chrono::Utc;
use cronmesh_tests::{cluster::Cluster, process::executor, slots, wait};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Creates `@every 1s` jobs whose command appends "JOB SLOT" to `record`,
/// the executor's own account of what it ran.
async fn create_recording_jobs(
    api: &cronmesh_tests::api::Api,
    jobs: &[String],
    record: &std::path::Path,
) {
    for job in jobs {
        api.create_job(json!({
            "id": job, "schedule": "@every 1s",
            "target": {"type": "shell", "command": format!("echo \"$CRONMESH_JOB_ID $CRONMESH_SCHEDULED_AT\" >> {}", record.display())}
        }))
        .await;
    }
}

#[tokio::test]
async fn killing_the_leader_ten_times_loses_and_doubles_no_slot() {
    let exec = executor("default");
    let mut cluster = Cluster::start(3, &[&exec.url], &[]);
    let executed = cluster.dir.path().join("executed.log");
    let leader = cluster.leader().await;
    let jobs: Vec<String> = (0..20).map(|i| format!("tick-{i:02}")).collect();
    create_recording_jobs(&cluster.api(leader), &jobs, &executed).await;
    let watch_from = Utc::now() + chrono::Duration::seconds(2);
    let mut failovers = Vec::new();
    for round in 0..10 {
        let leader = cluster.leader().await;
        // Let the leader fire for a moment (the scenario, not a wait for a result).
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let killed_at = Instant::now();
        cluster.kill(leader);
        let next = cluster.leader().await;
        failovers.push(killed_at.elapsed());
        eprintln!(
            "round {round}: killed leader {leader}; node {next} leads after {:?}",
            killed_at.elapsed()
        );
        cluster.restart(leader);
    }
    let watch_until = Utc::now() - chrono::Duration::seconds(1);
    eprintln!("leader elections after kill -9: {failovers:?}");

    // Every slot in the window ends with exactly one record (a run or a
    // skip), and the executor ran none twice.
    let api = cluster.api(cluster.leader().await);
    for job in &jobs {
        slots::assert_every_slot_once(&api, job, watch_from, watch_until).await;
    }
    let executions = slots::assert_executed_once(&executed);
    assert!(
        executions > 20 * 10,
        "the jobs ran throughout ({executions} executions)"
    );
}

#[tokio::test]
async fn membership_grows_to_five_and_shrinks_to_three_under_load() {
    let exec = executor("default");
    let mut cluster = Cluster::start(3, &[&exec.url], &[]);
    let executed = cluster.dir.path().join("executed.log");
    let leader = cluster.leader().await;
    let jobs: Vec<String> = (0..10).map(|i| format!("load-{i}")).collect();
    create_recording_jobs(&cluster.api(leader), &jobs, &executed).await;
    let watch_from = Utc::now() + chrono::Duration::seconds(2);
    let members = |body: &Value| {
        body["members"]
            .as_array()
            .map(|m| m.len())
            .unwrap_or_default()
    };
    let (four, five) = (cluster.join(), cluster.join());
    let status = wait::until("five members", Duration::from_secs(30), || async {
        let (_, body) = cluster.api(1).get("/v1/cluster").await;
        (members(&body) == 5).then_some(body)
    })
    .await;
    let commit = status["commit_index"].as_u64().unwrap();
    for id in [four, five] {
        cluster.caught_up(id, commit).await;
        let (_, listed) = cluster.api(id).get("/v1/jobs").await;
        assert_eq!(
            listed["items"].as_array().unwrap().len(),
            jobs.len(),
            "node {id} serves every job"
        );
    }
    // One through the CLI, one through the API.
    let (code, stdout, stderr) = cronmesh_tests::process::cli(
        &cluster.api(1).base,
        &["cluster", "remove", &five.to_string()],
    );
    assert_eq!(code, Some(0), "cluster remove: {stdout} {stderr}");
    let (status, body) = cluster
        .api(1)
        .delete(&format!("/v1/cluster/members/{four}"))
        .await;
    assert_eq!(status, StatusCode::OK, "remove {four}: {body}");
    wait::until("three members", Duration::from_secs(30), || async {
        let (_, body) = cluster.api(1).get("/v1/cluster").await;
        (members(&body) == 3).then_some(())
    })
    .await;
    cluster.kill(four);
    cluster.kill(five);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let watch_until = Utc::now() - chrono::Duration::seconds(1);
    let api = cluster.api(cluster.leader().await);
    for job in &jobs {
        slots::assert_every_slot_once(&api, job, watch_from, watch_until).await;
    }
    slots::assert_executed_once(&executed);
}

/// Creates a job through `api`, retrying while an election refuses it
/// (503, never a hang); returns once the write is acknowledged.
async fn create_acknowledged(api: &cronmesh_tests::api::Api, id: &str) {
    let job =
        json!({"id": id, "schedule": "@daily", "target": {"type": "shell", "command": "true"}});
    wait::until(
        &format!("{id} to be acknowledged"),
        Duration::from_secs(30),
        || async {
            let (status, body) = api.post("/v1/jobs", job.clone()).await;
            match status {
                StatusCode::CREATED => Some(()),
                // A retry of a write whose first answer was lost finds it done.
                StatusCode::CONFLICT => Some(()),
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert!(body["error"]["message"].is_string(), "{body}");
                    None
                }
                other => panic!("unexpected answer {other}: {body}"),
            }
        },
    )
    .await
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9_of_any_one_node() {
    let mut cluster = Cluster::start(3, &[], &[]);
    let mut acknowledged = Vec::new();
    for victim in 1..=3u64 {
        let survivor = if victim == 1 { 2 } else { 1 };
        cluster.leader().await;
        for n in 0..20 {
            if n == 10 {
                cluster.kill(victim);
            }
            let id = format!("job-{victim}-{n}");
            create_acknowledged(&cluster.api(survivor), &id).await;
            acknowledged.push(id);
        }
        cluster.restart(victim);
    }
    let leader = cluster.leader().await;
    let (_, status) = cluster.api(leader).get("/v1/cluster").await;
    let commit = status["commit_index"].as_u64().unwrap();
    for id in 1..=3 {
        cluster.caught_up(id, commit).await;
        let (_, jobs) = cluster.api(id).get("/v1/jobs?limit=1000").await;
        let stored: BTreeSet<&str> = jobs["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap())
            .collect();
        for job in &acknowledged {
            assert!(
                stored.contains(job.as_str()),
                "node {id} lost acknowledged job {job}"
            );
        }
    }
}

#[tokio::test]
async fn a_node_that_missed_compacted_entries_catches_up_by_snapshot() {
    let mut cluster = Cluster::start(
        3,
        &[],
        &["--raft-compact-after", "20", "--raft-log-tail", "0"],
    );
    let leader = cluster.leader().await;
    let lagging = (1..=3).find(|id| *id != leader).unwrap();
    cluster.kill(lagging);
    let api = cluster.api(leader);
    for n in 0..60 {
        api.create_job(json!({"id": format!("snap-{n}"), "schedule": "@daily", "target": {"type": "shell", "command": "true"}}))
            .await;
    }
    let (_, status) = api.get("/v1/cluster").await;
    let commit = status["commit_index"].as_u64().unwrap();
    assert!(
        status["log_start_index"].as_u64().unwrap() > 20,
        "the leader compacted its log: {status}"
    );
    cluster.restart(lagging);
    let caught_up = cluster.caught_up(lagging, commit).await;
    assert!(
        caught_up["snapshots"]["installed"].as_u64() >= Some(1),
        "it caught up by a snapshot: {caught_up}"
    );
    let (_, status) = api.get("/v1/cluster").await;
    assert!(
        status["snapshots"]["sent"].as_u64() >= Some(1),
        "the leader counts what it sent: {status}"
    );
    let (_, jobs) = cluster.api(lagging).get("/v1/jobs?limit=1000").await;
    assert_eq!(jobs["items"].as_array().unwrap().len(), 60);
    let (status, job) = cluster.api(lagging).get("/v1/jobs/snap-59").await;
    assert_eq!(status, StatusCode::OK, "{job}");
}

#[tokio::test]
async fn a_consistent_read_on_any_node_sees_every_acknowledged_write() {
    let cluster = Cluster::start(3, &[], &[]);
    let leader = cluster.leader().await;
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    for n in 0..20 {
        let (writer, reader) = (
            cluster.api(followers[n % 2]),
            cluster.api(followers[(n + 1) % 2]),
        );
        let id = format!("read-{n}");
        create_acknowledged(&writer, &id).await;
        let (status, body) = reader.get(&format!("/v1/jobs/{id}?consistent=true")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "the write to node {} is not visible on the other: {body}",
            followers[n % 2]
        );
    }
}

/// `/readyz` tells a load balancer which nodes serve current answers: all
/// of them while a leader leads, none that has lost its majority.
#[tokio::test]
async fn readyz_is_ready_only_with_a_leader() {
    let mut cluster = Cluster::start(3, &[], &[]);
    let leader = cluster.leader().await;
    for id in cluster.running() {
        let api = cluster.api(id);
        wait::until("the node to be ready", Duration::from_secs(20), || async {
            let (status, _) = api.get("/readyz").await;
            (status == StatusCode::OK).then_some(())
        })
        .await;
    }
    let survivor = cluster.follower_of(leader);
    for id in cluster.running() {
        if id != survivor {
            cluster.kill(id);
        }
    }
    let api = cluster.api(survivor);
    let body = wait::until(
        "the lone node to say it is not ready",
        Duration::from_secs(30),
        || async {
            let (status, body) = api.get("/readyz").await;
            (status == StatusCode::SERVICE_UNAVAILABLE).then_some(body)
        },
    )
    .await;
    assert_eq!(body["status"], "not_ready");
    assert!(
        body["reason"].as_str().unwrap().contains("leader"),
        "{body}"
    );
}

/// SIGTERM on the leader, as a rolling upgrade does it: the leader hands
/// over to another node before it exits, and no slot is lost or doubled.
#[tokio::test]
async fn sigterm_on_the_leader_hands_over_with_no_lost_or_doubled_slot() {
    let exec = executor("default");
    let mut cluster = Cluster::start(3, &[&exec.url], &[]);
    let executed = cluster.dir.path().join("executed.log");
    let leader = cluster.leader().await;
    let jobs: Vec<String> = (0..10).map(|i| format!("upgrade-{i}")).collect();
    create_recording_jobs(&cluster.api(leader), &jobs, &executed).await;
    let watch_from = Utc::now() + chrono::Duration::seconds(2);
    let mut handovers = Vec::new();
    for _ in 0..3 {
        let leader = cluster.leader().await;
        // Let the leader fire for a moment (the scenario, not a wait for a result).
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let stopped_at = Instant::now();
        assert_eq!(
            cluster.terminate(leader),
            Some(0),
            "a clean exit on SIGTERM"
        );
        let stop_took = stopped_at.elapsed();
        // Handed over, not left to an election timeout: the moment the old
        // leader is gone, a survivor already leads.
        let mut leaders_now = Vec::new();
        for id in cluster.running() {
            let (_, status) = cluster.api(id).get("/v1/cluster").await;
            leaders_now.push(status["leader_id"].as_u64());
        }
        assert!(
            leaders_now.iter().any(|l| l.is_some_and(|l| l != leader)),
            "right after node {leader} exited the survivors saw leaders {leaders_now:?}"
        );
        let next = cluster.leader().await;
        assert_ne!(next, leader);
        handovers.push(stop_took);
        cluster.restart(leader);
    }
    eprintln!("SIGTERM to exit on the leader: {handovers:?}");
    let watch_until = Utc::now() - chrono::Duration::seconds(1);
    let api = cluster.api(cluster.leader().await);
    for job in &jobs {
        slots::assert_every_slot_once(&api, job, watch_from, watch_until).await;
    }
    slots::assert_executed_once(&executed);
}
