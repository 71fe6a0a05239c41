//! Signed gossip announcements with real processes: a scheduler and an
//! executor sharing the cluster secret, and rogue gossip members that do
//! not hold it: a `cronmesh executor` with another secret, a member
//! announcing the real executor's endpoint with a huge weight and another
//! group, and one announcing an endpoint of its own. The rogues are listed
//! `verified: false`, get no runs, and change nothing of the real executor;
//! a fake scheduler does not keep an executor from fencing itself.

use std::{
    net::TcpListener,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use cronmesh_tests::{mesh::Mesh, process::executor_with, wait};
use membership::{ExecutorInfo, Member, Membership, MembershipConfig, SchedulerInfo};
use serde_json::{json, Value};

const RUNS: usize = 12;

/// A gossip member of `cluster` seeded with `seed`, announcing `me` without
/// the cluster secret (its keys carry no `sig`).
async fn rogue(name: &str, cluster: &str, seed: &str, me: Member) -> Membership {
    let mut config = MembershipConfig::new(name, ([127, 0, 0, 1], 0).into()).with_seeds([seed]);
    config.cluster_id = cluster.to_string();
    config.gossip_interval = Duration::from_millis(100);
    config.phi_threshold = 20.0;
    Membership::start(config, me).await.expect("rogue gossip")
}

/// The most attractive executor there is: every handler, all the weight,
/// never busy.
fn attractive(group: &str, endpoint: &str) -> Member {
    let mut e = ExecutorInfo::new(group, endpoint);
    e.weight = u32::MAX;
    e.handlers = vec!["*".into()];
    e.labels.insert("rogue".into(), "yes".into());
    Member::Executor(e)
}

/// A TCP port that counts the connections made to it: the rogue's own
/// endpoint, which must never be sent anything.
fn counting_listener() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (url, count)
}

fn write_secret(dir: &std::path::Path, name: &str, secret: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, secret).expect("secret file");
    path.to_string_lossy().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rogue_gossip_members_are_unverified_and_get_no_runs() {
    let secrets = tempfile::tempdir().unwrap();
    let secret = write_secret(secrets.path(), "secret", "the real cluster secret\n");
    let other = write_secret(secrets.path(), "other", "not the cluster secret\n");
    let mesh = Mesh::start_with(&["--secret-file", &secret]);
    let real = mesh.executor(&["--secret-file", &secret]);
    // A real executor process, in the cluster but with another secret.
    let wrong_secret = mesh.executor(&["--secret-file", &other, "--weight", "4294967295"]);
    // Members announced from here: one claiming the real executor's
    // endpoint in another group, one with an endpoint of its own.
    let impersonator = rogue(
        "executor-impersonator",
        &mesh.cluster,
        &mesh.gossip,
        attractive("stolen", &real.url),
    )
    .await;
    let (own_endpoint, connections) = counting_listener();
    let thief = rogue(
        "executor-thief",
        &mesh.cluster,
        &mesh.gossip,
        attractive("default", &own_endpoint),
    )
    .await;

    // The scheduler lists all four, and only the real one verified.
    let listed = wait::until(
        "the scheduler to list the real executor and three rogues",
        Duration::from_secs(20),
        || async {
            let (_, list) = mesh.api.get("/v1/executors").await;
            let list = list.as_array()?.clone();
            let alive = list.iter().filter(|e| e["alive"] == true).count();
            (list.len() == 4 && alive == 4).then_some(list)
        },
    )
    .await;
    let verified: Vec<(String, bool)> = listed
        .iter()
        .map(|e| {
            let endpoint = e["endpoint"].as_str().unwrap_or_default().to_string();
            (endpoint, e["verified"] == true)
        })
        .collect();
    assert_eq!(
        verified.iter().filter(|(_, v)| *v).count(),
        1,
        "only the real executor is verified: {listed:#?}"
    );
    for row in [
        (real.url.clone(), true),
        (real.url.clone(), false),
        (wrong_secret.url.clone(), false),
        (own_endpoint.clone(), false),
    ] {
        assert!(verified.contains(&row), "{row:?} not in {listed:#?}");
    }
    assert_real_untouched(&listed, &real.url);
    // The console's Executors page marks the three rogues.
    let console = mesh
        .server
        .as_ref()
        .map(|s| s.url.clone())
        .unwrap_or_default();
    let page = reqwest::get(format!("{console}/executors"))
        .await
        .expect("console")
        .text()
        .await
        .expect("page");
    assert_eq!(
        page.matches(">unverified<").count(),
        3,
        "the Executors page marks the rogues: {page}"
    );

    // Runs go to the real executor only.
    mesh.api
        .create_job(json!({
            "id": "work", "schedule": "@yearly",
            "target": {"type": "shell", "command": "echo ran"}
        }))
        .await;
    mesh.trigger("work", RUNS).await;
    let runs = mesh.ended_runs("work", RUNS).await;
    assert_eq!(runs.len(), RUNS);
    for run in &runs {
        assert_eq!(run["executor"], real.url.as_str(), "{run:#}");
        assert_eq!(run["status"], "succeeded", "{run:#}");
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the rogue's own endpoint was contacted"
    );
    // The job's placement names the real executor alone.
    let (_, placement) = mesh.api.get("/v1/jobs/work/placement").await;
    assert_eq!(placement["executors"], json!([real.url]), "{placement}");

    // An impersonator's death is not the real executor's: its row stays
    // alive and its runs are not failed over.
    impersonator.shutdown().await;
    wait::until(
        "the impersonator declared dead",
        Duration::from_secs(20),
        || async {
            let (_, list) = mesh.api.get("/v1/executors").await;
            let list = list.as_array()?.clone();
            let dead = list.iter().any(|e| {
                e["endpoint"] == real.url && e["verified"] == false && e["alive"] == false
            });
            dead.then_some(())
        },
    )
    .await;
    let (_, list) = mesh.api.get("/v1/executors").await;
    assert_real_untouched(list.as_array().expect("a list"), &real.url);
    thief.shutdown().await;
}

