//! Configuration of a scheduler node, and the flags of `cronmesh dev` and
//! `cronmesh server` that produce it.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use actors::store::{local_log::Durability, retention::HistoryPolicy, DEFAULT_HISTORY_LIMIT};
use anyhow::{bail, Context};
use protocol::job::DEFAULT_GROUP;

use crate::tokens::Scope;

/// Everything a scheduler node needs to start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub node_id: u64,
    /// Holds the sled database; created when missing.
    pub data_dir: PathBuf,
    /// Admin API listen address (`127.0.0.1:0` picks a free port).
    pub http: SocketAddr,
    /// URL executors report to; `http://{bound address}` when unset.
    pub advertise_url: Option<String>,
    /// Executors known without gossip (`--executor [GROUP=]URL`).
    pub executors: Vec<StaticExecutor>,
    /// Start the built-in executor of `cronmesh dev` in group `default`.
    pub builtin_executor: bool,
    /// Shared secret of the executor protocol's HMAC signatures.
    pub secret: Option<Vec<u8>>,
    /// Version 1 signatures accepted or sent while a cluster is upgraded
    /// to protocol v2; neither by default.
    pub v1: protocol::signing::V1Compat,
    /// HTTPS for the admin API, and the CAs this node's clients trust.
    pub tls: crate::tls::Tls,
    /// Bearer tokens the admin API and web console accept, with what each
    /// may do; the API is open when there is none.
    pub tokens: Vec<(crate::tokens::Scope, String)>,
    /// Requests per second one client address may make to the admin API
    /// (0: no limit).
    pub rate_limit: u32,
    /// Which finished runs the store drops (`--history-*`).
    pub history: HistoryPolicy,
    /// When a metadata write counts as durable.
    pub durability: Durability,
    pub timings: Timings,
    /// Seeds the router's random choices, so a run can be replayed.
    pub seed: u64,
    /// Replicate through Raft with these settings; alone when `None`.
    pub raft: Option<RaftSettings>,
    /// Find executors (and be found) by gossip; only the static executors
    /// when `None`.
    pub gossip: Option<GossipSettings>,
    /// The SMTP server alert e-mail goes through; none without `--smtp-url`.
    pub smtp: Option<actors::alerts::SmtpSettings>,
    /// Where alerts about the cluster go, and their thresholds.
    pub cluster_alerts: crate::alert_config::ClusterAlertSettings,
    /// Free space kept on the data directory's file system
    /// (`--min-free-space`): below it the node refuses new work.
    pub min_free_space: crate::disk::SpaceFloor,
    /// Whether a store wedged by a full disk starts the process over once
    /// there is room: the `server` and `dev` commands, not a node started
    /// inside another program.
    pub start_over_when_wedged: bool,
}

/// The data directory's free space, flattened into `server` and `dev`.
#[derive(clap::Args, Debug, Clone)]
pub struct DiskArgs {
    /// Free space kept on the data directory's file system. Below it, new
    /// jobs and manual triggers get 507 and a Raft leader hands leadership
    /// over (runs still fire and record their ends); below half of it only
    /// job deletions are taken. Bytes (512MiB), a share (1%), auto (1%, at
    /// least 8 MiB, at most 512 MiB), or 0 for no floor.
    #[arg(long, default_value = "auto", value_name = "SIZE")]
    pub min_free_space: crate::disk::SpaceFloor,
}

/// A scheduler's gossip settings.
#[derive(Clone, Debug)]
pub struct GossipSettings {
    /// UDP address to bind.
    pub listen: SocketAddr,
    /// Gossip addresses of other nodes to contact first.
    pub seeds: Vec<String>,
    /// Nodes gossip only within the same cluster name.
    pub cluster: String,
}

/// Raft log entries kept behind the applied index by default (see
/// OPERATIONS.md for sizing it to how long a follower may be away).
pub const DEFAULT_LOG_TAIL: u64 = 50_000;
/// Most bytes of Raft log entries kept behind the applied index by default:
/// jobs with large params must not keep a log many times the state.
pub const DEFAULT_LOG_TAIL_BYTES: u64 = 64 * 1024 * 1024;

