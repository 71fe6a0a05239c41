//! The command line of the client: global API options and the subcommands.

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};

use super::error::CliError;
use protocol::RunStatus;

/// The exit codes scripts can rely on, shown after `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  the server refused the request (4xx other than 404) or failed (5xx)
  2  bad usage, or an unreadable or invalid input file
  3  not found (404)
  4  cannot reach the server
  5  a run waited for (run output --follow, job trigger --wait) did not succeed";

/// Help section of the global options.
const API_HEADING: &str = "API options";

/// Most items a list command shows.
pub const MAX_LIMIT: u64 = 100_000;

/// Where the admin API is and how to talk to it. Every option is global so it
/// may be given before or after the subcommand.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct ApiOpts {
    /// Base URL of any scheduler node's admin HTTP API.
    #[arg(
        long,
        env = "CRONMESH_API",
        default_value = "http://127.0.0.1:7070",
        global = true,
        value_name = "URL",
        help_heading = API_HEADING
    )]
    pub api: String,

    /// Bearer token sent as `Authorization: Bearer TOKEN`.
    #[arg(
        long,
        env = "CRONMESH_TOKEN",
        global = true,
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = API_HEADING
    )]
    pub token: Option<String>,

    /// PEM file of CA certificates to trust, besides the system's, for an
    /// https:// API (a private CA or a self-signed certificate).
    #[arg(
        long,
        env = "CRONMESH_API_CA",
        global = true,
        value_name = "FILE",
        help_heading = API_HEADING
    )]
    pub api_ca: Option<std::path::PathBuf>,

    /// How results are printed: aligned tables or the server's JSON.
    #[arg(
        long,
        value_enum,
        default_value = "table",
        global = true,
        help_heading = API_HEADING
    )]
    pub output: OutputFormat,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Aligned tables and key/value views for people.
    #[default]
    Table,
    /// The server's JSON, pretty-printed, for scripts.
    Json,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum ClientCommand {
    /// Manage jobs
    #[command(subcommand, after_help = EXIT_CODES_HELP)]
    Job(JobCommand),
    /// Inspect and kill runs
    #[command(subcommand, after_help = EXIT_CODES_HELP)]
    Run(RunCommand),
    /// Show and change the scheduler cluster's membership
    #[command(subcommand, after_help = EXIT_CODES_HELP)]
    Cluster(ClusterCommand),
    /// List live and recently dead executors
    #[command(after_help = EXIT_CODES_HELP)]
    Executors,
    /// Check schedule expressions
    #[command(subcommand, after_help = EXIT_CODES_HELP)]
    Schedule(ScheduleCommand),
    /// Save the cluster's whole state (jobs, run history) to a file, as of
    /// one moment; `cronmesh restore` starts a new node from it
    #[command(after_help = EXIT_CODES_HELP)]
    Backup {
        /// Where to write the backup (replaced only once it is complete).
        #[arg(long, short = 'o', value_name = "FILE")]
        out: std::path::PathBuf,
    },
}

