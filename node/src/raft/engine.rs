//! The Raft engine: one `RawNode` on its own thread, driven by a mailbox of
//! proposals, peer messages and status requests, with the ready loop in the
//! order raft-rs documents. Committed commands are applied to the state
//! machine here and published to the actors that follow the log.

use std::{
    collections::HashMap,
    sync::{mpsc, Arc},
    thread,
    time::{Duration, Instant},
};

use actors::{
    proposer::{Applied, ProposeError, ProposeResult},
    store::StateMachine,
};
use protocol::{meta::NodeInfo, MetaCommand};
use raft::{
    eraftpb::{ConfChange, ConfChangeType, ConfChangeV2, Entry, EntryType, Message},
    RawNode, StateRole,
};
use tokio::sync::{mpsc::UnboundedSender, oneshot, watch};

use super::{
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
    /// Log entries kept behind the applied index before compaction.
    pub compact_after: u64,
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
}

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
}

/// The engine's mailbox and leadership view.
#[derive(Clone)]
pub struct EngineHandle {
    pub node_id: u64,
    pub input: mpsc::Sender<Input>,
    pub leader: watch::Receiver<LeaderState>,
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

    pub async fn status(&self) -> Option<RaftStatus> {
        let (reply, answer) = oneshot::channel();
        self.input.send(Input::Status(reply)).ok()?;
        answer.await.ok()
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
    /// Compact at the next chance, so a member added since gets a snapshot
    /// that carries the whole membership.
    compact_soon: bool,
    next_proposal: u64,
    /// Term of the last applied entry; a leader is ready once it applied
    /// an entry of its own term.
    applied_term: u64,
}

/// Starts the engine thread. `inbound` carries messages from peers.
pub fn spawn(
    config: EngineConfig,
    storage: RaftStorage,
    store: Arc<StateMachine>,
    transport: RaftTransport,
    inbound: mpsc::Receiver<Message>,
    applied: UnboundedSender<Applied>,
) -> anyhow::Result<EngineHandle> {
    let applied_index = store.applied_index()?;
    let node_id = config.node_id;
    let raft_config = raft::Config {
        id: config.node_id,
        election_tick: config.election_ticks,
        heartbeat_tick: config.heartbeat_ticks,
        applied: applied_index,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        check_quorum: true,
        pre_vote: true,
        ..Default::default()
    };
    raft_config.validate()?;
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let raw = RawNode::new(&raft_config, storage.clone(), &logger)?;
    let (input, rx) = mpsc::channel();
    let (leader, leader_rx) = watch::channel(LeaderState::default());
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
        transport,
        applied,
        leader,
        pending: HashMap::new(),
        pending_members: HashMap::new(),
        reads_unconfirmed: HashMap::new(),
        reads_confirmed: Vec::new(),
        reads_term: 0,
        compact_soon: false,
        next_proposal: 1,
        applied_term: 0,
    };
    thread::Builder::new()
        .name("cronmesh-raft".into())
        .spawn(move || engine.run(rx))?;
    Ok(EngineHandle {
        node_id,
        input,
        leader: leader_rx,
    })
}

