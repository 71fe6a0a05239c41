//! Carrying out `--kill-leader-at` and `--restart-leader-at`: kill -9 of
//! whichever node leads at that moment, and its restart right away. The
//! follower events are carried out by [`super::follower_events`].

use std::{collections::HashMap, time::Duration};

use anyhow::Context;

use super::{
    args::BenchArgs,
    clock::now,
    cluster::Cluster,
    failover::{Event, EventKind},
    progress,
    report::ProcessFigures,
    usage::process_figures,
};

/// The events asked for, in time order: what and seconds into the window.
pub fn planned(args: &BenchArgs) -> Vec<(EventKind, f64)> {
    let mut events: Vec<(EventKind, f64)> = [
        args.kill_leader_at.map(|at| (EventKind::KillLeader, at)),
        args.restart_leader_at
            .map(|at| (EventKind::RestartLeader, at)),
        args.kill_follower_at
            .map(|at| (EventKind::KillFollower, at)),
        args.restart_follower_at
            .map(|at| (EventKind::RestartFollower, at)),
    ]
    .into_iter()
    .flatten()
    .collect();
    events.sort_by(|a, b| a.1.total_cmp(&b.1));
    events
}

/// kill -9 of the current leader and its restart on the same ports and
/// data; returns the event and the killed process's last figures.
pub async fn fail_leader(
    cluster: &mut Cluster,
    kind: EventKind,
    at: f64,
    cpu_at_start: &HashMap<u32, f64>,
) -> anyhow::Result<(Event, ProcessFigures)> {
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .context("no leader to kill")?;
    let server = cluster
        .server_mut(leader)
        .with_context(|| format!("no node {leader}"))?;
    let figures = process_figures(server, cpu_at_start, true, true)
        .with_context(|| format!("node{leader} is not running"))?;
    let killed_at = now();
    server.kill9();
    let restarted_at = now();
    server.start()?;
    progress(&format!(
        "{at} s: killed node{leader} (kill -9) and restarted it"
    ));
    let leader_after = cluster.wait_for_leader(Duration::from_secs(15)).await.ok();
    Ok((
        Event {
            kind,
            at_seconds: at,
            node_id: leader,
            killed_at,
            restarted_at,
            leader_after,
            catch_up: None,
        },
        figures,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_in_time_order() -> anyhow::Result<()> {
        let args =
            super::super::args::parse(&["--kill-leader-at", "9.5", "--restart-leader-at", "3.5"])?;
        assert_eq!(
            planned(&args),
            [
                (EventKind::RestartLeader, 3.5),
                (EventKind::KillLeader, 9.5)
            ]
        );
        let args = super::super::args::parse(&[
            "--restart-follower-at",
            "20",
            "--kill-follower-at",
            "10",
        ])?;
        assert_eq!(
            planned(&args),
            [
                (EventKind::KillFollower, 10.0),
                (EventKind::RestartFollower, 20.0)
            ]
        );
        Ok(())
    }
}
