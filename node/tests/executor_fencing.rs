//! Leader-term fencing in the executor agent, over real HTTP with real
//! processes: a request whose term is lower than the newest the executor
//! has seen comes from a deposed leader and is refused with 409, the
//! executor's term in `x-cronmesh-term` and code `stale_term`, and nothing
//! of it happens. The executor learns terms from requests and from the
//! schedulers' gossip. A report receiver stands in for the scheduler.

use std::path::Path;

use membership::{Member, Membership, MembershipConfig, SchedulerInfo};
use node::executor::{config::GossipSettings, start, ExecutorConfig, Receipts, RunningExecutor};
use protocol::{
    dispatch::{
        DispatchBatch, DispatchBatchAck, DispatchRequest, DispatchResult, KillRequest, Task,
        MSGPACK, SIGNATURE_HEADER, STALE_TERM_CODE, STALE_TERM_STATUS, TERM_HEADER,
    },
    run::RunStatus,
};
use serde_json::Value;

mod common;

use common::{
    client, dispatch_signed, get_json, get_json_signed, request, sign_v2, wait_for, Receiver,
};

// ---------------------------------------------------------------- helpers

async fn start_executor(configure: impl FnOnce(&mut ExecutorConfig)) -> RunningExecutor {
    let mut config = ExecutorConfig::new("default", "127.0.0.1:0".parse().expect("address"));
    configure(&mut config);
    start(config).await.expect("executor starts")
}

fn shell(run_id: &str, command: &str, term: u64, report_to: &Receiver) -> DispatchRequest {
    let mut req = request(
        run_id,
        Task::Shell {
            command: command.into(),
        },
        report_to,
    );
    req.term = term;
    req
}

/// The status, `x-cronmesh-term` header and JSON body of a response.
async fn answer(response: reqwest::Response) -> anyhow::Result<(u16, Option<String>, Value)> {
    let status = response.status().as_u16();
    let term = response
        .headers()
        .get(TERM_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = response.bytes().await?;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, term, body))
}

/// Asserts a stale-term refusal of `term` by an executor at `fence`.
fn assert_stale(answer: &(u16, Option<String>, Value), term: u64, fence: u64) {
    let (status, header, body) = answer;
    assert_eq!(*status, STALE_TERM_STATUS, "{body}");
    assert_eq!(header.as_deref(), Some(fence.to_string().as_str()));
    assert_eq!(body["error"]["code"], STALE_TERM_CODE);
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains(&format!("term {term}")) && message.contains(&format!("term {fence}")),
        "the message names both terms: {message}"
    );
}

async fn dispatch_answer(
    exec: &RunningExecutor,
    req: &DispatchRequest,
) -> anyhow::Result<(u16, Option<String>, Value)> {
    answer(dispatch_signed(exec, req, None).await?).await
}

async fn batch_answer(
    exec: &RunningExecutor,
    runs: Vec<DispatchRequest>,
) -> anyhow::Result<reqwest::Response> {
    Ok(client()
        .post(format!("{}/v1/dispatch/batch", exec.endpoint))
        .header(reqwest::header::CONTENT_TYPE, MSGPACK)
        .body(protocol::wire::encode(&DispatchBatch { runs })?)
        .send()
        .await?)
}

/// POSTs a kill with `body` (as `content_type`), signed with `secret`.
async fn kill(
    exec: &RunningExecutor,
    run_id: &str,
    content_type: &str,
    body: Vec<u8>,
    secret: &[u8],
) -> anyhow::Result<(u16, Option<String>, Value)> {
    let now = chrono::Utc::now().timestamp();
    let path = format!("/v1/runs/{run_id}/kill");
    let response = client()
        .post(format!("{}{path}", exec.endpoint))
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .header(
            SIGNATURE_HEADER,
            sign_v2(secret, now, "POST", &exec.endpoint, &path, &body),
        )
        .body(body)
        .send()
        .await?;
    answer(response).await
}

async fn status_of(exec: &RunningExecutor, run_id: &str) -> anyhow::Result<(u16, Value)> {
    get_json(format!("{}/v1/runs/{run_id}", exec.endpoint)).await
}

/// Run ids in a receipts file.
fn receipted(path: &Path) -> anyhow::Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .filter_map(|line| line.split(' ').next().map(str::to_string))
        .collect())
}

// ---------------------------------------------------------------- tests

