//! A node started with an admin token refuses admin requests without it,
//! with a 401 that says what to send, while health checks stay open; the
//! CLI passes it on; a cluster with a token still forwards writes to its
//! leader and admits a joining node.

use std::{process::Command, time::Duration};

use cronmesh_tests::{api::Api, cluster::Cluster, process, wait};
use reqwest::StatusCode;
use serde_json::json;

const TOKEN: &str = "t0ken-for-tests";

fn job(id: &str) -> serde_json::Value {
    json!({"id": id, "schedule": "@manual", "target": {"type": "shell", "command": "true"}})
}

#[tokio::test]
async fn the_admin_api_requires_the_token_and_health_checks_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let node = process::dev(dir.path(), &["--admin-token", TOKEN]);
    let anonymous = Api::new(node.url.clone());
    let wrong = Api::new(node.url.clone()).with_token("guess");
    let admin = Api::new(node.url.clone()).with_token(TOKEN);

    for api in [&anonymous, &wrong] {
        let (status, body) = api.post("/v1/jobs", job("refused")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Bearer"));
        let (status, _) = api.get("/v1/events").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = admin.get("/v1/jobs/refused").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a refused request stores nothing"
    );
    admin.create_job(job("allowed")).await;

    for open in ["/healthz", "/readyz"] {
        let (status, _) = anonymous.get(open).await;
        assert_eq!(status, StatusCode::OK, "{open} needs no token");
    }

    // A browser without the cookie is sent to the sign-in page.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = no_redirects
        .get(format!("{}/jobs", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()["location"], "/login?next=%2Fjobs");

    // The CLI: refused with a hint without the token, served with it.
    let cli = |token: Option<&str>| {
        let mut command = Command::new(process::binary());
        command
            .args(["job", "get", "allowed"])
            .env("CRONMESH_API", &node.url);
        command.env_remove("CRONMESH_TOKEN");
        if let Some(token) = token {
            command.env("CRONMESH_TOKEN", token);
        }
        command.output().expect("run the cli")
    };
    let refused = cli(None);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--token"));
    let served = cli(Some(TOKEN));
    assert_eq!(served.status.code(), Some(0), "{served:?}");
    assert!(String::from_utf8_lossy(&served.stdout).contains("allowed"));
}

#[tokio::test]
async fn a_cluster_with_a_token_forwards_writes_and_admits_a_joining_node() {
    let mut cluster = Cluster::start(2, &[], &["--admin-token", TOKEN]);
    let leader = cluster.leader().await;
    let follower = if leader == 1 { 2 } else { 1 };

    // Written on the follower, forwarded to the leader with the token
    // (503 "retry" until the follower has learnt the leader's address).
    let follower_api = cluster.api(follower);
    wait::until(
        "the follower to forward a write",
        Duration::from_secs(20),
        || async {
            let (status, body) = follower_api.post("/v1/jobs", job("forwarded")).await;
            assert_ne!(status, StatusCode::UNAUTHORIZED, "{body}");
            (status == StatusCode::CREATED).then_some(())
        },
    )
    .await;

    let joined = cluster.join();
    let (_, status) = cluster.api(leader).get("/v1/cluster").await;
    let index = status["commit_index"].as_u64().unwrap();
    cluster.caught_up(joined, index).await;
    let (status, body) = cluster.api(joined).get("/v1/jobs/forwarded").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, _) = Api::new(cluster.api(joined).base.clone())
        .get("/v1/cluster")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_client_over_the_rate_limit_gets_429_and_health_checks_still_answer() {
    let dir = tempfile::tempdir().unwrap();
    let node = process::dev(dir.path(), &["--rate-limit", "5"]);
    let api = Api::new(node.url.clone());
    let mut limited = None;
    for _ in 0..50 {
        let (status, body) = api.get("/v1/jobs").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(body);
            break;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let body = limited.expect("50 requests at once go over 5 a second");
    assert_eq!(body["error"]["code"], "rate_limited");
    let (status, _) = api.get("/healthz").await;
    assert_eq!(status, StatusCode::OK, "health checks are never limited");
}
