//! Executors that join by gossip: shards spread over whoever is alive,
//! work moves off a dead executor, a new one takes part from the next
//! fire, a cut-off executor fences itself, and services in any language
//! (forward mode) or in Rust (embedded) serve handler jobs.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::TcpListener,
    time::{Duration, Instant},
};

use actix_web::{web, App, HttpResponse, HttpServer};
use cronmesh_tests::{
    mesh::Mesh,
    process::{assert_group_gone, executor_with, Proc},
    wait,
};
use serde_json::{json, Value};

/// Scheduled runs of `job` by slot: shard index -> executor.
fn by_slot(runs: &[Value]) -> BTreeMap<String, BTreeMap<u64, String>> {
    let mut slots: BTreeMap<String, BTreeMap<u64, String>> = BTreeMap::new();
    for run in runs.iter().filter(|r| r["trigger"] == "schedule") {
        let slot = slots
            .entry(run["scheduled_at"].as_str().unwrap().to_string())
            .or_default();
        let previous = slot.insert(
            run["shard"]["index"].as_u64().unwrap(),
            run["executor"].as_str().unwrap_or_default().to_string(),
        );
        assert!(
            previous.is_none(),
            "a shard ran twice in slot {}",
            run["scheduled_at"]
        );
    }
    slots
}

