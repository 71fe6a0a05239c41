//! A follower killed (SIGKILL) at any step of installing a snapshot comes
//! back: restarted, it catches up and serves exactly the leader's jobs,
//! and leaves no partial snapshot file behind.
//!
//! The kill points are armed with `FAILPOINTS=NAME=return`, which only a
//! binary built with the `failpoints` feature obeys: build it with
//! `cargo build -p cronmesh --features failpoints` first.

use std::{
    collections::BTreeMap,
    os::unix::process::ExitStatusExt,
    time::{Duration, Instant},
};

use cronmesh_tests::{
    cluster::{grow_state, job_digests, Cluster, ParamsDigest},
    process::binary,
};
use serde_json::Value;

const MIB: u64 = 1024 * 1024;

/// Entries kept behind the applied index, and the compaction step: small,
/// so a follower that misses a few hundred entries needs a snapshot.
const SHORT_TAIL: &[&str] = &["--raft-log-tail", "100", "--raft-compact-after", "100"];

/// Every step of an install, in order: the file is whole; the state
/// machine loads it (after each 4 MiB batch), has loaded it, switched to
/// it; the Raft storage is not updated yet; both are.
const KILL_POINTS: [&str; 6] = [
    "raft-install-received",
    "store-install-loading",
    "store-install-loaded",
    "store-install-switched",
    "raft-install-state-switched",
    "raft-install-done",
];

/// State added each round: a snapshot of several 4 MiB load batches.
const GROWTH_PER_ROUND: u64 = 16 * MIB;

fn index(status: &Value, field: &str) -> u64 {
    status[field]
        .as_u64()
        .unwrap_or_else(|| panic!("GET /v1/cluster has no {field}: {status}"))
}

