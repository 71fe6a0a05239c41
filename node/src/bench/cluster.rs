//! The bench's cluster: `cronmesh server` processes on free loopback
//! ports (Raft peers with 3 nodes, gossip seeds of each other, one shared
//! secret, a gossip cluster name of their own) and `cronmesh executor`
//! processes in group `bench` that join them by gossip; waiting until it
//! serves, finding the leader, and stopping it.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::bail;
use protocol::api::{ClusterStatus, ExecutorInfo};

use super::{
    api::Admin,
    processes::{free_tcp_port, free_udp_port, Managed, Role},
};

/// The executor group the bench's jobs target.
pub const GROUP: &str = "bench";

/// How long a stopping process gets before SIGKILL.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// What every process of the cluster shares.
pub struct Plan<'a> {
    pub binary: &'a Path,
    pub dir: &'a Path,
    pub secret: &'a Path,
    pub nodes: usize,
    pub executors: u32,
    /// Runs kept per job: enough for every slot of the bench.
    pub history_limit: usize,
}

pub struct Cluster {
    /// Node `id` is `servers[id - 1]`.
    pub servers: Vec<Managed>,
    pub executors: Vec<Managed>,
    /// Admin API base URL per server, same order.
    api_urls: Vec<String>,
    /// Endpoint per executor, same order.
    executor_endpoints: Vec<String>,
    /// Receipt file per executor, same order.
    pub receipt_files: Vec<PathBuf>,
    admin: Admin,
}

