//! The executor agent's command line and the configuration it becomes.

use std::{collections::BTreeMap, fmt, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{bail, Context};
use protocol::signature::DEFAULT_REPLAY_WINDOW_SECS;

use super::{
    handlers::{self, HandlerRegistry},
    receipts::Receipts,
    sandbox::JobSandbox,
};

/// `cronmesh executor` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct ExecutorArgs {
    #[command(flatten)]
    pub config: crate::config::ConfigFileArg,

    /// Executor group this agent serves; jobs target a group.
    #[arg(long, default_value = "default")]
    pub group: String,

    /// Address the executor HTTP API listens on.
    #[arg(long, default_value = "127.0.0.1:7080")]
    pub listen: SocketAddr,

    /// Gossip addresses of scheduler nodes to join; the executor announces
    /// itself and schedulers route to it while it is alive.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Vec<String>,

    /// Gossip (UDP) address of this agent; the listen IP with a free port
    /// when unset.
    #[arg(long)]
    pub gossip: Option<SocketAddr>,

    /// Gossip only with nodes of this cluster.
    #[arg(long, default_value = "cronmesh")]
    pub gossip_cluster: String,

    /// With gossip: after this long without seeing a live scheduler, kill
    /// running work (it may have been failed over to another executor).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub fence_after: std::time::Duration,

    /// URL schedulers should use to reach this agent, when it differs from
    /// the listen address (NAT, containers, 0.0.0.0).
    #[arg(long)]
    pub advertise: Option<String>,

    /// Relative share of work for weighted routing.
    #[arg(long, default_value_t = 1)]
    pub weight: u32,

    /// Most runs this agent holds at once; 0 for no limit. Announced to
    /// schedulers, which keep further runs waiting until it has room.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub max_concurrent: u32,

    /// A `key=value` label, announced to schedulers: a job whose `selector`
    /// it does not meet never runs here. Repeat for more.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,

    /// Base URL of a local service that implements handler tasks: a task
    /// for handler `X` is POSTed as JSON to `{forward}/X`.
    #[arg(long)]
    pub forward: Option<String>,

    /// A handler name `--forward` serves, announced to schedulers so only
    /// its tasks come here; repeat for more. Without any, every handler
    /// task is forwarded and the agent announces `*` (any handler).
    #[arg(long = "handler", value_name = "NAME", requires = "forward")]
    pub forward_handlers: Vec<String>,

    /// File holding the shared HMAC secret that signs executor-protocol
    /// requests and gossip announcements. Without it requests are not
    /// signed or checked.
    #[arg(long, env = "CRONMESH_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,

    /// On SIGTERM, how long runs already here get to finish while new ones
    /// go to other executors; what is still running then is killed.
    #[arg(long, default_value = "25s", value_parser = parse_duration)]
    pub drain_timeout: std::time::Duration,

    /// A variable of this agent's environment that shell runs get too;
    /// repeat for more. Runs otherwise see only PATH, HOME, USER, LOGNAME,
    /// LANG, LC_ALL, TZ and their own CRONMESH_* variables.
    #[arg(long = "pass-env", value_name = "NAME", value_delimiter = ',')]
    pub pass_env: Vec<String>,

    /// Run shell jobs as this user (its uid, gid, groups and home); the
    /// agent must run as root. Keep the secret file unreadable to it.
    #[arg(long, value_name = "USER")]
    pub run_as: Option<String>,

    /// Accept unsigned dispatches and trust every gossip member: for a test
    /// setup only. Without it an executor needs --secret-file.
    #[arg(long, conflicts_with = "secret_file")]
    pub unsigned: bool,

    #[command(flatten)]
    pub v1: crate::v1_args::V1Args,

    /// Append one line per newly admitted run with its receive time, for
    /// `cronmesh bench`.
    #[arg(long, value_name = "FILE")]
    pub receipts: Option<PathBuf>,

    /// Directory kept across restarts: the newest leader term seen, and a
    /// record of each running process, so that processes a crash of the
    /// executor left running are killed at its next start and their runs
    /// reported failed. Without it neither survives a restart. One
    /// executor per directory (a scheduler may share it).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    text.parse::<protocol::HumanDuration>().map(|d| d.0)
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(format!("label {text:?} must look like key=value")),
    }
}