/// A Raft member's settings.
#[derive(Clone, Debug)]
pub struct RaftSettings {
    /// Where peers reach this node's Raft port.
    pub listen: SocketAddr,
    /// The initial members (`--peers`), this node included; used only the
    /// first time the node starts with an empty data directory.
    pub peers: Vec<(u64, SocketAddr)>,
    /// Instead of `peers`: ask the cluster at this admin URL to add this
    /// node (first start only).
    pub join: Option<String>,
    /// What makes the Raft log durable before a write is acknowledged.
    pub durability: crate::raft::storage::Durability,
    /// One Raft tick; elections take 10 to 20 ticks.
    pub tick: Duration,
    /// Compaction runs once this many entries beyond the tail were applied.
    pub compact_after: u64,
    /// Entries kept behind the applied index when the log is compacted, so
    /// a follower that was briefly away catches up from entries rather than
    /// a snapshot.
    pub log_tail: u64,
    /// Most bytes of entries the tail keeps.
    pub log_tail_bytes: u64,
    /// Faults injected into this node's outgoing Raft messages; none unless
    /// a test partitions the cluster.
    pub faults: crate::raft::faults::Faults,
    /// Mutual TLS on the Raft port (`--raft-tls-*`); plain TCP when `None`
    /// (the cluster secret's handshake still authenticates peers).
    pub tls: Option<crate::raft::transport::RaftTls>,
}

fn parse_durability(text: &str) -> Result<crate::raft::storage::Durability, String> {
    use crate::raft::storage::Durability;
    match text {
        "flush" => Ok(Durability::Flush),
        "fsync" => Ok(Durability::Fsync),
        "none" => Ok(Durability::None),
        other => Err(format!("{other:?} is not one of flush, fsync, none")),
    }
}

/// Parses `1=127.0.0.1:7071`.
pub fn parse_peer(text: &str) -> anyhow::Result<(u64, SocketAddr)> {
    let (id, addr) = text
        .split_once('=')
        .with_context(|| format!("peer {text:?} is not ID=RAFT_ADDR"))?;
    let id: u64 = id
        .trim()
        .parse()
        .with_context(|| format!("peer {text:?}: the id is not a number"))?;
    if id == 0 {
        bail!("peer {text:?}: node ids start at 1");
    }
    let addr = addr
        .trim()
        .parse()
        .with_context(|| format!("peer {text:?}: {addr:?} is not an IP:PORT address"))?;
    Ok((id, addr))
}

/// Intervals that trade latency for work; tests shorten them.
#[derive(Clone, Debug)]
pub struct Timings {
    /// How often the dispatcher checks deadlines and due retries.
    pub dispatcher_tick: Duration,
    /// Longest a run transition waits to be batched with others.
    pub log_linger: Duration,
    /// A batch of run transitions this large is proposed at once.
    pub log_max_batch: usize,
    /// Past a run's timeout, how long the dispatcher waits for the
    /// executor's own report before declaring the run timed out.
    pub run_grace: Duration,
    /// Missed slots listed one by one per job after downtime.
    pub catch_up_limit: usize,
    /// How long before its slot a run (of a `concurrency = allow` job) is
    /// created, so it is committed when the slot comes and only the send
    /// is left to do on time.
    pub fire_ahead: Duration,
    /// Most fires handed over by the trigger whose runs are not created
    /// yet; past it, due slots wait in the trigger and fire late.
    pub trigger_backlog: usize,
    /// Runs a second the cluster is counted on to create when a large
    /// slot (the top of the minute, of the hour) is handed over early
    /// enough for all its runs to exist before it.
    pub burst_rate: usize,
    /// The earliest a large slot is handed over.
    pub max_fire_ahead: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            dispatcher_tick: Duration::from_millis(100),
            log_linger: Duration::from_millis(5),
            log_max_batch: 512,
            run_grace: Duration::from_secs(5),
            catch_up_limit: DEFAULT_HISTORY_LIMIT,
            fire_ahead: Duration::from_millis(500),
            trigger_backlog: actors::backlog::Backlog::DEFAULT_LIMIT,
            burst_rate: 5_000,
            max_fire_ahead: Duration::from_secs(30),
        }
    }
}

