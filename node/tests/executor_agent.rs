//! The executor agent over real HTTP with real processes: a report
//! receiver stands in for the scheduler (it decodes reports exactly as a
//! scheduler would) and every wait polls against a deadline.

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use actix_web::{web, App, HttpResponse, HttpServer};

use chrono::{DateTime, Utc};
use node::executor::{run, start, ExecutorConfig, RunningExecutor};
use protocol::{
    dispatch::{
        DispatchBatch, DispatchBatchAck, DispatchRequest, DispatchResult, Task, MSGPACK,
        SIGNATURE_HEADER,
    },
    run::{RunStatus, ShardInfo},
};
use serde_json::Value;

mod common;

use common::{
    client, dispatch, dispatch_signed, get_json, get_json_signed, json_of, request, sign_v2,
    wait_for, Receiver, ReceiverOptions, Signing, DEADLINE,
};

// ---------------------------------------------------------------- helpers

async fn start_executor(configure: impl FnOnce(&mut ExecutorConfig)) -> RunningExecutor {
    let mut config = ExecutorConfig::new("default", "127.0.0.1:0".parse().expect("address"));
    configure(&mut config);
    start(config).await.expect("executor starts")
}

fn shell(run_id: &str, command: &str, report_to: &Receiver) -> DispatchRequest {
    request(
        run_id,
        Task::Shell {
            command: command.into(),
        },
        report_to,
    )
}

async fn post_json(url: &str, body: &impl serde::Serialize) -> anyhow::Result<reqwest::Response> {
    Ok(client()
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(body)?)
        .send()
        .await?)
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// Processes of group `pgid` that are still alive (zombies awaiting a
/// reaper do not count: they run nothing).
fn live_processes_in_group(pgid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // "pid (comm) STATE PPID PGRP ..."; comm may hold spaces and ')'.
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                return false;
            };
            let fields: Vec<&str> = after.split_whitespace().collect();
            fields.first() != Some(&"Z") && fields.get(2) == Some(&pgid.to_string().as_str())
        })
        .collect()
}

// ---------------------------------------------------------------- tests

#[actix_web::test]
async fn shell_command_gets_its_environment_and_interleaved_output() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    let exec = start_executor(|_| {}).await;
    let scheduled_at: DateTime<Utc> = "2026-11-21T23:00:00.250Z".parse()?;
    let mut req = shell(
        "env-run",
        "echo job=$CRONMESH_JOB_ID; echo ns=$CRONMESH_NAMESPACE; echo run=$CRONMESH_RUN_ID; \
         echo at=$CRONMESH_SCHEDULED_AT; echo attempt=$CRONMESH_ATTEMPT; \
         echo shard=$CRONMESH_SHARD_INDEX/$CRONMESH_SHARD_COUNT; \
         echo \"param=$CRONMESH_SHARD_PARAM\"; echo \"params=$CRONMESH_PARAMS\"; \
         echo out1; echo err1 >&2; echo out2",
        &receiver,
    );
    req.job_id = "nightly".into();
    req.namespace = "team-a".into();
    req.scheduled_at = scheduled_at;
    req.attempt = 2;
    req.shard = ShardInfo {
        index: 1,
        count: 3,
        param: "eu west".into(),
    };
    req.params = "--full --dry-run".into();
    let ack = dispatch(&exec, &req).await?;
    assert_eq!(ack.run_id, "env-run");
    assert!(!ack.duplicate);

    let report = receiver.final_report("env-run").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(report.exit_code, Some(0));
    assert_eq!(report.error, None);
    assert_eq!(report.executor, exec.endpoint);
    assert!(report.started_at.is_some() && report.finished_at.is_some());
    assert_eq!(
        report.output,
        "job=nightly\nns=team-a\nrun=env-run\nat=2026-11-21T23:00:00Z\nattempt=2\n\
         shard=1/3\nparam=eu west\nparams=--full --dry-run\nout1\nerr1\nout2\n"
    );
    let statuses: Vec<RunStatus> = receiver
        .reports("env-run")
        .iter()
        .map(|r| r.status)
        .collect();
    // A run that ends at once may skip its `running` report; either way
    // exactly one final report is recorded, and it is the last.
    assert_eq!(statuses.last(), Some(&RunStatus::Succeeded));
    assert_eq!(statuses.iter().filter(|s| s.is_terminal()).count(), 1);

    let (code, state) = get_json(format!("{}/v1/runs/env-run", exec.endpoint)).await?;
    assert_eq!(code, 200);
    assert_eq!(state["status"], "succeeded");
    assert_eq!(state["exit_code"], 0);
    let output = client()
        .get(format!("{}/v1/runs/env-run/output", exec.endpoint))
        .send()
        .await?;
    assert!(output
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/plain")));
    assert_eq!(output.text().await?, report.output);

    let (code, body) = get_json(format!("{}/v1/runs/nope", exec.endpoint)).await?;
    assert_eq!((code, error_code(&body)), (404, "not_found"));
    let (code, body) = get_json(format!("{}/v1/runs/nope/output", exec.endpoint)).await?;
    assert_eq!((code, error_code(&body)), (404, "not_found"));
    exec.stop().await;
    receiver.server.stop(false).await;
    Ok(())
}

