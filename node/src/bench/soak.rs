//! `cronmesh bench --scenario soak`: the slots' cluster and load, run for
//! long (30 minutes or more in real use) with the servers' run retention
//! at its default (or `--history-limit`), so that it trims runs for most of the window, and read
//! every `--sample-seconds` so that growth over time shows.
//!
//! 1. The cluster starts as for the slots, but every server keeps
//!    `--history-limit` runs per job (the servers' default unless given);
//!    the jobs are created alike.
//! 2. From the window's start the API probe runs, and at the end of each
//!    interval the bench takes the probe's figures of the interval, each
//!    process's memory and CPU, each server's `/metrics` (sled's size)
//!    and, off the async thread so the probe is not held up, the receipts
//!    written since the last interval and each data directory's size.
//! 3. After the window it waits `--drain` seconds for runs still on
//!    their way, stops every process, reads the last receipts, and
//!    reports each interval, the totals, the drift figures and the
//!    targets, and writes `soak.json` and `soak.svg`.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{bail, Context};
use protocol::schedule::Schedule;

use super::{
    analysis::{expected_slots, Span},
    api_probe::{Probe, StretchLatency},
    args::Scenario,
    clock::{ceil_second, nanos, now, rfc3339, sleep_until, SECOND},
    create_load,
    load::JobTarget,
    processes::Role,
    progress,
    receipt_tail::ReceiptTail,
    report::Window,
    soak_chart,
    soak_report::{SoakInterval, SoakReport, SoakSetup},
    soak_sample::{self, CpuMeter, ProcessSample, ServerDisk},
    soak_series::{Intervals, SoakSeries},
    soak_slots::MOST_PAIRS,
    soak_targets::{self, IntervalInputs},
    start,
    workdir::WorkDir,
    BenchArgs, SETTLE,
};

/// What was read at the end of one interval besides the receipts.
struct Sample {
    api_latency: Option<StretchLatency>,
    processes: Vec<ProcessSample>,
    servers: Vec<ServerDisk>,
}

/// The receipts followed and accounted for, handed to a blocking thread
/// and back at each interval.
struct Receipts {
    tail: ReceiptTail,
    series: SoakSeries,
}

