//! An executor embedded in a Rust program through `Executor::builder()`,
//! serving handler tasks with in-process async functions, over real HTTP:
//! a report receiver stands in for the scheduler (it decodes reports as a
//! scheduler would) and every wait polls against a deadline.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use actix_web::{web, App, HttpResponse, HttpServer};
use chrono::{DateTime, Utc};
use node::executor::{Executor, HandlerContext, RunningExecutor, ShardInfo};
use protocol::{
    dispatch::{DispatchRequest, Task},
    run::RunStatus,
};
use serde_json::Value;

mod common;

use common::{
    client, dispatch, dispatch_signed, get_json, json_of, request, wait_for, Receiver, DEADLINE,
};

// ---------------------------------------------------------------- helpers

fn handler_task(run_id: &str, handler: &str, report_to: &Receiver) -> DispatchRequest {
    request(
        run_id,
        Task::Handler {
            handler: handler.into(),
        },
        report_to,
    )
}

async fn output_of(exec: &RunningExecutor, run_id: &str) -> anyhow::Result<String> {
    Ok(client()
        .get(format!("{}/v1/runs/{run_id}/output", exec.endpoint))
        .send()
        .await?
        .text()
        .await?)
}

/// What a handler saw of its run.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    handler: String,
    run_id: String,
    job_id: String,
    namespace: String,
    scheduled_at: DateTime<Utc>,
    attempt: u32,
    shard: ShardInfo,
    params: String,
    timeout: Duration,
}

// ---------------------------------------------------------------- tests

#[actix_web::test]
async fn a_handler_run_succeeds_with_its_output_and_sees_its_run() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let exec = {
        let seen = seen.clone();
        Executor::builder()
            .group("billing")
            .handler("reconcile", move |ctx: HandlerContext| {
                let seen = seen.clone();
                async move {
                    seen.lock().expect("seen lock").push(Seen {
                        handler: ctx.handler.clone(),
                        run_id: ctx.run_id.clone(),
                        job_id: ctx.job_id.clone(),
                        namespace: ctx.namespace.clone(),
                        scheduled_at: ctx.scheduled_at,
                        attempt: ctx.attempt,
                        shard: ctx.shard.clone(),
                        params: ctx.params.clone(),
                        timeout: ctx.timeout,
                    });
                    ctx.output.line(format!("param {}", ctx.shard.param));
                    Ok(format!("reconciled shard {}", ctx.shard.index))
                }
            })
            .start()
            .await?
    };
    assert!(exec.endpoint.starts_with("http://127.0.0.1:"));
    let mut req = handler_task("reconcile-1", "reconcile", &receiver);
    req.job_id = "nightly-billing".into();
    req.namespace = "finance".into();
    req.scheduled_at = "2026-11-21T23:00:00Z".parse()?;
    req.attempt = 2;
    req.shard = ShardInfo {
        index: 1,
        count: 3,
        param: "eu-west".into(),
    };
    req.params = "--full".into();
    req.timeout_ms = 15_000;
    let ack = dispatch(&exec, &req).await?;
    assert_eq!(ack.run_id, "reconcile-1");
    assert!(!ack.duplicate);

    let report = receiver.final_report("reconcile-1").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(report.output, "param eu-west\nreconciled shard 1");
    assert_eq!(report.error, None);
    assert_eq!(report.exit_code, None);
    assert_eq!(report.executor, exec.endpoint);
    assert!(report.started_at.is_some() && report.finished_at.is_some());
    let statuses: Vec<RunStatus> = receiver
        .reports("reconcile-1")
        .iter()
        .map(|r| r.status)
        .collect();
    // A run that ends at once may skip its `running` report; either way
    // exactly one final report is recorded, and it is the last.
    assert_eq!(statuses.last(), Some(&RunStatus::Succeeded));
    assert_eq!(statuses.iter().filter(|s| s.is_terminal()).count(), 1);

    let seen = seen.lock().expect("seen lock").clone();
    assert_eq!(
        seen,
        [Seen {
            handler: "reconcile".into(),
            run_id: "reconcile-1".into(),
            job_id: "nightly-billing".into(),
            namespace: "finance".into(),
            scheduled_at: req.scheduled_at,
            attempt: 2,
            shard: req.shard.clone(),
            params: "--full".into(),
            timeout: Duration::from_secs(15),
        }]
    );
    let (code, state) = get_json(format!("{}/v1/runs/reconcile-1", exec.endpoint)).await?;
    assert_eq!(code, 200);
    assert_eq!(state["status"], "succeeded");
    assert_eq!(output_of(&exec, "reconcile-1").await?, report.output);
    exec.stop().await;
    receiver.server.stop(false).await;
    Ok(())
}

