//! Alerts about the cluster: a node that sees no leader for longer than
//! `--alert-no-leader-after` tells the node's `--alert-webhook`, and says
//! so again when a leader returns; the leader says when enabled jobs
//! target a group without a live executor.

use std::{
    net::TcpListener,
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{web, App, HttpResponse, HttpServer};
use cronmesh_tests::{
    api::Api,
    cluster::Cluster,
    process::{executor, server_with},
    wait,
};
use serde_json::{json, Value};

fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/cluster", listener.local_addr().unwrap());
    let sink = received.clone();
    let server = HttpServer::new(move || {
        let sink = sink.clone();
        App::new().route(
            "/cluster",
            web::post().to(move |body: web::Json<Value>| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push(body.into_inner());
                    HttpResponse::NoContent().finish()
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    (url, received)
}

/// The first alert received of `event` in `state` that also `matches`.
fn received_alert(
    received: &Mutex<Vec<Value>>,
    event: &str,
    state: &str,
    matches: impl Fn(&Value) -> bool,
) -> Option<Value> {
    received
        .lock()
        .unwrap()
        .iter()
        .find(|a| a["event"] == event && a["state"] == state && matches(a))
        .cloned()
}

fn alert_of(received: &Mutex<Vec<Value>>, node: u64, state: &str) -> Option<Value> {
    received_alert(received, "cluster.no_leader", state, |a| a["node"] == node)
}

#[actix_web::test]
async fn a_node_left_alone_alerts_that_there_is_no_leader_and_that_one_returned() {
    let (hook, received) = receiver();
    let mut cluster = Cluster::start(
        3,
        &[],
        &["--alert-webhook", &hook, "--alert-no-leader-after", "2s"],
    );
    let leader = cluster.leader().await;
    // What the start said (a slow election) is not what this test is about.
    received.lock().unwrap().clear();

    let survivor = cluster.follower_of(leader);
    for id in [1, 2, 3].into_iter().filter(|id| *id != survivor) {
        cluster.kill(id);
    }
    let firing = wait::until(
        "a no-leader alert from the node left",
        Duration::from_secs(30),
        || async { alert_of(&received, survivor, "firing") },
    )
    .await;
    assert!(firing["since"].is_string(), "{firing}");
    assert!(
        firing["detail"].as_str().unwrap().contains("no leader"),
        "{firing}"
    );

    let back = [1, 2, 3].into_iter().find(|id| *id != survivor).unwrap();
    cluster.restart(back);
    let resolved = wait::until(
        "the no-leader alert resolved",
        Duration::from_secs(30),
        || async { alert_of(&received, survivor, "resolved") },
    )
    .await;
    assert_eq!(resolved["since"], firing["since"]);
}

#[actix_web::test]
async fn the_leader_alerts_when_enabled_jobs_target_a_group_without_executors() {
    let (hook, received) = receiver();
    let dir = tempfile::tempdir().unwrap();
    let exec = executor("default");
    let node = server_with(
        dir.path(),
        "127.0.0.1:0",
        &[&exec.url],
        &["--alert-webhook", &hook],
    );
    let api = Api::new(node.url.clone());
    api.create_job(json!({
        "id": "orphan", "schedule": "@manual",
        "target": {"type": "shell", "group": "batch", "command": "true"}
    }))
    .await;
    let of_group = |state: &str| received_alert(&received, "cluster.no_executor", state, |_| true);
    let firing = wait::until("a no-executor alert", Duration::from_secs(30), || async {
        of_group("firing")
    })
    .await;
    assert_eq!(firing["group"], "batch");
    assert!(
        received
            .lock()
            .unwrap()
            .iter()
            .all(|a| a["group"] != "default"),
        "the default group has its executor"
    );

    api.post("/v1/jobs/orphan/pause", json!({})).await;
    let resolved = wait::until(
        "the no-executor alert resolved",
        Duration::from_secs(30),
        || async { of_group("resolved") },
    )
    .await;
    assert_eq!(resolved["group"], "batch");
}

#[actix_web::test]
async fn slots_skipped_by_misfire_alert_and_a_run_on_time_resolves_it() {
    let (hook, received) = receiver();
    let dir = tempfile::tempdir().unwrap();
    let exec = executor("default");
    let node = server_with(
        dir.path(),
        "127.0.0.1:0",
        &[&exec.url],
        &["--alert-webhook", &hook],
    );
    let port = node.url.rsplit(':').next().unwrap().to_string();
    let api = Api::new(node.url.clone());
    api.create_job(json!({
        "id": "skipper", "schedule": "@every 1s",
        "misfire": {"policy": "skip", "threshold": "5m"},
        "target": {"type": "shell", "command": "true"}
    }))
    .await;
    wait::until("a run before the stop", Duration::from_secs(15), || async {
        (!api.runs_of("skipper").await.is_empty()).then_some(())
    })
    .await;
    node.kill9();
    // The scenario: down across whole slots, which the policy skips.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let node = server_with(
        dir.path(),
        &format!("127.0.0.1:{port}"),
        &[&exec.url],
        &["--alert-webhook", &hook],
    );
    let behind = |state: &str| received_alert(&received, "cluster.job_behind", state, |_| true);
    let firing = wait::until("a job-behind alert", Duration::from_secs(30), || async {
        behind("firing")
    })
    .await;
    assert_eq!(firing["job"], "default/skipper");
    assert!(
        firing["detail"].as_str().unwrap().contains("misfire"),
        "{firing}"
    );
    let resolved = wait::until(
        "the job-behind alert resolved",
        Duration::from_secs(30),
        || async { behind("resolved") },
    )
    .await;
    assert_eq!(resolved["job"], "default/skipper");
    drop(node);
}