#[actix_web::test]
async fn failing_command_reports_its_exit_code() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    let exec = start_executor(|_| {}).await;
    dispatch(&exec, &shell("fail-run", "echo oops; exit 3", &receiver)).await?;
    let report = receiver.final_report("fail-run").await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(report.exit_code, Some(3));
    assert_eq!(report.error.as_deref(), Some("exited with code 3"));
    assert_eq!(report.output, "oops\n");

    // Killed by a signal of its own: the error names it.
    dispatch(&exec, &shell("signal-run", "kill -TERM $$", &receiver)).await?;
    let report = receiver.final_report("signal-run").await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(report.exit_code, None);
    assert_eq!(
        report.error.as_deref(),
        Some("killed by signal SIGTERM (15)")
    );
    Ok(())
}

#[actix_web::test]
async fn timeout_kills_the_whole_process_group() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    let exec = start_executor(|_| {}).await;
    let dir = tempfile::tempdir()?;
    let pid_file = dir.path().join("pgid");
    let mut req = shell(
        "timeout-run",
        &format!(
            "echo $$ > '{}'; sleep 30 & sleep 30; wait",
            pid_file.display()
        ),
        &receiver,
    );
    req.timeout_ms = 500;
    let started = Instant::now();
    dispatch(&exec, &req).await?;
    let report = receiver.final_report("timeout-run").await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(report.status, RunStatus::TimedOut, "{report:?}");
    assert_eq!(report.error.as_deref(), Some("timed out after 500ms"));

    let pgid: i32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
    assert!(pgid > 1);
    wait_for("every process of the group to be gone", || {
        live_processes_in_group(pgid).is_empty().then_some(())
    })
    .await;
    Ok(())
}

#[actix_web::test]
async fn a_normal_exit_takes_background_children_down_too() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    let exec = start_executor(|_| {}).await;
    let dir = tempfile::tempdir()?;
    let pid_file = dir.path().join("pgid");
    let req = shell(
        "orphan-run",
        // The background sleep does not hold the output pipe, so the run
        // ends with the shell; the group kill must still reach the sleep.
        &format!(
            "echo $$ > '{}'; sleep 30 >/dev/null 2>&1 & echo done",
            pid_file.display()
        ),
        &receiver,
    );
    dispatch(&exec, &req).await?;
    let report = receiver.final_report("orphan-run").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    let pgid: i32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
    wait_for("the background child to be killed", || {
        live_processes_in_group(pgid).is_empty().then_some(())
    })
    .await;
    Ok(())
}

