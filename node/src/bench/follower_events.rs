//! Carrying out `--kill-follower-at` and `--restart-follower-at`: kill -9
//! of a follower, which stays down under the load, and later its restart
//! on the same ports and data directory. After the restart the follower's
//! `/v1/cluster` is polled in the background (the window's other events
//! go on) until it has applied what the leader had applied at the
//! restart; [`FollowerEvents::finish`] hands the figures to the event.

use std::time::{Duration, Instant};

use anyhow::Context;
use protocol::api::ClusterStatus;
use tokio::task::JoinHandle;

use super::{
    api::Admin,
    clock::{now, Nanos},
    cluster::Cluster,
    failover::{Event, EventKind},
    follower_catch_up::{self, AtRestart, Polled},
    progress,
    report::ProcessFigures,
    usage::process_figures,
};

/// How often the restarted follower is asked how far it has applied.
const POLL: Duration = Duration::from_millis(100);

/// The restarted follower must have caught up within this long; past it
/// the report says it did not (the bench still reports the slots).
const CATCH_UP_LIMIT: Duration = Duration::from_secs(120);

/// The follower killed and not yet restarted.
struct Down {
    node: u64,
    killed: Instant,
    /// Its `/v1/cluster` just before the kill.
    status: ClusterStatus,
}

/// The follower events of one bench run, carried out in order.
#[derive(Default)]
pub struct FollowerEvents {
    down: Option<Down>,
    /// The restart's state and the background poll timing the catch-up.
    timing: Option<(AtRestart, JoinHandle<Polled>)>,
}

impl FollowerEvents {
    /// Carries out `kind` (a follower event); returns the event and, for a
    /// kill, the killed process's last figures.
    pub async fn act(
        &mut self,
        cluster: &mut Cluster,
        kind: EventKind,
        at: f64,
        cpu_at_start: &std::collections::HashMap<u32, f64>,
    ) -> anyhow::Result<(Event, Option<ProcessFigures>)> {
        match kind {
            EventKind::KillFollower => {
                let (event, figures) = self.kill(cluster, at, cpu_at_start).await?;
                Ok((event, Some(figures)))
            }
            EventKind::RestartFollower => Ok((self.restart(cluster, at).await?, None)),
            EventKind::KillLeader | EventKind::RestartLeader => {
                anyhow::bail!("{kind:?} is not a follower event")
            }
        }
    }

    /// kill -9 of the highest-numbered follower (as `--scenario catch-up`
    /// picks), after reading how far it had applied.
    async fn kill(
        &mut self,
        cluster: &mut Cluster,
        at: f64,
        cpu_at_start: &std::collections::HashMap<u32, f64>,
    ) -> anyhow::Result<(Event, ProcessFigures)> {
        let leader = cluster
            .wait_for_leader(Duration::from_secs(10))
            .await
            .context("no leader to tell the followers by")?;
        let node = (1..=cluster.servers.len() as u64)
            .rev()
            .find(|id| *id != leader && cluster.server(*id).is_some_and(|s| s.is_running()))
            .context("no running follower to kill")?;
        let status = status(cluster.admin(), cluster.api_url(node)).await?;
        let server = cluster
            .server_mut(node)
            .with_context(|| format!("no node {node}"))?;
        let figures = process_figures(server, cpu_at_start, false, true)
            .with_context(|| format!("node{node} is not running"))?;
        let killed_at = now();
        server.kill9();
        self.down = Some(Down {
            node,
            killed: Instant::now(),
            status,
        });
        progress(&format!(
            "{at} s: killed follower node{node} (kill -9) at applied index {}",
            self.down.as_ref().map_or(0, |d| d.status.applied_index)
        ));
        let leader_after = cluster.wait_for_leader(Duration::from_secs(5)).await.ok();
        Ok((
            event(EventKind::KillFollower, at, node, killed_at, leader_after),
            figures,
        ))
    }