#[tokio::test]
async fn shards_follow_the_live_executors() {
    let mesh = Mesh::start();
    let executors: Vec<Proc> = (0..3).map(|_| mesh.executor(&[])).collect();
    let urls: Vec<&str> = executors.iter().map(|e| e.url.as_str()).collect();
    mesh.sees_alive(&urls).await;
    mesh.api
        .create_job(json!({
            "id": "sharded", "schedule": "@every 1s", "shards": 6,
            "target": {"type": "shell", "command": "sleep 1.5; echo $CRONMESH_SHARD_INDEX/$CRONMESH_SHARD_COUNT"}
        }))
        .await;

    // Every shard once per fire, spread over all three. Runs are created
    // ahead of their slot: wait for a fire whose six runs are running.
    let slots = wait::until("a complete fire", Duration::from_secs(20), || async {
        let runs = mesh.api.runs_of("sharded").await;
        let running: Vec<Value> = runs
            .into_iter()
            .filter(|r| r["status"] == "running")
            .collect();
        let slots = by_slot(&running);
        slots.values().any(|s| s.len() == 6).then_some(slots)
    })
    .await;
    let full = slots.values().find(|s| s.len() == 6).unwrap();
    assert_eq!(
        full.keys().copied().collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4, 5]
    );
    assert_eq!(
        full.values().collect::<BTreeSet<_>>().len(),
        3,
        "shards spread over the three executors: {full:?}"
    );

    // kill -9 one executor: its runs in flight re-run elsewhere.
    let mut executors = executors;
    let victim = executors.remove(0);
    let victim_url = victim.url.clone();
    let killed = Instant::now();
    victim.kill9();
    let failover = wait::until(
        "failover runs on the others",
        Duration::from_secs(20),
        || async {
            let runs = mesh.api.runs_of("sharded").await;
            runs.into_iter().find(|r| r["trigger"] == "failover")
        },
    )
    .await;
    eprintln!(
        "executor kill -9 to the first failover run: {:?}",
        killed.elapsed()
    );
    assert_ne!(failover["executor"], victim_url.as_str());
    let previous = failover["retry_of"].as_str().unwrap();
    // The lost run's end is recorded in its own batch, soon after.
    let lost = wait::until(
        "the lost run to be failed",
        Duration::from_secs(10),
        || async {
            let (_, run) = mesh.api.get(&format!("/v1/runs/{previous}")).await;
            (run["status"] == "failed").then_some(run)
        },
    )
    .await;
    assert!(
        lost["error"].as_str().unwrap().contains("declared dead"),
        "{lost}"
    );
    let urls: Vec<&str> = executors.iter().map(|e| e.url.as_str()).collect();
    mesh.sees_alive(&urls).await;

    // A fourth executor takes part from the next fire.
    let fourth = mesh.executor(&[]);
    let joined_at = chrono::Utc::now();
    wait::until(
        "a fire that uses the new executor",
        Duration::from_secs(20),
        || async {
            let slots = by_slot(&mesh.api.runs_of("sharded").await);
            slots
                .iter()
                .any(|(slot, shards)| {
                    chrono::DateTime::parse_from_rfc3339(slot).unwrap() > joined_at
                        && shards.values().any(|e| *e == fourth.url)
                })
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn an_executor_cut_off_from_every_scheduler_fences_itself() {
    let mut mesh = Mesh::start();
    let exec = mesh.executor(&["--fence-after", "1s"]);
    mesh.sees_alive(&[&exec.url]).await;
    let pid_file = mesh.dir.path().join("pgid");
    mesh.api
        .create_job(json!({
            "id": "long", "schedule": "@manual", "timeout": "5m",
            "target": {"type": "shell", "command": format!("echo $$ > {}; sleep 300", pid_file.display())}
        }))
        .await;
    mesh.api.post("/v1/jobs/long/trigger", json!({})).await;
    wait::until("the run to start", Duration::from_secs(15), || async {
        pid_file.exists().then_some(())
    })
    .await;
    // The only scheduler goes away: the executor must stop the work itself.
    if let Some(server) = mesh.server.take() {
        server.kill9();
    }
    assert_group_gone(&pid_file).await;
}

#[actix_web::test]
async fn forward_mode_and_embedded_executors_serve_handler_jobs() {
    // A small HTTP service standing in for a service in another language.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let service = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(|| {
        App::new().route(
            "/resize",
            web::post().to(|body: web::Json<Value>| async move {
                HttpResponse::Ok().body(format!(
                    "resized shard {} with {}",
                    body["shard"]["index"], body["params"]
                ))
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);

    let mesh = Mesh::start();
    let forwarder = executor_with(
        "images",
        &[
            "--seeds",
            &mesh.gossip,
            "--gossip-cluster",
            &mesh.cluster,
            "--forward",
            &service,
        ],
    );
    let embedded = node::executor::Executor::builder()
        .group("billing")
        .configure(|c| {
            c.gossip = Some(node::executor::config::GossipSettings {
                listen: "127.0.0.1:0".parse().unwrap(),
                seeds: vec![mesh.gossip.clone()],
                cluster: mesh.cluster.clone(),
                fence_after: Duration::from_secs(30),
            })
        })
        .handler("reconcile", |ctx| async move {
            Ok(format!("reconciled {} for {}", ctx.shard.index, ctx.params))
        })
        .start()
        .await
        .unwrap();
    mesh.sees_alive(&[&forwarder.url, &embedded.endpoint]).await;

    for (id, group, handler, params) in [
        ("resize", "images", "resize", "small"),
        ("reconcile", "billing", "reconcile", "march"),
    ] {
        mesh.api
            .create_job(json!({"id": id, "schedule": "@manual", "params": params, "target": {"type": "executor", "group": group, "handler": handler}}))
            .await;
        mesh.api
            .post(&format!("/v1/jobs/{id}/trigger"), json!({}))
            .await;
    }
    let resized = wait::until("the forwarded run", Duration::from_secs(15), || async {
        mesh.api
            .runs_of("resize")
            .await
            .into_iter()
            .find(|r| r["status"] == "succeeded")
    })
    .await;
    assert_eq!(resized["output"], "resized shard 0 with \"small\"");
    assert_eq!(resized["executor"], forwarder.url.as_str());
    let reconciled = wait::until("the embedded run", Duration::from_secs(15), || async {
        mesh.api
            .runs_of("reconcile")
            .await
            .into_iter()
            .find(|r| r["status"] == "succeeded")
    })
    .await;
    assert_eq!(reconciled["output"], "reconciled 0 for march");
    assert_eq!(reconciled["executor"], embedded.endpoint.as_str());
    let (_, listed) = mesh.api.get("/v1/executors").await;
    let billing = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["group"] == "billing")
        .unwrap()
        .clone();
    assert_eq!(billing["handlers"], json!(["reconcile"]));
    embedded.stop().await;
}