/// Everything the executor agent needs to run.
#[derive(Clone)]
pub struct ExecutorConfig {
    /// Executor group served; reported by `/healthz` and `/v1/info` so a
    /// scheduler can tell it reached the agent it meant to.
    pub group: String,
    /// Address to bind; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// URL schedulers reach this agent at, used as the endpoint in reports.
    /// `None` derives it from the bound address.
    pub advertise: Option<String>,
    /// Relative share of work for weighted routing, announced to schedulers.
    pub weight: u32,
    /// Most runs held at once (0: no limit), announced to schedulers, which
    /// never send more; a dispatch beyond it is answered `busy`.
    pub max_concurrent: u32,
    /// Free-form labels announced to schedulers for routing and display.
    pub labels: BTreeMap<String, String>,
    /// Base URL of the local service handler tasks are forwarded to when
    /// no in-process handler of that name is registered; `None` fails such
    /// tasks with "no handler named X".
    pub forward: Option<String>,
    /// The handlers `forward` serves; empty: any name. A task for a
    /// handler neither listed nor in-process fails with "no handler named
    /// X" (schedulers send none: the list is announced).
    pub forward_handlers: Vec<String>,
    /// In-process handlers by name (see [`super::Executor::builder`]); they
    /// win over `forward`. Their names are the `handlers` of `/v1/info`.
    pub handlers: HandlerRegistry,
    /// Shared HMAC secret: when set, every request but `/healthz` must
    /// carry a valid protocol v2 signature for this executor's endpoint,
    /// and outgoing reports and handler calls are signed.
    pub secret: Option<Vec<u8>>,
    /// Version 1 signatures accepted (dispatches only) or sent (reports)
    /// while a cluster is upgraded to protocol v2; neither by default.
    pub v1: protocol::signing::V1Compat,
    /// How far a signature's timestamp may be from now before the request
    /// is refused as a replay.
    pub replay_window_secs: i64,
    /// Finished runs remembered so a repeated dispatch of the same run id is
    /// recognised (invariant 6) and answered with the final report instead
    /// of a second process. Oldest are forgotten first.
    pub retain_finished: usize,
    /// Total bytes of output kept across remembered finished runs. Beyond it
    /// the oldest finished runs keep only their status (a re-sent report then
    /// carries no output, which a scheduler treats as "unchanged"), so memory
    /// stays bounded even with `retain_finished` runs of 64 KiB output each.
    pub retain_output_bytes: usize,
    /// Longest pause between attempts to deliver a final report; attempts
    /// start 100 ms apart and double up to this.
    pub report_max_backoff: Duration,
    /// Join the schedulers' gossip, so they find this executor by
    /// themselves; `None` when schedulers are given its URL instead.
    pub gossip: Option<GossipSettings>,
    /// Where each run admitted as new is recorded with its arrival time
    /// (`--receipts`), so a benchmark can count lost and doubled slots
    /// from the executors' side; `None` records nothing.
    pub receipts: Option<Receipts>,
    /// HTTPS for the executor protocol, and the CAs trusted when reporting
    /// to schedulers and forwarding handler tasks.
    pub tls: crate::tls::Tls,
    /// On stop, how long runs already here get to finish (new dispatches
    /// are refused meanwhile, so the scheduler fails them over).
    pub drain_timeout: Duration,
    /// Where the leader-term fence and the records of running processes
    /// are kept (see `data_dir`), so both survive a restart; `None` keeps
    /// the fence in memory and leaves processes a crash orphaned running.
    pub data_dir: Option<PathBuf>,
    /// Shell runs get SIGKILL when the thread that started them exits
    /// (Linux). True for the `cronmesh executor` process, which starts them
    /// from its main thread; an embedded executor starts them from tokio
    /// worker threads, which may end before the process, so false there.
    pub parent_death_signal: bool,
    /// What shell runs see of this agent: the environment they inherit and
    /// the user they run as (`--pass-env`, `--run-as`).
    pub sandbox: JobSandbox,
}

/// How an executor takes part in gossip.
#[derive(Clone, Debug, PartialEq)]
pub struct GossipSettings {
    /// UDP address to bind (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Scheduler gossip addresses to contact first.
    pub seeds: Vec<String>,
    /// Nodes gossip only within the same cluster name.
    pub cluster: String,
    /// Without a live scheduler in sight for this long, running work is
    /// killed: the schedulers have declared this executor dead and given its
    /// runs to others.
    pub fence_after: Duration,
}

impl ExecutorConfig {
    /// A configuration with the defaults of every optional setting.
    pub fn new(group: impl Into<String>, listen: SocketAddr) -> Self {
        Self {
            group: group.into(),
            listen,
            advertise: None,
            weight: 1,
            max_concurrent: 0,
            labels: BTreeMap::new(),
            forward: None,
            forward_handlers: Vec::new(),
            handlers: HandlerRegistry::new(),
            secret: None,
            v1: Default::default(),
            replay_window_secs: DEFAULT_REPLAY_WINDOW_SECS,
            retain_finished: 10_000,
            retain_output_bytes: 64 * 1024 * 1024,
            report_max_backoff: Duration::from_secs(10),
            gossip: None,
            receipts: None,
            tls: Default::default(),
            drain_timeout: Duration::ZERO,
            data_dir: None,
            parent_death_signal: false,
            sandbox: JobSandbox::base(),
        }
    }

