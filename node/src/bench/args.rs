//! The flags of `cronmesh bench` and the checks they need before any
//! process starts.

use std::path::PathBuf;

use anyhow::bail;
use protocol::schedule::Schedule;

/// `cronmesh bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// What to measure: `slots`, the runs of jobs fired over a window (the
    /// flags up to --restart-follower-at); `catch-up`, how a follower
    /// killed while the state grew catches up on restart (the flags from
    /// --state-mib on); or `soak`, a long window at the servers' default
    /// run retention, sampled every --sample-seconds, so that growth over
    /// time shows.
    #[arg(long, value_enum, default_value_t = Scenario::Slots)]
    pub scenario: Scenario,

    /// Scheduler nodes: 1 (a single `cronmesh server`) or 3 (a Raft cluster).
    #[arg(long, default_value_t = 3, value_parser = parse_nodes)]
    pub nodes: usize,

    /// `cronmesh executor` processes in group `bench`, joined by gossip.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub executors: u32,

    /// Jobs to create, `bench-0` to `bench-{N-1}`, each running the
    /// executors' `noop` handler.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub jobs: u32,

    /// Jobs created before the measured ones that never fire during the
    /// bench (`idle-0` ...): the cluster holds them, as a real one holds
    /// many rarely firing jobs (with --restart-leader-at: a restart with a
    /// large store).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=10_000_000))]
    pub idle_jobs: u32,

    /// Jobs per creation request: 1 posts each job alone; more post JSON
    /// arrays, which the API stores all or none in one log entry. 1 by
    /// default; 16 (about 1 MiB) with --scenario catch-up.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub create_batch: Option<u32>,

    /// Job creations in flight at once (keep-alive connections); 64 by
    /// default, 4 with --scenario catch-up.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub create_concurrency: Option<u32>,

    /// Schedule of every job.
    #[arg(long, default_value = "@every 1s")]
    pub schedule: String,

    /// What the jobs run: `executor`, the executors' `noop` handler
    /// (lateness taken when an executor admits the run), or `http`, an
    /// HTTP target the scheduler calls, served by a receiver in the bench
    /// process (lateness taken when the call arrives; the executors idle).
    #[arg(long, value_enum, default_value_t = Target::Executor)]
    pub target: Target,

    /// Length of the measurement window in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub duration: u64,

    /// Seconds to wait after the window for runs still on their way.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub drain: u64,

    /// Seconds into the window to kill -9 the leader; the others take over
    /// and the killed node restarts at once (needs --nodes 3). A time
    /// half-way between two slots (10.5) keeps runs the old leader sent
    /// out of the figures.
    #[arg(long, value_name = "SECONDS")]
    pub kill_leader_at: Option<f64>,

    /// Seconds into the window to kill -9 the leader and restart it; with
    /// --nodes 1 this measures how long a node holding every job takes to
    /// fire again.
    #[arg(long, value_name = "SECONDS")]
    pub restart_leader_at: Option<f64>,

    /// Seconds into the window to kill -9 a follower; it stays down until
    /// --restart-follower-at (or the end). Needs --nodes 3.
    #[arg(long, value_name = "SECONDS")]
    pub kill_follower_at: Option<f64>,

    /// Seconds into the window to restart the follower --kill-follower-at
    /// killed, on its data directory; the report times how long it takes
    /// to reach the leader's applied index and whether the leader's log
    /// tail or a snapshot caught it up.
    #[arg(long, value_name = "SECONDS")]
    pub restart_follower_at: Option<f64>,

    /// Do not probe the admin API during the window. By default the bench
    /// calls the leader about 20 times a second (health, a list of 10
    /// jobs, a creation of a disabled `probe-N` job) and reports the
    /// latency of each; its writes are in the store-writes figure.
    #[arg(long)]
    pub no_api_probe: bool,

    /// The `cronmesh` binary to start; this one by default.
    #[arg(long)]
    pub binary: Option<PathBuf>,

    /// Directory for the nodes' data, logs and receipts; must be empty or
    /// missing. A new temporary directory by default.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,

    /// Keep the data directory (logs, receipts, node data) afterwards.
    #[arg(long)]
    pub keep: bool,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Soak: seconds per interval of the time series (60 by default, 1
    /// to 3600); every interval the bench reads the receipts, each
    /// process's memory and CPU, each server's disk and the API probe's
    /// latency.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub sample_seconds: Option<u64>,

    /// Soak: directory for `soak.json` (the report) and `soak.svg` (its
    /// chart); by default a directory beside the data directory, named
    /// after it with `-soak`, which outlives it.
    #[arg(long, value_name = "DIR")]
    pub soak_output: Option<PathBuf>,

    /// Soak: runs each server keeps per job (its `--history-limit`; the
    /// servers' default by default). A smaller figure reaches retention
    /// sooner, so a shorter soak shows the steady state.
    #[arg(long, value_name = "RUNS", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub history_limit: Option<u64>,

    /// Catch-up: MiB of job `params` the cluster gains while a follower
    /// is down.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub state_mib: u64,

    /// Catch-up: bytes of `params` per job (the API takes at most 64 KiB).
    #[arg(long, default_value_t = 64_000, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub params_bytes: u32,

    /// Catch-up: the servers' --raft-log-tail. Small, so the follower needs
    /// a snapshot; larger than the entries the state takes, so it catches
    /// up from the log.
    #[arg(long, default_value_t = 100)]
    pub log_tail: u64,

    /// Catch-up: the servers' --raft-log-tail-bytes (theirs by default).
    #[arg(long)]
    pub log_tail_bytes: Option<u64>,

    /// Catch-up: the servers' --raft-compact-after.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub compact_after: u64,

    /// Catch-up: remove the follower's data directory before it restarts,
    /// as a replaced disk.
    #[arg(long)]
    pub wipe: bool,

    /// Catch-up: afterwards, time `cronmesh backup` of the leader and
    /// `cronmesh restore` of that file into a new directory.
    #[arg(long)]
    pub backup_restore: bool,
}

