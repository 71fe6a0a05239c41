//! Failure detector measurements, run by hand (ignored by default):
//!
//! ```sh
//! GOSSIP_MS=200 PHI=10 ROUNDS=10 SOAK_SECS=60 STALL_MS=800 \
//!   cargo test -p cronmesh-membership --test detection -- --ignored --nocapture --test-threads 1
//! ```
//!
//! `detection_time`: a `NODES`-node cluster (default 3: 1 scheduler, 2
//! executors), one executor stops, the time until every other node
//! declares it dead; `ROUNDS` times. `false_alarms`: 5 nodes gossip for `SOAK_SECS` and any `Removed`
//! counts as a false alarm (run it next to a CPU hog to mimic a loaded CI
//! machine, or SIGSTOP/SIGCONT the test process to freeze all nodes).
//! `stall_tolerance`: one node's runtime is blocked for `STALL_MS`, `STALLS`
//! times; counts how often the others declare it dead.

use std::time::{Duration, Instant};

use futures::StreamExt;
use membership::testsuite::{eventually, executor, next_change, scheduler};
use membership::{Member, Membership, MembershipChange, MembershipConfig};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(name: &str, seeds: &[&Membership]) -> MembershipConfig {
    let mut config = MembershipConfig::new(name, ([127, 0, 0, 1], 0).into())
        .with_seeds(seeds.iter().map(|m| m.advertise_addr()));
    config.gossip_interval = Duration::from_millis(env("GOSSIP_MS", 200));
    config.phi_threshold = env("PHI", membership::config::DEFAULT_PHI_THRESHOLD);
    config
}

async fn start(name: &str, me: Member, seeds: &[&Membership]) -> Membership {
    Membership::start(config(name, seeds), me).await.unwrap()
}

async fn all_alive(node: &Membership, n: usize) -> bool {
    let members = node.members().await;
    members.len() == n && members.iter().all(|m| m.alive)
}

