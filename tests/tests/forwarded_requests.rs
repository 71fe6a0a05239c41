//! The rate limit's exemption for requests a follower forwards to the
//! leader holds only for requests that prove, with the cluster secret,
//! that a member sent them: a client's own `x-cronmesh-forwarded` header,
//! bare or forged, is limited like any request (429), while a follower's
//! forward still reaches a leader whose budget for that address is spent.

use std::time::Duration;

use cronmesh_tests::{api::Api, cluster::Cluster, process, wait};
use reqwest::StatusCode;
use serde_json::json;

const SECRET: &str = "a-cluster-secret-of-enough-length";
const FORWARDED: &str = "x-cronmesh-forwarded";

fn secret_file(dir: &std::path::Path) -> String {
    let path = dir.join("secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    path.to_string_lossy().to_string()
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Statuses of `count` GETs of `/v1/jobs`, each carrying `mark()` as its
/// forwarded header.
async fn statuses(base: &str, count: usize, mark: impl Fn() -> String) -> Vec<StatusCode> {
    let client = client();
    let mut out = Vec::new();
    for _ in 0..count {
        let response = client
            .get(format!("{base}/v1/jobs"))
            .header(FORWARDED, mark())
            .send()
            .await
            .expect("GET /v1/jobs");
        out.push(response.status());
    }
    out
}

#[tokio::test]
async fn a_bare_or_forged_forwarded_header_is_limited_and_a_proven_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let node = process::server_with(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &[],
        &["--secret-file", &secret, "--rate-limit", "2"],
    );

    let bare = statuses(&node.url, 20, || "1".to_string()).await;
    assert!(
        bare.contains(&StatusCode::TOO_MANY_REQUESTS),
        "20 requests with a bare header went through a limit of 2 a second: {bare:?}"
    );
    let forged = statuses(&node.url, 20, || {
        let now = chrono::Utc::now().timestamp();
        format!("t={now},v1={}", "ab".repeat(32))
    })
    .await;
    assert!(
        forged.contains(&StatusCode::TOO_MANY_REQUESTS),
        "20 requests with a forged proof went through a limit of 2 a second: {forged:?}"
    );
    let guessed = statuses(&node.url, 20, || {
        let now = chrono::Utc::now().timestamp();
        protocol::signature::sign_forward(b"a guessed secret", now, "GET", "/v1/jobs")
    })
    .await;
    assert!(
        guessed.contains(&StatusCode::TOO_MANY_REQUESTS),
        "20 requests signed with another secret went through: {guessed:?}"
    );

    // The address's budget is spent; a member's proof still goes through.
    let proven = statuses(&node.url, 20, || {
        let now = chrono::Utc::now().timestamp();
        protocol::signature::sign_forward(SECRET.as_bytes(), now, "GET", "/v1/jobs")
    })
    .await;
    assert!(
        proven.iter().all(|s| *s == StatusCode::OK),
        "a request proven forwarded by a member was refused: {proven:?}"
    );
}

/// The count of a sample in a scrape, 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_follower_forwards_past_the_leaders_spent_budget() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let cluster = Cluster::start(3, &[], &["--secret-file", &secret, "--rate-limit", "3"]);
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    let (to_leader, to_follower) = (cluster.api(leader), cluster.api(follower));
    wait::until(
        "the follower to know where the leader is",
        Duration::from_secs(20),
        || async {
            let (status, _) = to_follower.get("/v1/jobs?consistent=true").await;
            (status == StatusCode::OK).then_some(())
        },
    )
    .await;

    // Each try spends this address's budget on the leader, then writes
    // through the follower, which forwards with its proof. A try the
    // follower itself limits (the same address, its own budget, spent by
    // the polls above) is tried again once it has refilled.
    let mut tries = 0;
    wait::until(
        "a write through the follower",
        Duration::from_secs(20),
        || {
            tries += 1;
            let (to_leader, to_follower) = (to_leader.clone(), to_follower.clone());
            let id = format!("forwarded-{tries}");
            async move {
                let mut spent = false;
                for _ in 0..50 {
                    if to_leader.get("/v1/jobs").await.0 == StatusCode::TOO_MANY_REQUESTS {
                        spent = true;
                        break;
                    }
                }
                assert!(spent, "the leader never limited 50 requests at 3 a second");
                let job = json!({"id": id, "schedule": "@manual",
                                 "target": {"type": "shell", "command": "true"}});
                let (status, body) = to_follower.post("/v1/jobs", job).await;
                match status {
                    StatusCode::CREATED => Some(()),
                    // The follower's own limit, or the leader's if the
                    // proof failed: the leader's metrics below tell which.
                    StatusCode::TOO_MANY_REQUESTS => None,
                    other => panic!("a forwarded write got {other}: {body}"),
                }
            }
        },
    )
    .await;

    let text = wait::until(
        "the leader's metrics past its rate limit",
        Duration::from_secs(20),
        || async {
            let (status, body) = to_leader.get("/metrics").await;
            (status == StatusCode::OK).then(|| body.as_str().unwrap_or_default().to_string())
        },
    )
    .await;
    let series = |status: u16| {
        sample(
            &text,
            &format!(
                r#"cronmesh_http_requests_total{{route="/v1/jobs",method="POST",status="{status}"}}"#
            ),
        )
    };
    assert_eq!(
        series(201),
        1.0,
        "the write the follower forwarded reached the leader's handler"
    );
    assert_eq!(
        series(429),
        0.0,
        "the leader limited a forwarded write although its address's budget was all it lacked"
    );
    let (status, _) = Api::new(to_leader.base.clone()).get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
}
