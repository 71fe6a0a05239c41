//! Protocol v2 on an executor with a secret: every signature holds for one
//! request (method, path, executor, body) once; reads need one too; the
//! webhook key opens nothing; version 1 passes only with the upgrade flag,
//! and never for a kill.

use chrono::Utc;
use node::executor::{start, ExecutorConfig, RunningExecutor};
use protocol::{
    dispatch::{DispatchRequest, Task, MSGPACK, SIGNATURE_HEADER},
    keys::{self, KeyUse},
    signature,
    signing::V1Compat,
};
use serde_json::Value;

mod common;

use common::{client, dispatch_signed, get_json_signed, json_of, request, sign_v2, Receiver};

const SECRET: &[u8] = b"v2-secret";

async fn start_executor(v1: V1Compat) -> RunningExecutor {
    let mut config = ExecutorConfig::new("default", "127.0.0.1:0".parse().expect("address"));
    config.secret = Some(SECRET.to_vec());
    config.v1 = v1;
    start(config).await.expect("executor starts")
}

fn sleeper(run_id: &str, receiver: &Receiver) -> DispatchRequest {
    request(
        run_id,
        Task::Shell {
            command: "echo started; sleep 30".into(),
        },
        receiver,
    )
}

/// POSTs an empty kill of `run_id` carrying `header`.
async fn kill_with(
    exec: &RunningExecutor,
    run_id: &str,
    header: &str,
) -> anyhow::Result<(u16, Value)> {
    let response = client()
        .post(format!("{}/v1/runs/{run_id}/kill", exec.endpoint))
        .header(reqwest::header::CONTENT_TYPE, MSGPACK)
        .header(SIGNATURE_HEADER, header)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, json_of(response).await?))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

fn kill_signature(exec: &RunningExecutor, run_id: &str) -> String {
    let path = format!("/v1/runs/{run_id}/kill");
    sign_v2(
        SECRET,
        Utc::now().timestamp(),
        "POST",
        &exec.endpoint,
        &path,
        b"",
    )
}

#[actix_web::test]
async fn a_kill_signature_kills_its_run_once_and_no_other() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, Some(SECRET)).await?;
    let exec = start_executor(V1Compat::default()).await;
    let now = Utc::now().timestamp();
    for run_id in ["a", "b"] {
        let response =
            dispatch_signed(&exec, &sleeper(run_id, &receiver), Some((SECRET, now))).await?;
        assert_eq!(response.status(), 202);
        receiver.running_report(run_id).await;
    }

    let for_a = kill_signature(&exec, "a");
    // Moved to another run's path: refused, and b keeps running.
    let (status, body) = kill_with(&exec, "b", &for_a).await?;
    assert_eq!((status, code(&body)), (401, "bad_signature"), "{body}");
    let (_, state) = get_json_signed(&exec, "/v1/runs/b", SECRET).await?;
    assert_eq!(state["status"], "running");

    // For another executor (audience): refused.
    let elsewhere = sign_v2(
        SECRET,
        now,
        "POST",
        "http://10.9.9.9:7080",
        "/v1/runs/a/kill",
        b"",
    );
    let (status, body) = kill_with(&exec, "a", &elsewhere).await?;
    assert_eq!((status, code(&body)), (401, "bad_signature"), "{body}");

    // Its own run: killed once; the same header again is a replay.
    let (status, body) = kill_with(&exec, "a", &for_a).await?;
    assert!(status == 200 || status == 202, "{status} {body}");
    let (status, body) = kill_with(&exec, "a", &for_a).await?;
    assert_eq!((status, code(&body)), (401, "replayed"), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("replayed"), "{message}");

    let (status, _) = kill_with(&exec, "b", &kill_signature(&exec, "b")).await?;
    assert!(status == 200 || status == 202);
    exec.stop().await;
    Ok(())
}

