//! The Raft port of real `cronmesh server` processes with a cluster
//! secret: the cluster works, a node with another secret never takes part,
//! and a frame forged on a raw socket moves nothing. Without a secret the
//! same forged frame does move a node, which is what the handshake is for
//! (and why `--unsigned` is for trusted networks only).

use std::{path::Path, time::Duration};

use cronmesh_tests::{
    cluster::{free_port, member_ids, Cluster},
    process::{server_with, Proc},
    wait,
};
use node::raft::transport::{encode_frames, MAX_FRAME_BYTES};
use raft::eraftpb::{Message, MessageType};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A term no election of a test reaches.
const FORGED_TERM: u64 = 1_000_000;

fn secret_file(dir: &Path, name: &str, secret: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{secret}\n")).expect("write the secret file");
    path.to_string_lossy().to_string()
}

async fn term(cluster: &Cluster, id: u64) -> u64 {
    cluster.status(id).await["term"]
        .as_u64()
        .expect("a term in /v1/cluster")
}

/// The wire format of a node without a secret: one frame carrying a
/// heartbeat and a vote request, both from `from` to `to` at
/// [`FORGED_TERM`].
fn forged_frame(from: u64, to: u64) -> Vec<u8> {
    let messages: Vec<Message> = [MessageType::MsgHeartbeat, MessageType::MsgRequestVote]
        .into_iter()
        .map(|kind| {
            let mut message = Message::default();
            message.set_msg_type(kind);
            message.from = from;
            message.to = to;
            message.term = FORGED_TERM;
            message
        })
        .collect();
    let (frames, _) = encode_frames(&messages, MAX_FRAME_BYTES, MAX_FRAME_BYTES);
    frames.into_iter().flat_map(|f| f.bytes).collect()
}

/// Creates a job through `leader` and checks every running node serves it.
async fn a_job_is_accepted(cluster: &Cluster, id: &str) {
    let leader = cluster.leader().await;
    cluster
        .api(leader)
        .create_job(json!({"id": id, "schedule": "@manual", "enabled": false,
            "target": {"type": "shell", "command": "true"}}))
        .await;
    for node in [1, 2, 3] {
        wait::until(
            &format!("node {node} to serve job {id}"),
            Duration::from_secs(30),
            || async {
                let (status, _) = cluster.api(node).get(&format!("/v1/jobs/{id}")).await;
                (status == StatusCode::OK).then_some(())
            },
        )
        .await;
    }
}

#[tokio::test]
async fn a_node_with_another_secret_cannot_join_and_one_with_the_secret_can() {
    let keys = tempfile::tempdir().expect("temp dir");
    let ours = secret_file(keys.path(), "ours", "the cluster's secret");
    let theirs = secret_file(keys.path(), "theirs", "another secret");
    let mut cluster = Cluster::start(3, &[], &["--secret-file", &ours]);
    let leader = cluster.leader().await;
    a_job_is_accepted(&cluster, "before").await;

    // Node 5 asks node 1 to add it, holding another secret.
    let (http, raft) = (free_port(), free_port());
    let raft_addr = format!("127.0.0.1:{raft}");
    let stranger: Proc = server_with(
        &cluster.dir.path().join("stranger"),
        &format!("127.0.0.1:{http}"),
        &[],
        &[
            "--node-id",
            "5",
            "--raft",
            &raft_addr,
            "--join",
            &cluster.api(1).base,
            "--secret-file",
            &theirs,
        ],
    );
    // The cluster checks its Raft port before adding it, and refuses.
    wait::until(
        "node 5's join to be refused",
        Duration::from_secs(60),
        || async {
            let lines = stranger.log_lines();
            (lines
                .iter()
                .any(|l| l.contains("the cluster did not add this node yet"))
                && lines.iter().any(|l| l.contains("raft handshake refused")))
            .then_some(())
        },
    )
    .await;
    let (status, body) = cluster
        .api(1)
        .post(
            "/v1/cluster/members",
            json!({"node_id": 5, "raft_addr": raft_addr, "api_url": stranger.url}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("secret"), "{body}");
    assert_eq!(member_ids(&cluster.status(leader).await), vec![1, 2, 3]);

    // Node 5 learned nothing: no leader, no term, no entry.
    let api5 = cronmesh_tests::api::Api::new(stranger.url.clone());
    let (status, body) = api5.get("/v1/cluster").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["leader_id"], Value::Null, "{body}");
    assert_eq!(body["term"].as_u64(), Some(0), "{body}");
    assert_eq!(body["applied_index"].as_u64(), Some(0), "{body}");
    // The cluster stays healthy under the same leader.
    a_job_is_accepted(&cluster, "after").await;
    assert_eq!(cluster.leader().await, leader);
    drop(stranger);

    // A node with the secret joins through the same check and catches up.
    let four = cluster.join();
    let status = wait::until("four members", Duration::from_secs(60), || async {
        let body = cluster.status(leader).await;
        (member_ids(&body).len() == 4).then_some(body)
    })
    .await;
    let commit = status["commit_index"].as_u64().expect("a commit index");
    cluster.caught_up(four, commit).await;
    let (status, _) = cluster.api(four).get("/v1/jobs/after").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "node {four} serves the cluster's jobs"
    );
}