/// The real executor's row: verified, alive, its own group and weight, no
/// label of the impersonator's.
fn assert_real_untouched(listed: &[Value], url: &str) {
    let rows: Vec<&Value> = listed
        .iter()
        .filter(|e| e["endpoint"] == url && e["verified"] == true)
        .collect();
    assert_eq!(rows.len(), 1, "{listed:#?}");
    let row = rows[0];
    assert_eq!(row["alive"], true, "{row:#}");
    assert_eq!(row["group"], "default", "{row:#}");
    assert_eq!(row["weight"], 1, "{row:#}");
    // Its own handlers (the built-in ones), not the impersonator's `*`.
    let handlers = row["handlers"].as_array().expect("handlers");
    assert!(!handlers.contains(&json!("*")), "{row:#}");
    assert!(row["labels"].get("rogue").is_none(), "{row:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fake_scheduler_does_not_keep_an_executor_from_fencing() {
    let secrets = tempfile::tempdir().unwrap();
    let secret = write_secret(secrets.path(), "secret", "the real cluster secret");
    let gossip = format!("127.0.0.1:{}", cronmesh_tests::cluster::free_port());
    let cluster = format!("test-{}", cronmesh_tests::cluster::free_port());
    // The only "scheduler" is a rogue without the secret.
    let fake = Member::Scheduler(SchedulerInfo {
        node_id: 1,
        api_url: "http://127.0.0.1:9".into(),
        raft_addr: "127.0.0.1:9".into(),
        leader: true,
        term: 1,
    });
    let mut config = MembershipConfig::new("scheduler-1", gossip.parse().expect("address"))
        .with_seeds([&gossip]);
    config.cluster_id = cluster.clone();
    config.gossip_interval = Duration::from_millis(100);
    config.phi_threshold = 20.0;
    let scheduler = Membership::start(config, fake)
        .await
        .expect("fake scheduler");
    let executor = executor_with(
        "default",
        &[
            "--secret-file",
            &secret,
            "--seeds",
            &gossip,
            "--gossip-cluster",
            &cluster,
            "--fence-after",
            "3s",
        ],
    );
    // They do gossip: the fake scheduler sees the executor alive...
    wait::until(
        "the fake scheduler to see the executor",
        Duration::from_secs(20),
        || async {
            let members = scheduler.members().await;
            members
                .iter()
                .any(|m| m.alive && m.member.id() == executor.url)
                .then_some(())
        },
    )
    .await;
    // ...and the executor sees it, then still fences itself for want of a
    // real scheduler. A fence before the fake was seen would prove nothing
    // (and is not expected: gossip meets well within `--fence-after`).
    let (seen, fenced) = wait::until(
        "the executor to see the fake scheduler, then fence itself",
        Duration::from_secs(20),
        || async {
            let lines = executor.log_lines();
            let seen = lines
                .iter()
                .position(|l| l.contains("member joined") && l.contains("scheduler"))?;
            let fenced = lines
                .iter()
                .position(|l| l.contains("no scheduler in sight: fenced"))?;
            Some((seen, fenced))
        },
    )
    .await;
    assert!(
        seen < fenced,
        "fenced before the fake scheduler was seen: {:#?}",
        executor.log_lines()
    );
    scheduler.shutdown().await;
}
