//! A `cronmesh executor` killed with SIGKILL leaves its runs' process
//! groups running; restarted on the same data directory, it kills them and
//! reports their runs failed with the reason. A run that finished before
//! the crash, its final report not yet taken, is known after the restart as
//! finished: a dispatch of it again is a duplicate, and its report goes
//! out again. Real processes: the executor binary, `sh` and `sleep`; a
//! report receiver stands in for the scheduler.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
};

use node::executor::{KILLED_AT_RESTART, STOPPED_STARTING};
use protocol::{
    dispatch::{DispatchAck, DispatchRequest, Task, MSGPACK},
    run::RunStatus,
};

mod common;

use common::{client, get_json, request, wait_for, Receiver, ReceiverOptions};

/// A `cronmesh executor` process, killed with SIGKILL when dropped.
struct ExecutorProcess {
    endpoint: String,
    child: Child,
}

impl ExecutorProcess {
    /// Starts it on a free port with `data_dir` and waits for its
    /// "listening on" line.
    fn start(data_dir: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cronmesh"))
            .args(["executor", "--listen", "127.0.0.1:0", "--unsigned"])
            .arg("--data-dir")
            .arg(data_dir)
            .env("CRONMESH_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (stdout, stderr) = match (child.stdout.take(), child.stderr.take()) {
            (Some(stdout), Some(stderr)) => (stdout, stderr),
            _ => anyhow::bail!("the executor's output is not piped"),
        };
        // Its log goes to the test's output, shown when the test fails.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("executor: {line}");
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("cronmesh executor listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let mut process = Self {
            endpoint: String::new(),
            child,
        };
        process.endpoint = rx
            .recv_timeout(common::DEADLINE)
            .map_err(|_| anyhow::anyhow!("the executor did not announce itself"))?;
        Ok(process)
    }

    /// SIGKILL, as a crash; waits for it to be gone.
    fn kill9(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for ExecutorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fields 3 onwards of `/proc/PID/stat` ("pid (comm) STATE PPID PGRP ...";
/// comm may hold spaces and ')').
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Whether process `pid` exists and is not a zombie.
fn process_is_alive(pid: i32) -> bool {
    stat_fields(pid).is_some_and(|fields| fields.first().map(String::as_str) != Some("Z"))
}

/// Processes of group `pgid` that are alive (zombies run nothing).
fn live_processes_in_group(pgid: i32) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat_fields)
        .filter(|fields| {
            fields.first().map(String::as_str) != Some("Z")
                && fields.get(2) == Some(&pgid.to_string())
        })
        .count()
}

#[actix_web::test]
async fn a_restart_kills_the_runs_a_crash_left_running_and_reports_them() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("data");
    let pgid_file = dir.path().join("pgid");
    let exec = ExecutorProcess::start(&data_dir)?;

    // The shell waits for its children, so they are processes of their own
    // in its group: what outlives the executor.
    let req = request(
        "orphaned",
        Task::Shell {
            command: format!(
                "echo $$ > '{}'; sleep 30 & sleep 30; wait",
                pgid_file.display()
            ),
        },
        &receiver,
    );
    let response = client()
        .post(format!("{}/v1/dispatch", exec.endpoint))
        .header(reqwest::header::CONTENT_TYPE, MSGPACK)
        .body(protocol::wire::encode(&req)?)
        .send()
        .await?;
    assert_eq!(response.status(), 202);
    receiver.running_report("orphaned").await;
    let pgid: i32 = wait_for("the run's process group id", || {
        std::fs::read_to_string(&pgid_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    })
    .await;
    let record = data_dir.join("executor-runs").join("orphaned.json");
    assert!(record.exists(), "no record of the running process");

    exec.kill9()?;
    // The shell had the executor's death as its parent-death signal; its
    // children are processes of their own, and outlive it.
    wait_for("the shell to die with the executor", || {
        (!process_is_alive(pgid)).then_some(())
    })
    .await;
    // What the restart must fix: the run's processes outlived the executor.
    assert!(
        live_processes_in_group(pgid) > 0,
        "the run's process group died with the executor; this test proves nothing"
    );
    assert!(receiver.finals("orphaned").is_empty());

    let restarted = ExecutorProcess::start(&data_dir)?;
    wait_for("the orphaned process group to be killed", || {
        (live_processes_in_group(pgid) == 0).then_some(())
    })
    .await;
    let report = receiver.final_report("orphaned").await;
    assert_eq!(report.status, RunStatus::Failed, "{report:?}");
    assert_eq!(report.error.as_deref(), Some(KILLED_AT_RESTART));
    assert_eq!(report.executor, restarted.endpoint);
    assert!(report.started_at.is_some() && report.finished_at.is_some());

    // The restarted executor knows the run as ended, and its record is gone
    // once the report was taken.
    let (code, state) = get_json(format!("{}/v1/runs/orphaned", restarted.endpoint)).await?;
    assert_eq!((code, &state["status"]), (200, &"failed".into()));
    let runs_dir = data_dir.join("executor-runs");
    wait_for("the run's record to be removed", || {
        let left = std::fs::read_dir(&runs_dir).ok()?.count();
        (left == 0).then_some(())
    })
    .await;

    // A run that ends by itself leaves no record behind.
    let mut req = req.clone();
    req.run_id = "clean".into();
    req.task = Task::Shell {
        command: "echo done".into(),
    };
    let response = client()
        .post(format!("{}/v1/dispatch", restarted.endpoint))
        .header(reqwest::header::CONTENT_TYPE, MSGPACK)
        .body(protocol::wire::encode(&req)?)
        .send()
        .await?;
    assert_eq!(response.status(), 202);
    assert_eq!(
        receiver.final_report("clean").await.status,
        RunStatus::Succeeded
    );
    wait_for("no record left", || {
        let left = std::fs::read_dir(&runs_dir).ok()?.count();
        (left == 0).then_some(())
    })
    .await;
    Ok(())
}

/// POSTs `req` to `endpoint` and expects `202` with an ack.
async fn dispatch_to(endpoint: &str, req: &DispatchRequest) -> anyhow::Result<DispatchAck> {
    let response = client()
        .post(format!("{endpoint}/v1/dispatch"))
        .header(reqwest::header::CONTENT_TYPE, MSGPACK)
        .body(protocol::wire::encode(req)?)
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == 202,
        "dispatch answered {}",
        response.status()
    );
    Ok(serde_json::from_slice(&response.bytes().await?)?)
}