/// An executor given on the command line.
#[derive(Clone, Debug, PartialEq)]
pub struct StaticExecutor {
    pub group: String,
    pub endpoint: String,
}

impl std::str::FromStr for StaticExecutor {
    type Err = String;

    /// `URL` (group `default`) or `GROUP=URL`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (group, url) = match s.split_once('=') {
            Some((group, url)) if !group.contains('/') => (group.to_string(), url),
            _ => (DEFAULT_GROUP.to_string(), s),
        };
        protocol::validate::check_name("group", &group).map_err(|e| e.to_string())?;
        let parsed =
            url::Url::parse(url).map_err(|e| format!("invalid executor URL {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("executor URL {url:?} must be http or https"));
        }
        Ok(Self {
            group,
            endpoint: url.trim_end_matches('/').to_string(),
        })
    }
}

impl NodeConfig {
    pub fn new(data_dir: PathBuf, http: SocketAddr) -> Self {
        Self {
            node_id: 1,
            data_dir,
            http,
            advertise_url: None,
            executors: Vec::new(),
            builtin_executor: false,
            secret: None,
            v1: Default::default(),
            tls: Default::default(),
            tokens: Vec::new(),
            rate_limit: DEFAULT_RATE_LIMIT,
            history: HistoryPolicy::default(),
            durability: Durability::Flush,
            timings: Timings::default(),
            seed: 0,
            raft: None,
            gossip: None,
            smtp: None,
            cluster_alerts: Default::default(),
            min_free_space: Default::default(),
            start_over_when_wedged: false,
        }
    }
}

/// Admin API requests per second per client address, by default.
pub const DEFAULT_RATE_LIMIT: u32 = 1000;

/// `cronmesh dev`.
#[derive(clap::Args, Debug, Clone)]
pub struct DevArgs {
    #[command(flatten)]
    pub config: ConfigFileArg,
    /// Where the node keeps its data.
    #[arg(long, default_value = "./cronmesh-data")]
    pub data_dir: PathBuf,
    /// Admin API and web console address.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub http: SocketAddr,
    /// More executors: URL, or GROUP=URL.
    #[arg(long = "executor", value_name = "[GROUP=]URL")]
    pub executors: Vec<StaticExecutor>,
    #[command(flatten)]
    pub admin: AdminTokenArgs,
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
    #[command(flatten)]
    pub smtp: crate::alert_config::SmtpArgs,
    #[command(flatten)]
    pub disk: DiskArgs,
}

impl DevArgs {
    pub fn into_config(self) -> anyhow::Result<NodeConfig> {
        Ok(NodeConfig {
            builtin_executor: true,
            executors: self.executors,
            tokens: self.admin.tokens()?,
            rate_limit: self.admin.rate_limit,
            tls: self.tls.load()?,
            smtp: self.smtp.settings()?,
            min_free_space: self.disk.min_free_space,
            start_over_when_wedged: true,
            ..NodeConfig::new(self.data_dir, self.http)
        })
    }
}

/// The admin API's bearer token, given inline (best through the
/// environment: a flag shows in `ps`) or in a file.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AdminTokenArgs {
    /// Require `Authorization: Bearer TOKEN` on the admin API and a sign-in
    /// on the web console.
    #[arg(
        long,
        env = "CRONMESH_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub admin_token: Option<String>,
    /// File holding the admin token (instead of --admin-token).
    #[arg(
        long,
        env = "CRONMESH_ADMIN_TOKEN_FILE",
        conflicts_with = "admin_token"
    )]
    pub admin_token_file: Option<PathBuf>,
    /// File of tokens with scopes, `admin TOKEN` or `read TOKEN` a line;
    /// read tokens may only look.
    #[arg(long, env = "CRONMESH_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Admin API requests per second one client address may make; more get
    /// 429 (0: no limit). Health checks and executor reports are exempt.
    #[arg(long, default_value_t = DEFAULT_RATE_LIMIT)]
    pub rate_limit: u32,
}

