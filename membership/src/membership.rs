//! [`Membership`]: the running gossip node. It starts chitchat on a UDP
//! socket, publishes this node's member, and keeps the shared view (see
//! `view`) up to date from a background observer task.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use chitchat::{
    spawn_chitchat, Chitchat, ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig,
    ProtocolVersion,
};
use chrono::Utc;
use futures::Stream;
use tokio::sync::{oneshot, Mutex};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::config::MembershipConfig;
use crate::hub::Hub;
use crate::keys;
use crate::member::{Member, MemberState, MembershipChange};
use crate::signing::{self, Announcer, GossipKey};
use crate::transport::BoundUdp;
use crate::view::Observation;

/// Heartbeat intervals longer than this are left out of the failure
/// detector's mean (a long pause would otherwise make it lenient for good).
const MAX_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// Heartbeat intervals the failure detector averages over.
const SAMPLING_WINDOW: usize = 1_000;

/// A node of the gossip cluster. Cheap to clone; every clone is the same
/// node. Dropping the last clone stops it, [`Membership::shutdown`] stops it
/// and waits.
#[derive(Clone)]
pub struct Membership {
    inner: Arc<Inner>,
}

struct Inner {
    /// The UDP address bound.
    gossip_addr: SocketAddr,
    /// The address peers gossip to.
    advertise_addr: SocketAddr,
    chitchat: Arc<Mutex<Chitchat>>,
    hub: Arc<Hub>,
    /// Signs this node's announcement and checks the others'; `None`: no
    /// signing and every member verified.
    auth: Arc<Auth>,
    /// Taken by `shutdown`; dropping it also stops the gossip server.
    server: Mutex<Option<ChitchatHandle>>,
    /// Sent (or dropped with the last handle) to stop the observer.
    stop: std::sync::Mutex<Option<oneshot::Sender<()>>>,
    observer: Mutex<Option<JoinHandle<()>>>,
}

impl Membership {
    /// Binds the gossip socket, announces `me` and starts gossiping with
    /// the seeds. Fails when the socket cannot be bound, when no routable
    /// address can be advertised, or when `me` cannot be gossiped (see
    /// [`keys::validate`]).
    pub async fn start(config: MembershipConfig, me: Member) -> anyhow::Result<Self> {
        keys::validate(&me).context("this node's member cannot be gossiped")?;
        let transport = BoundUdp::bind(config.gossip_listen).await?;
        let gossip_addr = transport.local_addr();
        let advertise_addr = advertise(config.gossip_advertise, gossip_addr)?;
        let chitchat_id = ChitchatId::new(config.node_name.clone(), generation(), advertise_addr);
        let auth = Arc::new(Auth {
            key: config.gossip_key.clone(),
            cluster_id: config.cluster_id.clone(),
        });
        let initial = auth.signed(&chitchat_id, keys::encode(&me));
        let chitchat_config = ChitchatConfig {
            chitchat_id,
            cluster_id: config.cluster_id.clone(),
            gossip_interval: config.gossip_interval,
            listen_addr: gossip_addr,
            seed_nodes: config.seeds.clone(),
            failure_detector_config: FailureDetectorConfig {
                phi_threshold: config.phi_threshold,
                sampling_window_size: SAMPLING_WINDOW,
                max_interval: MAX_HEARTBEAT_INTERVAL,
                // The prior of the mean heartbeat interval: a new peer is
                // judged by the round period until its own samples weigh in.
                initial_interval: config.gossip_interval,
                dead_node_grace_period: config.dead_grace,
            },
            marked_for_deletion_grace_period: config.dead_grace,
            catchup_callback: None,
            extra_liveness_predicate: None,
            // V1 compresses digests; V0 keeps every chitchat release able to
            // read us, and cronmesh digests are small.
            protocol_version: ProtocolVersion::V0,
        };
        let server = spawn_chitchat(chitchat_config, initial, &transport)
            .await
            .context("cannot start gossip")?;
        let chitchat = server.chitchat();
        let hub = Arc::new(Hub::new(config.gossip_interval));
        observe(&chitchat, &hub, &auth).await;

        let (stop_tx, stop_rx) = oneshot::channel();
        let observer = tokio::spawn(run_observer(
            chitchat.clone(),
            hub.clone(),
            auth.clone(),
            config.gossip_interval,
            stop_rx,
        ));
        debug!(node = %config.node_name, %gossip_addr, %advertise_addr, seeds = ?config.seeds, "gossip started");
        Ok(Membership {
            inner: Arc::new(Inner {
                gossip_addr,
                advertise_addr,
                chitchat,
                hub,
                auth,
                server: Mutex::new(Some(server)),
                stop: std::sync::Mutex::new(Some(stop_tx)),
                observer: Mutex::new(Some(observer)),
            }),
        })
    }

