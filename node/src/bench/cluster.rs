//! The bench's cluster: the `cronmesh server` and `cronmesh executor`
//! processes laid out by [`super::flags`], started, waited for until they
//! serve and see each other, asked who leads, and stopped.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::bail;
use protocol::api::{ClusterStatus, ExecutorInfo};

use super::{
    api::Admin,
    flags::{Layout, GROUP},
    ports::free_port,
    processes::{Managed, Role},
};

/// How long a stopping process gets before SIGKILL.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// What the cluster is made of.
pub struct Plan<'a> {
    /// The `cronmesh` binary every process runs.
    pub binary: &'a Path,
    /// Data, logs and receipts go here.
    pub dir: &'a Path,
    /// The shared secret's file.
    pub secret: &'a Path,
    pub nodes: usize,
    pub executors: u32,
    /// Runs kept per job: enough for every slot of the slots scenario;
    /// the servers' default for the others, so the soak sees retention
    /// at work.
    pub history_limit: usize,
    /// Flags every server gets besides the layout's.
    pub extra_server_args: &'a [String],
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
        let layout = Layout::pick(plan.nodes, plan.dir, plan.secret, plan.history_limit)?;
        let servers = (1..=plan.nodes as u64)
            .map(|id| {
                let label = format!("node{id}");
                let log = plan.dir.join(format!("{label}.log"));
                let mut args = layout.server_args(id);
                args.extend(plan.extra_server_args.iter().cloned());
                Managed::new(
                    label,
                    Role::Server,
                    Some(id),
                    plan.binary.to_path_buf(),
                    args,
                    log,
                )
            })
            .collect();
        let mut executors = Vec::new();
        let mut executor_endpoints = Vec::new();
        let mut receipt_files = Vec::new();
        for j in 1..=plan.executors {
            let port = free_port()?;
            let label = format!("executor{j}");
            let receipts = plan.dir.join(format!("{label}.receipts"));
            let args = layout.executor_args(port, &receipts);
            let log = plan.dir.join(format!("{label}.log"));
            let binary = plan.binary.to_path_buf();
            executors.push(Managed::new(label, Role::Executor, None, binary, args, log));
            executor_endpoints.push(format!("http://127.0.0.1:{port}"));
            receipt_files.push(receipts);
        }
        Ok(Self {
            servers,
            executors,
            api_urls: layout
                .http
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

    pub fn server(&self, id: u64) -> Option<&Managed> {
        self.servers.get((id as usize).wrapping_sub(1))
    }

    /// Node `id`'s `--data-dir`.
    pub fn data_dir(&self, id: u64) -> Option<PathBuf> {
        self.server(id)?.flag_value("--data-dir").map(PathBuf::from)
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

    /// The id of some running server.
    pub fn running_server(&self) -> Option<u64> {
        self.servers
            .iter()
            .find(|s| s.is_running())
            .and_then(|s| s.node_id)
    }

    /// The Raft term node `id` is in; `None` if it does not answer.
    pub async fn term(&self, id: u64) -> Option<u64> {
        let url = format!("{}/v1/cluster", self.api_url(id));
        let status: ClusterStatus = self.admin.get_json(&url).await.ok()?;
        Some(status.term)
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
