//! What one run costs each scheduler node: CPU time and store writes from
//! the window's start to its end (not the drain), divided by the runs
//! received. The work of a slot falls mostly inside the window (runs are
//! created ahead of their slot and end soon after it), so over a whole
//! window it matches the runs of the window's slots.

use std::collections::HashMap;

use super::{cluster::Cluster, report::ProcessFigures, store_writes::Counter};

/// One node over the window.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeWindow {
    pub node: u64,
    /// CPU seconds its processes spent in the window: a process killed
    /// in it until its kill, one started in it from its start.
    pub cpu_seconds: f64,
    /// `cronmesh_store_writes_total` at the window's start and end.
    pub writes_at_start: Option<Counter>,
    pub writes_at_end: Option<Counter>,
}

/// The cost of a run on one node.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PerRun {
    pub node: u64,
    /// CPU microseconds per run received; null when none was.
    pub cpu_us: Option<f64>,
    /// Store writes per run received; null when the counter is missing
    /// (a build without it, a node that did not answer), the node was
    /// restarted in the window (its count began again) or no run came.
    pub store_writes: Option<f64>,
    /// The counter's growth over the window, the numerator of
    /// `store_writes`.
    pub store_writes_window: Option<f64>,
}

/// Per node, its cost of each of `runs` runs.
pub fn per_run(nodes: &[NodeWindow], runs: u64) -> Vec<PerRun> {
    let per = |total: f64| (runs > 0).then(|| total / runs as f64);
    nodes
        .iter()
        .map(|n| {
            let writes = match (n.writes_at_start, n.writes_at_end) {
                (Some(start), Some(end)) if start.pid == end.pid && end.value >= start.value => {
                    Some(end.value - start.value)
                }
                _ => None,
            };
            PerRun {
                node: n.node,
                cpu_us: per(n.cpu_seconds * 1e6),
                store_writes: writes.and_then(per),
                store_writes_window: writes,
            }
        })
        .collect()
}

/// Every node's window, from the CPU seconds of the running processes at
/// the window's start and end (by pid), the processes killed in it, and
/// the store-writes counters read at both ends.
pub fn node_windows(
    cluster: &Cluster,
    cpu: (&HashMap<u32, f64>, &HashMap<u32, f64>),
    killed: &[ProcessFigures],
    writes: (&HashMap<u64, Counter>, &HashMap<u64, Counter>),
) -> Vec<NodeWindow> {
    let (cpu_at_start, cpu_at_end) = cpu;
    cluster
        .servers
        .iter()
        .filter_map(|server| server.node_id)
        .map(|node| {
            let before_kill: f64 = killed
                .iter()
                .filter(|p| p.node_id == Some(node))
                .map(|p| p.cpu_seconds_window)
                .sum();
            let running = cluster
                .server(node)
                .and_then(|s| s.pid())
                .and_then(|pid| {
                    let end = cpu_at_end.get(&pid)?;
                    Some(end - cpu_at_start.get(&pid).copied().unwrap_or(0.0))
                })
                .unwrap_or(0.0);
            NodeWindow {
                node,
                cpu_seconds: before_kill + running,
                writes_at_start: writes.0.get(&node).copied(),
                writes_at_end: writes.1.get(&node).copied(),
            }
        })
        .collect()
}

/// The table's rows, one per node; `leader` is marked.
pub fn table(rows: &[PerRun], leader: Option<u64>) -> String {
    use std::fmt::Write as _;

    let mut out = String::new();
    if rows.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\n{:<14}{:>14}  {:>18}",
        "per run", "cpu µs", "store writes"
    );
    for r in rows {
        let name = format!(
            "node{}{}",
            r.node,
            if leader == Some(r.node) { " *" } else { "" }
        );
        let cpu = r
            .cpu_us
            .map_or_else(|| "n/a".to_string(), |us| format!("{us:.1}"));
        let writes = match (r.store_writes, r.store_writes_window) {
            (Some(per), Some(total)) => format!("{per:.2} ({total:.0})"),
            _ => "n/a".to_string(),
        };
        let _ = writeln!(out, "{name:<14}{cpu:>14}  {writes:>18}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(pid: u32, value: f64) -> Option<Counter> {
        Some(Counter { pid, value })
    }

    #[test]
    fn cost_per_run() {
        let nodes = [
            NodeWindow {
                node: 1,
                cpu_seconds: 2.0,
                writes_at_start: counter(10, 100.0),
                writes_at_end: counter(10, 2100.0),
            },
            // Restarted: its counter began again.
            NodeWindow {
                node: 2,
                cpu_seconds: 0.5,
                writes_at_start: counter(20, 100.0),
                writes_at_end: counter(21, 50.0),
            },
            // No counter in this build.
            NodeWindow {
                node: 3,
                cpu_seconds: 0.0,
                writes_at_start: None,
                writes_at_end: None,
            },
        ];
        let rows = per_run(&nodes, 1000);
        assert_eq!(rows[0].cpu_us, Some(2000.0));
        assert_eq!(rows[0].store_writes, Some(2.0));
        assert_eq!(rows[0].store_writes_window, Some(2000.0));
        assert_eq!(rows[1].cpu_us, Some(500.0));
        assert_eq!(rows[1].store_writes, None);
        assert_eq!(rows[2].store_writes, None);
        let text = table(&rows, Some(1));
        assert!(text.contains("node1 *"), "{text}");
        assert!(text.contains("2.00 (2000)"), "{text}");
        assert_eq!(text.matches("n/a").count(), 2, "{text}");

        let none = per_run(&nodes, 0);
        assert_eq!((none[0].cpu_us, none[0].store_writes), (None, None));
        assert_eq!(none[0].store_writes_window, Some(2000.0));
        assert_eq!(table(&[], None), "");
    }
}