/// Files left in `executor-runs/`.
fn records_in(data_dir: &Path) -> Option<usize> {
    Some(
        std::fs::read_dir(data_dir.join("executor-runs"))
            .ok()?
            .count(),
    )
}

#[actix_web::test]
async fn a_run_finished_but_unreported_before_a_crash_does_not_run_again() -> anyhow::Result<()> {
    let receiver = Receiver::with(ReceiverOptions {
        hold_finals: true,
        ..ReceiverOptions::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("data");
    let ran = dir.path().join("ran");
    let exec = ExecutorProcess::start(&data_dir)?;

    let req = request(
        "finished-unreported",
        Task::Shell {
            command: format!("echo once >> '{}'; echo said once", ran.display()),
        },
        &receiver,
    );
    assert!(!dispatch_to(&exec.endpoint, &req).await?.duplicate);
    wait_for("the command to have run", || {
        (std::fs::read_to_string(&ran).ok()? == "once\n").then_some(())
    })
    .await;
    // An attempt at the final report means the run has ended and its
    // result is recorded; the receiver does not acknowledge it.
    wait_for("a final report attempt", || {
        (receiver.final_attempts() > 0).then_some(())
    })
    .await;
    assert!(receiver.finals("finished-unreported").is_empty());

    exec.kill9()?;
    let restarted = ExecutorProcess::start(&data_dir)?;
    // The scheduler re-sends what it had no answer for: a duplicate.
    let ack = dispatch_to(&restarted.endpoint, &req).await?;
    assert!(
        ack.duplicate,
        "the restarted executor started the run again"
    );
    let (code, state) = get_json(format!(
        "{}/v1/runs/finished-unreported",
        restarted.endpoint
    ))
    .await?;
    assert_eq!((code, &state["status"]), (200, &"succeeded".into()));
    assert_eq!(std::fs::read_to_string(&ran)?, "once\n");

    receiver.release_finals();
    let report = receiver.final_report("finished-unreported").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(report.exit_code, Some(0));
    assert_eq!(report.output, "said once\n");
    assert_eq!(report.executor, restarted.endpoint);
    assert!(report.started_at.is_some() && report.finished_at.is_some());
    assert_eq!(std::fs::read_to_string(&ran)?, "once\n");
    // Acknowledged: the record goes.
    wait_for("the run's record to be removed", || {
        (records_in(&data_dir)? == 0).then_some(())
    })
    .await;
    Ok(())
}

#[actix_web::test]
async fn a_record_goes_when_its_report_is_refused_for_good() -> anyhow::Result<()> {
    let receiver = Receiver::with(ReceiverOptions {
        reject_finals: true,
        ..ReceiverOptions::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("data");
    let exec = ExecutorProcess::start(&data_dir)?;
    let req = request(
        "refused-report",
        Task::Shell {
            command: "echo done".into(),
        },
        &receiver,
    );
    assert!(!dispatch_to(&exec.endpoint, &req).await?.duplicate);
    wait_for("a refused final report", || {
        (receiver.final_attempts() > 0).then_some(())
    })
    .await;
    wait_for("the run's record to be removed", || {
        (records_in(&data_dir)? == 0).then_some(())
    })
    .await;
    assert_eq!(receiver.final_attempts(), 1, "a refused report was retried");
    Ok(())
}

/// An executor killed between recording a run and learning its process
/// group (the record is written before the process starts) knows the run
/// at its next start: it reports it failed, and a dispatch of it again is
/// a duplicate, never a second start of a run that may have begun.
#[tokio::test]
async fn a_run_the_executor_died_starting_is_not_started_again() -> anyhow::Result<()> {
    let receiver = Receiver::start(0, None).await?;
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("data");
    // The executor makes its data directory; then it dies.
    ExecutorProcess::start(&data_dir)?.kill9()?;
    let planted = dir.path().join("ran");
    let req = request(
        "starting",
        Task::Shell {
            command: format!("touch '{}'", planted.display()),
        },
        &receiver,
    );
    // The record as the executor writes it before starting the process.
    let record = serde_json::json!({
        "run_id": req.run_id,
        "job_id": req.job_id,
        "attempt": req.attempt,
        "report_to": req.report_to,
        "pgid": 0,
        "start_ticks": null,
        "boot_id": null,
        "started_at": chrono::Utc::now(),
    });
    std::fs::write(
        data_dir.join("executor-runs").join("starting.json"),
        serde_json::to_vec(&record)?,
    )?;

    let restarted = ExecutorProcess::start(&data_dir)?;
    let report = receiver.final_report("starting").await;
    assert_eq!(report.status, RunStatus::Failed, "{report:?}");
    assert_eq!(report.error.as_deref(), Some(STOPPED_STARTING));
    let ack = dispatch_to(&restarted.endpoint, &req).await?;
    assert!(ack.duplicate, "{ack:?}");
    let (code, state) = get_json(format!("{}/v1/runs/starting", restarted.endpoint)).await?;
    assert_eq!((code, &state["status"]), (200, &"failed".into()));
    assert!(!planted.exists(), "the run was started again");
    Ok(())
}
