//! No request starves the health checks or the executors' reports: a real
//! node under a flood of expensive requests (pages of a thousand jobs and
//! runs, schedule previews of the largest count, stats), malformed and
//! oversized bodies and slow partial requests keeps answering `/healthz`
//! and `/readyz`, and a run triggered during the flood is reported. Also:
//! every number a list query controls is range-checked with a 400 naming
//! the field.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use cronmesh_tests::{api::Api, process, wait};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::{io::AsyncWriteExt, net::TcpStream, task::JoinHandle};

/// Health probes made during the flood.
const PROBES: usize = 40;
/// How long one probe may take to be answered at all.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Jobs in the node, so a page of them is as large as a page gets.
const JOBS: usize = 1000;

/// Answers the flood got, by kind of request and status (0: no answer).
type Tally = Arc<Mutex<BTreeMap<(&'static str, u16), usize>>>;

fn client(timeout: Duration) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("a client")
}

/// One kind of flooding request.
#[derive(Clone, Copy)]
enum Kind {
    JobsPage,
    RunsPage,
    Preview,
    Stats,
    MalformedJson,
    HugeBody,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::JobsPage => "jobs?limit=1000",
            Kind::RunsPage => "runs?limit=1000",
            Kind::Preview => "preview count=1000",
            Kind::Stats => "stats",
            Kind::MalformedJson => "malformed json",
            Kind::HugeBody => "8 MiB body",
        }
    }

    fn request(self, client: &reqwest::Client, base: &str) -> reqwest::RequestBuilder {
        let json = |method: Method, path: &str, body: Vec<u8>| {
            client
                .request(method, format!("{base}{path}"))
                .header("content-type", "application/json")
                .body(body)
        };
        match self {
            Kind::JobsPage => client.get(format!("{base}/v1/jobs?limit=1000")),
            Kind::RunsPage => client.get(format!("{base}/v1/runs?limit=1000")),
            Kind::Preview => json(
                Method::POST,
                "/v1/schedules/preview",
                json!({"schedule": "0 0 29 2 1", "count": 1000})
                    .to_string()
                    .into_bytes(),
            ),
            Kind::Stats => client.get(format!("{base}/v1/stats")),
            Kind::MalformedJson => json(
                Method::POST,
                "/v1/jobs",
                br#"{"id": "broken", "schedule": [[[[{"#.to_vec(),
            ),
            Kind::HugeBody => json(
                Method::POST,
                "/v1/jobs/echo/trigger",
                vec![b' '; 8 * 1024 * 1024],
            ),
        }
    }
}

/// Sends requests of `kind` one after another until `stop`.
fn flood(kind: Kind, base: String, stop: Arc<AtomicBool>, tally: Tally) -> JoinHandle<()> {
    tokio::spawn(async move {
        let client = client(Duration::from_secs(60));
        while !stop.load(Ordering::Relaxed) {
            let status = match kind.request(&client, &base).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let _ = response.bytes().await;
                    status
                }
                // An oversized body is cut off while it is still sent.
                Err(_) => 0,
            };
            *tally
                .lock()
                .unwrap()
                .entry((kind.name(), status))
                .or_default() += 1;
        }
    })
}