#[actix_web::test]
async fn kill_endpoint_kills_the_run() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    let exec = start_executor(|_| {}).await;
    dispatch(
        &exec,
        &shell("kill-run", "echo started; sleep 30", &receiver),
    )
    .await?;
    wait_for("the running report", || {
        receiver
            .reports("kill-run")
            .iter()
            .any(|r| r.status == RunStatus::Running)
            .then_some(())
    })
    .await;
    // Output is visible while the run is live.
    let live = wait_for_output(&exec, "kill-run", "started\n").await?;
    assert_eq!(live, "started\n");
    let (code, info) = get_json(format!("{}/v1/info", exec.endpoint)).await?;
    assert_eq!(code, 200);
    assert_eq!(info["running"], 1);
    assert_eq!(info["group"], "default");
    assert_eq!(info["endpoint"], exec.endpoint.as_str());

    let response = client()
        .post(format!("{}/v1/runs/kill-run/kill", exec.endpoint))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let state: Value = json_of(response).await?;
    assert_eq!(state["status"], "killed");

    let report = receiver.final_report("kill-run").await;
    assert_eq!(report.status, RunStatus::Killed);
    assert_eq!(report.output, "started\n");

    // Killing a finished run answers its state; an unknown one is 404.
    let again = client()
        .post(format!("{}/v1/runs/kill-run/kill", exec.endpoint))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .send()
        .await?;
    assert_eq!(again.status(), 200);
    let unknown = client()
        .post(format!("{}/v1/runs/nope/kill", exec.endpoint))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .send()
        .await?;
    assert_eq!(unknown.status(), 404);
    let body: Value = json_of(unknown).await?;
    assert_eq!(error_code(&body), "not_found");
    Ok(())
}

async fn wait_for_output(
    exec: &RunningExecutor,
    run_id: &str,
    expected: &str,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let text = client()
            .get(format!("{}/v1/runs/{run_id}/output", exec.endpoint))
            .send()
            .await?
            .text()
            .await?;
        if text == expected || Instant::now() > deadline {
            return Ok(text);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn duplicate_dispatch_starts_nothing_new_and_resends_the_result() -> anyhow::Result<()> {
    let first = Receiver::start(0, None).await?;
    let restarted = Receiver::start(0, None).await?;
    let exec = start_executor(|_| {}).await;
    let dir = tempfile::tempdir()?;
    let marker = dir.path().join("ran");
    let req = shell(
        "dup-run",
        &format!("echo ran >> '{}'; sleep 0.3", marker.display()),
        &first,
    );
    assert!(!dispatch(&exec, &req).await?.duplicate);
    // Repeated while it runs: acknowledged, nothing started.
    assert!(dispatch(&exec, &req).await?.duplicate);
    let report = first.final_report("dup-run").await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(first.finals("dup-run").len(), 1);

    // Repeated after it finished, by a "restarted scheduler" at another
    // address: still nothing new, and that scheduler learns the result.
    let mut again = req.clone();
    again.report_to = vec![restarted.url.clone()];
    assert!(dispatch(&exec, &again).await?.duplicate);
    let resent = restarted.final_report("dup-run").await;
    assert_eq!(resent.status, RunStatus::Succeeded);
    assert_eq!(resent.finished_at, report.finished_at);
    assert_eq!(std::fs::read_to_string(&marker)?, "ran\n");
    Ok(())
}

#[actix_web::test]
async fn signatures_are_required_when_a_secret_is_set() -> anyhow::Result<()> {
    let secret: &[u8] = b"shared-secret";
    let receiver = Receiver::start(0, Some(secret)).await?;
    let exec = start_executor(|c| c.secret = Some(secret.to_vec())).await;
    let req = shell("signed-run", "echo signed", &receiver);
    let now = Utc::now().timestamp();

    let cases: [(&str, Signing, &str); 3] = [
        ("unsigned", None, "missing"),
        (
            "other secret",
            Some((b"other-secret", now)),
            "secrets differ",
        ),
        ("stale", Some((secret, now - 3600)), "replay window"),
    ];
    for (case, signing, reason) in cases {
        let response = dispatch_signed(&exec, &req, signing).await?;
        assert_eq!(response.status(), 401, "{case}");
        let body: Value = json_of(response).await?;
        assert_eq!(error_code(&body), "bad_signature", "{case}");
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(reason), "{case}: {message}");
    }
    // Tampered: a valid, fresh signature of one request on the body of another.
    let tampered = protocol::wire::encode(&shell("signed-run", "echo tampered", &receiver))?;
    let genuine = protocol::wire::encode(&req)?;
    let response = client()
        .post(format!("{}/v1/dispatch", exec.endpoint))
        .header(reqwest::header::CONTENT_TYPE, MSGPACK)
        .header(
            SIGNATURE_HEADER,
            sign_v2(
                secret,
                now,
                "POST",
                &exec.endpoint,
                "/v1/dispatch",
                &genuine,
            ),
        )
        .body(tampered)
        .send()
        .await?;
    assert_eq!(response.status(), 401, "tampered");
    let body: Value = json_of(response).await?;
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("body differ"), "tampered: {message}");
    // Nothing ran; and reads, too, need a signature.
    let (code, _) = get_json(format!("{}/v1/runs/signed-run", exec.endpoint)).await?;
    assert_eq!(code, 401);
    let (code, _) = get_json_signed(&exec, "/v1/runs/signed-run", secret).await?;
    assert_eq!(code, 404);

    let response = dispatch_signed(&exec, &req, Some((secret, now))).await?;
    assert_eq!(response.status(), 202);
    let report = receiver.final_report("signed-run").await;
    assert_eq!(report.output, "signed\n");
    // Reports came signed with the same secret.
    assert_eq!(receiver.state.bad_signatures.load(Ordering::SeqCst), 0);

    let kill = client()
        .post(format!("{}/v1/runs/signed-run/kill", exec.endpoint))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .send()
        .await?;
    assert_eq!(kill.status(), 401);
    Ok(())
}

