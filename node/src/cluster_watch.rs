//! The shell of `ClusterWatchCore` on a node: it looks at who leads on a
//! short period, feeds the core, and sends what the core decides to the
//! node's alert destinations (`--alert-webhook`, `--alert-email`).

use std::{sync::Arc, time::Duration};

use actors::{
    alerts::{cluster::ClusterAlertSink, watch::ClusterWatchCore, Mailer},
    clock::SharedClock,
};

use crate::{alert_config::ClusterAlertSettings, consensus::Consensus};

/// The longest time between two looks: a threshold is noticed at most
/// this late (or a quarter of the threshold, when that is shorter).
const MAX_PERIOD: Duration = Duration::from_secs(1);

/// Starts watching, if any destination is set.
pub fn spawn(
    consensus: Consensus,
    node_id: u64,
    settings: &ClusterAlertSettings,
    client: reqwest::Client,
    mailer: Option<Arc<Mailer>>,
    clock: SharedClock,
) {
    let sink = ClusterAlertSink::new(
        client,
        mailer,
        settings.webhooks.clone(),
        settings.emails.clone(),
    );
    if sink.is_empty() {
        return;
    }
    let mut core = ClusterWatchCore::new(node_id, settings.no_leader_after);
    let period = (settings.no_leader_after / 4).clamp(Duration::from_millis(50), MAX_PERIOD);
    actix::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let leader = consensus.leader_state().leader_id;
            for alert in core.observe_leader(clock.now(), leader) {
                sink.send(&alert);
            }
        }
    });
}
