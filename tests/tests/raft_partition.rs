//! An in-process 3-node cluster over the real TCP transport with injected
//! faults: a leader cut off from the majority dispatches nothing it creates
//! after the cut, and the majority elects a leader that carries on.

use std::{collections::HashMap, time::Duration};

use chrono::Utc;
use cronmesh_tests::{api::Api, cluster::free_port, process::executor, wait};
use node::{
    config::{NodeConfig, RaftSettings},
    node::{start, RunningNode},
    raft::{faults::Faults, storage::Durability},
};
use reqwest::StatusCode;
use serde_json::json;

fn seed() -> u64 {
    let seed = std::env::var("CRONMESH_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("CRONMESH_TEST_SEED={seed}");
    seed
}

async fn start_cluster(dir: &std::path::Path, executor: &str, faults: &Faults) -> Vec<RunningNode> {
    let raft_ports: Vec<(u64, std::net::SocketAddr)> = (1..=3)
        .map(|id| (id, format!("127.0.0.1:{}", free_port()).parse().unwrap()))
        .collect();
    let mut nodes = Vec::new();
    for (id, listen) in &raft_ports {
        let mut config = NodeConfig::new(
            dir.join(format!("node{id}")),
            "127.0.0.1:0".parse().unwrap(),
        );
        config.node_id = *id;
        config.seed = *id;
        config.executors = vec![executor.parse().unwrap()];
        config.raft = Some(RaftSettings {
            listen: *listen,
            peers: raft_ports.clone(),
            join: None,
            durability: Durability::Flush,
            tick: Duration::from_millis(50),
            compact_after: 10_000,
            log_tail: node::config::DEFAULT_LOG_TAIL,
            log_tail_bytes: node::config::DEFAULT_LOG_TAIL_BYTES,
            faults: faults.clone(),
            tls: None,
        });
        nodes.push(start(config).await.expect("node starts"));
    }
    nodes
}

async fn leader_seen_by(api: &Api) -> Option<u64> {
    let (status, body) = api.get("/v1/cluster").await;
    body["leader_id"]
        .as_u64()
        .filter(|_| status == StatusCode::OK)
}

#[actix_web::test]
async fn a_cut_off_leader_dispatches_nothing_and_the_majority_carries_on() {
    let faults = Faults::seeded(seed());
    let dir = tempfile::tempdir().unwrap();
    let exec = executor("default");
    let executed = dir.path().join("executed.log");
    let nodes = start_cluster(dir.path(), &exec.url, &faults).await;
    let apis: HashMap<u64, Api> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (i as u64 + 1, Api::new(n.api_url.clone())))
        .collect();

    let leader = wait::until("a leader", Duration::from_secs(20), || async {
        let first = leader_seen_by(&apis[&1]).await?;
        let agreed =
            leader_seen_by(&apis[&2]).await? == first && leader_seen_by(&apis[&3]).await? == first;
        agreed.then_some(first)
    })
    .await;
    apis[&leader]
        .create_job(json!({
            "id": "tick", "schedule": "@every 1s",
            "target": {"type": "shell", "command": format!("echo \"$CRONMESH_RUN_ID $CRONMESH_SCHEDULED_AT\" >> {}", executed.display())}
        }))
        .await;
    wait::until("the job to run", Duration::from_secs(15), || async {
        std::fs::read_to_string(&executed)
            .ok()
            .filter(|t| t.lines().count() >= 2)
    })
    .await;

    let majority: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    faults.partition(&[&[leader], &majority]);
    let cut = Utc::now();
    let new_leader = wait::until(
        "the majority to elect a new leader",
        Duration::from_secs(20),
        || async {
            let seen = leader_seen_by(&apis[&majority[0]]).await?;
            (seen != leader && leader_seen_by(&apis[&majority[1]]).await? == seen).then_some(seen)
        },
    )
    .await;
    // The new leader carries on: slots after the cut run.
    let after_cut = wait::until(
        "runs of slots after the cut",
        Duration::from_secs(20),
        || async {
            let runs = apis[&new_leader].runs_of("tick").await;
            let later: Vec<_> = runs
                .into_iter()
                .filter(|r| {
                    r["status"] == "succeeded"
                        && chrono::DateTime::parse_from_rfc3339(r["scheduled_at"].as_str().unwrap())
                            .unwrap()
                            > cut + chrono::Duration::seconds(2)
                })
                .collect();
            (later.len() >= 2).then_some(later)
        },
    )
    .await;
    assert!(!after_cut.is_empty());

    // Everything the executor ran is a run the majority committed: the
    // cut-off leader created nothing that reached an executor.
    faults.heal();
    let text = std::fs::read_to_string(&executed).unwrap();
    let mut seen_slots = std::collections::HashSet::new();
    for line in text.lines() {
        let (run_id, slot) = line.split_once(' ').unwrap();
        assert!(seen_slots.insert(slot.to_string()), "slot {slot} ran twice");
        let (status, run) = apis[&new_leader].get(&format!("/v1/runs/{run_id}")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "run {run_id} ran but was never committed: {run}"
        );
    }

    // Healed, the old leader follows the new one.
    wait::until(
        "the old leader to follow",
        Duration::from_secs(20),
        || async {
            (leader_seen_by(&apis[&leader]).await? == leader_seen_by(&apis[&new_leader]).await?)
                .then_some(())
        },
    )
    .await;
}