/// What `cronmesh bench` measures (`--scenario`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Jobs fired over a measured window: lost, doubled and late slots.
    #[default]
    Slots,
    /// A follower killed, the state grown, the follower restarted: how
    /// long it takes to catch up, and what that costs.
    CatchUp,
    /// A long window at the default run retention, sampled per interval:
    /// lateness, memory, CPU, disk and API latency over time.
    Soak,
}

/// `--sample-seconds` unless given: one interval a minute.
pub const DEFAULT_SAMPLE_SECONDS: u64 = 60;

/// What the bench's jobs run (`--target`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// `{"type": "executor", "group": "bench", "handler": "noop"}`.
    #[default]
    Executor,
    /// `{"type": "http", "method": "GET", "url": RECEIVER/hit/JOB}`.
    Http,
}

fn parse_nodes(text: &str) -> Result<usize, String> {
    match text {
        "1" => Ok(1),
        "3" => Ok(3),
        other => Err(format!("{other:?}: the bench runs 1 or 3 nodes")),
    }
}

impl BenchArgs {
    /// Jobs per creation request (`--create-batch`, or the scenario's).
    pub fn create_batch(&self) -> u32 {
        self.create_batch.unwrap_or(match self.scenario {
            Scenario::Slots | Scenario::Soak => 1,
            Scenario::CatchUp => 16,
        })
    }

    /// Creation requests in flight (`--create-concurrency`, or the
    /// scenario's).
    pub fn create_concurrency(&self) -> u32 {
        self.create_concurrency.unwrap_or(match self.scenario {
            Scenario::Slots | Scenario::Soak => 64,
            Scenario::CatchUp => 4,
        })
    }

    /// Runs each server keeps per job in the soak (`--history-limit`).
    pub fn history_limit(&self) -> usize {
        self.history_limit
            .map_or(actors::store::DEFAULT_HISTORY_LIMIT, |runs| runs as usize)
    }

    /// Seconds per interval of the soak (`--sample-seconds`).
    pub fn sample_seconds(&self) -> u64 {
        self.sample_seconds.unwrap_or(DEFAULT_SAMPLE_SECONDS)
    }

