//! `cronmesh bench`: starts a real cluster of this binary's processes on
//! loopback, loads it with jobs, measures a window of time and reports
//! what happened to every slot.
//!
//! The steps, each in its own file:
//! - [`args`]: the flags and their checks.
//! - `workdir`: the directory for node data, logs, receipts and the secret.
//! - `processes`: child processes started, stopped, killed and restarted.
//! - `cluster`: the servers and executors, their flags, readiness, leader.
//! - `api`: the admin-API requests the bench makes.
//! - `load`: creating the jobs, and how fast that went.
//! - `run_records`: the runs the cluster recorded for the window's slots.
//! - `receipts`: the executors' receipt files (`--receipts`).
//! - `analysis`: expected, lost, doubled and late slots; lateness.
//! - `failover`: kill and restart events and what they cost.
//! - `procstat`: CPU and peak memory of each process.
//! - `report`: the JSON object and the table.

mod analysis;
mod api;
mod args;
mod cluster;
mod failover;
mod load;
mod processes;
mod procstat;
mod receipts;
mod report;
mod run_records;
mod workdir;

use std::{collections::HashMap, path::Path, time::Duration};

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use protocol::schedule::Schedule;

pub use args::BenchArgs;
pub use report::Report;

use analysis::{expected_slots, slot_figures, Span};
use cluster::{Cluster, Plan};
use failover::{Event, EventKind};
use processes::Managed;
use receipts::Nanos;
use report::{ProcessFigures, Setup, Window};
use run_records::nanos;
use workdir::WorkDir;

const SECOND: Nanos = 1_000_000_000;

/// How long the servers and then the executors get to come up.
const START_LIMIT: Duration = Duration::from_secs(60);

/// The window starts at the first whole second this long after the last
/// job was created, so every job is tracked by the time it starts.
const SETTLE: Nanos = 2 * SECOND;

/// Runs the bench and prints its result on stdout: the table, or one
/// JSON object with `--json`. Progress goes to stderr. An error means the
/// bench could not run; lost slots are a result, not an error.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let schedule = args.validate()?;
    let binary = match &args.binary {
        Some(binary) => binary.clone(),
        None => std::env::current_exe().context("cannot find this binary; give --binary")?,
    };
    let workdir = WorkDir::create(args.data_dir.as_deref(), args.keep)?;
    progress(&format!(
        "logs, receipts and node data in {} ({})",
        workdir.path.display(),
        if workdir.is_kept() {
            "kept"
        } else {
            "removed at the end; --keep keeps them"
        }
    ));
    let result = measure(&args, &schedule, &binary, &workdir).await;
    if result.is_err() {
        progress(&format!("logs kept in {}", workdir.path.display()));
    }
    workdir.finish(result.is_err());
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

fn progress(message: &str) {
    eprintln!("cronmesh bench: {message}");
}

