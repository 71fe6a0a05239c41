//! CPU and memory figures of the bench's processes, labelled, with the
//! leader marked.

use std::collections::HashMap;

use super::{cluster::Cluster, processes::Managed, procstat, report::ProcessFigures};

/// CPU seconds of every running process, by pid.
pub fn cpu_of_running(cluster: &Cluster) -> HashMap<u32, f64> {
    cluster
        .servers
        .iter()
        .chain(&cluster.executors)
        .filter_map(|m| {
            let pid = m.pid()?;
            Some((pid, procstat::sample(pid)?.cpu_seconds))
        })
        .collect()
}

/// The figures of a running process now; `None` if it is not running.
/// `cpu_at_start` holds CPU seconds at the window's start by pid; a
/// process missing there started during the window.
pub fn process_figures(
    managed: &Managed,
    cpu_at_start: &HashMap<u32, f64>,
    leader: bool,
    killed: bool,
) -> Option<ProcessFigures> {
    let pid = managed.pid()?;
    let sample = procstat::sample(pid).unwrap_or_default();
    Some(ProcessFigures {
        label: managed.label.clone(),
        role: managed.role,
        node_id: managed.node_id,
        incarnation: managed.incarnation,
        pid,
        leader,
        killed,
        cpu_seconds: sample.cpu_seconds,
        cpu_seconds_window: sample.cpu_seconds - cpu_at_start.get(&pid).copied().unwrap_or(0.0),
        peak_rss_bytes: sample.peak_rss_bytes,
    })
}

/// The figures of every process still running, with those of the killed
/// ones, in a stable order (servers by label and incarnation, then
/// executors). A process led if it did at the window's start (its first
/// incarnation) or at the end.
pub fn all_processes(
    cluster: &Cluster,
    cpu_at_start: &HashMap<u32, f64>,
    killed: Vec<ProcessFigures>,
    leader_at_start: u64,
    leader_at_end: Option<u64>,
) -> Vec<ProcessFigures> {
    let mut processes = killed;
    for managed in cluster.servers.iter().chain(&cluster.executors) {
        let leads = |id: Option<u64>| managed.node_id.is_some() && managed.node_id == id;
        let leader =
            leads(leader_at_end) || (managed.incarnation == 1 && leads(Some(leader_at_start)));
        if let Some(figures) = process_figures(managed, cpu_at_start, leader, false) {
            processes.push(figures);
        }
    }
    processes
        .sort_by(|a, b| (a.role, &a.label, a.incarnation).cmp(&(b.role, &b.label, b.incarnation)));
    processes
}
