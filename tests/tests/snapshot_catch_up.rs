//! Followers that fall behind always come back. With a short log tail, a
//! follower that missed compacted entries gets a snapshot the leader
//! streams to it out of band (one 200 MiB state, without the leader's
//! memory growing by the snapshot's size); a node that lost its disk and a
//! node that joins get one too. With the default tail, a short absence is
//! served from the log, with no snapshot at all.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use cronmesh_tests::{
    api::Api,
    cluster::{create_small_job, grow_state, job_digests, Cluster, ParamsDigest},
    process::{rss_bytes, RssSampler},
};
use serde_json::Value;

const MIB: u64 = 1024 * 1024;

/// Entries kept behind the applied index, and the compaction step: small,
/// so a follower that misses a few hundred entries needs a snapshot.
const SHORT_TAIL: &[&str] = &["--raft-log-tail", "100", "--raft-compact-after", "100"];

/// One of the counters `GET /v1/cluster` gives under `snapshots`.
fn snapshots(status: &Value, counter: &str) -> u64 {
    status["snapshots"][counter].as_u64().unwrap_or_else(|| {
        panic!("GET /v1/cluster has no snapshots.{counter} (is the counters change in?): {status}")
    })
}

fn index(status: &Value, field: &str) -> u64 {
    status[field]
        .as_u64()
        .unwrap_or_else(|| panic!("GET /v1/cluster has no {field}: {status}"))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

/// The running follower with the highest id (node 1 stays the one
/// `Cluster::join` asks).
fn last_follower(cluster: &Cluster, leader: u64) -> u64 {
    cluster
        .running()
        .into_iter()
        .rev()
        .find(|id| *id != leader)
        .expect("a follower")
}

/// Asserts node `id` serves exactly `expected` (ids and params).
async fn assert_serves(cluster: &Cluster, id: u64, expected: &BTreeMap<String, ParamsDigest>) {
    let listed_at = Instant::now();
    let served = job_digests(&cluster.api(id)).await;
    eprintln!(
        "node {id} lists {} jobs (expected {}) in {:?}",
        served.len(),
        expected.len(),
        listed_at.elapsed()
    );
    let missing: Vec<&String> = expected
        .keys()
        .filter(|k| !served.contains_key(*k))
        .take(5)
        .collect();
    let extra: Vec<&String> = served
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .take(5)
        .collect();
    let differing: Vec<&String> = expected
        .iter()
        .filter(|(k, v)| served.get(*k).is_some_and(|s| s != *v))
        .map(|(k, _)| k)
        .take(5)
        .collect();
    assert!(
        served == *expected,
        "node {id} serves {} jobs, the leader acknowledged {}: missing (first 5) {missing:?}, \
         unexpected {extra:?}, with other params {differing:?}",
        served.len(),
        expected.len()
    );
}

/// Waits until every node of `ids` has applied `target`; how long each
/// took since `started`. On timeout, fails with each node's state and the
/// panics the nodes logged.
async fn all_caught_up(
    cluster: &Cluster,
    ids: &[u64],
    target: u64,
    started: Instant,
    limit: Duration,
) -> Vec<Duration> {
    let mut took: Vec<Option<Duration>> = vec![None; ids.len()];
    let mut last: Vec<Value> = vec![Value::Null; ids.len()];
    while took.iter().any(Option::is_none) {
        for (i, id) in ids.iter().enumerate() {
            if took[i].is_none() {
                last[i] = cluster.status(*id).await;
                if last[i]["applied_index"].as_u64() >= Some(target) {
                    took[i] = Some(started.elapsed());
                }
            }
        }
        if started.elapsed() > limit && took.iter().any(Option::is_none) {
            let panics: Vec<String> = cluster
                .running()
                .into_iter()
                .flat_map(|id| {
                    let lines = cluster.log_lines(id);
                    lines
                        .iter()
                        .enumerate()
                        .filter(|(_, l)| l.contains("panicked at"))
                        .flat_map(|(i, _)| lines[i..(i + 2).min(lines.len())].to_vec())
                        .map(move |l| format!("node {id}: {l}"))
                        .collect::<Vec<_>>()
                })
                .collect();
            panic!(
                "after {limit:?}, not every node of {ids:?} applied the leader's {target}: took \
                 {took:?}, last states {last:#?}; panics the nodes logged: {panics:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    took.into_iter().flatten().collect()
}

#[tokio::test]
async fn a_follower_far_behind_catches_up_by_a_streamed_snapshot() {
    let mut cluster = Cluster::start(3, &[], SHORT_TAIL);
    let leader = cluster.leader().await;
    let lagging = last_follower(&cluster, leader);
    let lagging_applied = index(&cluster.status(lagging).await, "applied_index");
    cluster.kill(lagging);
    // The follower may have stored entries it had not applied, and the
    // leader may have appended some it has not committed yet: a margin of
    // 10 entries (nothing else writes) covers them.
    let lagging_stored = index(&cluster.status(leader).await, "commit_index") + 10;
    eprintln!(
        "killed follower {lagging} at applied index {lagging_applied} (the leader's commit + 10: \
         {lagging_stored}); leader {leader}"
    );

    let grow_started = Instant::now();
    let grown = grow_state(&cluster.api(leader), "big", 200 * MIB + MIB, 0x5eed_0001).await;
    let mut expected = grown.jobs;
    expected.extend(
        cluster
            .write_until_compacted_past(lagging_stored, "pad", Duration::from_secs(300))
            .await,
    );
    let leader = cluster.leader().await;
    let before = cluster.status(leader).await;
    let target = index(&before, "applied_index");
    eprintln!(
        "grew the state by {:.1} MiB of job bodies ({} jobs) in {:?}; leader {leader} applied \
         {target}, log starts at {}",
        mib(grown.body_bytes),
        expected.len(),
        grow_started.elapsed(),
        index(&before, "log_start_index"),
    );
    assert!(grown.body_bytes >= 200 * MIB);

    let leader_pid = cluster.pid(leader).expect("the leader's process");
    let rss_before = rss_bytes(leader_pid).expect("the leader's VmRSS");
    let sampler = RssSampler::start(leader_pid, Duration::from_millis(100));
    let restarted = Instant::now();
    cluster.restart(lagging);
    let caught = cluster
        .caught_up_within(lagging, target, Duration::from_secs(600))
        .await;
    let took = restarted.elapsed();
    let rss = sampler.stop();
    let after = cluster.status(leader).await;
    eprintln!(
        "follower {lagging} applied {} (leader's {target}) {took:?} after its restart",
        index(&caught, "applied_index")
    );
    eprintln!(
        "leader {leader} VmRSS: {:.1} MiB before the restart, at most {:.1} MiB while sending \
         ({} samples), growth {:.1} MiB",
        mib(rss_before),
        mib(rss.max),
        rss.count,
        mib(rss.max.saturating_sub(rss_before))
    );
    eprintln!(
        "leader snapshots before {} after {}; follower snapshots {}",
        before["snapshots"], after["snapshots"], caught["snapshots"]
    );
    assert_eq!(
        index(&after, "leader_id"),
        leader,
        "the leader changed while the follower caught up: {after}"
    );
    assert!(
        snapshots(&after, "sent") > snapshots(&before, "sent"),
        "the leader sent no snapshot: before {before}, after {after}"
    );
    let follower = cluster.status(lagging).await;
    assert!(
        snapshots(&follower, "installed") >= 1,
        "the follower installed no snapshot: {follower}"
    );
    assert_serves(&cluster, lagging, &expected).await;
    assert!(
        rss.max.saturating_sub(rss_before) < 64 * MIB,
        "the leader's VmRSS grew from {:.1} MiB to {:.1} MiB while sending a snapshot of a \
         {:.1} MiB state",
        mib(rss_before),
        mib(rss.max),
        mib(grown.body_bytes)
    );
}

#[tokio::test]
async fn a_wiped_node_and_a_joined_node_catch_up() {
    let mut cluster = Cluster::start(3, &[], SHORT_TAIL);
    let leader = cluster.leader().await;
    let grow_started = Instant::now();
    let grown = grow_state(&cluster.api(leader), "mid", 40 * MIB, 0x5eed_0002).await;
    let mut expected = grown.jobs;
    // Compacted past the start: an empty node cannot be served from the log.
    expected.extend(
        cluster
            .write_until_compacted_past(0, "pad", Duration::from_secs(300))
            .await,
    );
    eprintln!(
        "grew the state by {:.1} MiB of job bodies ({} jobs) in {:?}",
        mib(grown.body_bytes),
        expected.len(),
        grow_started.elapsed()
    );

    let leader = cluster.leader().await;
    let wiped = last_follower(&cluster, leader);
    let before = cluster.status(leader).await;
    cluster.wipe(wiped);
    assert!(!cluster.data_dir(wiped).exists());
    let restarted = Instant::now();
    cluster.restart(wiped);
    let joined = cluster.join();
    eprintln!("wiped and restarted node {wiped}, joined node {joined}; leader {leader}");

    let target = index(&cluster.status(leader).await, "applied_index");
    let took = all_caught_up(
        &cluster,
        &[wiped, joined],
        target,
        restarted,
        Duration::from_secs(300),
    )
    .await;
    for (id, took) in [wiped, joined].iter().zip(took) {
        eprintln!(
            "node {id} applied the leader's {target} {took:?} after node {wiped}'s restart; \
             snapshots {}",
            cluster.status(*id).await["snapshots"]
        );
    }
    let leader_now = cluster.leader().await;
    let after = cluster.status(leader_now).await;
    eprintln!(
        "leader snapshots before {} after {} (leader {leader_now})",
        before["snapshots"], after["snapshots"]
    );
    for id in [wiped, joined] {
        let status = cluster.status(id).await;
        assert!(
            snapshots(&status, "installed") >= 1,
            "node {id} caught up with no snapshot installed, though the log starts at {}: {status}",
            index(&before, "log_start_index")
        );
        assert_serves(&cluster, id, &expected).await;
    }
    assert_serves(&cluster, leader_now, &expected).await;
}

#[tokio::test]
async fn a_short_absence_is_served_from_the_log_tail() {
    let mut cluster = Cluster::start(3, &[], &[]);
    let leader = cluster.leader().await;
    let away = last_follower(&cluster, leader);

    // Load: a small job every 50 ms through the leader, until stopped.
    let created: Arc<Mutex<BTreeMap<String, ParamsDigest>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (api, created, stop): (Api, _, _) =
            (cluster.api(leader), created.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("load-{n}");
                n += 1;
                let digest = create_small_job(&api, &id).await;
                created.lock().unwrap().insert(id, digest);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let count = || created.lock().unwrap().len();
    cronmesh_tests::wait::until("the load to start", Duration::from_secs(30), || async {
        (count() >= 20).then_some(())
    })
    .await;

    let before = cluster.status(leader).await;
    let away_applied = index(&cluster.status(away).await, "applied_index");
    let jobs_at_kill = count();
    cluster.kill(away);
    // The scenario: ten seconds away while the load goes on.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let at_restart = cluster.status(leader).await;
    let restarted = Instant::now();
    cluster.restart(away);
    let target = index(&cluster.status(leader).await, "applied_index");
    let caught = cluster
        .caught_up_within(away, target, Duration::from_secs(60))
        .await;
    let took = restarted.elapsed();
    stop.store(true, Ordering::Relaxed);
    load.await.expect("the load task");
    eprintln!(
        "node {away} away at applied index {away_applied} while {} jobs were created; the \
         leader's log started at {} at the restart, when it had applied {}; node {away} applied \
         {} (leader's {target}) {took:?} after its restart",
        count() - jobs_at_kill,
        index(&at_restart, "log_start_index"),
        index(&at_restart, "applied_index"),
        index(&caught, "applied_index")
    );
    assert!(
        index(&at_restart, "applied_index") > away_applied + 50,
        "the load made too few entries while node {away} was away: {at_restart}"
    );
    assert!(
        index(&at_restart, "log_start_index") <= away_applied,
        "the leader's log no longer held what node {away} missed: {at_restart}"
    );

    let leader_now = cluster.leader().await;
    let final_index = index(&cluster.status(leader_now).await, "applied_index");
    cluster.caught_up(away, final_index).await;
    let after = cluster.status(leader).await;
    let away_status = cluster.status(away).await;
    eprintln!(
        "leader snapshots before {} after {}; node {away} snapshots {}",
        before["snapshots"], after["snapshots"], away_status["snapshots"]
    );
    assert_eq!(leader_now, leader, "the leader changed during the test");
    assert_eq!(
        snapshots(&after, "sent"),
        snapshots(&before, "sent"),
        "the leader sent a snapshot for a short absence: before {before}, after {after}"
    );
    assert_eq!(
        snapshots(&away_status, "installed"),
        0,
        "node {away} installed a snapshot after a short absence: {away_status}"
    );
    assert_eq!(snapshots(&away_status, "received"), 0, "{away_status}");
    let expected = created.lock().unwrap().clone();
    assert_serves(&cluster, away, &expected).await;
    assert_serves(&cluster, leader, &expected).await;
}

/// Large entries fill a byte-bounded tail long before the count of
/// entries says to compact: the leader compacts by bytes, keeping about
/// the budget, whatever `--raft-compact-after` says.
#[tokio::test]
async fn a_log_of_large_entries_is_compacted_to_its_byte_budget() {
    let cluster = Cluster::start(3, &[], &["--raft-log-tail-bytes", "2097152"]);
    let leader = cluster.leader().await;
    let grown = grow_state(&cluster.api(leader), "large", 24 * MIB, 7).await;
    let status = cronmesh_tests::wait::until(
        "the leader to compact its log by bytes",
        Duration::from_secs(60),
        || async {
            let status = cluster.status(leader).await;
            (index(&status, "log_start_index") > 1).then_some(status)
        },
    )
    .await;
    let kept = index(&status, "applied_index") + 1 - index(&status, "log_start_index");
    println!(
        "{:.1} MiB in {} entries: the leader's log starts at {} of {} ({kept} entries kept)",
        mib(grown.body_bytes),
        index(&status, "applied_index"),
        index(&status, "log_start_index"),
        index(&status, "applied_index"),
    );
    // Each entry holds about 2 MiB of jobs; a 2 MiB budget keeps a few.
    assert!(
        kept < index(&status, "applied_index") / 2,
        "most of the log was compacted: {status}"
    );
}