/// Writes [`forged_frame`] to node `to` on a raw socket, as node `from`;
/// answers whether the node closed the connection (it does when it refuses
/// the frame) rather than keeping it open.
async fn send_forged_frame(cluster: &Cluster, from: u64, to: u64) -> bool {
    let mut raw = TcpStream::connect(cluster.raft_addr(to).await)
        .await
        .expect("connect to the raft port");
    raw.write_all(&forged_frame(from, to))
        .await
        .expect("write the forged frame");
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), raw.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn a_forged_frame_does_not_move_a_node_with_a_secret() {
    let keys = tempfile::tempdir().expect("temp dir");
    let ours = secret_file(keys.path(), "ours", "the cluster's secret");
    let cluster = Cluster::start(3, &[], &["--secret-file", &ours]);
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    let other = (1..=3)
        .find(|id| *id != leader && *id != follower)
        .expect("a third node");
    let before = term(&cluster, follower).await;

    // Refused on its first bytes: the node closes the connection.
    assert!(
        send_forged_frame(&cluster, other, follower).await,
        "the node kept a connection without a handshake open"
    );
    assert!(term(&cluster, follower).await < FORGED_TERM);
    assert!(term(&cluster, leader).await < FORGED_TERM);
    assert_eq!(cluster.leader().await, leader);
    assert_eq!(term(&cluster, follower).await, before);
    a_job_is_accepted(&cluster, "after-forgery").await;

    // The refusal is counted where an operator looks.
    let status = cluster.status(follower).await;
    let refused = status["raft_auth"]["handshakes_refused"].as_u64();
    assert!(refused >= Some(1), "{status}");
    let (_, metrics) = cluster.api(follower).get("/metrics").await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    let line = metrics
        .lines()
        .find(|l| l.starts_with(r#"cronmesh_raft_auth_refusals{event="handshakes_refused"}"#))
        .unwrap_or_else(|| panic!("no refusal metric in:\n{metrics}"));
    let counted: u64 = line
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(counted >= 1, "{line}");
}

/// The control: without a secret, the same frame reaches Raft and moves
/// the node's term, so the test above would fail if the handshake let it
/// through.
#[tokio::test]
async fn a_forged_frame_moves_a_node_without_a_secret() {
    let cluster = Cluster::start(3, &[], &[]);
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    let other = (1..=3)
        .find(|id| *id != leader && *id != follower)
        .expect("a third node");
    assert!(
        !send_forged_frame(&cluster, other, follower).await,
        "a node without a secret closed a well-formed frame connection"
    );
    wait::until(
        "the forged term to reach the follower",
        Duration::from_secs(20),
        || async { (term(&cluster, follower).await >= FORGED_TERM).then_some(()) },
    )
    .await;
}