fn describe(samples: &mut [Duration]) -> String {
    samples.sort();
    let ms = |d: Duration| d.as_millis();
    let mean = samples.iter().sum::<Duration>() / samples.len().max(1) as u32;
    format!(
        "n={} min={}ms median={}ms mean={}ms max={}ms",
        samples.len(),
        ms(samples[0]),
        ms(samples[samples.len() / 2]),
        ms(mean),
        ms(samples[samples.len() - 1])
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run by hand"]
async fn detection_time() {
    let rounds: usize = env("ROUNDS", 10);
    let nodes: usize = env("NODES", 3).max(2);
    let warmup = Duration::from_secs(env("WARMUP_SECS", 3));
    let mut samples = Vec::new();
    for round in 0..rounds {
        let s = start("scheduler-1", scheduler(1), &[]).await;
        let e1 = start("executor-1", executor("http://e1"), &[&s]).await;
        let mut others = vec![s.clone()];
        for i in 2..nodes {
            let name = format!("executor-{i}");
            others.push(start(&name, executor(&format!("http://e{i}")), &[&s]).await);
        }
        for node in others.iter().chain([&e1]) {
            assert!(eventually(Duration::from_secs(20), || all_alive(node, nodes)).await);
        }
        // Let the detectors learn the heartbeat rate, as in a running cluster.
        tokio::time::sleep(warmup).await;
        let mut watchers: Vec<_> = others.iter().map(|n| n.subscribe()).collect();
        let stopped = Instant::now();
        e1.shutdown().await;
        for watcher in &mut watchers {
            next_change(watcher, Duration::from_secs(60), |c| {
                matches!(c, MembershipChange::Removed(_)) && c.state().member.id() == "http://e1"
            })
            .await
            .expect("declared dead");
            samples.push(stopped.elapsed());
        }
        println!(
            "round {round}: {:?}",
            &samples[samples.len() - others.len()..]
        );
        for node in others {
            node.shutdown().await;
        }
    }
    println!(
        "{nodes} nodes, gossip {}ms phi {}: detection {}",
        env("GOSSIP_MS", 200),
        env("PHI", membership::config::DEFAULT_PHI_THRESHOLD),
        describe(&mut samples)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run by hand"]
async fn false_alarms() {
    let soak = Duration::from_secs(env("SOAK_SECS", 60));
    let s = start("scheduler-1", scheduler(1), &[]).await;
    let mut nodes = vec![s.clone()];
    for i in 1..5 {
        nodes.push(
            start(
                &format!("executor-{i}"),
                executor(&format!("http://e{i}")),
                &[&s],
            )
            .await,
        );
    }
    for node in &nodes {
        assert!(eventually(Duration::from_secs(20), || all_alive(node, 5)).await);
    }
    let mut streams = futures::stream::select_all(nodes.iter().map(|n| n.subscribe()));
    let started = Instant::now();
    let mut alarms = 0;
    while let Ok(Some(change)) =
        tokio::time::timeout_at((started + soak).into(), streams.next()).await
    {
        if let MembershipChange::Removed(state) = change {
            alarms += 1;
            println!(
                "false alarm after {:?}: {} declared dead",
                started.elapsed(),
                state.gossip_id
            );
        }
    }
    println!(
        "gossip {}ms phi {}: {alarms} false alarms in {soak:?} over 5 nodes",
        env("GOSSIP_MS", 200),
        env("PHI", membership::config::DEFAULT_PHI_THRESHOLD)
    );
    for node in nodes {
        node.shutdown().await;
    }
}

/// One node's runtime is blocked for `STALL_MS` every 4 s (as a process
/// stopped by the OS, or a blocking call on its runtime, would be): counts
/// how often the others declare it dead, and how often it declares them
/// dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run by hand"]
async fn stall_tolerance() {
    let stall = Duration::from_millis(env("STALL_MS", 500));
    let stalls: u32 = env("STALLS", 5);
    let s = start("scheduler-1", scheduler(1), &[]).await;
    let mut nodes = vec![s.clone()];
    for i in 1..4 {
        nodes.push(
            start(
                &format!("executor-{i}"),
                executor(&format!("http://e{i}")),
                &[&s],
            )
            .await,
        );
    }
    // The victim lives on its own single-threaded runtime.
    let victim_config = config("victim", &[&s]);
    let (victim_tx, victim_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let victim_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let victim = Membership::start(victim_config, executor("http://victim"))
                .await
                .unwrap();
            victim_tx.send((victim.clone(), rt_handle())).unwrap();
            let _ = stop_rx.await;
            victim.shutdown().await;
        });
    });
    fn rt_handle() -> tokio::runtime::Handle {
        tokio::runtime::Handle::current()
    }
    let (victim, victim_rt) = victim_rx.recv().unwrap();
    for node in nodes.iter().chain([&victim]) {
        assert!(eventually(Duration::from_secs(20), || all_alive(node, 5)).await);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut others = futures::stream::select_all(nodes.iter().map(|n| n.subscribe()));
    let mut own = victim.subscribe();
    for _ in 0..stalls {
        victim_rt.spawn(async move { std::thread::sleep(stall) });
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    let mut seen_dead = 0;
    while let Ok(Some(change)) =
        tokio::time::timeout(Duration::from_millis(10), others.next()).await
    {
        if matches!(change, MembershipChange::Removed(_)) {
            seen_dead += 1;
        }
    }
    let mut saw_dead = 0;
    while let Ok(Some(change)) = tokio::time::timeout(Duration::from_millis(10), own.next()).await {
        if matches!(change, MembershipChange::Removed(_)) {
            saw_dead += 1;
        }
    }
    println!(
        "gossip {}ms phi {}: {stalls} stalls of {stall:?}: the victim was declared dead {seen_dead} times (by 4 peers), it declared peers dead {saw_dead} times",
        env("GOSSIP_MS", 200),
        env("PHI", membership::config::DEFAULT_PHI_THRESHOLD)
    );
    let _ = stop_tx.send(());
    victim_thread.join().unwrap();
    for node in nodes {
        node.shutdown().await;
    }
}