    /// The UDP address bound (the real port when started on port 0).
    pub fn gossip_addr(&self) -> SocketAddr {
        self.inner.gossip_addr
    }

    /// The address other nodes gossip to: `gossip_advertise`, or the bound
    /// address. This is what to give other nodes as a seed.
    pub fn advertise_addr(&self) -> SocketAddr {
        self.inner.advertise_addr
    }

    /// Updates this node's own gossiped member (e.g. running count, leader
    /// flag). Keys are only re-gossiped when their value changes; with a
    /// gossip key, `sig` is recomputed over the new values (so it changes
    /// with any of them). A member that cannot be gossiped (see
    /// [`keys::validate`]) is refused with a warning and the previous one
    /// stays.
    pub async fn update_self(&self, me: Member) {
        if let Err(error) = keys::validate(&me) {
            warn!(%error, "refusing to gossip an invalid member");
            return;
        }
        let mut chitchat = self.inner.chitchat.lock().await;
        let key_values = self
            .inner
            .auth
            .signed(chitchat.self_chitchat_id(), keys::encode(&me));
        let node = chitchat.self_node_state();
        let wanted: HashSet<&str> = key_values.iter().map(|(k, _)| k.as_str()).collect();
        let stale: Vec<String> = node
            .key_values()
            .map(|(k, _)| k)
            .filter(|k| !wanted.contains(k))
            .map(str::to_string)
            .collect();
        for key in stale {
            node.delete(&key);
        }
        // The signature last: chitchat sends a node's keys in the order of
        // their versions, so a peer that has the new `sig` has every value
        // it covers.
        for (key, value) in key_values {
            node.set(key, value);
        }
        // Reflect it locally now rather than at the next round.
        self.inner
            .hub
            .apply(observations(&chitchat, &self.inner.auth), Utc::now());
    }

    /// Every member known (alive and recently dead, this node included),
    /// parsed, by node name. Members whose keys do not parse are skipped
    /// with a debug log.
    pub async fn members(&self) -> Vec<MemberState> {
        observe(&self.inner.chitchat, &self.inner.hub, &self.inner.auth).await;
        self.inner.hub.members()
    }

    /// The changes of the view, starting with an `Added` for every member
    /// alive at the time of the call (this node included): a subscriber
    /// builds its whole picture from the stream alone. See
    /// [`MembershipChange`] for when each change is sent. The stream ends at
    /// shutdown.
    pub fn subscribe(&self) -> impl Stream<Item = MembershipChange> + Send + Unpin + 'static {
        self.inner.hub.subscribe()
    }

    /// Stops gossiping and ends every change stream. Peers declare this node
    /// dead after their failure detection time (there is no leave message).
    pub async fn shutdown(self) {
        let stop = self
            .inner
            .stop
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        if let Some(observer) = self.inner.observer.lock().await.take() {
            let _ = observer.await;
        }
        if let Some(server) = self.inner.server.lock().await.take() {
            if let Err(error) = server.shutdown().await {
                warn!(%error, "gossip server stopped with an error");
            }
        }
        self.inner.hub.close();
    }
}

/// Keeps the view current: after every change of chitchat's live set, and
/// every gossip interval (for key changes, deaths and `last_seen`).
async fn run_observer(
    chitchat: Arc<Mutex<Chitchat>>,
    hub: Arc<Hub>,
    auth: Arc<Auth>,
    period: Duration,
    mut stop: oneshot::Receiver<()>,
) {
    let mut live_changes = chitchat.lock().await.live_nodes_watcher();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            changed = live_changes.changed() => if changed.is_err() { break },
            _ = tick.tick() => {}
        }
        observe(&chitchat, &hub, &auth).await;
    }
}

