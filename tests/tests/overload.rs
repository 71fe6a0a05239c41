//! Overload loses nothing: when runs cannot be created as fast as slots
//! come, the slots wait in the trigger and run late, each once.
//!
//! A 3-node cluster whose trigger may have only 8 fires on their way into
//! the log at a time (`--trigger-backlog 8`) runs 40 jobs `@every 1s`, so
//! every slot is handed over in five turns, each waiting for the one
//! before to be created. On top of that a quarter of the answers to
//! `CreateRuns` proposals are lost after the runs were created (the
//! `create-runs-unanswered` fault point): the leader proposes those chunks
//! again, and must dispatch the runs the lost proposal created instead of
//! leaving them pending for ever or creating them twice.

use std::time::Duration;

use chrono::Utc;
use cronmesh_tests::{cluster::Cluster, process::executor, slots, wait};
use serde_json::json;

const JOBS: usize = 40;
/// Seconds of slots checked.
const WINDOW: i64 = 8;

#[tokio::test]
async fn a_backlog_smaller_than_a_slot_and_lost_answers_run_every_slot_once() {
    let exec = executor("default");
    let mut cluster = Cluster::prepare(3, &[&exec.url], &["--trigger-backlog", "8"]);
    for id in 1..=3 {
        cluster.restart_with_env(id, &[("FAILPOINTS", "create-runs-unanswered=25%return")]);
    }
    let executed = cluster.dir.path().join("executed.log");
    let leader = cluster.leader().await;
    let api = cluster.api(leader);
    for i in 0..JOBS {
        api.create_job(json!({
            "id": format!("busy-{i:02}"), "schedule": "@every 1s",
            "target": {"type": "shell", "command": format!("echo \"$CRONMESH_JOB_ID $CRONMESH_SCHEDULED_AT\" >> {}", executed.display())}
        }))
        .await;
    }
    let watch_from = Utc::now() + chrono::Duration::seconds(2);
    let watch_until = watch_from + chrono::Duration::seconds(WINDOW);
    // The scenario's length, not a wait for a result.
    tokio::time::sleep((watch_until - Utc::now()).to_std().unwrap_or_default()).await;

    let leader = cluster.leader().await;
    let api = cluster.api(leader);
    for i in 0..JOBS {
        let job = format!("busy-{i:02}");
        slots::assert_every_slot_once(&api, &job, watch_from, watch_until).await;
        // No run the lost answers created is left behind: all of them end.
        wait::until(
            &format!("every run of {job} in the window to end"),
            Duration::from_secs(30),
            || async {
                let runs = api.runs_of(&job).await;
                let open: Vec<String> = runs
                    .iter()
                    .filter(|r| {
                        let at = r["scheduled_at"].as_str().unwrap_or_default();
                        chrono::DateTime::parse_from_rfc3339(at)
                            .is_ok_and(|t| t.to_utc() >= watch_from && t.to_utc() <= watch_until)
                    })
                    .filter(|r| {
                        !["succeeded", "failed", "timed_out", "killed", "skipped"]
                            .contains(&r["status"].as_str().unwrap_or_default())
                    })
                    .map(|r| format!("{} {}", r["id"], r["status"]))
                    .collect();
                open.is_empty().then_some(())
            },
        )
        .await;
    }
    let executions = slots::assert_executed_once(&executed);
    assert!(
        executions >= JOBS * WINDOW as usize,
        "every slot of the window ran ({executions} executions)"
    );
    let retried = (1..=3u64)
        .flat_map(|id| cluster.log_lines(id))
        .any(|line| line.contains("proposing them again"));
    assert!(
        retried,
        "the fault point lost some answers, and the leader proposed those runs again"
    );
}