#[actix_web::test]
async fn a_dispatch_from_a_deposed_leader_is_refused_and_starts_nothing() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    let dir = tempfile::tempdir()?;
    let receipts_path = dir.path().join("receipts");
    let marker = dir.path().join("ran");
    let receipts = Receipts::create(&receipts_path)?;
    let exec = start_executor(|c| c.receipts = Some(receipts)).await;
    let command = format!("echo $CRONMESH_RUN_ID >> '{}'", marker.display());

    let (status, _, ack) = dispatch_answer(&exec, &shell("t5", &command, 5, &receiver)).await?;
    assert_eq!((status, &ack["duplicate"]), (202, &Value::Bool(false)));
    assert_eq!(
        receiver.final_report("t5").await.status,
        RunStatus::Succeeded
    );
    assert_eq!(exec.term(), 5);

    // A new run from term 4: refused, and nothing of it exists.
    let stale = dispatch_answer(&exec, &shell("t4", &command, 4, &receiver)).await?;
    assert_stale(&stale, 4, 5);
    let (code, _) = status_of(&exec, "t4").await?;
    assert_eq!(code, 404, "a refused run is unknown to the executor");
    // A known run id from term 4 is refused too: the term comes first.
    let stale = dispatch_answer(&exec, &shell("t5", &command, 4, &receiver)).await?;
    assert_stale(&stale, 4, 5);

    // The current term is idempotent as ever; term 0 does not fence.
    let (status, _, ack) = dispatch_answer(&exec, &shell("t5", &command, 5, &receiver)).await?;
    assert_eq!((status, &ack["duplicate"]), (202, &Value::Bool(true)));
    let (status, _, _) = dispatch_answer(&exec, &shell("t0", &command, 0, &receiver)).await?;
    assert_eq!(status, 202);
    assert_eq!(
        receiver.final_report("t0").await.status,
        RunStatus::Succeeded
    );
    assert_eq!(exec.term(), 5, "term 0 leaves the fence where it was");

    exec.stop().await;
    assert_eq!(
        std::fs::read_to_string(&marker)?,
        "t5\nt0\n",
        "t4 never ran"
    );
    assert_eq!(
        receipted(&receipts_path)?,
        ["t5", "t0"],
        "t4 was never admitted"
    );
    assert!(receiver.reports("t4").is_empty(), "no report of t4");
    Ok(())
}

#[actix_web::test]
async fn a_batch_with_a_stale_entry_is_refused_whole() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    let exec = start_executor(|_| {}).await;
    let (status, _, _) = dispatch_answer(&exec, &shell("b5", "true", 5, &receiver)).await?;
    assert_eq!(status, 202);

    let frame = vec![
        shell("b-new", "true", 6, &receiver),
        shell("b-old", "true", 4, &receiver),
    ];
    let stale = answer(batch_answer(&exec, frame).await?).await?;
    assert_stale(&stale, 4, 5);
    for run_id in ["b-new", "b-old"] {
        let (code, _) = status_of(&exec, run_id).await?;
        assert_eq!(code, 404, "{run_id} of a refused frame was started");
    }
    assert_eq!(exec.term(), 5, "a refused frame raises nothing");

    // A frame of the current term (and term 0) is admitted and raises it.
    let frame = vec![
        shell("b-new", "true", 6, &receiver),
        shell("b-zero", "true", 0, &receiver),
    ];
    let response = batch_answer(&exec, frame).await?;
    assert_eq!(response.status(), 200);
    let ack: DispatchBatchAck = protocol::wire::decode(&response.bytes().await?)?;
    assert!(
        ack.results.iter().all(|r| matches!(
            r,
            DispatchResult::Accepted {
                duplicate: false,
                ..
            }
        )),
        "{ack:?}"
    );
    assert_eq!(
        receiver.final_report("b-new").await.status,
        RunStatus::Succeeded
    );
    assert_eq!(exec.term(), 6);
    let stale = dispatch_answer(&exec, &shell("b5-again", "true", 5, &receiver)).await?;
    assert_stale(&stale, 5, 6);
    exec.stop().await;
    Ok(())
}

#[actix_web::test]
async fn a_kill_from_a_deposed_leader_is_refused_and_the_run_keeps_running() -> anyhow::Result<()> {
    let secret: &[u8] = b"fencing-secret";
    let receiver = Receiver::start(0, Some(secret)).await?;
    let exec = start_executor(|c| c.secret = Some(secret.to_vec())).await;
    let now = chrono::Utc::now().timestamp();
    for run_id in ["k1", "k2"] {
        let req = shell(run_id, "sleep 30", 3, &receiver);
        let response = dispatch_signed(&exec, &req, Some((secret, now))).await?;
        assert_eq!(response.status(), 202);
        receiver.running_report(run_id).await;
    }

    let body = protocol::wire::encode(&KillRequest { term: 2 })?;
    let stale = kill(&exec, "k1", MSGPACK, body, secret).await?;
    assert_stale(&stale, 2, 3);
    let (_, state) = get_json_signed(&exec, "/v1/runs/k1", secret).await?;
    assert_eq!(state["status"], "running", "a refused kill stopped the run");
    assert!(receiver.finals("k1").is_empty());

    // The signature covers the body: one signed for another body is refused.
    let response = client()
        .post(format!("{}/v1/runs/k1/kill", exec.endpoint))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            SIGNATURE_HEADER,
            sign_v2(secret, now, "POST", &exec.endpoint, "/v1/runs/k1/kill", b""),
        )
        .body(r#"{"term":3}"#)
        .send()
        .await?;
    assert_eq!(response.status(), 401);

    // The current term (JSON) kills; so does an empty body (term 0).
    let (status, _, state) = kill(
        &exec,
        "k1",
        "application/json",
        br#"{"term":3}"#.to_vec(),
        secret,
    )
    .await?;
    assert_eq!((status, &state["status"]), (200, &Value::from("killed")));
    assert_eq!(receiver.final_report("k1").await.status, RunStatus::Killed);
    let (status, _, state) = kill(&exec, "k2", MSGPACK, Vec::new(), secret).await?;
    assert_eq!((status, &state["status"]), (200, &Value::from("killed")));

    // A kill's higher term raises the fence like a dispatch's.
    let body = protocol::wire::encode(&KillRequest { term: 8 })?;
    let (status, _, _) = kill(&exec, "unknown-run", MSGPACK, body, secret).await?;
    assert_eq!(status, 404);
    assert_eq!(exec.term(), 8);
    let malformed = kill(&exec, "k2", MSGPACK, vec![0xc1], secret).await?;
    assert_eq!(malformed.0, 400);
    exec.stop().await;
    Ok(())
}