/// Waits until node `id` has killed itself at kill point `point`: its
/// process exited on SIGKILL and its log has the kill point's line. Fails
/// clearly if it does not (a binary built without kill points installs
/// the snapshot and lives on).
async fn wait_for_kill_point(
    cluster: &mut Cluster,
    id: u64,
    point: &str,
    target: u64,
    limit: Duration,
) {
    let line = format!("kill point {point}: killing this process");
    let started = Instant::now();
    let mut caught_up_since: Option<Instant> = None;
    loop {
        if let Some(status) = cluster.exit_status(id) {
            // Its last lines may still be on their way from the pipe.
            let logged = Instant::now();
            while !cluster.log_lines(id).iter().any(|l| l.contains(&line)) {
                assert!(
                    logged.elapsed() < Duration::from_secs(10),
                    "node {id} exited ({status}) without logging {line:?}; its last lines: {:#?}",
                    last_lines(cluster, id)
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(
                status.signal(),
                Some(9),
                "node {id} logged {line:?} but did not die of SIGKILL: {status}"
            );
            return;
        }
        let state = status_if_up(&cluster.api(id).base).await;
        let applied = state.as_ref().and_then(|s| s["applied_index"].as_u64());
        if applied.is_some_and(|a| a >= target) {
            caught_up_since.get_or_insert_with(Instant::now);
        }
        let hopeless = caught_up_since.is_some_and(|t| t.elapsed() > Duration::from_secs(10));
        if hopeless || started.elapsed() > limit {
            let snapshots = state.as_ref().map(|s| s["snapshots"].clone());
            let received = snapshots
                .as_ref()
                .and_then(|s| s["received"].as_u64())
                .unwrap_or_default();
            let why = if received == 0 {
                "it received no snapshot (was it served from the log?)".to_string()
            } else {
                format!(
                    "was the binary {} built with --features failpoints (cargo build -p \
                     cronmesh --features failpoints)?",
                    binary().display()
                )
            };
            panic!(
                "node {id} did not die at kill point {point} within {:?} (it applied {applied:?}, \
                 the leader {target}; its snapshot counters {snapshots:?}): {why} Its last \
                 lines: {:#?}",
                started.elapsed(),
                last_lines(cluster, id)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /v1/cluster` of the node at `base`, if it answers (it may be
/// dying).
async fn status_if_up(base: &str) -> Option<Value> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let answer = client.get(format!("{base}/v1/cluster")).send().await.ok()?;
    serde_json::from_str(&answer.text().await.ok()?).ok()
}

fn last_lines(cluster: &Cluster, id: u64) -> Vec<String> {
    let lines = cluster.log_lines(id);
    lines[lines.len().saturating_sub(20)..].to_vec()
}

/// Waits until node `id` has applied `target`; on timeout, fails with its
/// state, the leader's, and its last log lines.
async fn caught_up(cluster: &Cluster, id: u64, target: u64, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let status = cluster.status(id).await;
        if status["applied_index"].as_u64() >= Some(target) {
            return status;
        }
        if started.elapsed() > limit {
            let leaders: Vec<Value> = others_status(cluster, id).await;
            panic!(
                "node {id} did not apply the leader's {target} within {limit:?} after its \
                 restart: its state {status}; the other nodes' {leaders:#?}; its last lines: \
                 {:#?}",
                last_lines(cluster, id)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /v1/cluster` of every running node but `id`.
async fn others_status(cluster: &Cluster, id: u64) -> Vec<Value> {
    let mut states = Vec::new();
    for other in cluster.running().into_iter().filter(|o| *o != id) {
        states.push(cluster.status(other).await);
    }
    states
}

/// Files in node `id`'s `snapshots/` directory.
fn snapshot_files(cluster: &Cluster, id: u64) -> Vec<String> {
    let dir = cluster.data_dir(id).join("snapshots");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn a_kill_at_each_install_step_is_survived() {
    let mut cluster = Cluster::start(3, &[], SHORT_TAIL);
    let leader = cluster.leader().await;
    let victim = cluster
        .running()
        .into_iter()
        .rev()
        .find(|id| *id != leader)
        .expect("a follower");
    let mut expected: BTreeMap<String, ParamsDigest> = BTreeMap::new();
    let mut grown_bytes = 0;
    for (round, point) in KILL_POINTS.iter().enumerate() {
        let round_started = Instant::now();
        let victim_applied = index(&cluster.status(victim).await, "applied_index");
        cluster.kill(victim);
        let leader = cluster.leader().await;
        // The victim may have stored entries it had not applied, and the
        // leader may have appended some it has not committed yet: a margin
        // of 10 entries (nothing else writes) covers them.
        let victim_stored = index(&cluster.status(leader).await, "commit_index") + 10;
        let grown = grow_state(
            &cluster.api(leader),
            &format!("r{round}"),
            GROWTH_PER_ROUND,
            0x5eed_1000 + round as u64,
        )
        .await;
        grown_bytes += grown.body_bytes;
        expected.extend(grown.jobs);
        expected.extend(
            cluster
                .write_until_compacted_past(
                    victim_stored,
                    &format!("r{round}-pad"),
                    Duration::from_secs(300),
                )
                .await,
        );
        let leader = cluster.leader().await;
        let status = cluster.status(leader).await;
        let target = index(&status, "applied_index");
        let grew_in = round_started.elapsed();
        eprintln!(
            "round {round} ({point}): node {victim} killed at applied {victim_applied} (leader's \
             commit {victim_stored}); {:.1} MiB of job bodies in {grew_in:?}; leader {leader} \
             applied {target}, its log starts at {}",
            grown_bytes as f64 / MIB as f64,
            index(&status, "log_start_index"),
        );

        let armed = format!("{point}=return");
        let restarted = Instant::now();
        cluster.restart_with_env(victim, &[("FAILPOINTS", armed.as_str())]);
        wait_for_kill_point(
            &mut cluster,
            victim,
            point,
            target,
            Duration::from_secs(300),
        )
        .await;
        let died_in = restarted.elapsed();
        let files_after_kill = snapshot_files(&cluster, victim);

        let restarted = Instant::now();
        cluster.restart(victim);
        let caught = caught_up(&cluster, victim, target, Duration::from_secs(300)).await;
        let caught_up_in = restarted.elapsed();
        let listed = Instant::now();
        let served = job_digests(&cluster.api(victim)).await;
        let listed_in = listed.elapsed();
        eprintln!(
            "round {round} ({point}): armed node {victim} died in {died_in:?} leaving \
             snapshots/{files_after_kill:?}; restarted, it applied {} in {caught_up_in:?} \
             (snapshots {}); listed its {} jobs in {listed_in:?}",
            index(&caught, "applied_index"),
            caught["snapshots"],
            served.len(),
        );
        let missing: Vec<&String> = expected
            .keys()
            .filter(|k| !served.contains_key(*k))
            .take(5)
            .collect();
        let differing: Vec<&String> = served
            .iter()
            .filter(|(k, v)| expected.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .take(5)
            .collect();
        assert!(
            served == expected,
            "round {round} ({point}): node {victim} serves {} jobs, the leader acknowledged {}: \
             missing (first 5) {missing:?}, unexpected or other params {differing:?}",
            served.len(),
            expected.len()
        );
    }
    let leader = cluster.leader().await;
    assert_eq!(
        job_digests(&cluster.api(leader)).await,
        expected,
        "the leader serves what it acknowledged"
    );
    let files = snapshot_files(&cluster, victim);
    eprintln!("node {victim}'s snapshots/ after the last round: {files:?}");
    assert!(
        !files.iter().any(|f| f.ends_with(".part")),
        "node {victim} keeps partial snapshot files: {files:?}"
    );
}