/// `--namespace` of the commands that address one job.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct NamespaceArg {
    /// Namespace of the job.
    #[arg(short = 'n', long, default_value = "default", value_name = "NAMESPACE")]
    pub namespace: String,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct JobFileArgs {
    /// Job definition: a .toml file, a JSON file, or `-` for JSON on stdin.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: String,
    /// Namespace of the job [default: the file's `namespace`, else `default`].
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct JobIdArgs {
    /// The job's id.
    pub id: String,
    #[command(flatten)]
    pub ns: NamespaceArg,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum JobCommand {
    /// Create a job from a JSON or TOML file
    #[command(after_help = EXIT_CODES_HELP)]
    Create(JobFileArgs),
    /// List jobs
    #[command(after_help = EXIT_CODES_HELP)]
    List(JobListArgs),
    /// Show one job with its next fire times and last run
    #[command(after_help = EXIT_CODES_HELP)]
    Get(JobIdArgs),
    /// Replace a job with the definition in a file
    #[command(after_help = EXIT_CODES_HELP)]
    Update {
        /// The job's id.
        id: String,
        #[command(flatten)]
        file: JobFileArgs,
    },
    /// Delete a job (refused while other jobs name it as a child, unless --force)
    #[command(after_help = EXIT_CODES_HELP)]
    Delete {
        #[command(flatten)]
        job: JobIdArgs,
        /// Also remove the links of the jobs that name this one as a child.
        #[arg(long)]
        force: bool,
    },
    /// Run a job now
    #[command(after_help = EXIT_CODES_HELP)]
    Trigger {
        #[command(flatten)]
        job: JobIdArgs,
        /// Parameters for this run, replacing the job's `params`.
        #[arg(long, value_name = "PARAMS", allow_hyphen_values = true)]
        params: Option<String>,
        /// Wait until the runs end; exit 5 unless every one succeeded.
        #[arg(long)]
        wait: bool,
    },
    /// Stop firing a job's schedule
    #[command(after_help = EXIT_CODES_HELP)]
    Pause(JobIdArgs),
    /// Fire a paused job's schedule again
    #[command(after_help = EXIT_CODES_HELP)]
    Resume(JobIdArgs),
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct JobListArgs {
    #[command(flatten)]
    pub ns: NamespaceArg,
    /// Jobs of every namespace.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// Only jobs with this label.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_label)]
    pub label: Option<String>,
    /// Only enabled (true) or paused (false) jobs.
    #[arg(long, value_name = "true|false")]
    pub enabled: Option<bool>,
    /// Most jobs to show.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=MAX_LIMIT))]
    pub limit: u64,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum RunCommand {
    /// List runs, newest first
    #[command(after_help = EXIT_CODES_HELP)]
    List(RunListArgs),
    /// Show one run
    #[command(after_help = EXIT_CODES_HELP)]
    Get {
        /// The run's id.
        id: String,
    },
    /// Kill a run that is still active
    #[command(after_help = EXIT_CODES_HELP)]
    Kill {
        /// The run's id.
        id: String,
    },
    /// Print a run's captured output
    #[command(after_help = EXIT_CODES_HELP)]
    Output {
        /// The run's id.
        id: String,
        /// Keep printing the output as it grows until the run ends; exit 5
        /// unless it succeeded.
        #[arg(short = 'f', long)]
        follow: bool,
    },
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct RunListArgs {
    /// Only runs of this job.
    #[arg(long, value_name = "JOB_ID")]
    pub job: Option<String>,
    /// Namespace of --job [default: default].
    #[arg(short = 'n', long, value_name = "NAMESPACE", requires = "job")]
    pub namespace: Option<String>,
    /// Only runs in this status: pending, dispatched, running, succeeded,
    /// failed, timed_out, killed, skipped.
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    pub status: Option<RunStatus>,
    /// Most runs to show.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=MAX_LIMIT))]
    pub limit: u64,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum ClusterCommand {
    /// Show this node's raft state and the members
    #[command(after_help = EXIT_CODES_HELP)]
    Status,
    /// Add a scheduler node to the raft group
    #[command(after_help = EXIT_CODES_HELP)]
    Add {
        /// Raft id of the new node.
        node_id: u64,
        /// Its raft address, HOST:PORT.
        raft_addr: String,
        /// Its admin HTTP URL, e.g. http://10.0.0.7:7070.
        #[arg(value_parser = parse_http_url)]
        http_url: String,
    },
    /// Remove a scheduler node from the raft group
    #[command(after_help = EXIT_CODES_HELP)]
    Remove {
        /// Raft id of the node to remove.
        node_id: u64,
    },
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum ScheduleCommand {
    /// Print the next fire times of a schedule expression
    #[command(after_help = EXIT_CODES_HELP)]
    Preview(PreviewArgs),
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct PreviewArgs {
    /// Crontab line (5, 6 or 7 fields), @daily, `@every 30s`, `@at TIME`, ...
    pub expr: String,
    /// IANA time zone the schedule is evaluated in.
    #[arg(long, default_value = "UTC", value_name = "TZ")]
    pub tz: String,
    /// Start of the preview [default: now].
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub from: Option<DateTime<Utc>>,
    /// How many fire times to show.
    #[arg(long, default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(protocol::api::MAX_PREVIEW)))]
    pub count: u32,
}

fn parse_label(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((key, _)) if !key.trim().is_empty() => Ok(s.to_string()),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

fn parse_status(s: &str) -> Result<RunStatus, String> {
    s.parse::<RunStatus>().map_err(|_| {
        let all: Vec<&str> = RunStatus::ALL.iter().map(|st| st.as_str()).collect();
        format!(
            "unknown run status {s:?}; expected one of {}",
            all.join(", ")
        )
    })
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e}; expected RFC 3339, e.g. 2026-11-21T23:00:00Z"))
}

fn parse_http_url(s: &str) -> Result<String, String> {
    match url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(s.to_string()),
        Ok(_) => Err(format!("expected an http:// or https:// URL, got {s:?}")),
        Err(e) => Err(format!("{e}; expected a URL such as http://10.0.0.7:7070")),
    }
}

impl ApiOpts {
    /// The CAs of `--api-ca`, read now so a bad file is a usage error.
    pub fn trusted(&self) -> Result<Vec<reqwest::Certificate>, CliError> {
        match &self.api_ca {
            Some(path) => crate::tls::read_ca_file("--api-ca", path)
                .map_err(|e| CliError::usage(format!("{e:#}"))),
            None => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// The shape the binary gives these: global options plus the commands.
    #[derive(Parser, Debug)]
    #[command(name = "cronmesh")]
    struct Cli {
        #[command(flatten)]
        api: ApiOpts,
        #[command(subcommand)]
        command: ClientCommand,
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("cronmesh").chain(args.iter().copied()))
    }

    fn command(args: &[&str]) -> ClientCommand {
        match parse(args) {
            Ok(cli) => cli.command,
            Err(e) => panic!("{args:?} should parse: {e}"),
        }
    }

    fn words(line: &str) -> Vec<&str> {
        line.split_whitespace().collect()
    }

    fn usage_error(args: &[&str]) -> clap::Error {
        match parse(args) {
            Ok(cli) => panic!("{args:?} should be refused, got {cli:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        let before = parse(&["--api", "http://h:1", "--output", "json", "executors"]).unwrap();
        let after = parse(&["job", "get", "x", "--api", "http://h:1", "--output", "json"]).unwrap();
        for cli in [before, after] {
            assert_eq!(cli.api.api, "http://h:1");
            assert_eq!(cli.api.output, OutputFormat::Json);
        }
        let with_token = parse(&["run", "list", "--token", "s3cret"]).unwrap();
        assert_eq!(with_token.api.token.as_deref(), Some("s3cret"));
        assert_eq!(with_token.api.output, OutputFormat::Table);
    }

    #[test]
    fn job_commands() {
        assert_eq!(
            command(&["job", "create", "-f", "job.toml"]),
            ClientCommand::Job(JobCommand::Create(JobFileArgs {
                file: "job.toml".into(),
                namespace: None,
            }))
        );
        assert_eq!(
            command(&["job", "update", "nightly", "--file", "-", "-n", "prod"]),
            ClientCommand::Job(JobCommand::Update {
                id: "nightly".into(),
                file: JobFileArgs {
                    file: "-".into(),
                    namespace: Some("prod".into()),
                },
            })
        );
        let id = |id: &str, ns: &str| JobIdArgs {
            id: id.into(),
            ns: NamespaceArg {
                namespace: ns.into(),
            },
        };
        assert_eq!(
            command(&["job", "get", "a"]),
            ClientCommand::Job(JobCommand::Get(id("a", "default")))
        );
        assert_eq!(
            command(&["job", "delete", "a", "--namespace", "ops"]),
            ClientCommand::Job(JobCommand::Delete {
                job: id("a", "ops"),
                force: false
            })
        );
        assert_eq!(
            command(&["job", "delete", "a", "--force"]),
            ClientCommand::Job(JobCommand::Delete {
                job: id("a", "default"),
                force: true
            })
        );
        assert_eq!(
            command(&["job", "trigger", "a", "--params", "--full"]),
            ClientCommand::Job(JobCommand::Trigger {
                job: id("a", "default"),
                params: Some("--full".into()),
                wait: false,
            })
        );
        assert_eq!(
            command(&["job", "pause", "a"]),
            ClientCommand::Job(JobCommand::Pause(id("a", "default")))
        );
        assert_eq!(
            command(&["job", "resume", "a", "-n", "x"]),
            ClientCommand::Job(JobCommand::Resume(id("a", "x")))
        );
    }

    #[test]
    fn job_list_filters() {
        let ClientCommand::Job(JobCommand::List(list)) = command(&["job", "list"]) else {
            panic!("not a job list");
        };
        assert_eq!(list.ns.namespace, "default");
        assert!(!list.all_namespaces);
        assert_eq!(list.limit, 50);
        assert_eq!(list.label, None);
        assert_eq!(list.enabled, None);

        let args = "job list -n ops --label team=data --enabled false --limit 7";
        let ClientCommand::Job(JobCommand::List(list)) = command(&words(args)) else {
            panic!("not a job list");
        };
        assert_eq!(list.ns.namespace, "ops");
        assert_eq!(list.label.as_deref(), Some("team=data"));
        assert_eq!(list.enabled, Some(false));
        assert_eq!(list.limit, 7);

        let ClientCommand::Job(JobCommand::List(list)) = command(&["job", "list", "-A"]) else {
            panic!("not a job list");
        };
        assert!(list.all_namespaces);
    }

    #[test]
    fn run_commands() {
        let args = "run list --job a -n ops --status timed_out --limit 3";
        let ClientCommand::Run(RunCommand::List(list)) = command(&words(args)) else {
            panic!("not a run list");
        };
        assert_eq!(list.namespace.as_deref(), Some("ops"));
        assert_eq!(list.job.as_deref(), Some("a"));
        assert_eq!(list.status, Some(RunStatus::TimedOut));
        assert_eq!(list.limit, 3);
        assert_eq!(
            command(&["run", "get", "r1"]),
            ClientCommand::Run(RunCommand::Get { id: "r1".into() })
        );
        assert_eq!(
            command(&["run", "kill", "r1"]),
            ClientCommand::Run(RunCommand::Kill { id: "r1".into() })
        );
        assert_eq!(
            command(&["run", "output", "r1"]),
            ClientCommand::Run(RunCommand::Output {
                id: "r1".into(),
                follow: false
            })
        );
    }

    #[test]
    fn cluster_executors_and_schedule_commands() {
        assert_eq!(
            command(&["cluster", "status"]),
            ClientCommand::Cluster(ClusterCommand::Status)
        );
        assert_eq!(
            command(&[
                "cluster",
                "add",
                "4",
                "10.0.0.4:7071",
                "http://10.0.0.4:7070"
            ]),
            ClientCommand::Cluster(ClusterCommand::Add {
                node_id: 4,
                raft_addr: "10.0.0.4:7071".into(),
                http_url: "http://10.0.0.4:7070".into(),
            })
        );
        assert_eq!(
            command(&["cluster", "remove", "4"]),
            ClientCommand::Cluster(ClusterCommand::Remove { node_id: 4 })
        );
        assert_eq!(command(&["executors"]), ClientCommand::Executors);

        let ClientCommand::Schedule(ScheduleCommand::Preview(p)) = command(&[
            "schedule",
            "preview",
            "0 9 * * 1-5",
            "--tz",
            "Europe/Paris",
            "--from",
            "2026-03-28T12:00:00+01:00",
            "--count",
            "3",
        ]) else {
            panic!("not a preview");
        };
        assert_eq!(p.expr, "0 9 * * 1-5");
        assert_eq!(p.tz, "Europe/Paris");
        assert_eq!(
            p.from.map(|t| t.to_rfc3339()),
            Some("2026-03-28T11:00:00+00:00".to_string())
        );
        assert_eq!(p.count, 3);

        let ClientCommand::Schedule(ScheduleCommand::Preview(p)) =
            command(&["schedule", "preview", "@daily"])
        else {
            panic!("not a preview");
        };
        assert_eq!((p.tz.as_str(), p.from, p.count), ("UTC", None, 5));
    }

    #[test]
    fn bad_usage_is_refused_with_exit_code_2() {
        for args in [
            &["job", "create"][..],
            &["job", "get"],
            &["job", "list", "--label", "novalue"],
            &["job", "list", "--enabled", "maybe"],
            &["job", "list", "--limit", "0"],
            &["job", "list", "--label", "a=1", "--label", "b=2"],
            &["job", "list", "-A", "-n", "ops"],
            &["run", "list", "-n", "ops"],
            &["run", "list", "--status", "done"],
            &["cluster", "add", "x", "h:1", "http://h:2"],
            &["cluster", "add", "4", "h:1", "h:2"],
            &["schedule", "preview", "@daily", "--from", "tomorrow"],
            &["schedule", "preview", "@daily", "--count", "0"],
            &["--output", "yaml", "executors"],
            &["frobnicate"],
        ] {
            let err = usage_error(args);
            assert_eq!(err.exit_code(), 2, "{args:?}: {err}");
        }
    }

    #[test]
    fn help_documents_exit_codes() {
        let mut cmd = Cli::command();
        for path in [
            &["job"][..],
            &["job", "list"],
            &["run", "output"],
            &["executors"],
        ] {
            let mut sub = &mut cmd;
            for name in path {
                sub = match sub.find_subcommand_mut(name) {
                    Some(s) => s,
                    None => panic!("no subcommand {name}"),
                };
            }
            let help = sub.render_long_help().to_string();
            assert!(help.contains("3  not found (404)"), "{path:?}:\n{help}");
        }
    }
}
