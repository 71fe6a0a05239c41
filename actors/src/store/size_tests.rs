//! The size of the state per run: an `#[ignore]`d measurement, not a check.
//!
//! ```text
//! cargo test --release -p cronmesh-actors -- --ignored --nocapture state_size_per_run
//! ```
//!
//! It applies `SIZE_JOBS` × `SIZE_RUNS` runs (1,000 × 1,000 unless the
//! variables say otherwise) the way a node does: each round creates one
//! pending run per job in one command, then three commands take every run
//! to dispatched, running and succeeded with a short output. The store is
//! opened as a node opens it (sled's high-throughput mode, 128 MiB cache).
//! It prints the state's bytes (keys and values) by key family, and the
//! bytes on disk after a flush, per run and per million runs.

use std::{collections::BTreeMap, path::Path, time::Instant};

use chrono::{DateTime, Duration, Utc};
use protocol::{Job, JobKey, MetaCommand, Run, RunStatus, RunUpdate};

use super::{
    fixtures::{job_running, node_like_db, open_store, slot_run_of},
    *,
};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn job(id: &str) -> Job {
    job_running(id, "*/5 * * * *", "/usr/local/bin/report --daily")
}

fn pending(key: &JobKey, at: DateTime<Utc>) -> Run {
    Run {
        created_at: at - Duration::milliseconds(487),
        ..slot_run_of(key, at)
    }
}

/// The three transitions an executor reports for a run.
fn reports(run: &Run, n: usize) -> [RunUpdate; 3] {
    let executor = format!("http://10.0.{}.{}:7080", n % 4, 10 + n % 7);
    let started = run.scheduled_at + Duration::milliseconds(3);
    [
        RunUpdate {
            run_id: run.id.clone(),
            status: Some(RunStatus::Dispatched),
            executor: Some(executor),
            ..Default::default()
        },
        RunUpdate {
            run_id: run.id.clone(),
            status: Some(RunStatus::Running),
            started_at: Some(started),
            ..Default::default()
        },
        RunUpdate {
            run_id: run.id.clone(),
            status: Some(RunStatus::Succeeded),
            finished_at: Some(started + Duration::milliseconds(1200 + (n % 300) as i64)),
            exit_code: Some(0),
            output: Some(format!("report written: {} rows\n", 1000 + n % 9000)),
            ..Default::default()
        },
    ]
}

/// (apparent bytes, allocated bytes) of the files under `dir`, as `du`.
fn disk_usage(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut total = (0, 0);
    for entry in std::fs::read_dir(dir).expect("a readable directory") {
        let entry = entry.expect("a directory entry");
        let meta = entry.metadata().expect("metadata");
        if meta.is_dir() {
            let (a, b) = disk_usage(&entry.path());
            total = (total.0 + a, total.1 + b);
        } else {
            total = (total.0 + meta.len(), total.1 + meta.blocks() * 512);
        }
    }
    total
}

/// Creates `jobs` jobs through `apply`, 500 to a command; answers their
/// keys and the time they were created at.
fn create_jobs(jobs: usize, apply: &mut impl FnMut(MetaCommand)) -> (Vec<JobKey>, DateTime<Utc>) {
    let job_keys: Vec<JobKey> = (0..jobs)
        .map(|i| JobKey::new("default", format!("job-{i:05}")))
        .collect();
    let at = DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
        .expect("a time")
        .with_timezone(&Utc);
    for chunk in job_keys.chunks(500) {
        apply(MetaCommand::CreateJobs {
            jobs: chunk.iter().map(|k| job(&k.id)).collect(),
            at,
        });
    }
    (job_keys, at)
}

/// The family of a key: what comes before its first NUL.
fn family(key: &[u8]) -> String {
    let end = key.iter().position(|b| *b == 0).unwrap_or(key.len());
    String::from_utf8_lossy(&key[..end]).into_owned()
}

