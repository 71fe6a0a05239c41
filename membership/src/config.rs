//! [`MembershipConfig`]: where this node gossips, whom it asks first, and
//! how quickly a silent peer is declared dead.

use std::net::SocketAddr;
use std::time::Duration;

use crate::signing::GossipKey;

/// Default gossip cluster id: nodes of different clusters ignore each other.
pub const DEFAULT_CLUSTER_ID: &str = "cronmesh";
/// Default gossip round period.
pub const DEFAULT_GOSSIP_INTERVAL: Duration = Duration::from_millis(200);
/// Default phi threshold of the failure detector (see
/// [`MembershipConfig::phi_threshold`]).
pub const DEFAULT_PHI_THRESHOLD: f64 = 10.0;
/// Default time dead members are remembered.
pub const DEFAULT_DEAD_GRACE: Duration = Duration::from_secs(10 * 60);

/// How a node joins the gossip cluster.
#[derive(Clone, Debug)]
pub struct MembershipConfig {
    /// Unique per process (`executor-127.0.0.1:7080`, `scheduler-1`): chitchat
    /// identifies nodes by it. Keep it stable across restarts of the same
    /// node, so a restart is seen as the same member coming back (an
    /// `Updated`) rather than a new one plus a dead one.
    pub node_name: String,
    /// UDP address to bind. Port 0 binds any free port;
    /// [`crate::Membership::gossip_addr`] reports the one bound.
    pub gossip_listen: SocketAddr,
    /// Address peers should gossip to, when it differs from the bound one
    /// (NAT, containers, `0.0.0.0` binds). Port 0 means the bound port.
    /// Required when `gossip_listen` has an unspecified IP.
    pub gossip_advertise: Option<SocketAddr>,
    /// Gossip addresses (`IP:PORT` or `host:port`, re-resolved every minute)
    /// of nodes to contact first. Listing this node's own address is fine.
    pub seeds: Vec<String>,
    /// Nodes only talk to nodes of the same cluster id, so two clusters
    /// sharing a network do not merge.
    pub cluster_id: String,
    /// Period of gossip rounds. Each round bumps this node's heartbeat and
    /// exchanges state with up to three live peers, so it bounds both
    /// propagation delay and the detection time.
    pub gossip_interval: Duration,
    /// Failure detector threshold. chitchat's phi is the silence since the
    /// last heartbeat divided by the mean heartbeat interval observed, so a
    /// peer is declared dead after about `phi_threshold` mean intervals
    /// without news. Peers hear each other's heartbeats several times per
    /// gossip round. With 200 ms rounds, 10 declares a dead peer in 1.2 s
    /// (3 nodes) to 1.6 s (8 nodes) on loopback and rides out a peer frozen
    /// for 0.8 s; 8 is 0.2-0.3 s faster but flags a peer frozen for 0.8 s
    /// (measurements in the crate docs).
    pub phi_threshold: f64,
    /// How long dead members are kept (listed as dead, for the console and
    /// for failing their runs over) before being forgotten. Chitchat stops
    /// gossiping about them after half of it.
    pub dead_grace: Duration,
    /// The key that signs this node's announcement and checks everyone
    /// else's, derived from the cluster secret ([`GossipKey::from_secret`]).
    /// `None` (a test setup on a trusted network, `--unsigned`): nothing is
    /// signed and every member counts as verified.
    pub gossip_key: Option<GossipKey>,
}

impl MembershipConfig {
    /// A config with the defaults: cluster `cronmesh`, no seeds, 200 ms
    /// rounds, phi 10, dead members kept 10 minutes, no gossip key.
    pub fn new(node_name: impl Into<String>, gossip_listen: SocketAddr) -> Self {
        MembershipConfig {
            node_name: node_name.into(),
            gossip_listen,
            gossip_advertise: None,
            seeds: Vec::new(),
            cluster_id: DEFAULT_CLUSTER_ID.to_string(),
            gossip_interval: DEFAULT_GOSSIP_INTERVAL,
            phi_threshold: DEFAULT_PHI_THRESHOLD,
            dead_grace: DEFAULT_DEAD_GRACE,
            gossip_key: None,
        }
    }

    /// Short timings for tests: binds `127.0.0.1:0`, gossips every 100 ms
    /// (joins and updates propagate twice as fast), and forgets dead members
    /// after 30 s. Phi 20 keeps the production margin against false alarms
    /// (a peer frozen for 0.8 s stays alive) and declares a dead node in
    /// about 1 s.
    #[cfg(feature = "testsuite")]
    pub fn fast_for_tests(node_name: impl Into<String>) -> Self {
        let mut config = Self::new(node_name, ([127, 0, 0, 1], 0).into());
        config.gossip_interval = Duration::from_millis(100);
        config.phi_threshold = 20.0;
        config.dead_grace = Duration::from_secs(30);
        config
    }

    /// Signs and checks announcements with the gossip key of `secret`.
    pub fn with_secret(mut self, secret: &[u8]) -> Self {
        self.gossip_key = Some(GossipKey::from_secret(secret));
        self
    }

    /// Sets the seeds.
    pub fn with_seeds<I, S>(mut self, seeds: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: ToString,
    {
        self.seeds = seeds.into_iter().map(|s| s.to_string()).collect();
        self
    }
}
