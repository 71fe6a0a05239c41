//! The `cronmesh` command line.

use clap::{Parser, Subcommand};

use crate::{
    bench::BenchArgs,
    client::{ApiOpts, ClientCommand},
    config::{DevArgs, ServerArgs},
    executor::ExecutorArgs,
};

#[derive(Parser, Debug)]
#[command(name = "cronmesh", version, about = "A distributed cron and job scheduler", after_help = crate::client::EXIT_CODES_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub api: ApiOpts,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// One process: a single-node scheduler plus a built-in executor.
    Dev(DevArgs),
    /// A scheduler node.
    Server(Box<ServerArgs>),
    /// An executor agent that runs shell commands for the schedulers.
    Executor(ExecutorArgs),
    /// Start a local cluster of this binary's processes, load it with jobs
    /// and measure what happens to every slot (or, with `--scenario
    /// catch-up`, how a follower catches up with a large state; with
    /// `--scenario soak`, how a long run's figures move over time).
    Bench(BenchArgs),
    /// Terminal status viewer: the cluster's leader and members, executors,
    /// jobs and a live stream of runs; trigger, pause, resume and kill from
    /// it (press ? inside for the keys).
    Tui,
    /// Work with configuration files
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Make a new node's data directory from a `cronmesh backup` file
    Restore(crate::restore::RestoreArgs),
    #[command(flatten)]
    Client(ClientCommand),
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Check a TOML settings file (with the CRONMESH_* variables set now)
    /// and print the settings it gives, each with where it came from.
    /// Exits 2 when the file or a value is invalid.
    Check {
        /// The TOML file.
        file: std::path::PathBuf,
        /// Which command the file is for.
        #[arg(long, value_parser = ["server", "dev", "executor"], default_value = "server")]
        role: String,
    },
    /// Print every setting with its flag, variable and default (Markdown)
    Reference,
}
