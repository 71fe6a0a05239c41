//! `cronmesh bench`: starts a real cluster of this binary's processes on
//! loopback, loads it with jobs, measures a window of time and reports
//! what happened to every slot.
//!
//! The steps, each in its own file:
//! - [`args`]: the flags and their checks.
//! - `workdir`: the directory for node data, logs, receipts and the secret.
//! - `processes`: child processes started, stopped, killed and restarted.
//! - `flags`: the ports and command lines of the servers and executors.
//! - [`ports`]: ports for them that no outgoing connection takes (the
//!   integration tests use them too).
//! - `cluster`: starting them, readiness, the leader, stopping them.
//! - `api`: the admin-API requests the bench makes.
//! - `load`: creating the jobs, and how fast that went.
//! - `receiver`: with `--target http`, the HTTP server the jobs call.
//! - `events`: the kill and restart events during the window.
//! - `follower_events`, `follower_catch_up`: a follower killed and
//!   restarted during the window, and how it caught up.
//! - `run_records`: the runs the cluster recorded for the window's slots.
//! - `receipts`: the executors' receipt files (`--receipts`).
//! - `calls`: with `--target http`, the calls matched to their runs, as
//!   receipts.
//! - `procstat`, `usage`: CPU and peak memory of each process.
//! - `api_probe`: the admin API's latency on the leader during the window.
//! - `store_writes`: each node's store-writes counter from `/metrics`.
//! - `per_run`: CPU and store writes per run received, per node.
//! - `analysis`: expected, lost, doubled and late slots; lateness.
//! - `bursts`: the same per slot, for jobs that fire together.
//! - `failover`: what each event cost.
//! - `summary`: the report from what was observed.
//! - `report`: the JSON object and the table.
//! - `clock`: the time unit of it all, Unix nanoseconds.
//!
//! `--scenario catch-up` measures something else with the same cluster:
//! - `catch_up`: a follower killed, the state grown, the follower
//!   restarted and timed until it caught up.
//! - `bulk_state`: the large jobs the state grows by.
//! - `memory`: resident memory now, and a reset of the peak.
//! - `disk_usage`: what each data directory takes on disk.
//! - `timed_command`: `cronmesh backup` and `restore`, timed.
//! - `catch_up_report`: its JSON object and table.
//!
//! `--scenario soak` runs the slots' cluster for long at the servers'
//! default run retention and reads it every `--sample-seconds`:
//! - `soak`: the scenario, interval by interval.
//! - `receipt_tail`: the receipt files read as they grow.
//! - `soak_slots`: which (job, slot) arrived, once or more, as bits.
//! - `soak_series`: the receipts per interval: runs, lateness, lost.
//! - `soak_sample`: memory, CPU and disk of the processes per interval.
//! - `soak_targets`: drift of lateness and memory, bytes per run kept,
//!   and the targets they are held to.
//! - `soak_report`: its JSON object and table.
//! - `soak_chart`: `soak.svg`, the series drawn.

mod analysis;
mod api;
mod api_probe;
mod args;
mod bulk_state;
mod bursts;
mod calls;
mod catch_up;
mod catch_up_report;
mod clock;
mod cluster;
mod disk_usage;
mod events;
mod failover;
mod flags;
mod follower_catch_up;
mod follower_events;
mod load;
mod memory;
mod per_run;
pub mod ports;
mod processes;
mod procstat;
mod receipt_tail;
mod receipts;
mod receiver;
mod report;
mod run_records;
mod soak;
mod soak_chart;
mod soak_report;
mod soak_sample;
mod soak_series;
mod soak_slots;
mod soak_targets;
mod store_writes;
mod summary;
mod timed_command;
mod usage;
mod workdir;

use std::{path::Path, time::Duration};

use anyhow::Context;
use protocol::schedule::Schedule;

pub use args::{BenchArgs, Scenario, Target};
pub use report::Report;