#[actix_web::test]
async fn the_fence_survives_a_restart_with_a_data_dir() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("executor");
    let with_data_dir = |c: &mut ExecutorConfig| c.data_dir = Some(data_dir.clone());

    let exec = start_executor(with_data_dir).await;
    let (status, _, _) = dispatch_answer(&exec, &shell("r7", "true", 7, &receiver)).await?;
    assert_eq!(status, 202);
    // One directory, one executor.
    let mut second = ExecutorConfig::new("default", "127.0.0.1:0".parse()?);
    second.data_dir = Some(data_dir.clone());
    let refused = start(second).await.err().map(|e| format!("{e:#}"));
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("in use by another executor")),
        "{refused:?}"
    );
    exec.stop().await;

    let restarted = start_executor(with_data_dir).await;
    assert_eq!(restarted.term(), 7);
    let stale = dispatch_answer(&restarted, &shell("r6", "true", 6, &receiver)).await?;
    assert_stale(&stale, 6, 7);
    restarted.stop().await;

    // Without a data directory a restart forgets it.
    let exec = start_executor(|_| {}).await;
    dispatch_answer(&exec, &shell("m7", "true", 7, &receiver)).await?;
    exec.stop().await;
    let restarted = start_executor(|_| {}).await;
    assert_eq!(restarted.term(), 0);
    let (status, _, _) = dispatch_answer(&restarted, &shell("m6", "true", 6, &receiver)).await?;
    assert_eq!(status, 202);
    wait_for("the final report of m6", || {
        receiver.finals("m6").into_iter().next()
    })
    .await;
    restarted.stop().await;
    Ok(())
}

/// A scheduler as gossip shows it, in `term`.
fn scheduler_in(term: u64) -> Member {
    Member::Scheduler(SchedulerInfo {
        node_id: 1,
        api_url: "http://127.0.0.1:1".into(),
        raft_addr: "127.0.0.1:2".into(),
        leader: false,
        term,
    })
}

#[actix_web::test]
async fn the_term_a_scheduler_gossips_fences_the_executor() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    let cluster = format!("fencing-{}", std::process::id());
    let mut config = MembershipConfig::new("scheduler-1", "127.0.0.1:0".parse()?);
    config.cluster_id = cluster.clone();
    let scheduler = Membership::start(config, scheduler_in(7)).await?;
    let seed = scheduler.advertise_addr().to_string();
    let exec = start_executor(|c| {
        c.gossip = Some(GossipSettings {
            listen: "127.0.0.1:0".parse().expect("address"),
            seeds: vec![seed],
            cluster,
            fence_after: std::time::Duration::from_secs(60),
        })
    })
    .await;

    wait_for("the executor to learn term 7 by gossip", || {
        (exec.term() == 7).then_some(())
    })
    .await;
    let stale = dispatch_answer(&exec, &shell("g6", "true", 6, &receiver)).await?;
    assert_stale(&stale, 6, 7);
    let (code, _) = status_of(&exec, "g6").await?;
    assert_eq!(code, 404);

    // A new election: the gossiped term rises, and so does the fence.
    scheduler.update_self(scheduler_in(9)).await;
    wait_for("the executor to learn term 9 by gossip", || {
        (exec.term() == 9).then_some(())
    })
    .await;
    let stale = dispatch_answer(&exec, &shell("g8", "true", 8, &receiver)).await?;
    assert_stale(&stale, 8, 9);
    let (status, _, _) = dispatch_answer(&exec, &shell("g9", "true", 9, &receiver)).await?;
    assert_eq!(status, 202);
    assert_eq!(
        receiver.final_report("g9").await.status,
        RunStatus::Succeeded
    );
    exec.stop().await;
    scheduler.shutdown().await;
    Ok(())
}