impl AdminTokenArgs {
    /// Every token given, with its scope; an unreadable or malformed source
    /// stops the node (it never starts open by mistake).
    pub fn tokens(&self) -> anyhow::Result<Vec<(Scope, String)>> {
        let admin = match (&self.admin_token, &self.admin_token_file) {
            (Some(token), _) => Some(token.trim().to_string()),
            (None, Some(path)) => Some(
                String::from_utf8(crate::secret::read_secret_file(path)?).with_context(|| {
                    format!("the admin token in {} is not UTF-8", path.display())
                })?,
            ),
            (None, None) => None,
        };
        let mut tokens = Vec::new();
        if let Some(token) = admin {
            crate::tokens::check_token(&token)?;
            tokens.push((Scope::Admin, token));
        }
        // The file's tokens are checked line by line as it is read.
        if let Some(path) = &self.token_file {
            tokens.extend(crate::tokens::read_token_file(path)?);
        }
        Ok(tokens)
    }
}

/// A TOML file of settings (see `settings`): read before the command line,
/// which it only supplies defaults for.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigFileArg {
    /// TOML file of settings; flags and CRONMESH_* variables override it.
    #[arg(long = "config", env = "CRONMESH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `cronmesh server`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    #[command(flatten)]
    pub config: ConfigFileArg,
    /// This node's id in the Raft group: unique, never reused.
    #[arg(long, default_value_t = 1)]
    pub node_id: u64,
    /// Where the node keeps its data (the sled store and the Raft log).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Admin API address.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub http: SocketAddr,
    /// Raft address (for the cluster mode).
    #[arg(long)]
    pub raft: Option<SocketAddr>,
    /// Gossip address (for executor discovery).
    #[arg(long)]
    pub gossip: Option<SocketAddr>,
    /// Gossip only with nodes of this cluster, so clusters sharing a
    /// network stay apart.
    #[arg(long, default_value = "cronmesh")]
    pub gossip_cluster: String,
    /// Initial Raft members: 1=RAFT_ADDR,2=RAFT_ADDR,...
    #[arg(long, value_delimiter = ',')]
    pub peers: Vec<String>,
    /// Ask the cluster at this URL to add this node.
    #[arg(long)]
    pub join: Option<String>,
    /// Gossip seeds.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Vec<String>,
    /// URL executors use to report to this node.
    #[arg(long)]
    pub advertise: Option<String>,
    /// Executors known without gossip: URL, or GROUP=URL.
    #[arg(long = "executor", value_name = "[GROUP=]URL")]
    pub executors: Vec<StaticExecutor>,
    /// File holding the cluster's shared secret: it signs the executor
    /// protocol and the gossip announcements.
    #[arg(long, env = "CRONMESH_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,
    /// Run the executor protocol and gossip unsigned (every gossip member
    /// trusted): for a test setup only. Without it a server needs
    /// --secret-file.
    #[arg(long, conflicts_with = "secret_file")]
    pub unsigned: bool,
    #[command(flatten)]
    pub v1: crate::v1_args::V1Args,
    #[command(flatten)]
    pub history: crate::history_config::HistoryArgs,
    /// What makes the Raft log durable before a write is acknowledged:
    /// flush (survives a process crash), fsync, or none.
    #[arg(long, default_value = "flush", value_parser = parse_durability)]
    pub raft_durability: crate::raft::storage::Durability,
    /// One Raft tick in milliseconds; elections take 10 to 20 ticks.
    #[arg(long, default_value_t = 50)]
    pub raft_tick_ms: u64,
    /// Raft log entries applied beyond the kept tail before the log is
    /// compacted (compaction runs in steps of this many entries).
    #[arg(long, default_value_t = 10_000)]
    pub raft_compact_after: u64,
    /// Raft log entries kept behind the applied index when the log is
    /// compacted: a follower further behind needs a snapshot.
    #[arg(long, default_value_t = DEFAULT_LOG_TAIL)]
    pub raft_log_tail: u64,
    /// Most bytes of Raft log entries kept behind the applied index: the
    /// tail is cut at whichever of the two limits comes first.
    #[arg(long, default_value_t = DEFAULT_LOG_TAIL_BYTES)]
    pub raft_log_tail_bytes: u64,
    /// Most fires on their way into the log at once. When the cluster
    /// cannot create runs as fast as slots come, the slots past this wait
    /// in the trigger and run late, in order, instead of queueing without
    /// bound.
    #[arg(long, default_value_t = actors::backlog::Backlog::DEFAULT_LIMIT as u64, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub trigger_backlog: u64,
    #[command(flatten)]
    pub admin: AdminTokenArgs,
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
    #[command(flatten)]
    pub raft_tls: crate::tls::RaftTlsArgs,
    #[command(flatten)]
    pub smtp: crate::alert_config::SmtpArgs,
    #[command(flatten)]
    pub cluster_alerts: crate::alert_config::ClusterAlertArgs,
    #[command(flatten)]
    pub disk: DiskArgs,
}

