//! The shell of `ClusterWatchCore` on a node: it looks at who leads on a
//! short period and, on the leader, at which groups enabled jobs target
//! have no live executor, and which jobs' slots were skipped by misfire or
//! started late (from the applied commands), and which runs are still
//! active past their timeout and grace; feeds the core; and sends what the core decides
//! to the node's alert destinations (`--alert-webhook`, `--alert-email`).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

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
    /// What the dispatcher allows past a run's timeout before it ends
    /// the run itself: a run active past both is stuck.
    pub run_grace: Duration,
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
                let overdue = if leading {
                    overdue_runs(&watched).await
                } else {
                    Some(BTreeMap::new())
                };
                if let Some(overdue) = overdue {
                    alerts.extend(core.observe_overdue(watched.clock.now(), leading, &overdue));
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

/// Dispatched and running runs past their job's timeout and the grace
/// period, by id, with what to say of each; `None` when the store did
/// not answer.
async fn overdue_runs(watched: &Watched) -> Option<BTreeMap<String, String>> {
    let store = watched.store.clone();
    let now = watched.clock.now();
    let grace = watched.run_grace;
    tokio::task::spawn_blocking(move || {
        use protocol::RunStatus;
        let active = store
            .active_runs_in(&[RunStatus::Dispatched, RunStatus::Running])
            .ok()?;
        let mut timeouts: BTreeMap<protocol::JobKey, Option<Duration>> = BTreeMap::new();
        let mut overdue = BTreeMap::new();
        for run in active {
            let key = protocol::JobKey::new(run.namespace.clone(), run.job_id.clone());
            let timeout = *timeouts.entry(key.clone()).or_insert_with(|| {
                store
                    .job(&key)
                    .ok()
                    .flatten()
                    .map(|job| job.timeout.as_duration())
            });
            let Some(timeout) = timeout else { continue };
            let began = run
                .started_at
                .unwrap_or(run.created_at.max(run.scheduled_at));
            let allowed =
                chrono::Duration::from_std(timeout + grace).unwrap_or(chrono::Duration::MAX);
            if now - began > allowed {
                let detail = format!(
                    "run {} of {}/{} is still {} {}s after it began (timeout {}s)",
                    run.id,
                    run.namespace,
                    run.job_id,
                    run.status,
                    (now - began).num_seconds(),
                    timeout.as_secs()
                );
                overdue.insert(run.id, detail);
            }
        }
        Some(overdue)
    })
    .await
    .ok()?
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
