//! Executor protocol v2 between real processes sharing a `--secret-file`:
//! a kill signature holds for one run, once; reads of an executor need a
//! signature; a webhook's signature (from a real alert) opens nothing on
//! an executor; a version 1 dispatch passes only with
//! `--accept-v1-signatures`.

use std::{
    net::TcpListener,
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use cronmesh_tests::{
    api::Api,
    process::{executor_with, server_with, Proc},
    wait,
};
use protocol::{
    dispatch::{DispatchRequest, Task, SIGNATURE_HEADER},
    run::ShardInfo,
    signature, signature_v2,
};
use serde_json::{json, Value};

const SECRET: &str = "a-shared-secret-of-enough-length";
const LIMIT: Duration = Duration::from_secs(20);

fn secret_file(dir: &std::path::Path) -> String {
    let path = dir.join("secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    path.to_string_lossy().to_string()
}

/// A plain HTTP client, with the crypto provider rustls needs installed.
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A v2 header for `method path` on `exec` with `body`, made now.
fn sign_v2(exec: &Proc, method: &str, path: &str, body: &[u8]) -> String {
    let target = signature_v2::Target {
        method,
        path_and_query: path,
        audience: &exec.url,
        body,
    };
    signature_v2::sign(&signature_v2::key(SECRET.as_bytes()), &target)
}

async fn post(exec: &Proc, path: &str, header: &str, body: Vec<u8>) -> (u16, Value) {
    let response = client()
        .post(format!("{}{path}", exec.url))
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, header)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body)
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// The running run of `job` and the executor it is on, once it runs.
async fn running(api: &Api, job: &str) -> String {
    wait::until("the run to be running", LIMIT, || async {
        let runs = api.runs_of(job).await;
        let run = runs.iter().find(|r| r["status"] == "running")?;
        run["id"].as_str().map(str::to_string)
    })
    .await
}

#[actix_web::test]
async fn kills_and_reads_of_an_executor_hold_for_one_request_once() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let exec = executor_with("default", &["--secret-file", &secret]);
    let data = dir.path().join("data");
    let node = server_with(
        &data,
        "127.0.0.1:0",
        &[&exec.url],
        &["--secret-file", &secret],
    );
    let api = Api::new(node.url.clone());
    for id in ["one", "two"] {
        api.create_job(json!({"id": id, "schedule": "@manual", "target": {"type": "shell", "command": "echo started; sleep 60"}}))
            .await;
        api.post(&format!("/v1/jobs/{id}/trigger"), json!({})).await;
    }
    let one = running(&api, "one").await;
    let two = running(&api, "two").await;

    // Reads: unsigned refused, signed answered.
    let output = format!("/v1/runs/{one}/output");
    let client = client();
    let unsigned = client
        .get(format!("{}{output}", exec.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401, "an unsigned read of a run's output");
    let signed = wait::until("the signed output", LIMIT, || async {
        let header = sign_v2(&exec, "GET", &output, b"");
        let answer = client
            .get(format!("{}{output}", exec.url))
            .header(SIGNATURE_HEADER, header)
            .send()
            .await
            .ok()?;
        assert_eq!(answer.status(), 200, "a signed read");
        let text = answer.text().await.ok()?;
        (!text.is_empty()).then_some(text)
    })
    .await;
    assert_eq!(signed, "started\n");
    // The scheduler reads it live with a signed request of its own (the
    // run's stored output stays empty until its final report).
    let (_, live) = api.get(&output).await;
    assert_eq!(
        live,
        Value::String("started\n".into()),
        "live through the scheduler"
    );

    // A kill signed for run one, moved to run two: refused, two runs on.
    let kill_one = format!("/v1/runs/{one}/kill");
    let header = sign_v2(&exec, "POST", &kill_one, b"");
    let (status, body) = post(&exec, &format!("/v1/runs/{two}/kill"), &header, vec![]).await;
    assert_eq!((status, code(&body)), (401, "bad_signature"), "{body}");
    // On its own path it kills, once; the same request again is a replay.
    let (status, body) = post(&exec, &kill_one, &header, vec![]).await;
    assert!(status == 200 || status == 202, "{status} {body}");
    let (status, body) = post(&exec, &kill_one, &header, vec![]).await;
    assert_eq!((status, code(&body)), (401, "replayed"), "{body}");

    let (_, run) = api.get(&format!("/v1/runs/{two}")).await;
    assert_eq!(run["status"], "running", "the moved kill stopped run two");
    wait::until("run one killed", LIMIT, || async {
        let (_, run) = api.get(&format!("/v1/runs/{one}")).await;
        (run["status"] == "killed").then_some(())
    })
    .await;
}

/// Captures each webhook's signature header and raw body.
type Captured = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

fn webhook_receiver() -> (String, Captured) {
    let captured: Captured = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let sink = captured.clone();
    let server = HttpServer::new(move || {
        let sink = sink.clone();
        App::new().route(
            "/hook",
            web::post().to(move |req: HttpRequest, body: web::Bytes| {
                let sink = sink.clone();
                async move {
                    let header = req
                        .headers()
                        .get(SIGNATURE_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    sink.lock().unwrap().push((header, body.to_vec()));
                    HttpResponse::Ok().finish()
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    (url, captured)
}

#[actix_web::test]
async fn a_real_webhook_signature_is_no_dispatch_even_accepting_v1() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let exec = executor_with(
        "default",
        &["--secret-file", &secret, "--accept-v1-signatures"],
    );
    let data = dir.path().join("data");
    let node = server_with(
        &data,
        "127.0.0.1:0",
        &[&exec.url],
        &["--secret-file", &secret],
    );
    let api = Api::new(node.url.clone());
    let (hook, captured) = webhook_receiver();
    api.create_job(json!({
        "id": "broken", "schedule": "@manual", "alerts": {"webhooks": [hook]},
        "target": {"type": "shell", "command": "exit 3"}
    }))
    .await;
    api.post("/v1/jobs/broken/trigger", json!({})).await;
    let (header, body) = wait::until("an alert at the webhook", LIMIT, || async {
        captured.lock().unwrap().first().cloned()
    })
    .await;
    // Signed with the webhook key, verifiable by the receiver as documented.
    let webhook_key = protocol::keys::derive(SECRET.as_bytes(), protocol::keys::KeyUse::Webhook);
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        signature::verify(&webhook_key, Some(&header), &body, now, 300),
        Ok(())
    );
    for path in ["/v1/dispatch", "/v1/dispatch/batch", "/v1/runs/x/kill"] {
        let (status, answer) = post(&exec, path, &header, body.clone()).await;
        assert_eq!(
            (status, code(&answer)),
            (401, "bad_signature"),
            "{path}: {answer}"
        );
    }
}

fn dispatch(run_id: &str) -> Vec<u8> {
    serde_json::to_vec(&DispatchRequest {
        run_id: run_id.into(),
        job_id: "v1-job".into(),
        namespace: "default".into(),
        scheduled_at: chrono::Utc::now(),
        attempt: 1,
        shard: ShardInfo {
            index: 0,
            count: 1,
            param: String::new(),
        },
        params: String::new(),
        task: Task::Shell {
            command: "true".into(),
        },
        timeout_ms: 10_000,
        report_to: vec!["http://127.0.0.1:9".into()],
        term: 0,
        expires_at: None,
        parent_run_ids: Vec::new(),
        parent_scheduled_at: None,
    })
    .unwrap()
}

#[actix_web::test]
async fn a_v1_dispatch_passes_only_with_the_upgrade_flag() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let strict = executor_with("default", &["--secret-file", &secret]);
    let upgrading = executor_with(
        "default",
        &["--secret-file", &secret, "--accept-v1-signatures"],
    );
    let now = chrono::Utc::now().timestamp();
    let body = dispatch("v1-run");
    let v1 = signature::sign(SECRET.as_bytes(), now, &body);
    let (status, answer) = post(&strict, "/v1/dispatch", &v1, body.clone()).await;
    assert_eq!((status, code(&answer)), (401, "bad_signature"), "{answer}");
    let (status, answer) = post(&upgrading, "/v1/dispatch", &v1, body.clone()).await;
    assert_eq!(status, 202, "{answer}");
    // The strict one takes the same dispatch signed with v2.
    let v2 = sign_v2(&strict, "POST", "/v1/dispatch", &body);
    let (status, answer) = post(&strict, "/v1/dispatch", &v2, body).await;
    assert_eq!(status, 202, "{answer}");
}

#[actix_web::test]
async fn members_sending_v1_too_are_understood_by_upgraded_ones() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    // Both append v1 (step 1 of the upgrade); neither accepts it alone.
    let exec = executor_with(
        "default",
        &["--secret-file", &secret, "--send-v1-signatures"],
    );
    let data = dir.path().join("data");
    let node = server_with(
        &data,
        "127.0.0.1:0",
        &[&exec.url],
        &["--secret-file", &secret, "--send-v1-signatures"],
    );
    let api = Api::new(node.url.clone());
    api.create_job(json!({"id": "both", "schedule": "@manual", "target": {"type": "shell", "command": "echo both"}}))
        .await;
    api.post("/v1/jobs/both/trigger", json!({})).await;
    let run = wait::until("the run to succeed", LIMIT, || async {
        api.runs_of("both")
            .await
            .into_iter()
            .find(|r| r["status"] == "succeeded")
    })
    .await;
    assert_eq!(
        run["output"], "both\n",
        "the dispatch and the report passed"
    );
}