impl ServerArgs {
    pub fn into_config(self) -> anyhow::Result<NodeConfig> {
        let raft = match self.raft {
            Some(listen) => {
                let mut peers = self
                    .peers
                    .iter()
                    .map(|p| parse_peer(p))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                if peers.is_empty() && self.join.is_none() {
                    peers.push((self.node_id, listen));
                }
                if !peers.is_empty() && !peers.iter().any(|(id, _)| *id == self.node_id) {
                    bail!("--peers must list this node ({}) too", self.node_id);
                }
                Some(RaftSettings {
                    listen,
                    peers,
                    join: self.join,
                    durability: self.raft_durability,
                    tick: Duration::from_millis(self.raft_tick_ms.max(1)),
                    compact_after: self.raft_compact_after.max(1),
                    log_tail: self.raft_log_tail,
                    log_tail_bytes: self.raft_log_tail_bytes,
                    faults: Default::default(),
                    tls: self.raft_tls.load()?,
                })
            }
            None if !self.peers.is_empty() => {
                bail!("--peers needs --raft ADDR for this node's Raft port")
            }
            None if self.raft_tls.raft_tls_cert.is_some() => {
                bail!("--raft-tls-cert needs --raft ADDR for this node's Raft port")
            }
            None => None,
        };
        let secret = match &self.secret_file {
            Some(path) => Some(crate::secret::read_secret_file(path)?),
            None if !self.unsigned => bail!("{}", crate::secret::SECRET_REQUIRED),
            None => None,
        };
        Ok(NodeConfig {
            node_id: self.node_id,
            advertise_url: self.advertise,
            executors: self.executors,
            secret,
            v1: self.v1.compat(),
            tls: self.tls.load()?,
            smtp: self.smtp.settings()?,
            cluster_alerts: self.cluster_alerts.settings(),
            tokens: self.admin.tokens()?,
            rate_limit: self.admin.rate_limit,
            history: self.history.policy(),
            min_free_space: self.disk.min_free_space,
            start_over_when_wedged: true,
            seed: self.node_id,
            raft,
            gossip: match self.gossip {
                Some(listen) => Some(GossipSettings {
                    listen,
                    seeds: self.seeds,
                    cluster: self.gossip_cluster,
                }),
                None if !self.seeds.is_empty() => {
                    bail!("--seeds needs --gossip ADDR for this node's gossip port")
                }
                None => None,
            },
            timings: Timings {
                trigger_backlog: usize::try_from(self.trigger_backlog).unwrap_or(usize::MAX),
                ..Timings::default()
            },
            ..NodeConfig::new(self.data_dir, self.http)
        })
    }
}