impl Cluster {
    /// Picks the ports and writes down every process's flags; starts nothing.
    pub fn plan(plan: &Plan<'_>) -> anyhow::Result<Self> {
        // A gossip cluster name of its own, so benches running side by
        // side never see each other's members.
        let gossip_cluster = format!(
            "bench-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        let mut http = Vec::new();
        let mut raft = Vec::new();
        let mut gossip = Vec::new();
        for _ in 0..plan.nodes {
            http.push(free_tcp_port()?);
            raft.push(free_tcp_port()?);
            gossip.push(format!("127.0.0.1:{}", free_udp_port()?));
        }
        let peers = raft
            .iter()
            .enumerate()
            .map(|(i, port)| format!("{}=127.0.0.1:{port}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let secret = plan.secret.to_string_lossy().to_string();
        let mut servers = Vec::new();
        for i in 0..plan.nodes {
            let id = (i + 1) as u64;
            let data = plan.dir.join(format!("node{id}"));
            let mut args = vec![
                "server".to_string(),
                "--node-id".into(),
                id.to_string(),
                "--data-dir".into(),
                data.to_string_lossy().to_string(),
                "--http".into(),
                format!("127.0.0.1:{}", http[i]),
                "--gossip".into(),
                gossip[i].clone(),
                "--gossip-cluster".into(),
                gossip_cluster.clone(),
                "--secret-file".into(),
                secret.clone(),
                "--history-limit".into(),
                plan.history_limit.to_string(),
            ];
            let seeds: Vec<&str> = gossip
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, g)| g.as_str())
                .collect();
            if !seeds.is_empty() {
                args.extend(["--seeds".to_string(), seeds.join(",")]);
            }
            // One node runs as a single server does: no Raft, its own log.
            if plan.nodes > 1 {
                args.extend([
                    "--raft".to_string(),
                    format!("127.0.0.1:{}", raft[i]),
                    "--peers".into(),
                    peers.clone(),
                ]);
            }
            let label = format!("node{id}");
            let log = plan.dir.join(format!("{label}.log"));
            servers.push(Managed::new(
                label,
                Role::Server,
                Some(id),
                plan.binary.to_path_buf(),
                args,
                log,
            ));
        }
        let mut executors = Vec::new();
        let mut executor_endpoints = Vec::new();
        let mut receipt_files = Vec::new();
        for j in 1..=plan.executors {
            let port = free_tcp_port()?;
            let label = format!("executor{j}");
            let receipts = plan.dir.join(format!("{label}.receipts"));
            let args = vec![
                "executor".to_string(),
                "--group".into(),
                GROUP.into(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--seeds".into(),
                gossip.join(","),
                "--gossip-cluster".into(),
                gossip_cluster.clone(),
                "--secret-file".into(),
                secret.clone(),
                "--receipts".into(),
                receipts.to_string_lossy().to_string(),
            ];
            let log = plan.dir.join(format!("{label}.log"));
            executors.push(Managed::new(
                label,
                Role::Executor,
                None,
                plan.binary.to_path_buf(),
                args,
                log,
            ));
            executor_endpoints.push(format!("http://127.0.0.1:{port}"));
            receipt_files.push(receipts);
        }
        Ok(Self {
            servers,
            executors,
            api_urls: http
                .iter()
                .map(|p| format!("http://127.0.0.1:{p}"))
                .collect(),
            executor_endpoints,
            receipt_files,
            admin: Admin::new(),
        })
    }

    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    /// Base URL of node `id`'s admin API.
    pub fn api_url(&self, id: u64) -> &str {
        self.api_urls
            .get((id as usize).wrapping_sub(1))
            .map_or("", String::as_str)
    }

    pub fn server_mut(&mut self, id: u64) -> Option<&mut Managed> {
        self.servers.get_mut((id as usize).wrapping_sub(1))
    }

    /// Starts every server and waits until each answers `/readyz` and all
    /// agree on a leader, which it returns.
    pub async fn start_servers(&mut self, limit: Duration) -> anyhow::Result<u64> {
        for server in &mut self.servers {
            server.start()?;
        }
        let deadline = tokio::time::Instant::now() + limit;
        for i in 0..self.servers.len() {
            let url = format!("{}/readyz", self.api_urls[i]);
            loop {
                self.servers[i].check_alive()?;
                if self
                    .admin
                    .status(&url)
                    .await
                    .is_some_and(|s| s.is_success())
                {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    bail!(
                        "{} did not become ready within {limit:?}; see {}",
                        self.servers[i].label,
                        self.servers[i].log.display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        self.wait_for_leader(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
    }

    /// The leader every running server agrees on, once there is one.
    pub async fn wait_for_leader(&mut self, limit: Duration) -> anyhow::Result<u64> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(leader) = self.agreed_leader().await {
                return Ok(leader);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("the nodes did not agree on a leader within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn agreed_leader(&self) -> Option<u64> {
        let mut seen = None;
        for (i, server) in self.servers.iter().enumerate() {
            if !server.is_running() {
                continue;
            }
            let url = format!("{}/v1/cluster", self.api_urls[i]);
            let status: ClusterStatus = self.admin.get_json(&url).await.ok()?;
            let leader = status.leader_id?;
            if seen.is_some_and(|s| s != leader) {
                return None;
            }
            seen = Some(leader);
        }
        seen.filter(|id| {
            self.servers
                .get((*id as usize).wrapping_sub(1))
                .is_some_and(Managed::is_running)
        })
    }

    /// Starts every executor and waits until `leader` sees them all alive.
    pub async fn start_executors(&mut self, leader: u64, limit: Duration) -> anyhow::Result<()> {
        for executor in &mut self.executors {
            executor.start()?;
        }
        let url = format!("{}/v1/executors", self.api_url(leader));
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            for executor in &mut self.executors {
                executor.check_alive()?;
            }
            let alive = match self.admin.get_json::<Vec<ExecutorInfo>>(&url).await {
                Ok(list) => list
                    .iter()
                    .filter(|e| e.alive && e.group == GROUP)
                    .filter(|e| self.executor_endpoints.contains(&e.endpoint))
                    .count(),
                Err(_) => 0,
            };
            if alive == self.executors.len() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "the leader sees {alive} of {} executors alive after {limit:?}; see the executor logs in {}",
                    self.executors.len(),
                    self.executors
                        .first()
                        .and_then(|e| e.log.parent())
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the executors first (their last reports still reach a
    /// scheduler and their receipts are flushed), then the servers.
    pub async fn stop(&mut self) {
        let labels: Vec<String> = self.executors.iter().map(|e| e.label.clone()).collect();
        let stops = self
            .executors
            .iter_mut()
            .map(|e| e.terminate(STOP_DEADLINE));
        let stopped = futures::future::join_all(stops).await;
        for (label, stopped) in labels.iter().zip(stopped) {
            if !stopped {
                eprintln!("cronmesh bench: {label} did not stop on SIGTERM; killed it");
            }
        }
        let stops = self.servers.iter_mut().map(|s| s.terminate(STOP_DEADLINE));
        futures::future::join_all(stops).await;
    }
}