impl Engine {
    fn run(mut self, rx: mpsc::Receiver<Input>) {
        let mut last_tick = Instant::now();
        loop {
            let wait = self.config.tick.saturating_sub(last_tick.elapsed());
            match rx.recv_timeout(wait) {
                Ok(input) => {
                    self.handle(input);
                    for input in rx.try_iter().take(4096) {
                        self.handle(input);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if last_tick.elapsed() >= self.config.tick {
                self.raw.tick();
                last_tick = Instant::now();
                self.expire_proposals();
            }
            self.report_send_failures();
            if let Err(e) = self.on_ready() {
                // Without durable storage this node must not take part.
                tracing::error!(error = %e, "raft storage failed; stopping the raft engine");
                break;
            }
            self.publish_leadership();
        }
        tracing::info!("raft engine stopped");
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Propose { cmd, reply } => self.propose(cmd, reply),
            Input::ChangeMembers { change, reply } => self.change_members(change, reply),
            Input::ReadIndex(reply) => {
                let id = self.next_proposal;
                self.next_proposal += 1;
                self.raw.read_index(id.to_be_bytes().to_vec());
                self.reads_unconfirmed.insert(id, reply);
            }
            Input::Step(message) => {
                if let Err(e) = self.raw.step(message) {
                    tracing::debug!(error = %e, "raft message ignored");
                }
            }
            Input::Status(reply) => {
                let _ = reply.send(self.status());
            }
        }
    }

    fn propose(&mut self, cmd: MetaCommand, reply: oneshot::Sender<ProposeResult>) {
        let leader = self.raw.raft.leader_id;
        if leader == raft::INVALID_ID {
            let _ = reply.send(Err(ProposeError::NotLeader { leader: None }));
            return;
        }
        let data = match protocol::wire::encode(&cmd) {
            Ok(data) => data,
            Err(e) => {
                let _ = reply.send(Err(ProposeError::Storage(e.to_string())));
                return;
            }
        };
        let id = self.next_proposal;
        self.next_proposal += 1;
        let mut context = self.config.node_id.to_be_bytes().to_vec();
        context.extend_from_slice(&id.to_be_bytes());
        // Followers hand proposals to the leader themselves.
        match self.raw.propose(context, data) {
            Ok(()) => {
                let term = self.raw.raft.term;
                self.pending.insert(
                    id,
                    Pending {
                        reply,
                        since: Instant::now(),
                        term,
                    },
                );
            }
            Err(e) => {
                tracing::debug!(error = %e, "proposal dropped");
                let _ = reply.send(Err(ProposeError::NotLeader {
                    leader: Some(leader),
                }));
            }
        }
    }

    /// Tells raft which peers could not be reached, so it probes them
    /// instead of streaming, and which snapshots were lost, so it resends.
    fn report_send_failures(&mut self) {
        let failures = self.transport.take_send_failures();
        for id in failures.unreachable {
            self.raw.report_unreachable(id);
        }
        for id in failures.snapshot_failed {
            self.raw.report_snapshot(id, raft::SnapshotStatus::Failure);
        }
    }

    fn change_members(&mut self, change: MemberChange, reply: oneshot::Sender<Result<(), String>>) {
        if self.raw.raft.state != StateRole::Leader {
            let _ = reply.send(Err("this node is not the leader".into()));
            return;
        }
        let mut cc = ConfChange::default();
        match &change {
            MemberChange::Add(node) => {
                cc.set_change_type(ConfChangeType::AddNode);
                cc.node_id = node.node_id;
                match protocol::wire::encode(node) {
                    Ok(context) => cc.context = context.into(),
                    Err(e) => {
                        let _ = reply.send(Err(e.to_string()));
                        return;
                    }
                }
            }
            MemberChange::Remove(id) => {
                cc.set_change_type(ConfChangeType::RemoveNode);
                cc.node_id = *id;
            }
        }
        let id = self.next_proposal;
        self.next_proposal += 1;
        let mut context = self.config.node_id.to_be_bytes().to_vec();
        context.extend_from_slice(&id.to_be_bytes());
        match self.raw.propose_conf_change(context, cc) {
            Ok(()) => {
                self.pending_members.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(format!(
                    "the change was refused ({e}); one membership change at a time"
                )));
            }
        }
    }

    /// Answers proposals their commit can no longer answer: too old, or
    /// made in an earlier term (the leader they went to may have dropped
    /// them). Their outcome is unknown; callers retry, and every command
    /// is safe to repeat.
    fn expire_proposals(&mut self) {
        let term = self.raw.raft.term;
        if self.reads_term != term {
            for (_, reply) in self.reads_unconfirmed.drain() {
                let _ = reply.send(Err("leadership changed during the read; retry".into()));
            }
            self.reads_term = term;
        }
        let leader =
            (self.raw.raft.leader_id != raft::INVALID_ID).then_some(self.raw.raft.leader_id);
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.since.elapsed() > PROPOSAL_TTL || p.term < term)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(p) = self.pending.remove(&id) {
                let error = if p.term < term {
                    ProposeError::NotLeader { leader }
                } else {
                    ProposeError::Timeout
                };
                let _ = p.reply.send(Err(error));
            }
        }
    }

    /// The ready loop, in the order raft-rs documents.
    fn on_ready(&mut self) -> anyhow::Result<()> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready = self.raw.ready();
        // A leader may send before it persists (the followers persist too).
        if !ready.messages().is_empty() {
            self.transport.send(ready.take_messages());
        }
        for read in ready.take_read_states() {
            let id = read
                .request_ctx
                .as_slice()
                .try_into()
                .map(u64::from_be_bytes)
                .ok();
            if let Some(reply) = id.and_then(|id| self.reads_unconfirmed.remove(&id)) {
                self.reads_confirmed.push((read.index, reply));
            }
        }
        let mut dirty = false;
        if !ready.snapshot().is_empty() {
            let snapshot = ready.snapshot().clone();
            self.storage.apply_snapshot(&snapshot)?;
            self.store.restore(&snapshot.data)?;
            self.applied_term = snapshot.get_metadata().term;
            tracing::info!(
                index = snapshot.get_metadata().index,
                "installed a snapshot from the leader"
            );
            dirty = true;
        }
        self.apply(ready.take_committed_entries())?;
        if !ready.entries().is_empty() {
            self.storage.append(ready.entries())?;
            dirty = true;
        }
        if let Some(hs) = ready.hs() {
            self.storage.set_hard_state(hs)?;
            dirty = true;
        }
        if dirty {
            let took = self.storage.sync(self.config.durability)?;
            tracing::trace!(micros = took.as_micros() as u64, "raft batch made durable");
        }
        if !ready.persisted_messages().is_empty() {
            self.transport.send(ready.take_persisted_messages());
        }
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.storage.set_commit(commit)?;
        }
        self.transport.send(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();
        self.answer_reads();
        self.maybe_compact()?;
        Ok(())
    }

    fn apply(&mut self, entries: Vec<Entry>) -> anyhow::Result<()> {
        for entry in entries {
            match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => {
                    self.store.skip_entry(entry.index)?
                }
                EntryType::EntryNormal => self.apply_command(&entry)?,
                EntryType::EntryConfChange => {
                    let cc: ConfChange = protobuf::Message::parse_from_bytes(&entry.data)?;
                    self.apply_conf_change(&cc, entry.index)?;
                    self.connect_member(&cc);
                    if let Some(reply) = self
                        .proposal_id(&entry.context)
                        .and_then(|id| self.pending_members.remove(&id))
                    {
                        let _ = reply.send(Ok(()));
                    }
                }
                EntryType::EntryConfChangeV2 => {
                    let cc: ConfChangeV2 = protobuf::Message::parse_from_bytes(&entry.data)?;
                    self.apply_conf_change(&cc, entry.index)?;
                }
            }
            self.applied_term = entry.term;
        }
        Ok(())
    }

    fn apply_command(&mut self, entry: &Entry) -> anyhow::Result<()> {
        let mine = self.proposal_id(&entry.context);
        let cmd: MetaCommand = match protocol::wire::decode(&entry.data) {
            Ok(cmd) => cmd,
            Err(e) => {
                // Every node skips the same undecodable entry the same way.
                tracing::error!(index = entry.index, error = %e, "undecodable log entry skipped");
                self.store.skip_entry(entry.index)?;
                if let Some(p) = mine.and_then(|id| self.pending.remove(&id)) {
                    let _ = p.reply.send(Err(ProposeError::Storage(e.to_string())));
                }
                return Ok(());
            }
        };
        let outcome = self.store.apply(entry.index, &cmd)?;
        if let Some(p) = mine.and_then(|id| self.pending.remove(&id)) {
            let _ = p.reply.send(Ok(outcome.clone()));
        }
        let _ = self.applied.send(Applied {
            index: entry.index,
            cmd: Arc::new(cmd),
            outcome,
        });
        Ok(())
    }

    fn apply_conf_change(
        &mut self,
        cc: &impl raft_proto::ConfChangeI,
        index: u64,
    ) -> anyhow::Result<()> {
        let cs = self.raw.apply_conf_change(cc)?;
        self.storage.set_conf_state(&cs)?;
        self.store.skip_entry(index)?;
        tracing::info!(voters = ?cs.voters, learners = ?cs.learners, "membership changed");
        Ok(())
    }

    /// Answers the confirmed reads this node has now applied far enough for.
    fn answer_reads(&mut self) {
        let applied = self.raw.raft.raft_log.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads_confirmed)
            .into_iter()
            .partition(|(index, _)| *index <= applied);
        self.reads_confirmed = waiting;
        for (_, reply) in ready {
            let _ = reply.send(Ok(()));
        }
    }

    /// Points the transport at an added member, or away from a removed one.
    fn connect_member(&mut self, cc: &ConfChange) {
        match cc.get_change_type() {
            ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                let node: Option<NodeInfo> = protocol::wire::decode(&cc.context).ok();
                let addr = node.and_then(|n| n.raft_addr.parse().ok());
                match addr {
                    Some(addr) if cc.node_id != self.config.node_id => {
                        self.transport.add_peer(cc.node_id, addr)
                    }
                    Some(_) => {}
                    None => {
                        tracing::warn!(node = cc.node_id, "added member carries no Raft address")
                    }
                }
                self.compact_soon = true;
            }
            ConfChangeType::RemoveNode => self.transport.remove_peer(cc.node_id),
        }
    }

    /// The proposal id in an entry's context, when this node proposed it.
    fn proposal_id(&self, context: &[u8]) -> Option<u64> {
        let (node, id) = context.split_first_chunk::<8>()?;
        let id: [u8; 8] = id.try_into().ok()?;
        (u64::from_be_bytes(*node) == self.config.node_id).then(|| u64::from_be_bytes(id))
    }

    fn maybe_compact(&mut self) -> anyhow::Result<()> {
        let applied = self.store.applied_index()?;
        let first = raft::Storage::first_index(&self.storage)?;
        let due = applied >= first + self.config.compact_after;
        let for_new_member = std::mem::take(&mut self.compact_soon) && applied >= first;
        if due || for_new_member {
            self.storage.compact(applied)?;
            tracing::info!(up_to = applied, "raft log compacted");
        }
        Ok(())
    }

    fn publish_leadership(&mut self) {
        let raft = &self.raw.raft;
        let leader_id = (raft.leader_id != raft::INVALID_ID).then_some(raft.leader_id);
        let state = LeaderState {
            leader_id,
            term: raft.term,
            ready_to_lead: raft.state == StateRole::Leader && self.applied_term == raft.term,
        };
        self.leader.send_if_modified(|current| {
            if *current == state {
                return false;
            }
            tracing::info!(leader = ?state.leader_id, term = state.term, ready = state.ready_to_lead, "leadership changed");
            *current = state;
            true
        });
    }

    fn status(&self) -> RaftStatus {
        let raft = &self.raw.raft;
        let mut progress: Vec<(u64, u64, u64)> = raft
            .prs()
            .iter()
            .map(|(id, pr)| (*id, pr.matched, pr.next_idx))
            .collect();
        progress.sort();
        RaftStatus {
            node_id: self.config.node_id,
            leader_id: (raft.leader_id != raft::INVALID_ID).then_some(raft.leader_id),
            term: raft.term,
            role: format!("{:?}", raft.state).to_lowercase(),
            commit_index: raft.raft_log.committed,
            applied_index: raft.raft_log.applied,
            log_start_index: raft::Storage::first_index(&self.storage).unwrap_or_default(),
            voters: self.storage.conf_state().voters,
            progress,
        }
    }
}