use analysis::{expected_slots, Span};
use clock::{ceil_second, nanos, now, rfc3339, sleep_until, time, Nanos, SECOND};
use cluster::{Cluster, Plan};
use failover::EventKind;
use load::JobTarget;
use receipts::Receipts;
use receiver::Receiver;
use summary::Observed;
use workdir::WorkDir;

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
    // Interrupted, the measurement is dropped, and with it every child
    // process (each is killed when dropped).
    let result = tokio::select! {
        result = measure_scenario(&args, &schedule, &binary, &workdir) => result,
        () = crate::signals::shutdown() => Err(anyhow::anyhow!("interrupted; every process it started is stopped")),
    };
    if result.is_err() {
        progress(&format!("logs kept in {}", workdir.path.display()));
    }
    workdir.finish(result.is_err());
    print!("{}", result?);
    Ok(())
}

/// Measures what `--scenario` asks for; answers the text to print: the
/// table, or with `--json` one JSON object on a line.
async fn measure_scenario(
    args: &BenchArgs,
    schedule: &Schedule,
    binary: &Path,
    workdir: &WorkDir,
) -> anyhow::Result<String> {
    let (json, table) = match args.scenario {
        Scenario::Slots => {
            let report = measure(args, schedule, binary, workdir).await?;
            (serde_json::to_string(&report)?, report.table())
        }
        Scenario::CatchUp => {
            let report = catch_up::measure(args, binary, workdir).await?;
            (serde_json::to_string(&report)?, report.table())
        }
        Scenario::Soak => {
            let report = soak::measure(args, schedule, binary, workdir).await?;
            (serde_json::to_string(&report)?, report.table())
        }
    };
    Ok(if args.json {
        format!("{json}\n")
    } else {
        table
    })
}

/// A line of progress on stderr.
fn progress(message: &str) {
    eprintln!("cronmesh bench: {message}");
}

async fn measure(
    args: &BenchArgs,
    schedule: &Schedule,
    binary: &Path,
    workdir: &WorkDir,
) -> anyhow::Result<Report> {
    let (mut cluster, leader) = start(args, binary, workdir, history_limit(schedule, args)).await?;
    let receiver = match args.target {
        Target::Executor => None,
        Target::Http => Some(Receiver::start()?),
    };
    if let Some(receiver) = &receiver {
        progress(&format!("the jobs call {}", receiver.call_url("bench-N")));
    }
    let target = receiver.as_ref().map_or(JobTarget::Noop, JobTarget::Http);
    let (creation, first_created, last_created) =
        create_load(args, &cluster, leader, target).await?;
    let start = ceil_second(nanos(last_created) + SETTLE);
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
    let cpu_at_start = usage::cpu_of_running(&cluster);
    let leader_at_start = cluster
        .wait_for_leader(Duration::from_secs(5))
        .await
        .unwrap_or(leader);
    let term_at_start = cluster.term(leader_at_start).await;
    let probe = if args.no_api_probe {
        None
    } else {
        Some(api_probe::Probe::start(
            cluster.api_url(leader_at_start),
            target.of_id(),
            window.end,
        )?)
    };
    let writes_at_start = store_writes::read_all(&cluster).await;
    let mut killed = Vec::new();
    let mut happened = Vec::new();
    let mut followers = follower_events::FollowerEvents::default();
    for (kind, at) in events::planned(args) {
        sleep_until(window.start + (at * 1e9) as Nanos).await;
        let (event, figures) = match kind {
            EventKind::KillFollower | EventKind::RestartFollower => {
                followers.act(&mut cluster, kind, at, &cpu_at_start).await?
            }
            EventKind::KillLeader | EventKind::RestartLeader => {
                let (event, figures) =
                    events::fail_leader(&mut cluster, kind, at, &cpu_at_start).await?;
                (event, Some(figures))
            }
        };
        killed.extend(figures);
        happened.push(event);
    }
    // The cost of the window's runs: from its start to its end.
    sleep_until(window.end).await;
    let cpu_at_end = usage::cpu_of_running(&cluster);
    let writes_at_end = store_writes::read_all(&cluster).await;
    let nodes = per_run::node_windows(
        &cluster,
        (&cpu_at_start, &cpu_at_end),
        &killed,
        (&writes_at_start, &writes_at_end),
    );
    let api_latency = match probe {
        Some(probe) => probe.finish().await,
        None => None,
    };
    sleep_until(window.end + i128::from(args.drain) * SECOND).await;
    followers.finish(&mut happened).await;

    progress("reading the run records");
    let leader_at_end = cluster.wait_for_leader(Duration::from_secs(20)).await.ok();
    let term_at_end = match leader_at_end {
        Some(id) => cluster.term(id).await,
        None => None,
    };
    let reader = leader_at_end
        .or_else(|| cluster.running_server())
        .unwrap_or(leader);
    let records = run_records::read(
        cluster.admin(),
        cluster.api_url(reader),
        time(window.start)?,
        time(window.end)?,
    )
    .await
    .context("cannot read the run records")?;
    // The runs before the calls: a run read as succeeded was answered, so
    // its call is already noted.
    let called = match &receiver {
        Some(receiver) => {
            let runs = run_records::read_succeeded(
                cluster.admin(),
                cluster.api_url(reader),
                time(first_created)?,
                time(window.end)?,
            )
            .await
            .context("cannot read the runs the calls are matched with")?;
            Some((runs, receiver.received()))
        }
        None => None,
    };
    let processes = usage::all_processes(
        &cluster,
        &cpu_at_start,
        killed,
        leader_at_start,
        leader_at_end,
    );
    progress("stopping the processes");
    cluster.stop().await;
    if let Some(receiver) = receiver {
        receiver.stop().await;
    }
    let (receipts, calls) = match called {
        Some((runs, received)) => {
            let (receipts, figures) = calls::match_calls(&runs, &received, window);
            (
                Receipts {
                    receipts,
                    malformed_lines: 0,
                },
                Some(figures),
            )
        }
        None => (receipts::read_all(&cluster.receipt_files)?, None),
    };
    let observed = Observed {
        creation,
        window,
        leader_at_start,
        leader_at_end,
        elections: term_at_start
            .zip(term_at_end)
            .map(|(start, end)| end.saturating_sub(start)),
        records,
        processes,
        receipts,
        calls,
        events: happened,
        api_latency,
        nodes,
    };
    Ok(summary::summarise(args, schedule, workdir, observed))
}

