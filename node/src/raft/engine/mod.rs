//! The Raft engine: one `RawNode` on its own thread, driven by a mailbox of
//! proposals, peer messages and status requests, with the ready loop in the
//! order raft-rs documents. Committed commands are applied to the state
//! machine here and published to the actors that follow the log.
//!
//! - `driver`: the thread's loop, proposals, membership, leadership, status.
//! - `ready`: the ready loop and what it applies.
//! - `install`: installing a snapshot the leader sent, crash-safely.
//! - `lost_log`: members that lost their log (a wiped data directory).
//! - `lease`: the leader lease rounds and step-down.

mod driver;
mod install;
mod lease;
mod lost_log;
mod ready;

use std::{
    collections::HashMap,
    sync::{mpsc, Arc},
    thread,
    time::{Duration, Instant},
};

use actors::{
    lease::Lease,
    proposer::{Applied, ProposeResult},
    store::StateMachine,
};
use protocol::{meta::NodeInfo, MetaCommand};
use raft::{eraftpb::Message, RawNode};
use tokio::sync::{mpsc::UnboundedSender, oneshot, watch};

use super::{
    snapshot::builder::SnapshotBuilder,
    storage::{Durability, RaftStorage},
    transport::RaftTransport,
};

/// Timings and limits of the engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub node_id: u64,
    /// One raft tick.
    pub tick: Duration,
    /// Ticks without a heartbeat before a follower campaigns (randomized up to twice this).
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    /// What makes a Ready batch durable before it is acknowledged.
    pub durability: Durability,
    /// Compaction runs once this many entries beyond the tail were applied.
    pub compact_after: u64,
    /// Entries kept behind the applied index when the log is compacted.
    pub log_tail: u64,
    /// Most bytes of entries kept behind the applied index.
    pub log_tail_bytes: u64,
}

impl EngineConfig {
    pub fn new(node_id: u64) -> Self {
        Self {
            node_id,
            tick: Duration::from_millis(50),
            election_ticks: 10,
            heartbeat_ticks: 2,
            durability: Durability::Flush,
            compact_after: 10_000,
            log_tail: crate::config::DEFAULT_LOG_TAIL,
            log_tail_bytes: crate::config::DEFAULT_LOG_TAIL_BYTES,
        }
    }
}

/// A change of the Raft group's voters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberChange {
    /// Add a voter; its addresses travel with the change so every member
    /// can reach it at once.
    Add(NodeInfo),
    Remove(u64),
}

/// What the engine thread is asked to do.
pub enum Input {
    Propose {
        cmd: MetaCommand,
        reply: oneshot::Sender<ProposeResult>,
    },
    ChangeMembers {
        change: MemberChange,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// A linearizable read: answered once this node has applied everything
    /// the leader had committed when the read arrived (Raft read-index).
    ReadIndex(oneshot::Sender<Result<(), String>>),
    Step(Message),
    Status(oneshot::Sender<RaftStatus>),
    /// Hand leadership to the most caught-up other voter; answers whom it
    /// asked, or why it could not (not the leader, no other voter).
    TransferLeadership(oneshot::Sender<Result<u64, String>>),
}

/// The answer to a transfer asked of a node that does not lead.
pub(crate) const NOT_LEADING: &str = "this node does not lead";

/// How long a status request waits for the engine thread.
const STATUS_WAIT: Duration = Duration::from_secs(2);

/// Who leads, as this node sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderState {
    pub leader_id: Option<u64>,
    pub term: u64,
    /// This node leads and has applied every entry committed before its
    /// term began, so its view of jobs and runs is complete.
    pub ready_to_lead: bool,
}

/// A snapshot of the engine's state for `GET /v1/cluster`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RaftStatus {
    pub node_id: u64,
    pub leader_id: Option<u64>,
    pub term: u64,
    pub role: String,
    pub commit_index: u64,
    pub applied_index: u64,
    pub log_start_index: u64,
    pub voters: Vec<u64>,
    /// (node id, matched index, next index) as the leader tracks them.
    pub progress: Vec<(u64, u64, u64)>,
    /// Snapshots built, sent, received and installed since the start.
    pub snapshots: protocol::api::SnapshotCounters,
    /// What the transport's authentication refused since the start.
    pub raft_auth: protocol::api::RaftAuthCounters,
    /// The Raft address of this node and of every peer the transport
    /// knows, registered in the log or not: a node joining through this
    /// one needs them before any member's registration has committed.
    pub raft_addrs: Vec<(u64, std::net::SocketAddr)>,
}

