//! `GET /v1/events`: a client sees the leader at once, then the job it
//! creates and each transition of that job's runs, as they happen.

use std::time::Duration;

use cronmesh_tests::{api::Api, process};
use serde_json::{json, Value};

/// Reads server-sent events until `done` holds for the events so far.
async fn read_events(
    response: &mut reqwest::Response,
    limit: Duration,
    done: impl Fn(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut buffer = String::new();
    let mut events = Vec::new();
    while !done(&events) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("timed out after {limit:?}; events so far: {events:?}"))
            .expect("the stream stays open")
            .expect("the stream does not end");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = serde_json::from_str::<Value>(v).ok();
                }
            }
            if let (Some(name), Some(data)) = (name, data) {
                events.push((name, data));
            }
        }
    }
    events
}

#[tokio::test]
async fn a_client_follows_a_job_and_its_runs_live() {
    let dir = tempfile::tempdir().unwrap();
    let node = process::dev(dir.path(), &[]);
    let api = Api::new(node.url.clone());
    let client = reqwest::Client::new();
    let mut stream = client
        .get(format!("{}/v1/events", node.url))
        .send()
        .await
        .expect("open the event stream");
    assert_eq!(stream.status(), 200);
    assert_eq!(
        stream.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );

    let first = read_events(&mut stream, Duration::from_secs(10), |e| !e.is_empty()).await;
    assert_eq!(first[0].0, "leader");
    assert_eq!(first[0].1["leader_id"], 1);

    let (status, _) = api
        .post(
            "/v1/jobs",
            json!({"id": "ticker", "schedule": "@every 1s",
                   "target": {"type": "shell", "command": "echo tick"}}),
        )
        .await;
    assert_eq!(status, 201);

    let events = read_events(&mut stream, Duration::from_secs(20), |events| {
        events.iter().any(|(name, data)| {
            name == "run" && data["job_id"] == "ticker" && data["status"] == "succeeded"
        })
    })
    .await;
    let created = events
        .iter()
        .position(|(n, d)| n == "job" && d["id"] == "ticker" && d["action"] == "created")
        .expect("the job's creation is an event");
    let succeeded = events
        .iter()
        .position(|(n, d)| n == "run" && d["status"] == "succeeded")
        .expect("checked above");
    assert!(
        created < succeeded,
        "events arrive in the order they happen"
    );
    let run_id = &events[succeeded].1["id"];
    assert!(
        events[..succeeded]
            .iter()
            .any(|(n, d)| n == "run" && d["id"] == *run_id && d["status"] == "pending"),
        "the run's creation came before its end: {events:?}"
    );
}

#[tokio::test]
async fn an_unknown_filter_is_refused_with_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let node = process::dev(dir.path(), &[]);
    let api = Api::new(node.url.clone());
    let (status, body) = api.get("/v1/events?jbo=x").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "jbo");
}

#[tokio::test]
async fn a_client_on_a_follower_sees_the_new_leader_after_a_failover() {
    let mut cluster = cronmesh_tests::cluster::Cluster::start(3, &[], &[]);
    let leader = cluster.leader().await;
    let watcher = cluster.follower_of(leader);
    let mut stream = reqwest::Client::new()
        .get(format!("{}/v1/events", cluster.api(watcher).base))
        .send()
        .await
        .expect("open the event stream");
    let first = read_events(&mut stream, Duration::from_secs(10), |e| !e.is_empty()).await;
    assert_eq!(first[0].0, "leader");
    assert_eq!(first[0].1["leader_id"], leader);
    let old_term = first[0].1["term"].as_u64().unwrap();

    cluster.kill(leader);
    let events = read_events(&mut stream, Duration::from_secs(30), |events| {
        events.iter().any(|(name, data)| {
            name == "leader" && data["leader_id"].as_u64().is_some_and(|id| id != leader)
        })
    })
    .await;
    let elected = events
        .iter()
        .rev()
        .find(|(name, _)| name == "leader")
        .expect("checked above");
    assert!(elected.1["term"].as_u64().unwrap() > old_term, "{events:?}");
}
