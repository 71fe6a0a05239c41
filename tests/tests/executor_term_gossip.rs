//! A scheduler gossips its Raft term and an executor that joined its
//! gossip learns it: a dispatch from an older term is refused with 409
//! before any dispatch of the current term has reached the executor. Real
//! processes: `cronmesh server` with Raft and gossip, `cronmesh executor`.

use std::time::Duration;

use cronmesh_tests::{
    cluster::{free_port, Cluster},
    process::executor_with,
    wait,
};
use protocol::dispatch::{DispatchRequest, Task, STALE_TERM_CODE, STALE_TERM_STATUS, TERM_HEADER};
use serde_json::Value;

/// Generous: the machine may be busy building.
const LIMIT: Duration = Duration::from_secs(30);

fn noop_run(run_id: &str, term: u64) -> DispatchRequest {
    DispatchRequest {
        run_id: run_id.into(),
        job_id: "fenced".into(),
        namespace: "default".into(),
        scheduled_at: chrono::Utc::now(),
        attempt: 1,
        shard: Default::default(),
        params: String::new(),
        task: Task::Handler {
            handler: "noop".into(),
        },
        timeout_ms: 5_000,
        // Nowhere to report: should it run, it would only be logged.
        report_to: vec![],
        term,
        expires_at: None,
        parent_run_ids: Vec::new(),
        parent_scheduled_at: None,
    }
}

/// POSTs `run` as JSON to the executor at `url`.
async fn dispatch(client: &reqwest::Client, url: &str, run: &DispatchRequest) -> reqwest::Response {
    client
        .post(format!("{url}/v1/dispatch"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(run).expect("a request encodes"))
        .send()
        .await
        .expect("the executor answers")
}

#[tokio::test]
async fn an_executor_refuses_a_term_older_than_the_schedulers_gossip() {
    let gossip = format!("127.0.0.1:{}", free_port());
    let cluster_id = format!("term-{}", free_port());
    let mut cluster = Cluster::start(
        1,
        &[],
        &["--gossip", &gossip, "--gossip-cluster", &cluster_id],
    );
    // Term 0 never fences, so the term must be at least 2 for its
    // predecessor to be refused; every restart starts a new term.
    let mut term = 0;
    for _ in 0..3 {
        cluster.leader().await;
        let (_, status) = cluster.api(1).get("/v1/cluster").await;
        term = status["term"].as_u64().unwrap_or(0);
        if term >= 2 {
            break;
        }
        cluster.kill(1);
        cluster.restart(1);
    }
    assert!(term >= 2, "the scheduler's term stays below 2");

    let exec = executor_with(
        "default",
        &["--seeds", &gossip, "--gossip-cluster", &cluster_id],
    );
    let client = reqwest::Client::new();
    wait::until(
        "the executor to learn the term by gossip",
        LIMIT,
        || async {
            let response = client
                .get(format!("{}/v1/info", exec.url))
                .send()
                .await
                .ok()?;
            let info: Value = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
            (info["term"].as_u64() == Some(term)).then_some(())
        },
    )
    .await;

    let response = dispatch(&client, &exec.url, &noop_run("from-the-past", term - 1)).await;
    assert_eq!(response.status().as_u16(), STALE_TERM_STATUS);
    let header = response
        .headers()
        .get(TERM_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    assert_eq!(header, Some(term.to_string()));
    let bytes = response.bytes().await.expect("a body");
    let body: Value = serde_json::from_slice(&bytes).expect("a JSON error");
    assert_eq!(body["error"]["code"], STALE_TERM_CODE);
    let run = client
        .get(format!("{}/v1/runs/from-the-past", exec.url))
        .send()
        .await
        .expect("the executor answers");
    assert_eq!(run.status().as_u16(), 404, "the refused run exists");

    // The current term is welcome.
    let response = dispatch(&client, &exec.url, &noop_run("of-today", term)).await;
    assert_eq!(response.status().as_u16(), 202);
}