async fn measure(
    args: &BenchArgs,
    schedule: &Schedule,
    binary: &Path,
    workdir: &WorkDir,
) -> anyhow::Result<Report> {
    let secret = workdir.write_secret()?;
    let mut cluster = Cluster::plan(&Plan {
        binary,
        dir: &workdir.path,
        secret: &secret,
        nodes: args.nodes,
        executors: args.executors,
        history_limit: history_limit(schedule, args),
    })?;
    progress(&format!("starting {} node(s)", args.nodes));
    let leader = cluster
        .start_servers(START_LIMIT)
        .await
        .context("the cluster could not be started")?;
    progress(&format!(
        "node{leader} leads; starting {} executor(s)",
        args.executors
    ));
    cluster
        .start_executors(leader, START_LIMIT)
        .await
        .context("the executors could not be started")?;
    progress(&format!(
        "creating {} jobs, {} at a time",
        args.jobs, args.create_concurrency
    ));
    let (creation, last_created) = load::create_jobs(
        cluster.admin(),
        cluster.api_url(leader),
        args.jobs,
        &args.schedule,
        args.create_concurrency,
    )
    .await?;

    let start = (nanos(last_created) + SETTLE + SECOND - 1) / SECOND * SECOND;
    let window = Span {
        start,
        end: start + i128::from(args.duration) * SECOND,
    };
    progress(&format!(
        "{} jobs created in {:.2} s; measuring from {} for {} s, then {} s of drain",
        creation.jobs,
        creation.seconds,
        rfc3339(window.start),
        args.duration,
        args.drain
    ));
    sleep_until(window.start).await;
    let cpu_at_start = cpu_of_running(&cluster);
    let leader_at_start = cluster
        .wait_for_leader(Duration::from_secs(5))
        .await
        .unwrap_or(leader);

    let mut killed = Vec::new();
    let mut events = Vec::new();
    for (kind, at) in planned_events(args) {
        sleep_until(window.start + (at * 1e9) as Nanos).await;
        let (event, figures) = fail_leader(&mut cluster, kind, at, &cpu_at_start).await?;
        killed.push(figures);
        events.push(event);
    }

    sleep_until(window.end + i128::from(args.drain) * SECOND).await;
    progress("reading the run records");
    let leader_at_end = cluster.wait_for_leader(Duration::from_secs(20)).await.ok();
    let reader = leader_at_end
        .or_else(|| {
            cluster
                .servers
                .iter()
                .find(|s| s.is_running())
                .and_then(|s| s.node_id)
        })
        .unwrap_or(leader);
    let records = run_records::read(
        cluster.admin(),
        cluster.api_url(reader),
        time(window.start)?,
        time(window.end)?,
    )
    .await
    .context("cannot read the run records")?;
    let mut processes = killed;
    for managed in cluster.servers.iter().chain(&cluster.executors) {
        let leads = |id: Option<u64>| managed.node_id.is_some() && managed.node_id == id;
        let was_leader =
            leads(leader_at_end) || (managed.incarnation == 1 && leads(Some(leader_at_start)));
        if let Some(figures) = process_figures(managed, &cpu_at_start, was_leader, false) {
            processes.push(figures);
        }
    }
    processes
        .sort_by(|a, b| (a.role, &a.label, a.incarnation).cmp(&(b.role, &b.label, b.incarnation)));
    progress("stopping the processes");
    cluster.stop().await;
    let receipts = receipts::read_all(&cluster.receipt_files)?;

    let slots = expected_slots(schedule, window);
    let figures = slot_figures(args.jobs, &slots, &receipts.receipts, window);
    let mut received: Vec<Nanos> = receipts
        .receipts
        .iter()
        .filter(|r| load::job_index(&r.job_id).is_some())
        .map(|r| r.received_at)
        .collect();
    received.sort_unstable();
    let failover = events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let span = Span {
                start: (event.killed_at - SECOND).max(window.start),
                end: events.get(i + 1).map_or(window.end, |next| {
                    (next.killed_at - SECOND).max(window.start)
                }),
            };
            let around = slot_figures(args.jobs, &slots, &receipts.receipts, span);
            failover::figures(
                event,
                window.start,
                &received,
                span,
                &around,
                &records.skipped,
            )
        })
        .collect();

    Ok(Report {
        setup: Setup {
            nodes: args.nodes,
            executors: args.executors,
            jobs: args.jobs,
            schedule: args.schedule.clone(),
            duration_seconds: args.duration,
            drain_seconds: args.drain,
            data_dir: workdir.path.display().to_string(),
            data_dir_kept: workdir.is_kept(),
        },
        job_creation: creation,
        window: Window {
            start: rfc3339(window.start),
            end: rfc3339(window.end),
            seconds: args.duration,
        },
        slots_expected: figures.slots_expected,
        run_records: records.total,
        run_records_by_status: records.by_status,
        slots_with_run_record: records.slots.len() as u64,
        runs_received: figures.runs_received,
        lost_slots: figures.lost_slots,
        duplicate_slots: figures.duplicate_slots,
        late_slots: figures.late_slots,
        lateness_ms: figures.lateness_ms,
        dispatches_per_second: figures.runs_received as f64 / args.duration as f64,
        malformed_receipts: receipts.malformed_lines,
        leader_at_start,
        leader_at_end,
        processes,
        failover,
    })
}