#[actix_web::test]
async fn final_report_is_retried_until_accepted() -> anyhow::Result<()> {
    let receiver = Receiver::start(2, None).await?;
    let exec = start_executor(|c| c.report_max_backoff = Duration::from_millis(200)).await;
    dispatch(&exec, &shell("retry-run", "echo eventually", &receiver)).await?;
    let report = receiver.final_report("retry-run").await;
    assert_eq!(report.output, "eventually\n");
    assert_eq!(receiver.state.final_attempts.load(Ordering::SeqCst), 3);
    assert_eq!(receiver.finals("retry-run").len(), 1);
    Ok(())
}

#[actix_web::test]
async fn malformed_requests_get_400_and_the_agent_keeps_serving() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    let exec = start_executor(|_| {}).await;
    let url = format!("{}/v1/dispatch", exec.endpoint);

    let garbage = client()
        .post(&url)
        .header("content-type", MSGPACK)
        .body(vec![0xc1, 0xff, 0x00])
        .send()
        .await?;
    assert_eq!(garbage.status(), 400);
    let body: Value = json_of(garbage).await?;
    assert_eq!(error_code(&body), "invalid_body");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("MessagePack")));

    let missing_field = client()
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"run_id": "x"}"#)
        .send()
        .await?;
    assert_eq!(missing_field.status(), 400);
    let body: Value = json_of(missing_field).await?;
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("missing field")));

    let mut bad_id = shell("../../etc", "true", &receiver);
    let response = post_json(&url, &bad_id).await?;
    assert_eq!(response.status(), 400);
    let body: Value = json_of(response).await?;
    assert_eq!(body["error"]["field"], "run_id");

    bad_id.run_id = "ok-after-errors".into();
    bad_id.timeout_ms = 0;
    let response = post_json(&url, &bad_id).await?;
    assert_eq!(response.status(), 400);

    let (code, health) = get_json(format!("{}/healthz", exec.endpoint)).await?;
    assert_eq!(code, 200);
    assert_eq!(
        health,
        serde_json::json!({"status": "ok", "group": "default"})
    );

    // JSON bodies work as well as MessagePack.
    bad_id.timeout_ms = 5_000;
    let response = post_json(&url, &bad_id).await?;
    assert_eq!(response.status(), 202);
    let report = receiver.final_report("ok-after-errors").await;
    assert_eq!(report.status, RunStatus::Succeeded);
    Ok(())
}