#[actix_web::test]
async fn errors_and_panics_fail_the_run_and_the_agent_keeps_serving() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    let exec = Executor::builder()
        .handler("locked", |ctx: HandlerContext| async move {
            ctx.output.line("checking the ledger");
            Err::<String, _>("the ledger is locked".to_string())
        })
        .handler("explode", |ctx: HandlerContext| async move {
            tokio::task::yield_now().await;
            if ctx.attempt > 0 {
                panic!("division by zero in shard {}", ctx.shard.index);
            }
            Ok(String::new())
        })
        .handler("fine", |ctx: HandlerContext| async move {
            Ok(format!("fine {}", ctx.run_id))
        })
        .start()
        .await?;

    dispatch(&exec, &handler_task("err-1", "locked", &receiver)).await?;
    let report = receiver.final_report("err-1").await;
    assert_eq!(report.status, RunStatus::Failed, "{report:?}");
    assert_eq!(report.error.as_deref(), Some("the ledger is locked"));
    assert_eq!(report.output, "checking the ledger\n");

    dispatch(&exec, &handler_task("panic-1", "explode", &receiver)).await?;
    let report = receiver.final_report("panic-1").await;
    assert_eq!(report.status, RunStatus::Failed, "{report:?}");
    assert_eq!(
        report.error.as_deref(),
        Some("handler explode panicked: division by zero in shard 0")
    );

    // The agent is unharmed: it answers, and runs the next dispatch.
    let (code, _) = get_json(format!("{}/healthz", exec.endpoint)).await?;
    assert_eq!(code, 200);
    dispatch(&exec, &handler_task("after-panic", "fine", &receiver)).await?;
    let report = receiver.final_report("after-panic").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(report.output, "fine after-panic");

    // A second panic is contained just the same.
    dispatch(&exec, &handler_task("panic-2", "explode", &receiver)).await?;
    assert_eq!(
        receiver.final_report("panic-2").await.status,
        RunStatus::Failed
    );
    let (_, info) = get_json(format!("{}/v1/info", exec.endpoint)).await?;
    assert_eq!(info["running"], 0);
    exec.stop().await;
    Ok(())
}

#[actix_web::test]
async fn a_duplicate_dispatch_calls_the_handler_once() -> anyhow::Result<()> {
    let first = Receiver::start(0, None).await?;
    let restarted = Receiver::start(0, None).await?;
    let calls = Arc::new(AtomicUsize::new(0));
    let exec = {
        let calls = calls.clone();
        Executor::builder()
            .handler("count", move |_ctx: HandlerContext| {
                let calls = calls.clone();
                async move {
                    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok(format!("call {n}"))
                }
            })
            .start()
            .await?
    };
    let req = handler_task("dup-1", "count", &first);
    assert!(!dispatch(&exec, &req).await?.duplicate);
    // Repeated while it runs: acknowledged, not called again.
    assert!(dispatch(&exec, &req).await?.duplicate);
    assert!(dispatch(&exec, &req).await?.duplicate);
    let report = first.final_report("dup-1").await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(report.output, "call 1");

    // Repeated after it finished, by a scheduler at another address: still
    // one call, and that scheduler learns the result.
    let mut again = req.clone();
    again.report_to = vec![restarted.url.clone()];
    assert!(dispatch(&exec, &again).await?.duplicate);
    let resent = restarted.final_report("dup-1").await;
    assert_eq!(resent.output, "call 1");
    assert_eq!(resent.finished_at, report.finished_at);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(first.finals("dup-1").len(), 1);
    exec.stop().await;
    Ok(())
}