/// The kill and restart events asked for, in time order.
fn planned_events(args: &BenchArgs) -> Vec<(EventKind, f64)> {
    let mut events: Vec<(EventKind, f64)> = [
        args.kill_leader_at.map(|at| (EventKind::KillLeader, at)),
        args.restart_leader_at
            .map(|at| (EventKind::RestartLeader, at)),
    ]
    .into_iter()
    .flatten()
    .collect();
    events.sort_by(|a, b| a.1.total_cmp(&b.1));
    events
}

/// kill -9 of the current leader and its restart right away; returns the
/// event and the killed process's figures.
async fn fail_leader(
    cluster: &mut Cluster,
    kind: EventKind,
    at: f64,
    cpu_at_start: &HashMap<u32, f64>,
) -> anyhow::Result<(Event, ProcessFigures)> {
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .context("no leader to kill")?;
    let server = cluster
        .server_mut(leader)
        .with_context(|| format!("no node {leader}"))?;
    let figures = process_figures(server, cpu_at_start, true, true)
        .with_context(|| format!("node{leader} is not running"))?;
    let killed_at = nanos(Utc::now());
    server.kill9();
    let restarted_at = nanos(Utc::now());
    server.start()?;
    progress(&format!(
        "{at} s: killed node{leader} (kill -9) and restarted it"
    ));
    let leader_after = cluster.wait_for_leader(Duration::from_secs(15)).await.ok();
    Ok((
        Event {
            kind,
            at_seconds: at,
            node_id: leader,
            killed_at,
            restarted_at,
            leader_after,
        },
        figures,
    ))
}

/// CPU seconds of every running process, by pid.
fn cpu_of_running(cluster: &Cluster) -> HashMap<u32, f64> {
    cluster
        .servers
        .iter()
        .chain(&cluster.executors)
        .filter_map(|m| {
            let pid = m.pid()?;
            Some((pid, procstat::sample(pid)?.cpu_seconds))
        })
        .collect()
}

/// The figures of a running process now; `None` if it is not running.
fn process_figures(
    managed: &Managed,
    cpu_at_start: &HashMap<u32, f64>,
    leader: bool,
    killed: bool,
) -> Option<ProcessFigures> {
    let pid = managed.pid()?;
    let sample = procstat::sample(pid).unwrap_or_default();
    Some(ProcessFigures {
        label: managed.label.clone(),
        role: managed.role,
        node_id: managed.node_id,
        incarnation: managed.incarnation,
        pid,
        leader,
        killed,
        cpu_seconds: sample.cpu_seconds,
        cpu_seconds_window: sample.cpu_seconds - cpu_at_start.get(&pid).copied().unwrap_or(0.0),
        peak_rss_bytes: sample.peak_rss_bytes,
    })
}

/// Runs kept per job: every slot from now to well past the window, and
/// never fewer than a server keeps by default.
fn history_limit(schedule: &Schedule, args: &BenchArgs) -> usize {
    let now = nanos(Utc::now());
    let horizon = i128::from(args.duration + args.drain + 600) * SECOND;
    let slots = expected_slots(
        schedule,
        Span {
            start: now,
            end: now + horizon,
        },
    );
    (slots.len() + 100).max(actors::store::DEFAULT_HISTORY_LIMIT)
}

async fn sleep_until(at: Nanos) {
    let left = at - nanos(Utc::now());
    if left > 0 {
        tokio::time::sleep(Duration::from_nanos(left as u64)).await;
    }
}

fn time(at: Nanos) -> anyhow::Result<DateTime<Utc>> {
    let at = i64::try_from(at).context("a time out of range")?;
    Ok(Utc.timestamp_nanos(at))
}

fn rfc3339(at: Nanos) -> String {
    time(at)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}