#[actix_web::test]
async fn reads_need_a_signature() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, Some(SECRET)).await?;
    let exec = start_executor(V1Compat::default()).await;
    let now = Utc::now().timestamp();
    let response = dispatch_signed(&exec, &sleeper("r", &receiver), Some((SECRET, now))).await?;
    assert_eq!(response.status(), 202);
    receiver.running_report("r").await;

    for path in ["/v1/runs/r/output", "/v1/runs/r", "/v1/info"] {
        let response = client()
            .get(format!("{}{path}", exec.endpoint))
            .send()
            .await?;
        assert_eq!(response.status(), 401, "unsigned {path}");
    }
    // A signature for another path does not open this one.
    let other = sign_v2(SECRET, now, "GET", &exec.endpoint, "/v1/runs/x/output", b"");
    let response = client()
        .get(format!("{}/v1/runs/r/output", exec.endpoint))
        .header(SIGNATURE_HEADER, other)
        .send()
        .await?;
    assert_eq!(response.status(), 401);

    let path = "/v1/runs/r/output";
    let header = sign_v2(SECRET, now, "GET", &exec.endpoint, path, b"");
    let response = client()
        .get(format!("{}{path}", exec.endpoint))
        .header(SIGNATURE_HEADER, header)
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await?, "started\n");
    let (code, info) = get_json_signed(&exec, "/v1/info", SECRET).await?;
    assert_eq!((code, &info["group"]), (200, &Value::from("default")));
    let (code, _) = get_json_signed(&exec, "/healthz", SECRET).await?;
    assert_eq!(code, 200, "health stays open");
    exec.stop().await;
    Ok(())
}

/// POSTs `req` as a dispatch carrying `header`.
async fn dispatch_with(
    exec: &RunningExecutor,
    body: Vec<u8>,
    header: String,
) -> anyhow::Result<(u16, Value)> {
    let response = client()
        .post(format!("{}/v1/dispatch", exec.endpoint))
        .header(reqwest::header::CONTENT_TYPE, MSGPACK)
        .header(SIGNATURE_HEADER, header)
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, json_of(response).await?))
}

#[actix_web::test]
async fn a_webhook_signature_is_no_dispatch() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, Some(SECRET)).await?;
    let exec = start_executor(V1Compat {
        accept_v1: true,
        send_v1: false,
    })
    .await;
    let body = protocol::wire::encode(&sleeper("w", &receiver))?;
    let now = Utc::now().timestamp();
    // As a scheduler signs an alert webhook: the v1 format, the webhook key.
    let webhook_key = keys::derive(SECRET, KeyUse::Webhook);
    let (status, answer) = dispatch_with(
        &exec,
        body.clone(),
        signature::sign(&webhook_key, now, &body),
    )
    .await?;
    assert_eq!((status, code(&answer)), (401, "bad_signature"), "{answer}");
    // Nor in the v2 format made with that key.
    let target = protocol::signature_v2::Target {
        method: "POST",
        path_and_query: "/v1/dispatch",
        audience: &exec.endpoint,
        body: &body,
    };
    let v2 = protocol::signature_v2::sign(&webhook_key, &target);
    let (status, answer) = dispatch_with(&exec, body, v2).await?;
    assert_eq!((status, code(&answer)), (401, "bad_signature"), "{answer}");
    let (code, _) = get_json_signed(&exec, "/v1/runs/w", SECRET).await?;
    assert_eq!(code, 404, "nothing ran");
    exec.stop().await;
    Ok(())
}

#[actix_web::test]
async fn version_1_dispatches_pass_only_with_the_flag_and_v1_kills_never() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, Some(SECRET)).await?;
    let strict = start_executor(V1Compat::default()).await;
    let body = protocol::wire::encode(&sleeper("v1-run", &receiver))?;
    let now = Utc::now().timestamp();
    let (status, answer) =
        dispatch_with(&strict, body.clone(), signature::sign(SECRET, now, &body)).await?;
    assert_eq!((status, code(&answer)), (401, "bad_signature"), "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("version 1"), "{message}");
    strict.stop().await;

    let upgrading = start_executor(V1Compat {
        accept_v1: true,
        send_v1: false,
    })
    .await;
    let (status, answer) = dispatch_with(
        &upgrading,
        body.clone(),
        signature::sign(SECRET, now, &body),
    )
    .await?;
    assert_eq!(status, 202, "{answer}");
    receiver.running_report("v1-run").await;
    let v1_kill = signature::sign(SECRET, now, b"");
    let (status, answer) = kill_with(&upgrading, "v1-run", &v1_kill).await?;
    assert_eq!((status, code(&answer)), (401, "bad_signature"), "{answer}");
    let (_, state) = get_json_signed(&upgrading, "/v1/runs/v1-run", SECRET).await?;
    assert_eq!(state["status"], "running");
    let (status, _) =
        kill_with(&upgrading, "v1-run", &kill_signature(&upgrading, "v1-run")).await?;
    assert!(status == 200 || status == 202);
    upgrading.stop().await;
    Ok(())
}
