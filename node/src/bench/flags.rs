//! The command lines of the bench's processes: `cronmesh server` nodes on
//! loopback ports, Raft peers of each other when there are several, gossip
//! seeds of each other, and `cronmesh executor` agents that join them.

use std::path::{Path, PathBuf};

use super::ports::free_port;

/// The executor group the bench's jobs target.
pub const GROUP: &str = "bench";

/// Where every node listens, and what all processes share.
pub struct Layout {
    /// Admin API port per node (node id = index + 1).
    pub http: Vec<u16>,
    /// Raft port per node; unused with one node.
    pub raft: Vec<u16>,
    /// Gossip address per node.
    pub gossip: Vec<String>,
    /// A gossip cluster name of this bench run alone, so benches running
    /// side by side never see each other's members.
    pub gossip_cluster: String,
    /// Holds every node's data, logs and receipts.
    pub dir: PathBuf,
    pub secret: PathBuf,
    /// Runs kept per job of each outcome (see `Plan::history_limit`).
    pub history_limit: usize,
}

impl Layout {
    /// Picks free ports for `nodes` nodes.
    pub fn pick(
        nodes: usize,
        dir: &Path,
        secret: &Path,
        history_limit: usize,
    ) -> anyhow::Result<Self> {
        let mut layout = Self {
            http: Vec::new(),
            raft: Vec::new(),
            gossip: Vec::new(),
            gossip_cluster: format!(
                "bench-{}-{}",
                std::process::id(),
                chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
            ),
            dir: dir.to_path_buf(),
            secret: secret.to_path_buf(),
            history_limit,
        };
        for _ in 0..nodes {
            layout.http.push(free_port()?);
            layout.raft.push(free_port()?);
            layout.gossip.push(format!("127.0.0.1:{}", free_port()?));
        }
        Ok(layout)
    }

    /// `cronmesh server` flags of node `id` (from 1). One node runs as a
    /// single server does, on its own log without Raft.
    pub fn server_args(&self, id: u64) -> Vec<String> {
        let i = (id as usize).saturating_sub(1);
        let mut args = vec![
            "server".to_string(),
            "--node-id".into(),
            id.to_string(),
            "--data-dir".into(),
            path(&self.dir.join(format!("node{id}"))),
            "--http".into(),
            format!("127.0.0.1:{}", self.http.get(i).copied().unwrap_or(0)),
            "--gossip".into(),
            self.gossip.get(i).cloned().unwrap_or_default(),
            "--gossip-cluster".into(),
            self.gossip_cluster.clone(),
            "--secret-file".into(),
            path(&self.secret),
            "--history-limit".into(),
            self.history_limit.to_string(),
            "--history-failed-limit".into(),
            self.history_limit.to_string(),
            // The bench is the one client, and may be faster than any limit.
            "--rate-limit".into(),
            "0".into(),
        ];
        let seeds: Vec<&str> = self
            .gossip
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, g)| g.as_str())
            .collect();
        if !seeds.is_empty() {
            args.extend(["--seeds".to_string(), seeds.join(",")]);
        }
        if self.raft.len() > 1 {
            let peers: Vec<String> = self
                .raft
                .iter()
                .enumerate()
                .map(|(j, port)| format!("{}=127.0.0.1:{port}", j + 1))
                .collect();
            args.extend([
                "--raft".to_string(),
                format!("127.0.0.1:{}", self.raft.get(i).copied().unwrap_or(0)),
                "--peers".into(),
                peers.join(","),
            ]);
        }
        args
    }

    /// `cronmesh executor` flags of an agent listening on `port` and
    /// recording its receipts in `receipts`.
    pub fn executor_args(&self, port: u16, receipts: &Path) -> Vec<String> {
        vec![
            "executor".to_string(),
            "--group".into(),
            GROUP.into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--seeds".into(),
            self.gossip.join(","),
            "--gossip-cluster".into(),
            self.gossip_cluster.clone(),
            "--secret-file".into(),
            path(&self.secret),
            "--receipts".into(),
            path(receipts),
        ]
    }
}

fn path(p: &Path) -> String {
    p.to_string_lossy().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
        let at = args.iter().position(|a| a == flag)?;
        args.get(at + 1).map(String::as_str)
    }

    #[test]
    fn three_nodes_are_raft_peers_and_gossip_seeds() -> anyhow::Result<()> {
        let layout = Layout::pick(3, Path::new("/tmp/b"), Path::new("/tmp/b/secret"), 1000)?;
        let args = layout.server_args(2);
        assert_eq!(args[0], "server");
        assert_eq!(value(&args, "--node-id"), Some("2"));
        assert_eq!(value(&args, "--data-dir"), Some("/tmp/b/node2"));
        let peers = value(&args, "--peers").unwrap_or_default();
        assert_eq!(peers.split(',').count(), 3);
        assert!(peers.starts_with("1=127.0.0.1:"));
        let seeds = value(&args, "--seeds").unwrap_or_default();
        assert_eq!(seeds, format!("{},{}", layout.gossip[0], layout.gossip[2]));
        assert_eq!(
            value(&args, "--gossip-cluster"),
            Some(layout.gossip_cluster.as_str())
        );

        let exec = layout.executor_args(9000, Path::new("/tmp/b/executor1.receipts"));
        assert_eq!(value(&exec, "--group"), Some(GROUP));
        assert_eq!(
            value(&exec, "--seeds"),
            Some(layout.gossip.join(",").as_str())
        );
        assert_eq!(
            value(&exec, "--receipts"),
            Some("/tmp/b/executor1.receipts")
        );
        assert_eq!(value(&exec, "--secret-file"), Some("/tmp/b/secret"));
        Ok(())
    }

    #[test]
    fn one_node_runs_without_raft() -> anyhow::Result<()> {
        let layout = Layout::pick(1, Path::new("/tmp/b"), Path::new("/tmp/b/secret"), 1000)?;
        let args = layout.server_args(1);
        assert_eq!(value(&args, "--raft"), None);
        assert_eq!(value(&args, "--seeds"), None);
        assert!(value(&args, "--gossip").is_some());
        Ok(())
    }
}