    /// Checks what the parser cannot: the schedule, and event times that
    /// fall inside the window and make sense for the cluster size.
    pub fn validate(&self) -> anyhow::Result<Schedule> {
        let schedule = Schedule::parse(&self.schedule)
            .map_err(|e| anyhow::anyhow!("--schedule {:?}: {e}", self.schedule))?;
        if matches!(schedule, Schedule::Manual) {
            bail!("--schedule @manual never fires; give a schedule that does");
        }
        for (flag, at) in [
            ("--kill-leader-at", self.kill_leader_at),
            ("--restart-leader-at", self.restart_leader_at),
            ("--kill-follower-at", self.kill_follower_at),
            ("--restart-follower-at", self.restart_follower_at),
        ] {
            if let Some(at) = at {
                if !(at >= 0.0 && at < self.duration as f64) {
                    bail!(
                        "{flag} {at} must be within the window: 0 to {} seconds",
                        self.duration
                    );
                }
            }
        }
        if self.kill_leader_at.is_some() && self.nodes == 1 {
            bail!("--kill-leader-at needs --nodes 3 so another node can take over; use --restart-leader-at with one node");
        }
        if self.kill_follower_at.is_some() && self.nodes == 1 {
            bail!("--kill-follower-at needs --nodes 3: one node has no follower");
        }
        if let Some(restart) = self.restart_follower_at {
            match self.kill_follower_at {
                Some(kill) if kill < restart => {}
                Some(kill) => bail!(
                    "--restart-follower-at {restart} must come after --kill-follower-at {kill}"
                ),
                None => bail!("--restart-follower-at restarts the follower --kill-follower-at killed; give both"),
            }
        }
        if self.scenario != Scenario::Soak {
            if self.sample_seconds.is_some() {
                bail!("--sample-seconds is for --scenario soak");
            }
            if self.soak_output.is_some() {
                bail!("--soak-output is for --scenario soak");
            }
            if self.history_limit.is_some() {
                bail!("--history-limit is for --scenario soak");
            }
        }
        if self.scenario == Scenario::Soak {
            if self.kill_leader_at.is_some()
                || self.restart_leader_at.is_some()
                || self.kill_follower_at.is_some()
                || self.restart_follower_at.is_some()
            {
                bail!("--scenario soak measures a cluster left alone; drop the --kill-*-at and --restart-*-at flags");
            }
            if self.target == Target::Http {
                bail!("--scenario soak follows the executors' receipts as they grow; drop --target http");
            }
            if self.duration < self.sample_seconds() {
                bail!(
                    "--duration {} is shorter than one interval of --sample-seconds {}",
                    self.duration,
                    self.sample_seconds()
                );
            }
        }
        if self.scenario == Scenario::CatchUp {
            if self.nodes != 3 {
                bail!("--scenario catch-up needs --nodes 3: a follower catches up from a leader");
            }
            if self.kill_leader_at.is_some()
                || self.restart_leader_at.is_some()
                || self.kill_follower_at.is_some()
                || self.restart_follower_at.is_some()
            {
                bail!("--scenario catch-up kills a follower itself; drop the --kill-*-at and --restart-*-at flags");
            }
        }
        Ok(schedule)
    }
}