/// Brings the view up to chitchat's state. The chitchat lock is held until
/// the view is updated, so concurrent observations apply in order.
async fn observe(chitchat: &Mutex<Chitchat>, hub: &Hub, auth: &Auth) {
    let chitchat = chitchat.lock().await;
    hub.apply(observations(&chitchat, auth), Utc::now());
}

fn observations(chitchat: &Chitchat, auth: &Auth) -> Vec<Observation> {
    let live: HashSet<&ChitchatId> = chitchat.live_nodes().collect();
    chitchat
        .node_states()
        .iter()
        .map(|(id, node)| {
            let keys: BTreeMap<String, String> = node
                .key_values()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Observation {
                node_name: id.node_id.to_string(),
                generation: id.generation_id,
                gossip_id: format!(
                    "{}:{}:{}",
                    id.node_id, id.generation_id, id.gossip_advertise_addr
                ),
                alive: live.contains(id),
                heartbeat: node.heartbeat().into(),
                version: node.max_version(),
                verified: auth.verifies(id, &keys),
                keys,
            }
        })
        .collect()
}

/// Signing of this node's announcement and checking of the others', at the
/// edge where chitchat's strings are read.
struct Auth {
    key: Option<GossipKey>,
    /// Bound into every signature: one cluster's announcements do not
    /// verify in another sharing the secret.
    cluster_id: String,
}

impl Auth {
    fn announcer<'a>(&'a self, id: &'a ChitchatId) -> Announcer<'a> {
        Announcer {
            cluster_id: &self.cluster_id,
            node_name: &id.node_id,
            generation: id.generation_id,
        }
    }

    /// `key_values` with the signature appended last, when there is a key.
    fn signed(
        &self,
        id: &ChitchatId,
        mut key_values: Vec<(String, String)>,
    ) -> Vec<(String, String)> {
        if let Some(key) = &self.key {
            let sig = signing::sign(
                key,
                self.announcer(id),
                key_values.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
            key_values.push((signing::SIG.to_string(), sig));
        }
        key_values
    }

    /// Whether the announcement `keys` of node `id` verifies; always true
    /// without a key (unsigned setups trust everyone).
    fn verifies(&self, id: &ChitchatId, keys: &BTreeMap<String, String>) -> bool {
        let Some(key) = &self.key else {
            return true;
        };
        match signing::verify(key, self.announcer(id), keys) {
            Ok(()) => true,
            Err(why) => {
                tracing::trace!(node = %id.node_id, %why, "announcement not verified");
                false
            }
        }
    }
}

/// The address to advertise: the configured one (port 0 meaning the bound
/// port), else the bound one; never an unspecified IP, which peers could not
/// reach.
fn advertise(configured: Option<SocketAddr>, bound: SocketAddr) -> anyhow::Result<SocketAddr> {
    let mut addr = configured.unwrap_or(bound);
    if addr.port() == 0 {
        addr.set_port(bound.port());
    }
    if addr.ip().is_unspecified() {
        bail!("gossip bound to {bound} has no address peers can reach: set gossip_advertise");
    }
    Ok(addr)
}

/// The node's generation: its start time in milliseconds, so a restarted
/// node is newer than its previous life.
fn generation() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertise_resolves_port_zero_and_refuses_unspecified() {
        let bound: SocketAddr = "127.0.0.1:4242".parse().unwrap();
        assert_eq!(advertise(None, bound).unwrap(), bound);
        let configured: SocketAddr = "10.1.2.3:0".parse().unwrap();
        assert_eq!(
            advertise(Some(configured), bound).unwrap(),
            "10.1.2.3:4242".parse::<SocketAddr>().unwrap()
        );
        let any: SocketAddr = "0.0.0.0:4242".parse().unwrap();
        assert!(advertise(None, any).is_err());
        assert_eq!(
            advertise(Some("10.1.2.3:7072".parse().unwrap()), any).unwrap(),
            "10.1.2.3:7072".parse::<SocketAddr>().unwrap()
        );
    }
}
