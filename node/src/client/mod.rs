//! The command-line client for the admin HTTP API: `cronmesh job | run |
//! cluster | executors | schedule`.
//!
//! - `args`: the command line ([`ApiOpts`], [`ClientCommand`] and below).
//! - `http`: requests, paging, and the mapping of answers to [`CliError`].
//! - `error`: errors, their exit codes and the messages that say what to fix.
//! - `jobfile`: JSON / TOML job files.
//! - `render`: tables and key/value views; `pretty`: JSON pretty-printing.
//! - `commands`: one file per command area.

mod args;
mod commands;
mod error;
mod http;
mod jobfile;
mod pretty;
mod render;

use std::{io::Write, process::ExitCode};

pub use args::{
    ApiOpts, ClientCommand, ClusterCommand, JobCommand, JobFileArgs, JobIdArgs, JobListArgs,
    NamespaceArg, OutputFormat, PreviewArgs, RunCommand, RunListArgs, ScheduleCommand,
    EXIT_CODES_HELP,
};
pub use commands::execute;
pub use error::{
    exit_code_for_status, CliError, EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_RUN_FAILED,
    EXIT_UNREACHABLE, EXIT_USAGE,
};

/// Runs one client command: the result goes to stdout, errors (with what to
/// fix) to stderr.
///
/// Exit codes scripts can rely on:
/// - 0: success;
/// - 1: the server refused the request (4xx other than 404) or failed (5xx);
/// - 2: bad usage, or an unreadable or invalid input file (clap's own usage
///   errors exit 2 as well);
/// - 3: not found (404);
/// - 4: cannot reach the server (connection refused, DNS, TLS, timeout);
/// - 5: a run the command waited for (`--follow`, `--wait`) did not succeed.
pub async fn run(opts: ApiOpts, command: ClientCommand) -> ExitCode {
    let result = match execute(&opts, command).await {
        Ok(stdout) => write_stdout(&stdout),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprint!("{}", e.report());
            ExitCode::from(e.exit_code())
        }
    }
}

/// Writes the result; a reader that went away (`| head`) is not an error.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::Output(e.to_string())),
    }
}

/// `cronmesh tui`: the terminal UI against the node at `opts.api`.
pub fn run_tui(opts: &ApiOpts) -> anyhow::Result<()> {
    let trusted = opts.trusted()?;
    ui::run(&opts.api, opts.token.as_deref(), &trusted)
}