/// Runs the soak and reports it; `soak.json` and `soak.svg` are written
/// to the output directory (a failure to write them is reported on
/// stderr, never at the cost of the result). An error means the soak
/// could not run.
pub async fn measure(
    args: &BenchArgs,
    schedule: &Schedule,
    binary: &Path,
    workdir: &WorkDir,
) -> anyhow::Result<SoakReport> {
    check_pairs(args, schedule)?;
    let output = output_dir(args.soak_output.as_deref(), &workdir.path);
    std::fs::create_dir_all(&output)
        .with_context(|| format!("cannot create the soak output {}", output.display()))?;
    let history_limit = args.history_limit();
    let (mut cluster, leader) = start(args, binary, workdir, history_limit).await?;
    let (creation, _, last_created) = create_load(args, &cluster, leader, JobTarget::Noop).await?;
    let window_start = ceil_second(nanos(last_created) + SETTLE);
    let window = Span {
        start: window_start,
        end: window_start + i128::from(args.duration) * SECOND,
    };
    let intervals = Intervals::new(window, args.sample_seconds());
    let mut receipts = Receipts {
        tail: ReceiptTail::new(&cluster.receipt_files),
        series: SoakSeries::new(args.jobs, &expected_slots(schedule, window), intervals)?,
    };
    progress(&format!(
        "{} jobs created in {:.2} s; soaking from {} for {} s in {} intervals of {} s, each server keeping {history_limit} runs per job; then {} s of drain",
        creation.jobs,
        creation.seconds,
        rfc3339(window.start),
        args.duration,
        intervals.count(),
        args.sample_seconds(),
        args.drain
    ));

    sleep_until(window.start).await;
    let leader_at_start = cluster
        .wait_for_leader(Duration::from_secs(5))
        .await
        .unwrap_or(leader);
    let probe = if args.no_api_probe {
        None
    } else {
        Some(Probe::start(
            cluster.api_url(leader_at_start),
            JobTarget::Noop.of_id(),
            window.end,
        )?)
    };
    let mut cpu = CpuMeter::starting(&cluster);
    let data_dirs = soak_sample::data_dirs(&cluster);
    let mut samples = Vec::with_capacity(intervals.count());
    for i in 0..intervals.count() {
        sleep_until(intervals.span(i).end).await;
        let api_latency = probe.as_ref().map(Probe::take);
        let processes = cpu.processes(&cluster);
        let sled = soak_sample::sled_sizes(&cluster).await;
        let dirs = data_dirs.clone();
        let servers;
        (receipts, servers) = off_thread(move || {
            let servers = soak_sample::server_disks(&dirs, &sled);
            receipts = read_receipts(receipts, false)?;
            receipts.series.close_until(now());
            Ok((receipts, servers))
        })
        .await?;
        let sample = Sample {
            api_latency,
            processes,
            servers,
        };
        progress(&interval_line(i, &intervals, &receipts.series, &sample));
        samples.push(sample);
    }
    drop(probe);

    sleep_until(window.end + i128::from(args.drain) * SECOND).await;
    let leader_at_end = cluster.wait_for_leader(Duration::from_secs(20)).await.ok();
    progress("stopping the processes");
    cluster.stop().await;
    let receipts = off_thread(move || read_receipts(receipts, true)).await?;
    let malformed_receipts = receipts.tail.malformed_lines;
    let (runs, totals) = receipts.series.finish(history_limit);
    let intervals: Vec<SoakInterval> = runs
        .into_iter()
        .zip(samples)
        .enumerate()
        .map(|(i, (runs, sample))| {
            let span = intervals.span(i);
            SoakInterval {
                interval: i + 1,
                start_seconds: seconds(span.start - window.start),
                end_seconds: seconds(span.end - window.start),
                runs,
                api_latency: sample.api_latency,
                processes: sample.processes,
                servers: sample.servers,
            }
        })
        .collect();
    let inputs: Vec<IntervalInputs> = intervals
        .iter()
        .map(|i| i.inputs(args.sample_seconds()))
        .collect();
    let drift = soak_targets::drift(&inputs, args.duration as f64, totals.runs_retained_estimate);
    let report = SoakReport {
        scenario: Scenario::Soak,
        setup: SoakSetup {
            nodes: args.nodes,
            executors: args.executors,
            jobs: args.jobs,
            schedule: args.schedule.clone(),
            duration_seconds: args.duration,
            sample_seconds: args.sample_seconds(),
            drain_seconds: args.drain,
            history_limit,
            api_probe: !args.no_api_probe,
            data_dir: workdir.path.display().to_string(),
            data_dir_kept: workdir.is_kept(),
            output_dir: output.display().to_string(),
        },
        job_creation: creation,
        window: Window {
            start: rfc3339(window.start),
            end: rfc3339(window.end),
            seconds: args.duration,
        },
        leader_at_start,
        leader_at_end,
        targets: soak_targets::targets(&drift, totals.lost_slots, totals.duplicate_slots),
        drift,
        intervals,
        totals,
        malformed_receipts,
    };
    if let Err(e) = write_files(&report, &output) {
        progress(&format!("{e:#}"));
    }
    Ok(report)
}

/// Fails before anything starts if the window holds more (job, slot)
/// pairs than a soak tracks.
fn check_pairs(args: &BenchArgs, schedule: &Schedule) -> anyhow::Result<()> {
    let from = now();
    let slots = expected_slots(
        schedule,
        Span {
            start: from,
            end: from + i128::from(args.duration) * SECOND,
        },
    );
    // The real window starts later: a slot more or less.
    let pairs = u64::from(args.jobs) * (slots.len() as u64 + 1);
    if pairs > MOST_PAIRS {
        bail!(
            "--jobs {} over --duration {} is about {pairs} (job, slot) pairs, more than a soak tracks ({MOST_PAIRS}); give fewer jobs or a shorter duration",
            args.jobs,
            args.duration
        );
    }
    Ok(())
}