/// Creates the `--idle-jobs` and then the `--jobs` bench jobs, running
/// `target`, through `leader`; returns how the bench jobs' creation went,
/// when it began (no run of a bench job is scheduled before) and when the
/// last job was acknowledged.
async fn create_load(
    args: &BenchArgs,
    cluster: &Cluster,
    leader: u64,
    target: JobTarget<'_>,
) -> anyhow::Result<(load::Creation, Nanos, chrono::DateTime<chrono::Utc>)> {
    if args.idle_jobs > 0 {
        let (idle, _) = load::create_jobs(
            cluster.admin(),
            cluster.api_url(leader),
            (args.idle_jobs, load::idle_job_id),
            (load::IDLE_SCHEDULE, JobTarget::Noop),
            (args.create_concurrency(), args.create_batch()),
        )
        .await?;
        progress(&format!(
            "{} idle jobs created in {:.2} s ({:.0} jobs/s)",
            idle.jobs, idle.seconds, idle.jobs_per_second
        ));
    }
    progress(&format!(
        "creating {} jobs, {} at a time",
        args.jobs,
        args.create_concurrency()
    ));
    let first_created = now();
    let (creation, last_created) = load::create_jobs(
        cluster.admin(),
        cluster.api_url(leader),
        (args.jobs, load::job_id),
        (&args.schedule, target),
        (args.create_concurrency(), args.create_batch()),
    )
    .await?;
    Ok((creation, first_created, last_created))
}

/// Starts the servers, each keeping `history_limit` runs per job, and
/// the executors; returns them and the leader.
async fn start(
    args: &BenchArgs,
    binary: &Path,
    workdir: &WorkDir,
    history_limit: usize,
) -> anyhow::Result<(Cluster, u64)> {
    let secret = workdir.write_secret()?;
    let mut cluster = Cluster::plan(&Plan {
        binary,
        dir: &workdir.path,
        secret: &secret,
        nodes: args.nodes,
        executors: args.executors,
        history_limit,
        extra_server_args: &[],
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
    Ok((cluster, leader))
}

/// Runs kept per job: every slot from now to well past the window, and
/// never fewer than a server keeps by default.
fn history_limit(schedule: &Schedule, args: &BenchArgs) -> usize {
    let from = now();
    let horizon = i128::from(args.duration + args.drain + 600) * SECOND;
    let slots = expected_slots(
        schedule,
        Span {
            start: from,
            end: from + horizon,
        },
    );
    (slots.len() + 100).max(actors::store::DEFAULT_HISTORY_LIMIT)
}