    /// Restarts the killed follower and starts timing its catch-up from
    /// the leader's applied index and log start read just before.
    async fn restart(&mut self, cluster: &mut Cluster, at: f64) -> anyhow::Result<Event> {
        let down = self
            .down
            .take()
            .context("--restart-follower-at without a follower down")?;
        let leader = cluster
            .wait_for_leader(Duration::from_secs(10))
            .await
            .context("no leader to catch up from")?;
        let leader_status = status(cluster.admin(), cluster.api_url(leader)).await?;
        let at_restart = AtRestart {
            follower: down.node,
            leader,
            down: down.killed.elapsed(),
            follower_applied: down.status.applied_index,
            follower_snapshots: down.status.snapshots,
            leader_applied: leader_status.applied_index,
            leader_log_start: leader_status.log_start_index,
            leader_snapshots: leader_status.snapshots,
        };
        let restarted_at = now();
        let restarted = Instant::now();
        cluster
            .server_mut(down.node)
            .with_context(|| format!("no node {}", down.node))?
            .start()?;
        progress(&format!(
            "{at} s: restarted node{}; it must reach applied index {} (node{leader}'s log starts at {}, it is at {})",
            down.node,
            at_restart.leader_applied,
            at_restart.leader_log_start,
            at_restart.follower_applied
        ));
        let poll = poll_catch_up(
            cluster.admin().clone(),
            format!("{}/v1/cluster", cluster.api_url(down.node)),
            format!("{}/v1/cluster", cluster.api_url(leader)),
            at_restart.leader_applied,
            restarted,
        );
        self.timing = Some((at_restart, tokio::spawn(poll)));
        let leader_after = cluster.wait_for_leader(Duration::from_secs(5)).await.ok();
        Ok(event(
            EventKind::RestartFollower,
            at,
            down.node,
            restarted_at,
            leader_after,
        ))
    }

    /// Waits for the catch-up timing, if a follower was restarted, and
    /// puts its figures on the restart's event.
    pub async fn finish(self, events: &mut [Event]) {
        let Some((at_restart, timing)) = self.timing else {
            return;
        };
        let polled = timing.await.unwrap_or_default();
        let figures = follower_catch_up::figures(&at_restart, &polled);
        match figures.catch_up_ms {
            Some(ms) => progress(&format!(
                "node{} caught up in {ms:.0} ms ({})",
                figures.follower,
                if figures.served_from_log {
                    "from the log"
                } else {
                    "not from the log alone"
                }
            )),
            None => progress(&format!(
                "node{} did not catch up within {CATCH_UP_LIMIT:?}",
                figures.follower
            )),
        }
        if let Some(event) = events
            .iter_mut()
            .rev()
            .find(|e| e.kind == EventKind::RestartFollower)
        {
            event.catch_up = Some(figures);
        }
    }
}

/// A follower event; for both, killed and restarted at the same moment
/// (see [`Event::killed_at`]).
fn event(kind: EventKind, at: f64, node: u64, when: Nanos, leader_after: Option<u64>) -> Event {
    Event {
        kind,
        at_seconds: at,
        node_id: node,
        killed_at: when,
        restarted_at: when,
        leader_after,
        catch_up: None,
    }
}

/// Node `api_url`'s `/v1/cluster`.
async fn status(admin: &Admin, api_url: &str) -> anyhow::Result<ClusterStatus> {
    admin.get_json(&format!("{api_url}/v1/cluster")).await
}

/// Asks the follower every [`POLL`] until its applied index reaches
/// `target` or [`CATCH_UP_LIMIT`] has passed since `restarted`; then reads
/// the leader's counters. A node that does not answer (still starting) is
/// asked again.
async fn poll_catch_up(
    admin: Admin,
    follower_url: String,
    leader_url: String,
    target: u64,
    restarted: Instant,
) -> Polled {
    let mut polled = Polled::default();
    loop {
        if let Ok(now) = admin.get_json::<ClusterStatus>(&follower_url).await {
            polled.follower_applied = Some(now.applied_index);
            polled.follower_snapshots = Some(now.snapshots);
            if now.applied_index >= target {
                polled.caught_up_after = Some(restarted.elapsed());
                break;
            }
        }
        if restarted.elapsed() >= CATCH_UP_LIMIT {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    polled.leader_snapshots = admin
        .get_json::<ClusterStatus>(&leader_url)
        .await
        .ok()
        .map(|s| s.snapshots);
    polled
}