    /// Checks the settings that can be wrong without being unparseable.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.group.trim().is_empty() {
            bail!("the executor group must not be empty");
        }
        if let Some(url) = &self.advertise {
            check_http_url("--advertise", url)?;
        }
        if let Some(url) = &self.forward {
            check_http_url("--forward", url)?;
        }
        self.handlers.validate()?;
        for name in &self.forward_handlers {
            protocol::validate::check_name("--handler", name)
                .map_err(|e| anyhow::anyhow!("--handler {name:?} {}", e.message))?;
        }
        if !self.forward_handlers.is_empty() && self.forward.is_none() {
            bail!("--handler names handlers --forward serves; give --forward too");
        }
        if matches!(&self.secret, Some(secret) if secret.is_empty()) {
            bail!("the shared secret must not be empty");
        }
        if self.replay_window_secs <= 0 {
            bail!("the replay window must be positive");
        }
        Ok(())
    }
}

impl ExecutorConfig {
    /// The handler names announced to schedulers (`/v1/info`, gossip),
    /// sorted: the in-process ones, and those `forward` serves (`*` when it
    /// serves any).
    pub fn announced_handlers(&self) -> Vec<String> {
        let mut names = self.handlers.names();
        if self.forward.is_some() {
            if self.forward_handlers.is_empty() {
                names.push(protocol::dispatch::ANY_HANDLER.to_string());
            } else {
                names.extend(self.forward_handlers.iter().cloned());
            }
        }
        names.sort();
        names.dedup();
        names
    }

    /// Where a task for `handler` with no in-process handler is forwarded:
    /// `forward`, if it serves that name.
    pub fn forward_for(&self, handler: &str) -> Option<&str> {
        let serves =
            self.forward_handlers.is_empty() || self.forward_handlers.iter().any(|h| h == handler);
        self.forward.as_deref().filter(|_| serves)
    }
}

fn check_http_url(flag: &str, text: &str) -> anyhow::Result<()> {
    let url = url::Url::parse(text).with_context(|| format!("{flag} {text:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!("{flag} {text:?} must be an http:// or https:// URL with a host");
    }
    Ok(())
}

/// The secret never appears in logs.
impl fmt::Debug for ExecutorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorConfig")
            .field("group", &self.group)
            .field("listen", &self.listen)
            .field("advertise", &self.advertise)
            .field("weight", &self.weight)
            .field("max_concurrent", &self.max_concurrent)
            .field("labels", &self.labels)
            .field("forward", &self.forward)
            .field("forward_handlers", &self.forward_handlers)
            .field("handlers", &self.handlers)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("v1", &self.v1)
            .field("replay_window_secs", &self.replay_window_secs)
            .field("retain_finished", &self.retain_finished)
            .field("retain_output_bytes", &self.retain_output_bytes)
            .field("report_max_backoff", &self.report_max_backoff)
            .field("gossip", &self.gossip)
            .field("receipts", &self.receipts)
            .field("drain_timeout", &self.drain_timeout)
            .field("data_dir", &self.data_dir)
            .field("parent_death_signal", &self.parent_death_signal)
            .field("sandbox", &self.sandbox)
            .finish()
    }
}

impl TryFrom<ExecutorArgs> for ExecutorConfig {
    type Error = anyhow::Error;

    fn try_from(args: ExecutorArgs) -> anyhow::Result<Self> {
        let mut config = ExecutorConfig::new(args.group, args.listen);
        config.advertise = args.advertise;
        config.weight = args.weight;
        config.max_concurrent = args.max_concurrent;
        config.labels = args.labels.into_iter().collect();
        config.forward = args.forward;
        config.forward_handlers = args.forward_handlers;
        // Always there, for smoke tests and benchmarks of the dispatch path.
        config
            .handlers
            .register(handlers::NOOP_HANDLER, handlers::noop);
        if !args.seeds.is_empty() {
            config.gossip = Some(GossipSettings {
                listen: args
                    .gossip
                    .unwrap_or_else(|| SocketAddr::new(args.listen.ip(), 0)),
                seeds: args.seeds,
                cluster: args.gossip_cluster,
                fence_after: args.fence_after,
            });
        }
        config.secret = match (&args.secret_file, args.unsigned) {
            (Some(path), _) => Some(crate::secret::read_secret_file(path)?),
            (None, true) => None,
            (None, false) => anyhow::bail!("{}", crate::secret::SECRET_REQUIRED),
        };
        config.v1 = args.v1.compat();
        config.receipts = args.receipts.as_deref().map(Receipts::create).transpose()?;
        config.tls = args.tls.load()?;
        config.drain_timeout = args.drain_timeout;
        config.data_dir = args.data_dir;
        config.sandbox = JobSandbox::new(&args.pass_env, args.run_as.as_deref())?;
        // This process starts runs from its main thread (see the field).
        config.parent_death_signal = true;
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ExecutorArgs,
    }