#[actix_web::test]
async fn a_slow_handler_times_out_or_is_killed_and_is_cancelled() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    let cancelled = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let exec = {
        let (cancelled, finished) = (cancelled.clone(), finished.clone());
        let finished_too = finished.clone();
        Executor::builder()
            // Hands its cancellation to a spawned task, then sleeps.
            .handler("sleepy", move |ctx: HandlerContext| {
                let (cancelled, finished) = (cancelled.clone(), finished.clone());
                async move {
                    let watch = ctx.cancelled();
                    tokio::spawn(async move {
                        watch.await;
                        cancelled.fetch_add(1, Ordering::SeqCst);
                    });
                    ctx.output.line("sleeping");
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    finished.store(true, Ordering::SeqCst);
                    Ok("woke up".to_string())
                }
            })
            // Waits for its own cancellation, which its future never sees.
            .handler("waits", move |ctx: HandlerContext| {
                let finished = finished_too.clone();
                async move {
                    ctx.cancelled().await;
                    finished.store(true, Ordering::SeqCst);
                    Ok("cleaned up".to_string())
                }
            })
            .start()
            .await?
    };

    let mut req = handler_task("slow-1", "sleepy", &receiver);
    req.timeout_ms = 300;
    let started = Instant::now();
    dispatch(&exec, &req).await?;
    let report = receiver.final_report("slow-1").await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(report.status, RunStatus::TimedOut, "{report:?}");
    assert_eq!(report.error.as_deref(), Some("timed out after 300ms"));
    assert_eq!(report.output, "sleeping\n");
    wait_for("the cancellation of slow-1", || {
        (cancelled.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;

    let mut req = handler_task("wait-1", "waits", &receiver);
    req.timeout_ms = 300;
    dispatch(&exec, &req).await?;
    let report = receiver.final_report("wait-1").await;
    assert_eq!(report.status, RunStatus::TimedOut, "{report:?}");
    assert_eq!(report.output, "");

    // Killed while running.
    dispatch(&exec, &handler_task("kill-1", "sleepy", &receiver)).await?;
    receiver.running_report("kill-1").await;
    let response = client()
        .post(format!("{}/v1/runs/kill-1/kill", exec.endpoint))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let state: Value = json_of(response).await?;
    assert_eq!(state["status"], "killed");
    let report = receiver.final_report("kill-1").await;
    assert_eq!(report.status, RunStatus::Killed, "{report:?}");
    assert_eq!(report.error.as_deref(), Some("killed on request"));
    wait_for("the cancellation of kill-1", || {
        (cancelled.load(Ordering::SeqCst) == 2).then_some(())
    })
    .await;
    // No dropped future ran on to its end.
    assert!(!finished.load(Ordering::SeqCst));
    let (_, info) = get_json(format!("{}/v1/info", exec.endpoint)).await?;
    assert_eq!(info["running"], 0);
    exec.stop().await;
    Ok(())
}

#[actix_web::test]
async fn output_is_visible_while_the_handler_runs() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    let release = Arc::new(tokio::sync::Notify::new());
    let exec = {
        let release = release.clone();
        Executor::builder()
            .handler("steps", move |ctx: HandlerContext| {
                let release = release.clone();
                async move {
                    ctx.output.line("step 1 of 2");
                    ctx.output.write("halfway");
                    release.notified().await;
                    ctx.output.line("");
                    ctx.output.line("step 2 of 2");
                    Ok("done".to_string())
                }
            })
            .start()
            .await?
    };
    dispatch(&exec, &handler_task("live-1", "steps", &receiver)).await?;
    receiver.running_report("live-1").await;
    let mut live = String::new();
    let deadline = Instant::now() + DEADLINE;
    while live != "step 1 of 2\nhalfway" && Instant::now() < deadline {
        live = output_of(&exec, "live-1").await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(live, "step 1 of 2\nhalfway");
    let (_, state) = get_json(format!("{}/v1/runs/live-1", exec.endpoint)).await?;
    assert_eq!(state["status"], "running");
    assert_eq!(state["output"], "step 1 of 2\nhalfway");
    assert!(receiver.finals("live-1").is_empty());

    release.notify_one();
    let report = receiver.final_report("live-1").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(report.output, "step 1 of 2\nhalfway\nstep 2 of 2\ndone");
    assert_eq!(output_of(&exec, "live-1").await?, report.output);
    exec.stop().await;
    Ok(())
}

#[actix_web::test]
async fn info_lists_the_handlers_and_in_process_wins_over_forward() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    // A forward service that answers every handler name.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let service_url = format!("http://{}", listener.local_addr()?);
    let service = HttpServer::new(|| {
        App::new().route(
            "/{handler}",
            web::post().to(|path: web::Path<String>| async move {
                HttpResponse::Ok().body(format!("forwarded {}", path.into_inner()))
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let service_handle = service.handle();
    tokio::spawn(service);

    let exec = Executor::builder()
        .group("billing")
        .label("zone", "eu")
        .weight(2)
        .forward(service_url.clone())
        .handler("reconcile", |_ctx: HandlerContext| async move {
            Ok("in process".to_string())
        })
        .handler(
            "audit",
            |_ctx: HandlerContext| async move { Ok(String::new()) },
        )
        .start()
        .await?;
    // `*`: forwarding takes any other name.
    assert_eq!(exec.handlers, ["*", "audit", "reconcile"]);
    let (code, info) = get_json(format!("{}/v1/info", exec.endpoint)).await?;
    assert_eq!(code, 200);
    assert_eq!(
        info["handlers"],
        serde_json::json!(["*", "audit", "reconcile"])
    );
    assert_eq!(info["group"], "billing");
    assert_eq!(info["weight"], 2);
    assert_eq!(info["labels"], serde_json::json!({"zone": "eu"}));
    assert_eq!(info["endpoint"], exec.endpoint.as_str());

    dispatch(&exec, &handler_task("local-1", "reconcile", &receiver)).await?;
    let report = receiver.final_report("local-1").await;
    assert_eq!(report.output, "in process");
    dispatch(&exec, &handler_task("remote-1", "mail", &receiver)).await?;
    let report = receiver.final_report("remote-1").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(report.output, "forwarded mail");
    exec.stop().await;
    service_handle.stop(false).await;

    // Without --forward an unknown name fails as it always did.
    let plain = Executor::builder()
        .handler("reconcile", |_ctx: HandlerContext| async move {
            Ok(String::new())
        })
        .start()
        .await?;
    dispatch(&plain, &handler_task("none-1", "mail", &receiver)).await?;
    let report = receiver.final_report("none-1").await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(
        report.error.as_deref(),
        Some("no handler named mail on this executor")
    );
    plain.stop().await;
    Ok(())
}

#[actix_web::test]
async fn a_secret_signs_both_ways_and_stop_cancels_running_handlers() -> anyhow::Result<()> {
    let secret: &[u8] = b"embedded-secret";
    let receiver = Receiver::start(0, Some(secret)).await?;
    let cancelled = Arc::new(AtomicBool::new(false));
    let exec = {
        let cancelled = cancelled.clone();
        Executor::builder()
            .secret(secret)
            .handler("forever", move |ctx: HandlerContext| {
                let cancelled = cancelled.clone();
                async move {
                    let watch = ctx.cancelled();
                    tokio::spawn(async move {
                        watch.await;
                        cancelled.store(true, Ordering::SeqCst);
                    });
                    std::future::pending::<()>().await;
                    Ok(String::new())
                }
            })
            .start()
            .await?
    };
    let req = handler_task("signed-1", "forever", &receiver);
    let unsigned = dispatch_signed(&exec, &req, None).await?;
    assert_eq!(unsigned.status(), 401);
    let signed = dispatch_signed(&exec, &req, Some((secret, Utc::now().timestamp()))).await?;
    assert_eq!(signed.status(), 202);
    receiver.running_report("signed-1").await;

    let started = Instant::now();
    exec.stop().await;
    assert!(started.elapsed() < Duration::from_secs(8));
    let report = receiver.final_report("signed-1").await;
    assert_eq!(report.status, RunStatus::Failed, "{report:?}");
    assert_eq!(
        report.error.as_deref(),
        Some("the executor shut down during the run")
    );
    assert!(cancelled.load(Ordering::SeqCst));
    assert_eq!(receiver.state.bad_signatures.load(Ordering::SeqCst), 0);
    Ok(())
}

#[actix_web::test]
async fn builder_mistakes_fail_start() {
    let err = Executor::builder()
        .handler(
            "same",
            |_ctx: HandlerContext| async move { Ok(String::new()) },
        )
        .handler(
            "same",
            |_ctx: HandlerContext| async move { Ok(String::new()) },
        )
        .start()
        .await
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(err.contains("\"same\" is registered twice"), "{err}");
    let err = Executor::builder()
        .handler("has space", |_ctx: HandlerContext| async move {
            Ok(String::new())
        })
        .start()
        .await
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(err.contains("has space"), "{err}");
}
