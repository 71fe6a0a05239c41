//! What applying runs costs a node: an `#[ignore]`d measurement, not a
//! check.
//!
//! ```text
//! cargo test --release -p cronmesh-actors --lib -- --ignored --nocapture apply_cost_per_run
//! ```
//!
//! 10,000 jobs; 20 rounds, each one `CreateRuns` of 2,048 pending runs of
//! distinct jobs (the next 2,048 jobs, round robin) and one `RecordRuns`
//! that ends every one of them. The store is opened as a node opens it
//! (sled's high-throughput mode, 128 MiB cache). It prints the CPU time of
//! the whole process (sled's own threads included) per run, the keys
//! written per run, and the bytes the run index takes per run and per job.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use nix::time::{clock_gettime, ClockId};
use protocol::{JobKey, MetaCommand, Run, RunStatus, RunUpdate};

use super::{
    fixtures::{job_running, node_like_db, slot_run_of},
    run_index::RunIndex,
    *,
};

const JOBS: usize = 10_000;
const ROUNDS: usize = 20;
const RUNS_PER_ROUND: usize = 2_048;

/// CPU time the process has used so far.
fn cpu_time() -> std::time::Duration {
    let spec = clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID).expect("a CPU clock");
    std::time::Duration::new(spec.tv_sec() as u64, spec.tv_nsec() as u32)
}

#[test]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
fn apply_cost_per_run() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = node_like_db(dir.path());
    let sm = StateMachine::with_db(db, retention::HistoryPolicy::default()).expect("opens");
    let mut index = 0;
    let mut apply = |cmd: &MetaCommand| {
        index += 1;
        sm.apply(index, cmd).expect("applies")
    };
    let at = DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
        .expect("a time")
        .with_timezone(&Utc);
    let keys: Vec<JobKey> = (0..JOBS)
        .map(|i| JobKey::new("default", format!("job-{i:05}")))
        .collect();
    for chunk in keys.chunks(500) {
        apply(&MetaCommand::CreateJobs {
            jobs: chunk
                .iter()
                .map(|k| job_running(&k.id, "* * * * *", "/usr/local/bin/report --daily"))
                .collect(),
            at,
        });
    }
    // The commands are built before the clock starts.
    let rounds: Vec<(MetaCommand, MetaCommand)> = (0..ROUNDS)
        .map(|round| {
            let slot = at + Duration::minutes(round as i64 + 1);
            let runs: Vec<Run> = (0..RUNS_PER_ROUND)
                .map(|n| slot_run_of(&keys[(round * RUNS_PER_ROUND + n) % JOBS], slot))
                .collect();
            let updates = runs
                .iter()
                .enumerate()
                .map(|(n, run)| RunUpdate {
                    run_id: run.id.clone(),
                    status: Some(RunStatus::Succeeded),
                    executor: Some(format!("http://10.0.{}.{}:7080", n % 4, 10 + n % 7)),
                    started_at: Some(slot + Duration::milliseconds(3)),
                    finished_at: Some(slot + Duration::milliseconds(1200 + (n % 300) as i64)),
                    exit_code: Some(0),
                    output: Some(format!("report written: {} rows\n", 1000 + n % 9000)),
                    ..Default::default()
                })
                .collect();
            (
                MetaCommand::CreateRuns { runs },
                MetaCommand::RecordRuns { updates },
            )
        })
        .collect();
    let writes_before = sm.writes();
    let (cpu, wall) = (cpu_time(), Instant::now());
    for (create, end) in &rounds {
        assert!(matches!(apply(create), Outcome::RunsCreated(r) if r.len() == RUNS_PER_ROUND));
        assert!(matches!(apply(end), Outcome::RunsChanged(r) if r.len() == RUNS_PER_ROUND));
    }
    let (cpu, wall) = (cpu_time() - cpu, wall.elapsed());
    let runs = (ROUNDS * RUNS_PER_ROUND) as f64;
    let writes = (sm.writes() - writes_before) as f64;
    println!(
        "{ROUNDS} x (CreateRuns + RecordRuns) of {RUNS_PER_ROUND} runs over {JOBS} jobs: \
         {:.1} us CPU per run ({:.1} us wall), {:.2} writes per run",
        cpu.as_secs_f64() * 1e6 / runs,
        wall.as_secs_f64() * 1e6 / runs,
        writes / runs,
    );
    // The index's memory, by the capacities of its parts; built again,
    // it is the one the applies kept.
    let built = RunIndex::build(&sm.tree()).expect("builds");
    assert!(*sm.index() == built);
    let (of_runs, of_jobs) = built.heap_bytes();
    println!(
        "run index by its capacities: {:.0} B per run, and {:.0} B per job",
        of_runs as f64 / runs,
        of_jobs as f64 / JOBS as f64
    );
}
