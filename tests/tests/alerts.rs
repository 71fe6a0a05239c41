//! A run's alert reaches the job's webhooks (in the json, Slack and Teams
//! formats, retried while they fail) and its e-mail addresses (through a
//! real SMTP server), and every attempt is shown on the run.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use actix_web::{web, App, HttpResponse, HttpServer};
use cronmesh_tests::{
    api::Api,
    cluster::free_port,
    process::{cli, executor, server, server_with, Proc},
    wait,
};
use serde_json::{json, Value};

/// A webhook receiver on loopback that answers 500 to its first
/// `failures` requests, then 200, and keeps each body.
struct Hook {
    url: String,
    received: Arc<Mutex<Vec<Value>>>,
    requests: Arc<AtomicUsize>,
}

impl Hook {
    fn start(failures: usize) -> Self {
        let received: Arc<Mutex<Vec<Value>>> = Arc::default();
        let requests = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (sink, count) = (received.clone(), requests.clone());
        let receiver = HttpServer::new(move || {
            let (sink, count) = (sink.clone(), count.clone());
            App::new().route(
                "/hook",
                web::post().to(move |body: web::Json<Value>| {
                    let (sink, count) = (sink.clone(), count.clone());
                    async move {
                        if count.fetch_add(1, Ordering::SeqCst) < failures {
                            return HttpResponse::InternalServerError().body("not now");
                        }
                        sink.lock().unwrap().push(body.into_inner());
                        HttpResponse::Ok().finish()
                    }
                }),
            )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(receiver);
        Self {
            url,
            received,
            requests,
        }
    }

    async fn first(&self) -> Value {
        wait::until(
            "an alert at the webhook",
            Duration::from_secs(30),
            || async { self.received.lock().unwrap().first().cloned() },
        )
        .await
    }
}

async fn failing_job(api: &Api, id: &str, alerts: Value) -> String {
    api.create_job(json!({
        "id": id, "schedule": "@manual",
        "alerts": alerts,
        "target": {"type": "shell", "command": "echo 'total <b>&</b> 42'; echo oops >&2; exit 7"}
    }))
    .await;
    let (_, body) = api.post(&format!("/v1/jobs/{id}/trigger"), json!({})).await;
    body["runs"][0]["id"]
        .as_str()
        .or_else(|| body["id"].as_str())
        .map(str::to_string)
        .unwrap_or_default()
}

#[actix_web::test]
async fn a_failed_run_reaches_the_alert_webhook() {
    let hook = Hook::start(0);
    let dir = tempfile::tempdir().unwrap();
    let exec = executor("default");
    let node = server(dir.path(), "127.0.0.1:0", &[&exec.url]);
    let api = Api::new(node.url.clone());
    failing_job(&api, "broken", json!({"webhooks": [hook.url]})).await;
    let alert = hook.first().await;
    assert_eq!(alert["event"], "run.failed");
    assert_eq!(alert["run"]["job_id"], "broken");
    assert_eq!(alert["run"]["exit_code"], 7);
}

/// The run's alert deliveries, once `count` are recorded.
async fn deliveries(api: &Api, job: &str, count: usize) -> Vec<Value> {
    wait::until(
        "the alert attempts on the run",
        Duration::from_secs(30),
        || async {
            let runs = api.runs_of(job).await;
            let run_id = runs.first()?["id"].as_str()?.to_string();
            let (_, run) = api.get(&format!("/v1/runs/{run_id}")).await;
            let alerts = run["alerts"].as_array()?.clone();
            (alerts.len() >= count).then_some(alerts)
        },
    )
    .await
}

#[actix_web::test]
async fn a_webhook_that_fails_twice_gets_the_alert_on_the_third_try_and_the_run_shows_each() {
    let hook = Hook::start(2);
    let dir = tempfile::tempdir().unwrap();
    let exec = executor("default");
    let node = server(dir.path(), "127.0.0.1:0", &[&exec.url]);
    let api = Api::new(node.url.clone());
    failing_job(&api, "flaky-hook", json!({"webhooks": [hook.url]})).await;
    let alert = hook.first().await;
    assert_eq!(alert["event"], "run.failed");
    assert_eq!(hook.requests.load(Ordering::SeqCst), 3);

    let attempts = deliveries(&api, "flaky-hook", 3).await;
    let summary: Vec<(u64, bool)> = attempts
        .iter()
        .map(|a| (a["attempt"].as_u64().unwrap(), a["ok"].as_bool().unwrap()))
        .collect();
    assert_eq!(summary, vec![(1, false), (2, false), (3, true)]);
    for failed in &attempts[..2] {
        assert_eq!(failed["channel"], "webhook");
        assert_eq!(failed["target"], hook.url);
        let error = failed["error"].as_str().unwrap();
        assert!(error.contains("500"), "{error}");
    }
    assert_eq!(attempts[2]["error"], Value::Null);

    // The command line and the console's run page show each attempt.
    let run_id = api.runs_of("flaky-hook").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, out, err) = cli(&node.url, &["run", "get", &run_id]);
    assert_eq!(code, Some(0), "{err}");
    for attempt in ["attempt 1", "attempt 2"] {
        let line = out
            .lines()
            .find(|l| l.contains(attempt))
            .unwrap_or_else(|| panic!("{attempt} in {out}"));
        assert!(
            line.contains(&hook.url) && line.contains("failed: answered 500"),
            "{line}"
        );
    }
    assert!(
        out.lines()
            .any(|l| l.contains("attempt 3") && l.ends_with(": delivered")),
        "{out}"
    );
    let page = reqwest::get(format!("{}/runs/{run_id}", node.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        page.matches("class=\"alert-delivery\"").count(),
        3,
        "{page}"
    );
    assert!(page.contains("delivered") && page.contains("failed: answered 500"));
}

const SLACK_BLOCK_TYPES: [&str; 9] = [
    "actions",
    "context",
    "divider",
    "file",
    "header",
    "image",
    "input",
    "section",
    "rich_text",
];

fn assert_slack_text_object(text: &Value) {
    let kind = text["type"].as_str().unwrap_or_default();
    assert!(kind == "mrkdwn" || kind == "plain_text", "text type {text}");
    let content = text["text"].as_str().unwrap();
    assert!(!content.is_empty() && content.chars().count() <= 3000);
}

#[actix_web::test]
async fn slack_and_teams_webhooks_get_bodies_they_accept() {
    let slack = Hook::start(0);
    let teams = Hook::start(0);
    let dir = tempfile::tempdir().unwrap();
    let exec = executor("default");
    let node = server(dir.path(), "127.0.0.1:0", &[&exec.url]);
    let api = Api::new(node.url.clone());
    failing_job(
        &api,
        "chatty",
        json!({"webhooks": [
            {"url": slack.url, "format": "slack"},
            {"url": teams.url, "format": "teams"}
        ]}),
    )
    .await;

    let message = slack.first().await;
    let text = message["text"].as_str().unwrap();
    assert!(text.contains("default/chatty failed"), "{text}");
    let blocks = message["blocks"].as_array().unwrap();
    assert!(!blocks.is_empty());
    for block in blocks {
        let kind = block["type"].as_str().unwrap();
        assert!(SLACK_BLOCK_TYPES.contains(&kind), "block type {kind}");
        if block["text"].is_object() {
            assert_slack_text_object(&block["text"]);
        }
        for field in block["fields"].as_array().into_iter().flatten() {
            assert_slack_text_object(field);
        }
    }
    let shown = serde_json::to_string(blocks).unwrap();
    assert!(
        shown.contains("&lt;b&gt;&amp;&lt;/b&gt;"),
        "escaped output: {shown}"
    );

    let card_message = teams.first().await;
    assert_eq!(card_message["type"], "message");
    let attachment = &card_message["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachment["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    let body = card["body"].as_array().unwrap();
    for element in body {
        let kind = element["type"].as_str().unwrap();
        assert!(["TextBlock", "FactSet"].contains(&kind), "{kind}");
    }
    let facts = body
        .iter()
        .find(|e| e["type"] == "FactSet")
        .and_then(|e| e["facts"].as_array())
        .unwrap();
    assert!(facts
        .iter()
        .all(|f| f["title"].is_string() && f["value"].is_string()));
    assert!(facts.iter().any(|f| f["title"] == "Run"));
}

/// An SMTP server nobody here wrote (aiosmtpd), writing each message it
/// takes to a file in `dir`.
fn smtp_server(dir: &Path) -> (Proc, u16) {
    let python = std::env::var("CRONMESH_AIOSMTPD_PYTHON").unwrap_or_else(|_| {
        panic!(
            "CRONMESH_AIOSMTPD_PYTHON must name a python with aiosmtpd installed \
             (`.ci/run` sets it up; see docs/TESTING.md)"
        )
    });
    assert!(
        PathBuf::from(&python).exists(),
        "CRONMESH_AIOSMTPD_PYTHON={python} does not exist"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/smtp/maildir_server.py");
    let port = free_port();
    let mut command = std::process::Command::new(python);
    command
        .arg(script)
        .arg(port.to_string())
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    (Proc::from_command(command, "smtp server listening"), port)
}

#[actix_web::test]
async fn an_email_alert_arrives_at_a_real_smtp_server() {
    let mail_dir = tempfile::tempdir().unwrap();
    let (_smtp, port) = smtp_server(mail_dir.path());
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("smtp-credentials");
    std::fs::write(&credentials, "alerts:not-used-without-auth\n").unwrap();
    let exec = executor("default");
    let url = format!("smtp://127.0.0.1:{port}");
    let node = server_with(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &[&exec.url],
        &[
            "--smtp-url",
            &url,
            "--smtp-from",
            "cronmesh <cron@example.com>",
        ],
    );
    let api = Api::new(node.url.clone());
    failing_job(
        &api,
        "nightly-billing",
        json!({"emails": ["ops@example.com"]}),
    )
    .await;

    let message = wait::until(
        "an e-mail at the SMTP server",
        Duration::from_secs(30),
        || async {
            let entry = std::fs::read_dir(mail_dir.path()).ok()?.flatten().next()?;
            std::fs::read_to_string(entry.path()).ok()
        },
    )
    .await;
    assert!(
        message.contains("Subject: [cronmesh] default/nightly-billing failed"),
        "{message}"
    );
    assert!(message.contains("To: ops@example.com"), "{message}");
    for part in [
        "default/nightly-billing",
        "failed",
        "Exit code",
        "7",
        "oops",
        "total <b>&</b> 42",
    ] {
        assert!(message.contains(part), "{part} in {message}");
    }
    let attempts = deliveries(&api, "nightly-billing", 1).await;
    assert_eq!(attempts[0]["channel"], "email");
    assert_eq!(attempts[0]["target"], "ops@example.com");
    assert_eq!(attempts[0]["ok"], true);
}

#[actix_web::test]
async fn an_email_alert_without_an_smtp_server_is_recorded_as_failed_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor("default");
    let node = server(dir.path(), "127.0.0.1:0", &[&exec.url]);
    let api = Api::new(node.url.clone());
    failing_job(&api, "no-mail", json!({"emails": ["ops@example.com"]})).await;
    let attempts = deliveries(&api, "no-mail", 1).await;
    assert_eq!(attempts.len(), 1, "not retried: {attempts:?}");
    assert_eq!(attempts[0]["ok"], false);
    let error = attempts[0]["error"].as_str().unwrap();
    assert!(error.contains("--smtp-url"), "{error}");
}

#[actix_web::test]
async fn a_bad_webhook_object_is_refused_naming_its_field_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let node = server(dir.path(), "127.0.0.1:0", &[]);
    let api = Api::new(node.url.clone());
    for (webhooks, field) in [
        (
            json!(["http://hooks/a", {"url": "http://hooks/b", "format": "irc"}]),
            "alerts.webhooks[1].format",
        ),
        (
            json!([{"url": "ftp://hooks/b", "format": "slack"}]),
            "alerts.webhooks[0].url",
        ),
    ] {
        let answer = api
            .post(
                "/v1/jobs",
                json!({
                    "id": "hooked", "schedule": "@manual",
                    "alerts": {"webhooks": webhooks},
                    "target": {"type": "shell", "command": "true"}
                }),
            )
            .await;
        let error =
            cronmesh_tests::api::assert_error_answer(&answer, reqwest::StatusCode::BAD_REQUEST);
        assert_eq!(error["field"], field, "{}", answer.1);
    }
    let (status, _) = api.get("/v1/jobs/hooked").await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
}