    fn parse(argv: &[&str]) -> Result<ExecutorArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("executor").chain(argv.iter().copied()))
            .map(|cli| cli.args)
    }

    #[test]
    fn defaults_and_flags() -> anyhow::Result<()> {
        let config = ExecutorConfig::try_from(parse(&["--unsigned"])?)?;
        assert_eq!(config.group, "default");
        assert_eq!(config.listen, "127.0.0.1:7080".parse()?);
        assert_eq!(config.weight, 1);
        assert!(config.secret.is_none());
        assert_eq!(config.handlers.names(), [handlers::NOOP_HANDLER]);
        assert!(config.receipts.is_none());
        assert!(config.data_dir.is_none());
        assert!(config.parent_death_signal);

        let args = parse(&[
            "--group",
            "batch",
            "--seeds",
            "a:7072,b:7072",
            "--label",
            "zone=eu",
            "--label",
            "disk=ssd",
            "--weight",
            "3",
            "--forward",
            "http://127.0.0.1:9000/hooks",
            "--data-dir",
            "/var/lib/cronmesh",
            "--unsigned",
        ])?;
        assert_eq!(args.seeds, ["a:7072", "b:7072"]);
        let config = ExecutorConfig::try_from(args)?;
        assert_eq!(config.labels.get("zone").map(String::as_str), Some("eu"));
        assert_eq!(config.labels.len(), 2);
        assert_eq!(config.weight, 3);
        assert_eq!(config.data_dir, Some(PathBuf::from("/var/lib/cronmesh")));
        assert_eq!(config.announced_handlers(), ["*", handlers::NOOP_HANDLER]);
        assert_eq!(config.forward_for("anything"), config.forward.as_deref());
        Ok(())
    }

    #[test]
    fn version_1_is_off_unless_asked_for() -> anyhow::Result<()> {
        let config = ExecutorConfig::try_from(parse(&["--unsigned"])?)?;
        assert_eq!(config.v1, protocol::signing::V1Compat::default());
        let config = ExecutorConfig::try_from(parse(&[
            "--unsigned",
            "--accept-v1-signatures",
            "--send-v1-signatures",
        ])?)?;
        assert!(config.v1.accept_v1 && config.v1.send_v1);
        Ok(())
    }

    #[test]
    fn forward_handlers_are_announced_and_only_they_forwarded() -> anyhow::Result<()> {
        let config = ExecutorConfig::try_from(parse(&[
            "--forward",
            "http://127.0.0.1:9000",
            "--handler",
            "resize",
            "--handler",
            "crop",
            "--unsigned",
        ])?)?;
        assert_eq!(
            config.announced_handlers(),
            ["crop", handlers::NOOP_HANDLER, "resize"]
        );
        assert_eq!(config.forward_for("crop"), Some("http://127.0.0.1:9000"));
        assert_eq!(config.forward_for("rotate"), None);
        let plain = ExecutorConfig::try_from(parse(&["--unsigned"])?)?;
        assert_eq!(plain.announced_handlers(), [handlers::NOOP_HANDLER]);
        assert_eq!(plain.forward_for("crop"), None);
        assert!(
            parse(&["--handler", "crop", "--unsigned"]).is_err(),
            "needs --forward"
        );
        let err = ExecutorConfig::try_from(parse(&[
            "--forward",
            "http://127.0.0.1:9000",
            "--handler",
            "a,b",
            "--unsigned",
        ])?)
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
        assert!(err.contains("--handler"), "{err}");
        Ok(())
    }

    #[test]
    fn bad_values_are_explained() -> anyhow::Result<()> {
        assert!(parse(&["--label", "novalue"]).is_err());
        let err = ExecutorConfig::try_from(parse(&[])?)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(err.contains("--secret-file"), "no secret, no start: {err}");
        let err = ExecutorConfig::try_from(parse(&["--forward", "localhost:9000", "--unsigned"])?)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(err.contains("--forward"), "{err}");
        let err = ExecutorConfig::try_from(parse(&["--secret-file", "/nonexistent/secret"])?)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(err.contains("/nonexistent/secret"), "{err}");
        Ok(())
    }

    #[test]
    fn secret_file_drops_trailing_newline_and_is_not_printed() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret\n")?;
        let path_text = path.to_string_lossy().into_owned();
        let config = ExecutorConfig::try_from(parse(&["--secret-file", &path_text])?)?;
        assert_eq!(config.secret.as_deref(), Some(&b"s3cret"[..]));
        assert!(!format!("{config:?}").contains("s3cret"));

        std::fs::write(&path, "\n")?;
        let err = ExecutorConfig::try_from(parse(&["--secret-file", &path_text])?)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("empty"), "{err}");
        Ok(())
    }
}
