//! Test data: a snapshot of a small cluster at a fixed time, and a fake
//! node that answers the reads of a refresh over real HTTP.

use chrono::{DateTime, Duration, TimeZone, Utc};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    task::JoinHandle,
};

use crate::{
    app::App,
    conn::Link,
    model::{Cluster, Executor, Job, LastRun, Member, Run, Shard, Snapshot},
    msg::Update,
};

/// The fixed "now" of every rendered test screen.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0)
        .single()
        .expect("valid time")
}

pub fn member(node_id: u64, role: &str, url: &str) -> Member {
    Member {
        node_id,
        role: role.into(),
        api_url: Some(url.into()),
        matched_index: Some(42),
    }
}

pub fn run(id: &str, namespace: &str, job: &str, status: &str, ago_secs: i64) -> Run {
    let created = now() - Duration::seconds(ago_secs);
    let ended = !crate::model::is_active(status);
    Run {
        id: id.into(),
        job_id: job.into(),
        namespace: namespace.into(),
        scheduled_at: Some(created),
        trigger: "schedule".into(),
        shard: Shard {
            index: 0,
            count: 1,
            param: String::new(),
        },
        attempt: 1,
        status: status.into(),
        executor: Some("http://10.0.0.9:7080".into()),
        created_at: Some(created),
        started_at: Some(created + Duration::milliseconds(20)),
        finished_at: ended.then(|| created + Duration::seconds(2)),
        exit_code: ended.then_some(if status == "succeeded" { 0 } else { 1 }),
        ..Run::default()
    }
}

/// Leader node 1 in term 3 of two nodes; one live and one dead executor;
/// `nightly-report` (enabled, last run succeeded) and `ops/cleanup`
/// (paused, its last run still running); three recent runs.
pub fn snapshot() -> Snapshot {
    let nightly = Job {
        id: "nightly-report".into(),
        schedule: "0 0 23 * * *".into(),
        target: serde_json::json!({"type": "shell", "group": "default", "command": "make report"}),
        next_fire_times: vec![now() + Duration::seconds(90)],
        last_run: Some(LastRun {
            id: "r-1".into(),
            status: "succeeded".into(),
            trigger: "schedule".into(),
            scheduled_at: Some(now() - Duration::seconds(300)),
            finished_at: Some(now() - Duration::seconds(298)),
        }),
        ..Job::default()
    };
    let cleanup = Job {
        id: "cleanup".into(),
        namespace: "ops".into(),
        schedule: "@every 30s".into(),
        enabled: false,
        target: serde_json::json!({"type": "http", "url": "http://svc/cleanup", "method": "POST"}),
        next_fire_times: vec![now() + Duration::seconds(30)],
        last_run: Some(LastRun {
            id: "r-3".into(),
            status: "running".into(),
            trigger: "manual".into(),
            scheduled_at: Some(now() - Duration::seconds(5)),
            finished_at: None,
        }),
        ..Job::default()
    };
    let mut failed = run("r-2", "default", "nightly-report", "failed", 60);
    failed.error = Some("exit status 1: report template missing".into());
    Snapshot {
        cluster: Cluster {
            node_id: 1,
            leader_id: Some(1),
            term: 3,
            commit_index: 42,
            applied_index: 42,
            members: vec![
                member(1, "leader", "http://n1:7070"),
                member(2, "follower", "http://n2:7070"),
            ],
            storage: None,
        },
        executors: vec![
            Executor {
                id: "e1".into(),
                group: "default".into(),
                endpoint: "http://10.0.0.9:7080".into(),
                running: 1,
                alive: true,
                ..Executor::default()
            },
            Executor {
                id: "e2".into(),
                group: "batch".into(),
                endpoint: "http://10.0.0.10:7080".into(),
                alive: false,
                ..Executor::default()
            },
            Executor {
                id: "rogue".into(),
                group: "default".into(),
                endpoint: "http://10.0.0.66:7080".into(),
                alive: true,
                verified: false,
                ..Executor::default()
            },
        ],
        jobs: vec![nightly, cleanup],
        runs: vec![
            run("r-3", "ops", "cleanup", "running", 5),
            failed,
            run("r-1", "default", "nightly-report", "succeeded", 300),
        ],
    }
}

/// An app that has read [`snapshot`] from `http://n1:7070`.
pub fn app() -> App {
    let mut app = App::new("http://n1:7070", now());
    app.apply(Update::Refreshed {
        link: Link::Connected {
            url: "http://n1:7070".into(),
            lost: None,
        },
        snapshot: Ok(snapshot()),
    });
    app
}

/// A fake node: answers `/v1/cluster` with `cluster` and empty lists for the
/// other reads, one request per connection. Aborting the task closes its
/// port, as a node that went away.
pub fn serve(listener: TcpListener, cluster: serde_json::Value) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let cluster = cluster.to_string();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut chunk = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request);
                let path = head.split_whitespace().nth(1).unwrap_or_default();
                let (status, body) = match path.split('?').next().unwrap_or_default() {
                    "/v1/cluster" => ("200 OK", cluster),
                    "/v1/executors" => ("200 OK", "[]".to_string()),
                    "/v1/jobs" | "/v1/runs" => {
                        ("200 OK", r#"{"items":[],"next_cursor":null}"#.to_string())
                    }
                    _ => (
                        "404 Not Found",
                        r#"{"error":{"code":"not_found","message":"no route","field":null}}"#
                            .to_string(),
                    ),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    })
}
