//! A cluster of `cronmesh server` processes with Raft on loopback, whose
//! members can be killed with SIGKILL and restarted on the same ports and
//! data directories.

use std::{net::TcpListener, path::PathBuf, time::Duration};

use serde_json::Value;

use crate::{
    api::Api,
    process::{server_with, Proc},
    wait,
};

pub struct Cluster {
    pub dir: tempfile::TempDir,
    /// (http port, raft port) per node, node id = index + 1.
    ports: Vec<(u16, u16)>,
    nodes: Vec<Option<Proc>>,
    /// Nodes that joined with `--join` rather than being listed in `--peers`.
    joined: Vec<bool>,
    executors: Vec<String>,
    extra: Vec<String>,
    /// The admin token given in `extra`, which every API call then sends.
    token: Option<String>,
}

/// A port that was free a moment ago (the OS does not hand it out again
/// right away).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Cluster {
    /// Starts `size` nodes that know each other through `--peers`.
    pub fn start(size: usize, executors: &[&str], extra: &[&str]) -> Self {
        let mut cluster = Self::prepare(size, executors, extra);
        for id in 1..=size as u64 {
            cluster.restart(id);
        }
        cluster
    }

    /// Ports and data directories for `size` nodes, none started yet (a
    /// test can seed a data directory first, then [`restart`](Self::restart)).
    pub fn prepare(size: usize, executors: &[&str], extra: &[&str]) -> Self {
        let ports: Vec<(u16, u16)> = (0..size).map(|_| (free_port(), free_port())).collect();
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            ports,
            nodes: (0..size).map(|_| None).collect(),
            joined: vec![false; size],
            executors: executors.iter().map(|e| e.to_string()).collect(),
            extra: extra.iter().map(|e| e.to_string()).collect(),
            token: extra
                .windows(2)
                .find(|pair| pair[0] == "--admin-token")
                .map(|pair| pair[1].to_string()),
        }
    }

    fn peers(&self) -> String {
        self.ports
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.joined[*i])
            .map(|(i, (_, raft))| format!("{}=127.0.0.1:{raft}", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts one more node that asks node 1 to add it; returns its id.
    pub fn join(&mut self) -> u64 {
        self.ports.push((free_port(), free_port()));
        self.nodes.push(None);
        self.joined.push(true);
        let id = self.nodes.len() as u64;
        self.restart(id);
        id
    }

    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node{id}"))
    }

    /// (Re)starts node `id` on its ports and data directory.
    pub fn restart(&mut self, id: u64) {
        let (http, raft) = self.ports[(id - 1) as usize];
        let (node_id, raft_addr, peers) =
            (id.to_string(), format!("127.0.0.1:{raft}"), self.peers());
        let join = format!("http://127.0.0.1:{}", self.ports[0].0);
        let mut args = vec!["--node-id", node_id.as_str(), "--raft", raft_addr.as_str()];
        if self.joined[(id - 1) as usize] {
            args.extend(["--join", join.as_str()]);
        } else {
            args.extend(["--peers", peers.as_str()]);
        }
        args.extend(self.extra.iter().map(String::as_str));
        let executors: Vec<&str> = self.executors.iter().map(String::as_str).collect();
        let proc = server_with(
            &self.data_dir(id),
            &format!("127.0.0.1:{http}"),
            &executors,
            &args,
        );
        self.nodes[(id - 1) as usize] = Some(proc);
    }

    /// SIGTERM node `id` and wait for it to exit; its exit code.
    pub fn terminate(&mut self, id: u64) -> Option<i32> {
        self.nodes[(id - 1) as usize]
            .take()
            .and_then(|proc| proc.terminate(Duration::from_secs(20)))
    }

    /// SIGKILL node `id`.
    pub fn kill(&mut self, id: u64) {
        if let Some(proc) = self.nodes[(id - 1) as usize].take() {
            proc.kill9();
        }
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.nodes[(id - 1) as usize].is_some()
    }

    pub fn api(&self, id: u64) -> Api {
        let api = Api::new(format!(
            "http://127.0.0.1:{}",
            self.ports[(id - 1) as usize].0
        ));
        match &self.token {
            Some(token) => api.with_token(token),
            None => api,
        }
    }

    /// Ids of the running nodes.
    pub fn running(&self) -> Vec<u64> {
        (1..=self.nodes.len() as u64)
            .filter(|id| self.is_running(*id))
            .collect()
    }

    /// A running node other than `leader`.
    pub fn follower_of(&self, leader: u64) -> u64 {
        self.running()
            .into_iter()
            .find(|id| *id != leader)
            .expect("a running node besides the leader")
    }

    /// The leader every running node agrees on, once there is one.
    pub async fn leader(&self) -> u64 {
        wait::until(
            "a leader all running nodes agree on",
            Duration::from_secs(20),
            || async {
                let mut seen = None;
                for id in self.running() {
                    let (status, body) = self.api(id).get("/v1/cluster").await;
                    let leader = body["leader_id"].as_u64().filter(|_| status.is_success())?;
                    if seen.is_some_and(|s| s != leader) || !self.is_running(leader) {
                        return None;
                    }
                    seen = Some(leader);
                }
                seen
            },
        )
        .await
    }

    /// Waits until node `id` has applied at least `index`.
    pub async fn caught_up(&self, id: u64, index: u64) -> Value {
        wait::until(
            &format!("node {id} to apply index {index}"),
            Duration::from_secs(30),
            || async {
                let (_, body) = self.api(id).get("/v1/cluster").await;
                (body["applied_index"].as_u64()? >= index).then_some(body)
            },
        )
        .await
    }
}