/// `--soak-output`, or a directory beside the work directory named after
/// it: `/tmp/cronmesh-bench-1-2` gives `/tmp/cronmesh-bench-1-2-soak`.
pub fn output_dir(chosen: Option<&Path>, workdir: &Path) -> PathBuf {
    if let Some(dir) = chosen {
        return dir.to_path_buf();
    }
    let mut name = workdir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "cronmesh-bench".into());
    name.push("-soak");
    workdir.with_file_name(name)
}

/// Reads the receipts written since the last read into the series; with
/// `last`, a line not ended counts too.
fn read_receipts(mut receipts: Receipts, last: bool) -> anyhow::Result<Receipts> {
    let series = &mut receipts.series;
    receipts
        .tail
        .read_new(last, |receipt| series.note(&receipt))?;
    Ok(receipts)
}

/// Runs `work` on a blocking thread: the bench's runtime has one thread,
/// which the API probe needs to keep its pace.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .context("reading the receipts and the disks failed")?
}

/// The progress line of interval `i`.
fn interval_line(i: usize, intervals: &Intervals, series: &SoakSeries, sample: &Sample) -> String {
    let mut line = format!(
        "interval {}/{}: {} runs received so far",
        i + 1,
        intervals.count(),
        series.runs_received()
    );
    if let Some((closed, lateness)) = (0..=i)
        .rev()
        .find(|j| series.is_closed(*j))
        .and_then(|j| Some((j, series.closed_lateness(j)?)))
    {
        line.push_str(&format!(
            "; lateness p99 of interval {} {:.1} ms",
            closed + 1,
            lateness.p99
        ));
    }
    let rss = sample
        .processes
        .iter()
        .filter(|p| p.role == Role::Server)
        .filter_map(|p| p.rss_bytes)
        .max();
    if let Some(rss) = rss {
        line.push_str(&format!(
            "; largest server RSS {:.1} MiB",
            rss as f64 / (1024.0 * 1024.0)
        ));
    }
    if let Some(disk) = sample.servers.iter().filter_map(|s| s.data_dir_bytes).max() {
        line.push_str(&format!(
            "; largest data directory {:.1} MB",
            disk as f64 / 1e6
        ));
    }
    if let Some(api) = sample.api_latency.as_ref().and_then(|a| a.all.p99_ms) {
        line.push_str(&format!("; API p99 {api:.1} ms"));
    }
    line
}

/// `soak.json` (the report, indented) and `soak.svg` in `dir`.
fn write_files(report: &SoakReport, dir: &Path) -> anyhow::Result<()> {
    let json = dir.join("soak.json");
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(&json, text + "\n")
        .with_context(|| format!("cannot write {}", json.display()))?;
    let svg = dir.join("soak.svg");
    let (title, subtitle) = report.chart_title();
    let chart = soak_chart::svg(
        (&title, &subtitle),
        report.intervals.len(),
        report.setup.sample_seconds,
        &report.panels(),
    );
    std::fs::write(&svg, chart).with_context(|| format!("cannot write {}", svg.display()))?;
    progress(&format!("wrote {} and {}", json.display(), svg.display()));
    Ok(())
}

/// Nanoseconds as seconds.
fn seconds(nanos: i128) -> f64 {
    nanos as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_sits_beside_the_work_directory() {
        assert_eq!(
            output_dir(None, Path::new("/tmp/cronmesh-bench-1-2")),
            Path::new("/tmp/cronmesh-bench-1-2-soak")
        );
        assert_eq!(
            output_dir(None, Path::new("/tmp/run/bench/")),
            Path::new("/tmp/run/bench-soak")
        );
        assert_eq!(
            output_dir(Some(Path::new("out")), Path::new("/tmp/x")),
            Path::new("out")
        );
    }

    #[test]
    fn too_many_pairs_fail_before_anything_starts() -> anyhow::Result<()> {
        let args = super::super::args::parse(&[
            "--scenario",
            "soak",
            "--jobs",
            "1000000",
            "--duration",
            "86400",
        ])?;
        let schedule = args.validate()?;
        assert!(check_pairs(&args, &schedule).is_err());
        let args = super::super::args::parse(&["--scenario", "soak", "--duration", "1800"])?;
        let schedule = args.validate()?;
        assert!(check_pairs(&args, &schedule).is_ok());
        Ok(())
    }
}