/// `cronmesh bench ARGV`'s arguments, for tests.
#[cfg(test)]
pub fn parse(argv: &[&str]) -> Result<BenchArgs, clap::Error> {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }
    Cli::try_parse_from(std::iter::once("bench").chain(argv.iter().copied())).map(|c| c.args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() -> anyhow::Result<()> {
        let args = parse(&[])?;
        assert_eq!(
            (
                args.nodes,
                args.executors,
                args.jobs,
                args.create_concurrency(),
                args.create_batch()
            ),
            (3, 2, 1000, 64, 1)
        );
        assert_eq!(args.scenario, Scenario::Slots);
        assert_eq!((args.duration, args.drain), (30, 5));
        assert_eq!(args.schedule, "@every 1s");
        assert_eq!(args.target, Target::Executor);
        assert!(!args.no_api_probe);
        assert!(parse(&["--no-api-probe"])?.no_api_probe);
        assert!(args.validate().is_ok());
        assert_eq!(parse(&["--target", "http"])?.target, Target::Http);
        assert!(parse(&["--target", "shell"]).is_err());
        Ok(())
    }

    /// What `validate` says of the flags `argv`; empty when it takes them.
    fn err(argv: &[&str]) -> anyhow::Result<String> {
        Ok(parse(argv)?
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default())
    }

    #[test]
    fn mistakes_are_explained() -> anyhow::Result<()> {
        assert!(parse(&["--nodes", "2"]).is_err());
        assert!(parse(&["--jobs", "0"]).is_err());
        assert!(err(&["--schedule", "@sometimes"])?.contains("--schedule"));
        assert!(err(&["--duration", "10", "--kill-leader-at", "10"])?.contains("within"));
        assert!(err(&["--nodes", "1", "--kill-leader-at", "1"])?.contains("--nodes 3"));
        assert!(err(&["--nodes", "1", "--restart-leader-at", "1.5"])?.is_empty());
        assert!(err(&["--scenario", "catch-up", "--nodes", "1"])?.contains("--nodes 3"));
        assert!(err(&["--scenario", "catch-up", "--kill-leader-at", "1"])?.contains("itself"));
        assert!(err(&["--scenario", "catch-up", "--kill-follower-at", "1"])?.contains("itself"));
        assert!(err(&["--nodes", "1", "--kill-follower-at", "1"])?.contains("--nodes 3"));
        assert!(err(&["--restart-follower-at", "5"])?.contains("give both"));
        let follower = ["--kill-follower-at", "10", "--restart-follower-at"];
        assert!(err(&[&follower[..], &["10"]].concat())?.contains("after"));
        assert!(err(&[&follower[..], &["30"]].concat())?.contains("within"));
        assert!(err(&[&follower[..], &["20"]].concat())?.is_empty());
        Ok(())
    }

    #[test]
    fn soak_flags() -> anyhow::Result<()> {
        let args = parse(&["--scenario", "soak", "--duration", "1800"])?;
        assert_eq!(args.scenario, Scenario::Soak);
        assert_eq!(args.sample_seconds(), 60);
        assert_eq!((args.create_batch(), args.create_concurrency()), (1, 64));
        assert!(args.validate().is_ok());
        let args = parse(&[
            "--scenario",
            "soak",
            "--duration",
            "12",
            "--sample-seconds",
            "3",
            "--soak-output",
            "out",
        ])?;
        assert_eq!(args.sample_seconds(), 3);
        assert_eq!(args.history_limit(), actors::store::DEFAULT_HISTORY_LIMIT);
        assert!(args.validate().is_ok());
        let args = parse(&["--scenario", "soak", "--history-limit", "60"])?;
        assert_eq!(args.history_limit(), 60);
        assert!(parse(&["--history-limit", "0"]).is_err());
        assert!(err(&["--history-limit", "60"])?.contains("--scenario soak"));
        assert!(parse(&["--sample-seconds", "0"]).is_err());
        assert!(parse(&["--sample-seconds", "3601"]).is_err());
        assert!(err(&["--sample-seconds", "10"])?.contains("--scenario soak"));
        assert!(err(&["--soak-output", "out"])?.contains("--scenario soak"));
        assert!(err(&["--scenario", "soak", "--duration", "30"])?.contains("shorter"));
        let soak = ["--scenario", "soak", "--duration", "120"];
        assert!(err(&[&soak[..], &["--kill-leader-at", "10"]].concat())?.contains("left alone"));
        assert!(err(&[&soak[..], &["--target", "http"]].concat())?.contains("receipts"));
        Ok(())
    }

    #[test]
    fn catch_up_defaults() -> anyhow::Result<()> {
        let args = parse(&["--scenario", "catch-up"])?;
        assert_eq!(args.scenario, Scenario::CatchUp);
        assert_eq!((args.state_mib, args.params_bytes), (200, 64_000));
        assert_eq!((args.log_tail, args.compact_after), (100, 100));
        assert_eq!(args.log_tail_bytes, None);
        assert_eq!((args.create_batch(), args.create_concurrency()), (16, 4));
        assert!(!args.wipe && !args.backup_restore);
        assert!(args.validate().is_ok());
        let args = parse(&[
            "--scenario",
            "catch-up",
            "--create-batch",
            "64",
            "--state-mib",
            "1024",
            "--wipe",
        ])?;
        assert_eq!(
            (args.create_batch(), args.state_mib, args.wipe),
            (64, 1024, true)
        );
        assert!(parse(&["--scenario", "catch-up", "--params-bytes", "70000"]).is_err());
        Ok(())
    }
}
