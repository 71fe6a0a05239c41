//! The Raft port of real `cronmesh server` processes with certificates
//! (`--raft-tls-cert`, `--raft-tls-key`, `--raft-tls-ca`) and the cluster
//! secret: the cluster elects, replicates and takes a new member over
//! mutual TLS; plain TCP is refused on its first bytes; and a node that
//! holds the secret but a certificate of another CA is never added.

use std::{path::Path, time::Duration};

use cronmesh_tests::{
    cluster::{free_port, member_ids, Cluster},
    process::server_with,
    tls::TestCa,
    wait,
};
use reqwest::StatusCode;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

fn secret_file(dir: &Path) -> String {
    let path = dir.join("secret");
    std::fs::write(&path, "the cluster's secret\n").expect("write the secret file");
    path.to_string_lossy().to_string()
}

/// `--raft-tls-*` with the CA's certificate for 127.0.0.1.
fn raft_tls_args(ca: &TestCa) -> Vec<String> {
    let path = |p: &Path| p.to_string_lossy().to_string();
    vec![
        "--raft-tls-cert".into(),
        path(&ca.cert),
        "--raft-tls-key".into(),
        path(&ca.key),
        "--raft-tls-ca".into(),
        path(&ca.ca),
    ]
}

#[tokio::test]
async fn a_cluster_on_mutual_tls_works_and_never_adds_a_node_of_another_ca() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = secret_file(dir.path());
    let ours = TestCa::generate(dir.path(), "cluster");
    let mut extra = vec!["--secret-file".to_string(), secret.clone()];
    extra.extend(raft_tls_args(&ours));
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut cluster = Cluster::start(3, &[], &extra);
    let leader = cluster.leader().await;
    cluster
        .api(leader)
        .create_job(
            json!({"id": "over-tls", "schedule": "@manual", "enabled": false,
            "target": {"type": "shell", "command": "true"}}),
        )
        .await;
    for node in [1, 2, 3] {
        wait::until(
            &format!("node {node} to serve the job"),
            Duration::from_secs(30),
            || async {
                let (status, _) = cluster.api(node).get("/v1/jobs/over-tls").await;
                (status == StatusCode::OK).then_some(())
            },
        )
        .await;
    }

    // Plain TCP gets nothing but a closed connection, and is counted.
    let raft_addr = cluster.raft_addr(leader).await;
    let mut raw = TcpStream::connect(&raft_addr).await.expect("connect");
    raw.write_all(b"\x00\x00\x00\x08\x00\x00\x00\x00plain")
        .await
        .expect("write");
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(15), raw.read(&mut buf)).await;
    // A TLS alert may come before the close; nothing else does.
    assert!(
        matches!(read, Ok(Ok(_) | Err(_))),
        "plain TCP was kept open: {read:?}"
    );
    wait::until(
        "the plain connection counted",
        Duration::from_secs(20),
        || async {
            let status = cluster.status(leader).await;
            (status["raft_auth"]["handshakes_refused"].as_u64() >= Some(1)).then_some(())
        },
    )
    .await;

    // Node 5 holds the secret but a certificate of another CA.
    let theirs = TestCa::generate(dir.path(), "stranger");
    let (http, raft) = (free_port(), free_port());
    let stranger_raft = format!("127.0.0.1:{raft}");
    let mut args = vec![
        "--node-id".to_string(),
        "5".into(),
        "--raft".into(),
        stranger_raft.clone(),
        "--join".into(),
        cluster.api(1).base.clone(),
        "--secret-file".into(),
        secret,
    ];
    args.extend(raft_tls_args(&theirs));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stranger = server_with(
        &dir.path().join("stranger"),
        &format!("127.0.0.1:{http}"),
        &[],
        &args,
    );
    wait::until(
        "node 5's join to be refused",
        Duration::from_secs(60),
        || async {
            let lines = stranger.log_lines();
            lines
                .iter()
                .any(|l| l.contains("the cluster did not add this node yet"))
                .then_some(())
        },
    )
    .await;
    let (status, body) = cluster
        .api(1)
        .post(
            "/v1/cluster/members",
            json!({"node_id": 5, "raft_addr": stranger_raft, "api_url": stranger.url}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "raft_addr", "{body}");
    assert!(body.to_string().contains("TLS"), "{body}");
    assert_eq!(member_ids(&cluster.status(leader).await), vec![1, 2, 3]);
    let api5 = cronmesh_tests::api::Api::new(stranger.url.clone());
    let (_, body) = api5.get("/v1/cluster").await;
    assert_eq!(
        body["term"].as_u64(),
        Some(0),
        "node 5 heard the cluster: {body}"
    );
    drop(stranger);

    // A node with the cluster's certificate joins and catches up.
    let four = cluster.join();
    let status = wait::until("four members", Duration::from_secs(60), || async {
        let body = cluster.status(leader).await;
        (member_ids(&body).len() == 4).then_some(body)
    })
    .await;
    let commit = status["commit_index"].as_u64().expect("a commit index");
    cluster.caught_up(four, commit).await;
    let (status, _) = cluster.api(four).get("/v1/jobs/over-tls").await;
    assert_eq!(status, StatusCode::OK, "node {four} serves the job");
}