/// A connection that sends part of a request, then a byte at a time,
/// until the node closes it or `stop`.
fn slow_request(address: String, head: &'static str, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(mut socket) = TcpStream::connect(&address).await else {
            return;
        };
        if socket.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        while !stop.load(Ordering::Relaxed) {
            if socket.write_all(b"a").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_checks_and_reports_get_through_a_flood() {
    let dir = tempfile::tempdir().unwrap();
    let node = process::dev(dir.path(), &["--rate-limit", "0"]);
    let api = Api::new(node.url.clone());
    let jobs: Vec<Value> = (0..JOBS)
        .map(|i| {
            json!({"id": format!("job-{i}"), "schedule": "0 0 29 2 1",
                   "description": "d".repeat(2000),
                   "target": {"type": "shell", "command": "true"}})
        })
        .collect();
    let (status, body) = api.post("/v1/jobs", Value::Array(jobs)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    api.create_job(json!({"id": "echo", "schedule": "@manual",
        "target": {"type": "shell", "command": "echo reported"}}))
        .await;

    let stop = Arc::new(AtomicBool::new(false));
    let tally: Tally = Arc::default();
    let mut flooding = Vec::new();
    for (kind, tasks) in [
        (Kind::JobsPage, 40),
        (Kind::RunsPage, 4),
        (Kind::Preview, 8),
        (Kind::Stats, 4),
        (Kind::MalformedJson, 2),
        (Kind::HugeBody, 2),
    ] {
        for _ in 0..tasks {
            flooding.push(flood(kind, node.url.clone(), stop.clone(), tally.clone()));
        }
    }
    let address = node.url.trim_start_matches("http://").to_string();
    for i in 0..200 {
        let head = if i % 2 == 0 {
            // A head that never ends.
            "GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: "
        } else {
            // A body that never ends.
            "POST /v1/jobs HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n"
        };
        flooding.push(slow_request(address.clone(), head, stop.clone()));
    }

    // The flood is under way once the heavy requests are being answered.
    wait::until(
        "the flood to be answered",
        Duration::from_secs(60),
        || async {
            let tally = tally.lock().unwrap();
            (tally.get(&(Kind::JobsPage.name(), 200)).is_some()
                && tally.get(&(Kind::Preview.name(), 200)).is_some())
            .then_some(())
        },
    )
    .await;

    // A fresh connection per probe, so both request workers are probed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let prober = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut unanswered = Vec::new();
    let mut slowest = Duration::ZERO;
    for i in 0..PROBES {
        let path = if i % 2 == 0 { "/healthz" } else { "/readyz" };
        let started = Instant::now();
        match prober.get(format!("{}{path}", node.url)).send().await {
            Ok(response) if response.status() == StatusCode::OK => {}
            Ok(response) => unanswered.push(format!("{path}: {}", response.status())),
            Err(e) => unanswered.push(format!("{path}: {e}")),
        }
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert!(
        unanswered.is_empty(),
        "{} of {PROBES} health probes went unanswered within {PROBE_TIMEOUT:?}: {unanswered:?}",
        unanswered.len()
    );

    // A run triggered under the flood is reported by the executor.
    let (status, body) = api.post("/v1/jobs/echo/trigger", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let run_id = body["runs"][0]["id"]
        .as_str()
        .expect("a run id")
        .to_string();
    let run = wait::until(
        "the run to be reported",
        Duration::from_secs(60),
        || async {
            let (status, run) = api.get(&format!("/v1/runs/{run_id}")).await;
            (status == StatusCode::OK && run["status"] == "succeeded").then_some(run)
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for task in flooding {
        task.abort();
    }

    let tally = tally.lock().unwrap().clone();
    println!("flood answers (kind, status): {tally:?}; slowest probe {slowest:?}");
    assert_eq!(run["output"], "reported\n");
    for (kind, status) in tally.keys() {
        assert!(
            *status != 500,
            "a {kind} request got 500 under the flood: {tally:?}"
        );
    }
    let (status, _) = api.get("/healthz").await;
    assert_eq!(status, StatusCode::OK, "the node is still up");
}

/// The field a 400 answer names.
async fn refused_field(api: &Api, method: Method, path: &str, body: Value) -> String {
    let (status, answer) = api
        .raw(
            method,
            path,
            "application/json",
            body.to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
    answer["error"]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("{path}: no field named: {answer}"))
        .to_string()
}

#[tokio::test]
async fn list_numbers_out_of_range_get_a_400_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let node = process::dev(dir.path(), &[]);
    let api = Api::new(node.url.clone());
    api.create_job(json!({"id": "j", "schedule": "@manual",
        "target": {"type": "shell", "command": "true"}}))
        .await;
    for (path, field) in [
        ("/v1/runs?limit=0", "limit"),
        ("/v1/runs?limit=1001", "limit"),
        ("/v1/runs?limit=99999999999999999999999", "limit"),
        ("/v1/runs?limit=-1", "limit"),
        ("/v1/runs?cursor=abc", "cursor"),
        ("/v1/runs?cursor=99999999999999999999999", "cursor"),
        ("/v1/runs?since=yesterday", "since"),
        ("/v1/runs?until=%2B262143-01-01T00:00:00Z", "until"),
        (
            "/v1/runs?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            "until",
        ),
        ("/v1/runs?job=..%2Fetc", "job"),
        ("/v1/jobs/j/runs?limit=5000", "limit"),
        ("/v1/jobs/j/runs?cursor=-1", "cursor"),
        ("/v1/jobs?limit=0", "limit"),
        ("/v1/jobs?limit=1001", "limit"),
        ("/v1/jobs?limit=99999999999999999999999", "limit"),
        ("/v1/jobs?enabled=maybe", "enabled"),
        ("/v1/jobs?cursor=nothing-like-a-cursor", "cursor"),
        ("/v1/jobs?cursor=default/not%20a%20name", "cursor"),
        ("/v1/jobs?namespace=.hidden", "namespace"),
    ] {
        let named = refused_field(&api, Method::GET, path, Value::Null).await;
        assert_eq!(named, field, "{path}");
    }
    for count in [0, 1001, 4_294_967_295u64] {
        let body = json!({"schedule": "@every 1s", "count": count});
        let field = refused_field(&api, Method::POST, "/v1/schedules/preview", body).await;
        assert_eq!(field, "count", "count {count}");
    }
}

/// A body trickled a byte at a time gets 408 naming `body` once the node's
/// body deadline passes, and the connection is closed: a client cannot
/// hold a connection open for ever by never finishing its body.
#[tokio::test]
async fn a_body_that_never_finishes_gets_408() {
    use tokio::io::AsyncReadExt;

    let dir = tempfile::tempdir().unwrap();
    let node = process::dev(dir.path(), &[]);
    let address = node.url.trim_start_matches("http://").to_string();
    let mut socket = TcpStream::connect(&address).await.expect("connect");
    let head = format!(
        "POST /v1/schedules/preview HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{{"
    );
    socket.write_all(head.as_bytes()).await.expect("send head");
    let (mut reader, mut writer) = socket.into_split();
    let trickle = tokio::spawn(async move {
        while writer.write_all(b" ").await.is_ok() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let mut answer = Vec::new();
    // Generous: the node's deadline is 30 s; this only bounds a hang.
    let read =
        tokio::time::timeout(Duration::from_secs(120), reader.read_to_end(&mut answer)).await;
    trickle.abort();
    assert!(
        read.is_ok(),
        "the node kept a trickled body's connection open"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""field":"body""#), "{answer}");
}
