//! `GET /metrics` reports what happened, in the Prometheus text format:
//! fires, runs by status, lateness, proposals, Raft, executors and the
//! API's requests by route.

use std::time::Duration;

use cronmesh_tests::{api::Api, process, wait};
use serde_json::json;

/// The value of the sample `series` (name plus labels, exactly as
/// written), if the text has it.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .split(' ')
            .next()?
            .parse()
            .ok()
    })
}

async fn metrics(base: &str) -> String {
    let response = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_fires_runs_requests_and_raft_state() {
    let dir = tempfile::tempdir().unwrap();
    let node = process::dev(dir.path(), &[]);
    let api = Api::new(node.url.clone());
    api.create_job(json!({"id": "tick", "schedule": "@every 1s",
        "target": {"type": "shell", "command": "true"}}))
        .await;
    api.create_job(json!({"id": "fail", "schedule": "@manual",
        "target": {"type": "shell", "command": "exit 1"}}))
        .await;
    let (status, _) = api.post("/v1/jobs/fail/trigger", json!({})).await;
    assert_eq!(status, 202);

    let text = wait::until(
        "two succeeded runs and one failed",
        Duration::from_secs(20),
        || async {
            let text = metrics(&node.url).await;
            let ok = sample(&text, r#"cronmesh_runs_finished_total{status="succeeded"}"#)?;
            let failed = sample(&text, r#"cronmesh_runs_finished_total{status="failed"}"#)?;
            (ok >= 2.0 && failed >= 1.0).then_some(text)
        },
    )
    .await;

    let fires = sample(&text, "cronmesh_fires_total").unwrap();
    let succeeded = sample(&text, r#"cronmesh_runs_finished_total{status="succeeded"}"#).unwrap();
    assert!(fires >= succeeded, "{text}");
    assert_eq!(
        sample(&text, r#"cronmesh_runs_created_total{trigger="manual"}"#),
        Some(1.0)
    );
    assert!(sample(&text, "cronmesh_run_lateness_seconds_count").unwrap() >= 2.0);
    assert!(sample(&text, "cronmesh_proposal_duration_seconds_count").unwrap() >= 3.0);
    assert_eq!(sample(&text, "cronmesh_raft_term"), Some(1.0));
    assert_eq!(sample(&text, "cronmesh_raft_is_leader"), Some(1.0));
    assert!(sample(&text, "cronmesh_raft_applied_index").unwrap() >= 3.0);
    assert!(
        sample(&text, "cronmesh_store_disk_bytes").is_some_and(|bytes| bytes > 0.0),
        "sled's size on disk: {text}"
    );
    assert_eq!(
        sample(&text, r#"cronmesh_executors{state="alive"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"cronmesh_http_requests_total{route="/v1/jobs",method="POST",status="201"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"cronmesh_http_requests_total{route="/v1/jobs/{id}/trigger",method="POST",status="202"}"#
        ),
        Some(1.0),
        "requests are counted by route pattern, not by path"
    );
}
