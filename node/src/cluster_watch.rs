//! The shell of `ClusterWatchCore` on a node: it looks at who leads on a
//! short period and, on the leader, at which groups enabled jobs target
//! have no live executor, and which jobs' slots were skipped by misfire or
//! started late (from the applied commands); feeds the core; and sends what the core decides
//! to the node's alert destinations (`--alert-webhook`, `--alert-email`).

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use actix::{Actor, Addr, Recipient};
use actors::{
    alerts::{
        cluster::ClusterAlertSink,
        watch::{runs_seen, ClusterWatchCore, RunSeen},
        Mailer,
    },
    clock::SharedClock,
    messages::{AppliedCommand, ListExecutors},
    router::Router,
    store::StateMachine,
};
use protocol::Target;

use crate::{alert_config::ClusterAlertSettings, consensus::Consensus};

/// The longest time between two looks at the leader: a threshold is
/// noticed at most this late (or a quarter of the threshold, when that
/// is shorter).
const MAX_PERIOD: Duration = Duration::from_secs(1);
/// How often the leader compares the jobs' groups with the live
/// executors (it reads every job).
const GROUP_PERIOD: Duration = Duration::from_secs(5);

/// What the watch reads.
pub struct Watched {
    pub consensus: Consensus,
    pub node_id: u64,
    pub router: Addr<Router>,
    pub store: Arc<StateMachine>,
    pub clock: SharedClock,
}

/// Starts watching, if any destination is set; what should receive the
/// applied commands, then.
pub fn spawn(
    watched: Watched,
    settings: &ClusterAlertSettings,
    client: reqwest::Client,
    mailer: Option<Arc<Mailer>>,
) -> Option<Recipient<AppliedCommand>> {
    let sink = ClusterAlertSink::new(
        client,
        mailer,
        settings.webhooks.clone(),
        settings.emails.clone(),
    );
    if sink.is_empty() {
        return None;
    }
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::channel(SEEN_QUEUE);
    let run_watch = RunWatch { seen: seen_tx }.start();
    let mut core = ClusterWatchCore::new(watched.node_id, settings.no_leader_after)
        .with_lateness(settings.late_after);
    let period = (settings.no_leader_after / 4).clamp(Duration::from_millis(50), MAX_PERIOD);
    actix::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut groups_checked: Option<tokio::time::Instant> = None;
        loop {
            let seen = tokio::select! {
                _ = ticks.tick() => None,
                seen = seen_rx.recv() => seen,
            };
            if let Some(seen) = seen {
                let state = watched.consensus.leader_state();
                let leading = state.ready_to_lead && state.leader_id == Some(watched.node_id);
                let now = watched.clock.now();
                for (job, what) in seen {
                    for alert in core.observe_run(now, leading, &job, what) {
                        sink.send(&alert);
                    }
                }
                continue;
            }
            let state = watched.consensus.leader_state();
            let mut alerts = core.observe_leader(watched.clock.now(), state.leader_id);
            if groups_checked.is_none_or(|at| at.elapsed() >= GROUP_PERIOD) {
                groups_checked = Some(tokio::time::Instant::now());
                let leading = state.ready_to_lead && state.leader_id == Some(watched.node_id);
                let missing = if leading {
                    groups_without_executors(&watched).await
                } else {
                    Some(BTreeSet::new())
                };
                if let Some(missing) = missing {
                    alerts.extend(core.observe_groups(watched.clock.now(), leading, &missing));
                }
            }
            for alert in alerts {
                sink.send(&alert);
            }
        }
    });
    Some(run_watch.recipient())
}

/// Groups that enabled shell or executor jobs target and no live
/// executor serves; `None` when the router or the store did not answer.
async fn groups_without_executors(watched: &Watched) -> Option<BTreeSet<String>> {
    let live: BTreeSet<String> = watched
        .router
        .send(ListExecutors)
        .await
        .ok()?
        .into_iter()
        .filter(|e| e.alive)
        .map(|e| e.group)
        .collect();
    let store = watched.store.clone();
    let needed = tokio::task::spawn_blocking(move || -> Option<BTreeSet<String>> {
        let jobs = store.all_jobs().ok()?;
        Some(
            jobs.into_iter()
                .filter(|(job, _)| job.enabled)
                .filter_map(|(job, _)| match job.target {
                    Target::Shell { group, .. } | Target::Executor { group, .. } => Some(group),
                    Target::Http { .. } => None,
                })
                .collect(),
        )
    })
    .await
    .ok()??;
    Some(needed.difference(&live).cloned().collect())
}

/// Most applied commands' observations waiting for the watch; past it
/// they are dropped (the watch is behind; the alert comes with a later run).
const SEEN_QUEUE: usize = 256;

/// Passes what applied commands show of runs' timeliness to the watch.
pub struct RunWatch {
    seen: tokio::sync::mpsc::Sender<Vec<(String, RunSeen)>>,
}

impl actix::Actor for RunWatch {
    type Context = actix::Context<Self>;
}

impl actix::Handler<AppliedCommand> for RunWatch {
    type Result = ();

    fn handle(&mut self, AppliedCommand(applied): AppliedCommand, _: &mut Self::Context) {
        let seen = runs_seen(&applied.outcome);
        if !seen.is_empty() {
            let _ = self.seen.try_send(seen);
        }
    }
}
