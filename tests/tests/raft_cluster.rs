//! A 3-node Raft cluster of real `cronmesh server` processes: killing the
//! leader over and over never loses or doubles a slot, acknowledged writes
//! survive the loss of any one node, and a node that missed compacted log
//! entries catches up by snapshot.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use cronmesh_tests::{api::Api, cluster::Cluster, process::executor, wait};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .to_utc()
}

/// Every run of `job` from one node's view.
async fn runs(api: &Api, job: &str) -> Vec<Value> {
    api.runs_of(job).await
}

#[tokio::test]
async fn killing_the_leader_ten_times_loses_and_doubles_no_slot() {
    let exec = executor("default");
    let mut cluster = Cluster::start(3, &[&exec.url], &[]);
    let executed = cluster.dir.path().join("executed.log");
    let leader = cluster.leader().await;
    let jobs: Vec<String> = (0..20).map(|i| format!("tick-{i:02}")).collect();
    for job in &jobs {
        cluster
            .api(leader)
            .create_job(json!({
                "id": job, "schedule": "@every 1s",
                "target": {"type": "shell", "command": format!("echo \"$CRONMESH_JOB_ID $CRONMESH_SCHEDULED_AT\" >> {}", executed.display())}
            }))
            .await;
    }
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

    // Every slot in the window ends with exactly one record: a run or a skip.
    let leader = cluster.leader().await;
    let api = cluster.api(leader);
    for job in &jobs {
        let records = wait::until(
            &format!("every slot of {job} to be recorded"),
            Duration::from_secs(30),
            || async {
                let runs = runs(&api, job).await;
                let slots: BTreeSet<DateTime<Utc>> =
                    runs.iter().map(|r| time(&r["scheduled_at"])).collect();
                let mut slot = watch_from;
                while slot <= watch_until {
                    let second = DateTime::from_timestamp(slot.timestamp(), 0).unwrap();
                    if !slots.contains(&second) {
                        return None;
                    }
                    slot += chrono::Duration::seconds(1);
                }
                Some(runs)
            },
        )
        .await;
        let mut per_slot: BTreeMap<(DateTime<Utc>, u64), usize> = BTreeMap::new();
        for run in records
            .iter()
            .filter(|r| r["trigger"] == "schedule" || r["trigger"] == "misfire")
        {
            *per_slot
                .entry((
                    time(&run["scheduled_at"]),
                    run["shard"]["index"].as_u64().unwrap(),
                ))
                .or_default() += 1;
        }
        let doubled: Vec<_> = per_slot.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            doubled.is_empty(),
            "{job}: slots with two records: {doubled:?}"
        );
    }

    // The executor ran no slot twice.
    let text = std::fs::read_to_string(&executed).unwrap();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for line in text.lines() {
        *seen.entry(line).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "the executor ran these slots twice: {twice:?}"
    );
    assert!(
        seen.len() > 20 * 10,
        "the jobs ran throughout ({} executions)",
        seen.len()
    );
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9_of_any_one_node() {
    let mut cluster = Cluster::start(3, &[], &[]);
    let mut acknowledged = Vec::new();
    for victim in 1..=3u64 {
        let survivor = if victim == 1 { 2 } else { 1 };
        cluster.leader().await;
        for n in 0..30 {
            if n == 10 {
                cluster.kill(victim);
            }
            let id = format!("job-{victim}-{n}");
            let api = cluster.api(survivor);
            let (status, body) =
                api.post("/v1/jobs", json!({"id": id, "schedule": "@daily", "target": {"type": "shell", "command": "true"}})).await;
            match status {
                StatusCode::CREATED => acknowledged.push(id),
                // During the election a write is refused, never hung.
                StatusCode::SERVICE_UNAVAILABLE => assert!(body["error"]["message"].is_string()),
                other => panic!("unexpected answer {other}: {body}"),
            }
        }
        cluster.restart(victim);
    }
    assert!(
        acknowledged.len() >= 60,
        "most writes were acknowledged: {}",
        acknowledged.len()
    );
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
    let mut cluster = Cluster::start(3, &[], &["--raft-compact-after", "20"]);
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
    cluster.caught_up(lagging, commit).await;
    let (_, jobs) = cluster.api(lagging).get("/v1/jobs?limit=1000").await;
    assert_eq!(jobs["items"].as_array().unwrap().len(), 60);
    let (status, job) = cluster.api(lagging).get("/v1/jobs/snap-59").await;
    assert_eq!(status, StatusCode::OK, "{job}");
}