#[actix_web::test]
async fn handler_tasks_are_forwarded_to_the_local_service() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    // A tiny handler service: "greet" succeeds, anything else fails.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let service_url = format!("http://{}", listener.local_addr()?);
    let service = HttpServer::new(|| {
        App::new().route(
            "/{handler}",
            web::post().to(
                |path: web::Path<String>, req: web::Json<DispatchRequest>| async move {
                    if path.as_str() == "greet" {
                        HttpResponse::Ok().body(format!("hello from run {}", req.run_id))
                    } else {
                        HttpResponse::InternalServerError().body("boom")
                    }
                },
            ),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    tokio::spawn(service);

    let exec = start_executor(|c| c.forward = Some(service_url.clone())).await;
    let mut req = shell("handler-ok", "", &receiver);
    req.task = Task::Handler {
        handler: "greet".into(),
    };
    dispatch(&exec, &req).await?;
    let report = receiver.final_report("handler-ok").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(report.output, "hello from run handler-ok");

    req.run_id = "handler-fail".into();
    req.task = Task::Handler {
        handler: "explode".into(),
    };
    dispatch(&exec, &req).await?;
    let report = receiver.final_report("handler-fail").await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(report.output, "boom");

    // Given the handlers it forwards, it forwards no other.
    let listed = start_executor(|c| {
        c.forward = Some(service_url.clone());
        c.forward_handlers = vec!["greet".into()];
    })
    .await;
    req.run_id = "handler-unlisted".into();
    dispatch(&listed, &req).await?;
    let report = receiver.final_report("handler-unlisted").await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(
        report.error.as_deref(),
        Some("no handler named explode on this executor")
    );

    let plain = start_executor(|_| {}).await;
    req.run_id = "handler-none".into();
    req.task = Task::Handler {
        handler: "greet".into(),
    };
    dispatch(&plain, &req).await?;
    let report = receiver.final_report("handler-none").await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(
        report.error.as_deref(),
        Some("no handler named greet on this executor")
    );
    Ok(())
}

#[actix_web::test]
async fn stop_kills_running_runs_and_stops_serving() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    let exec = start_executor(|_| {}).await;
    let endpoint = exec.endpoint.clone();
    dispatch(&exec, &shell("stop-run", "sleep 30", &receiver)).await?;
    wait_for("the run to start", || {
        (!receiver.reports("stop-run").is_empty()).then_some(())
    })
    .await;
    let started = Instant::now();
    exec.stop().await;
    assert!(started.elapsed() < Duration::from_secs(8));
    let report = receiver.final_report("stop-run").await;
    assert_eq!(report.status, RunStatus::Failed);
    assert!(client()
        .get(format!("{endpoint}/healthz"))
        .send()
        .await
        .is_err());
    Ok(())
}

#[actix_web::test]
async fn run_serves_until_shutdown() -> anyhow::Result<()> {
    // `run` does not hand back its address: pick a free port for it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let config = ExecutorConfig::new("default", format!("127.0.0.1:{port}").parse()?);
    let serving = tokio::spawn(run(config, async {
        let _ = stop_rx.await;
    }));
    let health = format!("http://127.0.0.1:{port}/healthz");
    let deadline = Instant::now() + DEADLINE;
    while client().get(&health).send().await.is_err() {
        assert!(Instant::now() < deadline, "run never served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(());
    tokio::time::timeout(DEADLINE, serving).await???;
    assert!(client().get(&health).send().await.is_err());
    Ok(())
}

#[actix_web::test]
async fn a_batch_is_admitted_entry_by_entry_and_reported_in_batches() -> anyhow::Result<()> {
    let receiver = Receiver::with(ReceiverOptions {
        batches: true,
        ..ReceiverOptions::default()
    })
    .await?;
    let exec = start_executor(|_| {}).await;
    let mut runs: Vec<DispatchRequest> = (0..40)
        .map(|i| shell(&format!("batch-{i}"), "true", &receiver))
        .collect();
    // The same run twice in one batch starts once (invariant 6).
    runs.push(shell("batch-0", "true", &receiver));
    runs.push(shell("../escape", "true", &receiver));
    let body = protocol::wire::encode(&DispatchBatch { runs })?;
    let response = client()
        .post(format!("{}/v1/dispatch/batch", exec.endpoint))
        .header(reqwest::header::CONTENT_TYPE, MSGPACK)
        .body(body)
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let ack: DispatchBatchAck = protocol::wire::decode(&response.bytes().await?)?;
    assert_eq!(ack.results.len(), 42);
    for (i, result) in ack.results[..40].iter().enumerate() {
        assert_eq!(
            result,
            &DispatchResult::Accepted {
                run_id: format!("batch-{i}"),
                duplicate: false
            }
        );
    }
    assert_eq!(
        ack.results[40],
        DispatchResult::Accepted {
            run_id: "batch-0".into(),
            duplicate: true
        }
    );
    match &ack.results[41] {
        DispatchResult::Refused { run_id, reason } => {
            assert_eq!(run_id, "../escape");
            assert!(reason.starts_with("run_id"), "{reason}");
        }
        other => panic!("an invalid entry was not refused: {other:?}"),
    }
    for i in 0..40 {
        let report = receiver.final_report(&format!("batch-{i}")).await;
        assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    }
    assert_eq!(receiver.finals("batch-0").len(), 1);
    // Every report travelled on the batch route.
    let received = receiver.state.reports.lock().expect("lock").len();
    assert_eq!(
        receiver.state.batched_reports.load(Ordering::SeqCst),
        received
    );
    exec.stop().await;
    Ok(())
}

#[actix_web::test]
async fn a_json_batch_gets_a_json_answer() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    let exec = start_executor(|_| {}).await;
    let batch = DispatchBatch {
        runs: vec![shell("json-batch", "true", &receiver)],
    };
    let response = post_json(&format!("{}/v1/dispatch/batch", exec.endpoint), &batch).await?;
    assert_eq!(response.status(), 200);
    let ack: DispatchBatchAck = json_of(response).await?;
    assert_eq!(
        ack.results,
        [DispatchResult::Accepted {
            run_id: "json-batch".into(),
            duplicate: false
        }]
    );
    // A scheduler without the batch route still gets the report.
    let report = receiver.final_report("json-batch").await;
    assert_eq!(report.status, RunStatus::Succeeded);
    exec.stop().await;
    Ok(())
}

#[actix_web::test]
async fn an_expired_dispatch_is_refused_and_starts_nothing_but_a_known_run_is_a_duplicate(
) -> anyhow::Result<()> {
    use protocol::dispatch::EXPIRED_REASON;

    let receiver = Receiver::start(0, None).await?;
    let exec = start_executor(|_| {}).await;
    let dir = tempfile::tempdir()?;
    let marker = |name: &str| dir.path().join(name);
    let past = Utc::now() - chrono::Duration::seconds(5);
    let future = Utc::now() + chrono::Duration::seconds(60);

    // A single dispatch past its expiry: a refusal that is not the 409 of
    // stale terms, naming the expiry, and nothing runs.
    let mut expired = shell(
        "expired-single",
        &format!("echo ran >> '{}'", marker("expired-single").display()),
        &receiver,
    );
    expired.expires_at = Some(past);
    let response = dispatch_signed(&exec, &expired, None).await?;
    assert_eq!(response.status(), 410);
    let body: Value = json_of(response).await?;
    assert_eq!(error_code(&body), "expired");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(message.starts_with(EXPIRED_REASON), "{message}");
    let (code, _) = get_json(format!("{}/v1/runs/expired-single", exec.endpoint)).await?;
    assert_eq!(code, 404, "the expired run is known to the executor");

    // One that expires later runs.
    let mut fresh = shell(
        "fresh",
        &format!("echo ran >> '{}'", marker("fresh").display()),
        &receiver,
    );
    fresh.expires_at = Some(future);
    assert!(!dispatch(&exec, &fresh).await?.duplicate);
    assert_eq!(
        receiver.final_report("fresh").await.status,
        RunStatus::Succeeded
    );
    assert_eq!(std::fs::read_to_string(marker("fresh"))?, "ran\n");

    // In a batch: an expired new run is refused with the reason, one not
    // expired starts, and a run id the executor knows, sent again after
    // its expiry, is still a duplicate (and its result is sent again).
    let mut expired_entry = shell(
        "expired-entry",
        &format!("echo ran >> '{}'", marker("expired-entry").display()),
        &receiver,
    );
    expired_entry.expires_at = Some(past);
    let mut later = shell("later", "echo later", &receiver);
    later.expires_at = Some(future);
    let mut known = fresh.clone();
    known.expires_at = Some(past);
    let body = protocol::wire::encode(&DispatchBatch {
        runs: vec![expired_entry, later, known.clone()],
    })?;
    let response = client()
        .post(format!("{}/v1/dispatch/batch", exec.endpoint))
        .header(reqwest::header::CONTENT_TYPE, MSGPACK)
        .body(body)
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let ack: DispatchBatchAck = protocol::wire::decode(&response.bytes().await?)?;
    match ack.results.first() {
        Some(DispatchResult::Refused { run_id, reason }) => {
            assert_eq!(run_id, "expired-entry");
            assert!(reason.starts_with(EXPIRED_REASON), "{reason}");
        }
        other => panic!("an expired entry was not refused: {other:?}"),
    }
    assert_eq!(
        ack.results.get(1..),
        Some(
            &[
                DispatchResult::Accepted {
                    run_id: "later".into(),
                    duplicate: false
                },
                DispatchResult::Accepted {
                    run_id: "fresh".into(),
                    duplicate: true
                },
            ][..]
        )
    );
    assert_eq!(
        receiver.final_report("later").await.status,
        RunStatus::Succeeded
    );
    wait_for("the known run's result sent again", || {
        (receiver.finals("fresh").len() == 2).then_some(())
    })
    .await;

    // The single route, too, answers a known run as a duplicate after expiry.
    assert!(dispatch(&exec, &known).await?.duplicate);
    wait_for("the known run's result sent once more", || {
        (receiver.finals("fresh").len() == 3).then_some(())
    })
    .await;
    assert_eq!(std::fs::read_to_string(marker("fresh"))?, "ran\n");

    // Nothing of the expired runs ever started or reported.
    let (code, _) = get_json(format!("{}/v1/runs/expired-entry", exec.endpoint)).await?;
    assert_eq!(code, 404);
    for run_id in ["expired-single", "expired-entry"] {
        assert!(receiver.reports(run_id).is_empty(), "{run_id} reported");
        assert!(!marker(run_id).exists(), "{run_id} ran");
    }
    exec.stop().await;
    Ok(())
}

#[actix_web::test]
async fn a_web_page_cannot_dispatch_to_an_executor() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    let exec = start_executor(|_| {}).await;
    let dir = tempfile::tempdir()?;
    let planted = dir.path().join("planted");
    let attack = shell(
        "attack-run",
        &format!("touch {}", planted.display()),
        &receiver,
    );
    let url = format!("{}/v1/dispatch", exec.endpoint);
    let msgpack = protocol::wire::encode(&attack)?;
    let refusals: [(&str, &str, u16); 4] = [
        // A body a page may send without asking first.
        ("content-type", "text/plain", 415),
        ("origin", "http://attacker.example", 403),
        ("sec-fetch-site", "cross-site", 403),
        // A name the attacker pointed at 127.0.0.1.
        ("host", "attacker.example", 403),
    ];
    for (name, value, status) in refusals {
        let mut post = client().post(&url).body(msgpack.clone());
        if name != "content-type" {
            post = post.header(reqwest::header::CONTENT_TYPE, MSGPACK);
        }
        let response = post.header(name, value).send().await?;
        assert_eq!(response.status(), status, "{name}: {value}");
    }

    // A genuine dispatch after them runs, and the refused ones never did.
    dispatch(&exec, &shell("genuine-run", "echo fine", &receiver)).await?;
    let report = receiver.final_report("genuine-run").await;
    assert_eq!(report.status, RunStatus::Succeeded);
    let (status, _) = get_json(format!("{}/v1/runs/attack-run", exec.endpoint)).await?;
    assert_eq!(status, 404, "a refused dispatch left a run");
    assert!(!planted.exists(), "a refused dispatch ran its command");
    Ok(())
}