#[test]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
fn state_size_per_run() {
    let (jobs, rounds) = (env_or("SIZE_JOBS", 1000), env_or("SIZE_RUNS", 1000));
    let runs_total = (jobs * rounds) as f64;
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = node_like_db(dir.path());
    let sm = StateMachine::with_db(db, retention::HistoryPolicy::keeping(rounds + 1))
        .expect("the store opens");
    let mut index = 0;
    let mut apply = |cmd: MetaCommand| {
        index += 1;
        sm.apply(index, &cmd).expect("applies");
    };
    let (job_keys, at) = create_jobs(jobs, &mut apply);
    let started = Instant::now();
    for round in 0..rounds {
        let slot = at + Duration::minutes(5 * (round as i64 + 1));
        let runs: Vec<Run> = job_keys.iter().map(|k| pending(k, slot)).collect();
        let updates: Vec<[RunUpdate; 3]> = runs
            .iter()
            .enumerate()
            .map(|(n, r)| reports(r, n + round))
            .collect();
        apply(MetaCommand::CreateRuns { runs });
        for step in 0..3 {
            apply(MetaCommand::RecordRuns {
                updates: updates.iter().map(|u| u[step].clone()).collect(),
            });
        }
    }
    let elapsed = started.elapsed();
    sm.flush().expect("flushes");
    let total = sm.tree().get(keys::HISTORY_BYTES).expect("reads");

    // What upgrading from a version without the byte total costs once:
    // the first command that writes a run counts every stored run.
    sm.tree().remove(keys::HISTORY_BYTES).expect("removes");
    let last = pending(&job_keys[0], at + Duration::minutes(5 * rounds as i64));
    let recount = Instant::now();
    apply(MetaCommand::RecordRuns {
        updates: vec![reports(&last, 0)[2].clone()],
    });
    let recount = recount.elapsed();
    assert_eq!(sm.tree().get(keys::HISTORY_BYTES).expect("reads"), total);

    let mut by_family: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for entry in sm.tree().iter() {
        let (k, v) = entry.expect("a record");
        let e = by_family.entry(family(&k)).or_default();
        *e = (e.0 + 1, e.1 + k.len() as u64, e.2 + v.len() as u64);
    }
    let state: u64 = by_family.values().map(|(_, k, v)| k + v).sum();
    let (apparent, allocated) = disk_usage(dir.path());
    let per_run = |bytes: u64| bytes as f64 / runs_total;
    let per_million = |bytes: u64| bytes as f64 / runs_total * 1e6 / (1024.0 * 1024.0);
    println!("{jobs} jobs x {rounds} runs = {runs_total} runs, applied in {elapsed:.1?}");
    println!("counting the bytes of every run again (once, after an upgrade): {recount:.1?}");
    println!("family  entries  key B/run  value B/run");
    for (name, (count, k, v)) in &by_family {
        println!(
            "{name:<6} {count:>9} {:>10.1} {:>12.1}",
            per_run(*k),
            per_run(*v)
        );
    }
    println!(
        "state (keys + values): {state} B = {:.1} B/run = {:.1} MiB per million runs",
        per_run(state),
        per_million(state)
    );
    println!(
        "on disk after flush: {allocated} B allocated ({apparent} B apparent) = {:.1} B/run = {:.1} MiB per million runs",
        per_run(allocated),
        per_million(allocated)
    );

    // A restart builds the run index from every stored record.
    drop(sm);
    let reopened = Instant::now();
    let sm = open_store(dir.path(), retention::HistoryPolicy::default());
    println!(
        "opening the store again (the run index built from {} runs): {:.1?}",
        runs_total,
        reopened.elapsed()
    );
    assert!(sm.applied_index().expect("reads") > 0);
}

/// The disk a store takes once retention trims as fast as runs come: the
/// steady state of a long-running cluster. `SIZE_JOBS` jobs (1,000) keep
/// `SIZE_KEEP` runs each (200) while `SIZE_TURNOVER` times as many (3) are
/// applied; every `SIZE_KEEP` rounds it prints the bytes on disk per
/// retained run, so growth after the first turnover shows.
///
/// ```text
/// cargo test --release -p cronmesh-actors -- --ignored --nocapture disk_per_retained_run
/// ```
#[test]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
fn disk_per_retained_run_under_churn() {
    let jobs = env_or("SIZE_JOBS", 1000);
    let keep = env_or("SIZE_KEEP", 200);
    let rounds = keep * env_or("SIZE_TURNOVER", 3);
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = node_like_db(dir.path());
    let sm = StateMachine::with_db(db, retention::HistoryPolicy::keeping(keep))
        .expect("the store opens");
    let mut index = 0;
    let mut apply = |cmd: MetaCommand| {
        index += 1;
        sm.apply(index, &cmd).expect("applies");
    };
    let (job_keys, at) = create_jobs(jobs, &mut apply);
    println!("rounds  retained  state B/run  disk B/run");
    for round in 0..rounds {
        let slot = at + Duration::seconds(round as i64 + 1);
        let runs: Vec<Run> = job_keys.iter().map(|k| pending(k, slot)).collect();
        let updates: Vec<[RunUpdate; 3]> = runs
            .iter()
            .enumerate()
            .map(|(n, r)| reports(r, n + round))
            .collect();
        for chunk in runs.chunks(1024) {
            apply(MetaCommand::CreateRuns {
                runs: chunk.to_vec(),
            });
        }
        for step in 0..3 {
            for chunk in updates.chunks(512) {
                apply(MetaCommand::RecordRuns {
                    updates: chunk.iter().map(|u| u[step].clone()).collect(),
                });
            }
        }
        if (round + 1) % (keep / 2).max(1) == 0 {
            sm.flush().expect("flushes");
            let retained = jobs * (round + 1).min(keep);
            let state: u64 = sm
                .tree()
                .scan_prefix(keys::run(""))
                .map(|e| {
                    e.map(|(k, v)| (k.len() + v.len()) as u64)
                        .expect("a record")
                })
                .sum();
            let (_, allocated) = disk_usage(dir.path());
            println!(
                "{:>6} {:>9} {:>12.1} {:>11.1}",
                round + 1,
                retained,
                state as f64 / retained as f64,
                allocated as f64 / retained as f64
            );
        }
    }
}