/// The engine's mailbox and leadership view.
#[derive(Clone)]
pub struct EngineHandle {
    pub node_id: u64,
    pub input: mpsc::Sender<Input>,
    pub leader: watch::Receiver<LeaderState>,
    /// What every action with side effects confirms before it leaves.
    pub lease: Arc<Lease>,
    /// The node's Raft transport, for the checks a new member must pass
    /// before it is added.
    pub transport: RaftTransport,
}

impl EngineHandle {
    /// Adds or removes a voter; resolves once the change is applied here.
    pub async fn change_members(&self, change: MemberChange) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.input
            .send(Input::ChangeMembers { change, reply })
            .map_err(|_| "the raft engine stopped".to_string())?;
        match tokio::time::timeout(Duration::from_secs(10), answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the raft engine stopped".into()),
            Err(_) => Err("the membership change was not committed in time".into()),
        }
    }

    /// Waits until this node's state is at least as new as the leader's
    /// commit at the time of the call (read-index).
    pub async fn read_index(&self) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.input
            .send(Input::ReadIndex(reply))
            .map_err(|_| "the raft engine stopped".to_string())?;
        match tokio::time::timeout(Duration::from_secs(5), answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the raft engine stopped".into()),
            Err(_) => Err("the leader did not confirm its commit index in time".into()),
        }
    }

    /// Hands leadership over before this node stops, and resolves once
    /// another node leads (or `limit` passes). `Ok(None)`: this node was
    /// not leading, nothing to hand over.
    pub async fn transfer_leadership(&self, limit: Duration) -> Result<Option<u64>, String> {
        let (reply, answer) = oneshot::channel();
        self.input
            .send(Input::TransferLeadership(reply))
            .map_err(|_| "the raft engine stopped".to_string())?;
        // An engine stuck in a write does not answer at all.
        let transferee = match tokio::time::timeout(limit, answer).await {
            Ok(Ok(Ok(id))) => id,
            Ok(Ok(Err(why))) if why == NOT_LEADING => return Ok(None),
            Ok(Ok(Err(why))) => return Err(why),
            Ok(Err(_)) => return Err("the raft engine stopped".into()),
            Err(_) => return Err("the raft engine did not answer".into()),
        };
        let mut leader = self.leader.clone();
        let me = self.node_id;
        let moved = async move {
            leader
                .wait_for(|l| l.leader_id.is_some_and(|id| id != me))
                .await
                .map(|_| ())
        };
        match tokio::time::timeout(limit, moved).await {
            Ok(Ok(())) => Ok(Some(transferee)),
            Ok(Err(_)) => Err("the raft engine stopped".into()),
            Err(_) => Err(format!(
                "node {transferee} did not take over within {limit:?}"
            )),
        }
    }

    /// The engine's state; `None` if it stopped or does not answer within
    /// [`STATUS_WAIT`] (its thread is stuck in a write that does not
    /// finish, as on a full disk), so that health checks still answer.
    pub async fn status(&self) -> Option<RaftStatus> {
        let (reply, answer) = oneshot::channel();
        self.input.send(Input::Status(reply)).ok()?;
        tokio::time::timeout(STATUS_WAIT, answer).await.ok()?.ok()
    }
}

/// A proposal waiting for its entry to be applied.
struct Pending {
    reply: oneshot::Sender<ProposeResult>,
    since: Instant,
    /// The term it was proposed in: a proposal forwarded to a leader that
    /// lost its term may have been dropped without a word.
    term: u64,
}

/// Most bytes of committed entries one Ready hands over to apply (about
/// three chunks of created runs).
const MAX_APPLY_PER_READY: u64 = 1024 * 1024;
/// Pending proposals older than this are answered with a timeout.
const PROPOSAL_TTL: Duration = Duration::from_secs(30);

