//! The engine thread's loop: the mailbox, ticks, proposals, membership
//! changes, leadership and status.

use std::{sync::mpsc, time::Instant};

use actors::{
    proposer::{ProposeError, ProposeResult},
    store::write_watch::{is_out_of_space, WriteFailure},
};
use protocol::MetaCommand;
use raft::{
    eraftpb::{ConfChange, ConfChangeType},
    StateRole,
};
use tokio::sync::oneshot;

use super::{Engine, Input, LeaderState, MemberChange, Pending, RaftStatus, PROPOSAL_TTL};

impl Engine {
    pub(super) fn run(mut self, rx: mpsc::Receiver<Input>) {
        let mut last_tick = Instant::now();
        loop {
            // Committed entries left over from the last Ready (see
            // `MAX_APPLY_PER_READY`) are applied without waiting for input.
            let wait = if self.raw.has_ready() {
                std::time::Duration::ZERO
            } else {
                self.config.tick.saturating_sub(last_tick.elapsed())
            };
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
            self.tend_lease();
            if let Err(e) = self.on_ready() {
                // Without durable storage this node must not take part; the
                // disk monitor sees the failure (and, if the disk was full,
                // starts the node over once there is room).
                tracing::error!(error = %e, "raft storage failed; stopping the raft engine");
                self.store.write_watch().failed(WriteFailure {
                    error: format!("{e:#}"),
                    out_of_space: out_of_space(&e),
                });
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
                let Some(message) = self.guard_lost_logs(message) else {
                    return;
                };
                if let Err(e) = self.raw.step(message) {
                    tracing::debug!(error = %e, "raft message ignored");
                }
            }
            Input::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Input::TransferLeadership(reply) => {
                let _ = reply.send(self.transfer_leadership());
            }
        }
    }

    /// Asks the voter with the longest log to take over: it needs the
    /// least catching up, so the cluster is without a leader the shortest.
    fn transfer_leadership(&mut self) -> Result<u64, String> {
        let raft = &self.raw.raft;
        if raft.state != StateRole::Leader {
            return Err(super::NOT_LEADING.into());
        }
        let me = self.config.node_id;
        let voters = self.storage.conf_state().voters;
        let transferee = raft
            .prs()
            .iter()
            .filter(|(id, _)| **id != me && voters.contains(id))
            .max_by_key(|(id, pr)| (pr.matched, std::cmp::Reverse(**id)))
            .map(|(id, _)| *id)
            .ok_or_else(|| "no other voter to hand leadership to".to_string())?;
        tracing::info!(to = transferee, "handing leadership over before stopping");
        // The transferee campaigns at once, without waiting out any lease.
        self.lease.revoke();
        self.raw.transfer_leader(transferee);
        Ok(transferee)
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
        for id in failures.snapshot_finished {
            self.raw.report_snapshot(id, raft::SnapshotStatus::Finish);
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
        let mut raft_addrs = self.transport.peer_addrs();
        raft_addrs.push((self.config.node_id, self.transport.local_addr()));
        raft_addrs.sort();
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
            snapshots: self.snapshot_counters(),
            raft_auth: self.auth_counters(),
            raft_addrs,
        }
    }

    fn auth_counters(&self) -> protocol::api::RaftAuthCounters {
        let stats = self.transport.stats();
        protocol::api::RaftAuthCounters {
            handshakes_refused: stats.handshakes_refused,
            handshake_failures: stats.handshake_failures,
            dropped_wrong_sender: stats.dropped_wrong_sender,
        }
    }

    fn snapshot_counters(&self) -> protocol::api::SnapshotCounters {
        let sent = self.transport.stats();
        protocol::api::SnapshotCounters {
            built: self.snapshots.builds(),
            sent: sent.snapshots_sent,
            send_failures: sent.snapshot_send_failures,
            received: sent.snapshots_received,
            installed: self.installed_snapshots,
        }
    }
}

/// Whether a storage failure of the ready loop came from a full disk: an
/// I/O error for want of space anywhere in its chain (sled's errors are
/// sometimes carried as text, which is read too).
fn out_of_space(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(is_out_of_space)
            || matches!(cause.downcast_ref::<sled::Error>(), Some(sled::Error::Io(io)) if is_out_of_space(io))
            || {
                let text = cause.to_string();
                text.contains("No space left on device") || text.contains("Disk quota exceeded")
            }
    })
}
