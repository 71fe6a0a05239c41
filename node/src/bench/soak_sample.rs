//! What the soak reads of its processes at the end of each interval: the
//! resident memory (`VmRSS`) of each server and executor and the CPU time
//! it spent since the previous reading, each server's data directory as
//! `du` counts it, and the size sled itself reports, read from the
//! server's `/metrics` (`cronmesh_store_disk_bytes`). A process or figure
//! that cannot be read is null in its interval, never an error: a
//! figure missing once does not spoil a long run.

use std::{collections::HashMap, path::PathBuf, time::Duration};

use futures::future::join_all;
use serde::Serialize;

use super::{
    cluster::Cluster, disk_usage::disk_usage, memory, processes::Role, procstat, store_writes,
};

/// The gauge of the node's sled size on `/metrics`.
pub const SLED_METRIC: &str = "cronmesh_store_disk_bytes";

/// How long a server may take to answer `/metrics`.
const METRICS_TIMEOUT: Duration = Duration::from_secs(5);

/// One process at the end of an interval.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProcessSample {
    /// `node2`, `executor1`.
    pub label: String,
    pub role: Role,
    pub node_id: Option<u64>,
    /// Null when the process is not running.
    pub pid: Option<u32>,
    /// Resident memory now (`VmRSS`): what growth over time shows in.
    pub rss_bytes: Option<u64>,
    /// User plus system CPU seconds spent during the interval (since its
    /// start, for a process started within it).
    pub cpu_seconds: Option<f64>,
}

/// One server's disk at the end of an interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServerDisk {
    pub node: u64,
    /// Blocks its data directory takes (`du`): what the disk pays.
    pub data_dir_bytes: Option<u64>,
    /// The lengths of its files (`du --apparent-size`); well above
    /// `data_dir_bytes` when sled's files are sparse.
    pub data_dir_apparent_bytes: Option<u64>,
    /// What sled says its database takes (`cronmesh_store_disk_bytes`):
    /// null when the server did not answer or could not tell.
    pub sled_bytes: Option<u64>,
}

/// Each process's CPU seconds at the previous reading, so each interval
/// gets its own share.
#[derive(Debug, Default)]
pub struct CpuMeter {
    /// By pid: a restarted process is a new one.
    last: HashMap<u32, f64>,
}

impl CpuMeter {
    /// A meter whose first interval starts now.
    pub fn starting(cluster: &Cluster) -> Self {
        Self {
            last: super::usage::cpu_of_running(cluster),
        }
    }

    /// Every server's and executor's memory now and CPU since the last
    /// reading.
    pub fn processes(&mut self, cluster: &Cluster) -> Vec<ProcessSample> {
        let mut samples = Vec::new();
        for managed in cluster.servers.iter().chain(&cluster.executors) {
            let pid = managed.pid();
            let cpu_now = pid.and_then(procstat::sample).map(|s| s.cpu_seconds);
            let cpu_seconds = match (pid, cpu_now) {
                (Some(pid), Some(now)) => {
                    let before = self.last.insert(pid, now).unwrap_or(0.0);
                    // Clock ticks are hundredths: no more digits than that.
                    Some(((now - before) * 1000.0).round().max(0.0) / 1000.0)
                }
                _ => None,
            };
            samples.push(ProcessSample {
                label: managed.label.clone(),
                role: managed.role,
                node_id: managed.node_id,
                pid,
                rss_bytes: pid.and_then(memory::resident).map(|r| r.total),
                cpu_seconds,
            });
        }
        samples
    }
}

/// Every server's data directory, by node id.
pub fn data_dirs(cluster: &Cluster) -> Vec<(u64, PathBuf)> {
    cluster
        .servers
        .iter()
        .filter_map(|server| {
            let node = server.node_id?;
            Some((node, cluster.data_dir(node)?))
        })
        .collect()
}

/// Measures `dirs` (a walk of each tree: call it off the async thread)
/// and joins sled's figures: one entry per server, in `dirs`' order.
pub fn server_disks(dirs: &[(u64, PathBuf)], sled: &HashMap<u64, u64>) -> Vec<ServerDisk> {
    dirs.iter()
        .map(|(node, dir)| {
            let usage = disk_usage(dir).ok();
            ServerDisk {
                node: *node,
                data_dir_bytes: usage.as_ref().map(|u| u.bytes),
                data_dir_apparent_bytes: usage.as_ref().map(|u| u.apparent_bytes),
                sled_bytes: sled.get(node).copied(),
            }
        })
        .collect()
}

/// [`SLED_METRIC`] of every running server that answers, by node id.
pub async fn sled_sizes(cluster: &Cluster) -> HashMap<u64, u64> {
    let reads = cluster.servers.iter().filter_map(|server| {
        server.pid()?;
        let node = server.node_id?;
        let url = format!("{}/metrics", cluster.api_url(node));
        Some(async move {
            let text = cluster.admin().get_text(&url, METRICS_TIMEOUT).await.ok()?;
            let bytes = store_writes::parse(&text, SLED_METRIC)?;
            Some((node, bytes as u64))
        })
    });
    join_all(reads).await.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_has_no_figures() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("db"), vec![7u8; 8192])?;
        let dirs = vec![(1, dir.path().to_path_buf()), (2, dir.path().join("gone"))];
        let sled = HashMap::from([(1, 8192)]);
        let disks = server_disks(&dirs, &sled);
        assert_eq!(disks.len(), 2);
        assert!(disks[0].data_dir_bytes.is_some_and(|b| b >= 8192));
        assert_eq!(disks[0].data_dir_apparent_bytes, Some(8192));
        assert_eq!(disks[0].sled_bytes, Some(8192));
        assert_eq!(
            disks[1],
            ServerDisk {
                node: 2,
                ..ServerDisk::default()
            }
        );
        Ok(())
    }

    #[test]
    fn the_gauge_reads_from_a_scrape() {
        let text =
            "# TYPE cronmesh_store_disk_bytes gauge\ncronmesh_store_disk_bytes 123456\n# EOF\n";
        assert_eq!(store_writes::parse(text, SLED_METRIC), Some(123_456.0));
    }
}