struct Engine {
    config: EngineConfig,
    raw: RawNode<RaftStorage>,
    storage: RaftStorage,
    store: Arc<StateMachine>,
    transport: RaftTransport,
    applied: UnboundedSender<Applied>,
    leader: watch::Sender<LeaderState>,
    /// Proposals of this node by their context id.
    pending: HashMap<u64, Pending>,
    /// Membership changes of this node by their context id.
    pending_members: HashMap<u64, oneshot::Sender<Result<(), String>>>,
    /// Reads waiting for the leader to confirm an index, by context id.
    reads_unconfirmed: HashMap<u64, oneshot::Sender<Result<(), String>>>,
    /// The term the unconfirmed reads were asked in; a new term drops them.
    reads_term: u64,
    /// Reads waiting for this node to apply up to an index.
    reads_confirmed: Vec<(u64, oneshot::Sender<Result<(), String>>)>,
    /// Builds the snapshots this node sends; knows where received ones
    /// wait to be installed.
    snapshots: Arc<SnapshotBuilder>,
    /// Snapshots installed since the start.
    installed_snapshots: u64,
    /// Bytes appended to the log since compaction was last looked at.
    appended_since_compaction: u64,
    next_proposal: u64,
    /// Term of the last applied entry; a leader is ready once it applied
    /// an entry of its own term.
    applied_term: u64,
    /// Granted while this node is a ready leader confirmed by a quorum.
    lease: Arc<Lease>,
    lease_rounds: lease::LeaseRounds,
}

/// Starts the engine thread. `inbound` carries messages from peers.
pub fn spawn(
    config: EngineConfig,
    storage: RaftStorage,
    store: Arc<StateMachine>,
    transport: RaftTransport,
    inbound: mpsc::Receiver<Message>,
    applied: UnboundedSender<Applied>,
    snapshots: Arc<SnapshotBuilder>,
) -> anyhow::Result<EngineHandle> {
    // Committed entries are applied before the Ready that carries their
    // commit index is persisted, so after a crash the state machine may be
    // ahead of the stored commit. Raft starts from the stored commit and
    // hands those entries over again; the state machine skips what it has.
    let applied_index = store.applied_index()?.min(storage.hard_state().commit);
    let node_id = config.node_id;
    let raft_config = raft::Config {
        id: config.node_id,
        election_tick: config.election_ticks,
        heartbeat_tick: config.heartbeat_ticks,
        applied: applied_index,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        // Applying is done on this thread: a Ready hands over at most this
        // much to apply, so ticks, heartbeats and the lease go on between
        // the parts of a large backlog instead of after all of it.
        max_committed_size_per_ready: MAX_APPLY_PER_READY,
        check_quorum: true,
        pre_vote: true,
        ..Default::default()
    };
    raft_config.validate()?;
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let raw = RawNode::new(&raft_config, storage.clone(), &logger)?;
    let (input, rx) = mpsc::channel();
    let (leader, leader_rx) = watch::channel(LeaderState::default());
    let lease = Arc::new(Lease::new());
    let forward = input.clone();
    thread::Builder::new()
        .name("cronmesh-raft-inbound".into())
        .spawn(move || {
            for message in inbound {
                if forward.send(Input::Step(message)).is_err() {
                    break;
                }
            }
        })?;
    let engine = Engine {
        config,
        raw,
        storage,
        store,
        transport: transport.clone(),
        applied,
        leader,
        pending: HashMap::new(),
        pending_members: HashMap::new(),
        reads_unconfirmed: HashMap::new(),
        reads_confirmed: Vec::new(),
        reads_term: 0,
        snapshots,
        installed_snapshots: 0,
        appended_since_compaction: 0,
        next_proposal: 1,
        applied_term: 0,
        lease: lease.clone(),
        lease_rounds: lease::LeaseRounds::default(),
    };
    thread::Builder::new()
        .name("cronmesh-raft".into())
        .spawn(move || engine.run(rx))?;
    Ok(EngineHandle {
        node_id,
        input,
        leader: leader_rx,
        lease,
        transport,
    })
}
