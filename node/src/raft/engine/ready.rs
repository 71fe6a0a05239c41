//! The ready loop, in the order raft-rs documents, and what it applies:
//! commands into the state machine, membership changes into the transport.

use std::sync::Arc;

use actors::proposer::{Applied, ProposeError};
use protocol::{meta::NodeInfo, MetaCommand};
use raft::eraftpb::{ConfChange, ConfChangeType, ConfChangeV2, Entry, EntryType};

use super::Engine;

impl Engine {
    /// The ready loop, in the order raft-rs documents.
    pub(super) fn on_ready(&mut self) -> anyhow::Result<()> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        // Everything below may write; a write that never finishes (a full
        // disk) shows in the store's write watch.
        let store = self.store.clone();
        let _writing = store.write_watch().begin();
        let mut ready = self.raw.ready();
        // A leader may send before it persists (the followers persist too).
        if !ready.messages().is_empty() {
            self.transport.send(ready.take_messages());
        }
        for read in ready.take_read_states() {
            if self.on_lease_round(&read.request_ctx) {
                continue;
            }
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
            self.install_snapshot(&snapshot)?;
            self.connect_registered_members()?;
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
                    self.apply_conf_change(&cc)?;
                    let added = added_member(&cc);
                    self.register_member(added.clone(), entry.index)?;
                    self.connect_member(&cc, added.as_ref());
                    if let Some(reply) = self
                        .proposal_id(&entry.context)
                        .and_then(|id| self.pending_members.remove(&id))
                    {
                        let _ = reply.send(Ok(()));
                    }
                }
                EntryType::EntryConfChangeV2 => {
                    let cc: ConfChangeV2 = protobuf::Message::parse_from_bytes(&entry.data)?;
                    self.apply_conf_change(&cc)?;
                    self.store.skip_entry(entry.index)?;
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
        let reply = mine.and_then(|id| self.pending.remove(&id));
        // Only the proposing node copies the outcome (its proposer gets its own).
        let shared = match reply {
            Some(p) => {
                let shared = Arc::new(outcome.clone());
                let _ = p.reply.send(Ok(outcome));
                shared
            }
            None => Arc::new(outcome),
        };
        let _ = self.applied.send(Applied {
            index: entry.index,
            cmd: Arc::new(cmd),
            outcome: shared,
        });
        Ok(())
    }

    fn apply_conf_change(&mut self, cc: &impl raft_proto::ConfChangeI) -> anyhow::Result<()> {
        let cs = self.raw.apply_conf_change(cc)?;
        self.storage.set_conf_state(&cs)?;
        tracing::info!(voters = ?cs.voters, learners = ?cs.learners, "membership changed");
        Ok(())
    }

    /// An added member's addresses enter the node registry with the entry
    /// that adds it, so a snapshot taken from then on carries them: a
    /// member that catches up by snapshot can reach every other member
    /// even if one joined moments before and never registered itself.
    fn register_member(&mut self, added: Option<NodeInfo>, index: u64) -> anyhow::Result<()> {
        match added {
            Some(node) => {
                self.store
                    .apply(index, &MetaCommand::RegisterNode { node })?;
            }
            None => self.store.skip_entry(index)?,
        }
        Ok(())
    }

    /// Points the transport at every member the state machine knows the
    /// address of: after a snapshot, the entries that added them are gone.
    fn connect_registered_members(&mut self) -> anyhow::Result<()> {
        let conf = self.storage.conf_state();
        for node in self.store.nodes()? {
            let member =
                conf.voters.contains(&node.node_id) || conf.learners.contains(&node.node_id);
            if !member || node.node_id == self.config.node_id {
                continue;
            }
            match node.raft_addr.parse() {
                Ok(addr) => self.transport.add_peer(node.node_id, addr),
                Err(_) => tracing::warn!(
                    node = node.node_id,
                    "registered member has no valid Raft address"
                ),
            }
        }
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
    fn connect_member(&mut self, cc: &ConfChange, added: Option<&NodeInfo>) {
        match cc.get_change_type() {
            ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                let addr = added.and_then(|n| n.raft_addr.parse().ok());
                match addr {
                    Some(addr) if cc.node_id != self.config.node_id => {
                        self.transport.add_peer(cc.node_id, addr)
                    }
                    Some(_) => {}
                    None => {
                        tracing::warn!(node = cc.node_id, "added member carries no Raft address")
                    }
                }
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

    /// Compacts the log up to the tail behind the applied index (at most
    /// `log_tail` entries and `log_tail_bytes` bytes), checked every
    /// `compact_after` entries and every quarter of `log_tail_bytes`
    /// appended.
    fn maybe_compact(&mut self) -> anyhow::Result<()> {
        // Raft's applied index, not the state machine's: after a crash in
        // the middle of installing a snapshot the state machine is ahead of
        // the log, and the log can only be compacted up to what it holds.
        let applied = self.raw.raft.raft_log.applied;
        let first = raft::Storage::first_index(&self.storage)?;
        self.appended_since_compaction += self.storage.take_appended_bytes();
        // Due once the log outgrew its tail by a step, or once a quarter of
        // the byte budget was appended (large entries).
        let by_entries =
            applied.saturating_sub(self.config.log_tail) >= first + self.config.compact_after;
        let by_bytes = self.appended_since_compaction >= self.config.log_tail_bytes / 4;
        if !by_entries && !by_bytes {
            return Ok(());
        }
        self.appended_since_compaction = 0;
        let by_count = applied.saturating_sub(self.config.log_tail);
        let by_bytes = self
            .storage
            .first_within_bytes(applied, self.config.log_tail_bytes)?
            .saturating_sub(1);
        let up_to = by_count.max(by_bytes);
        if up_to >= first {
            self.storage.compact(up_to)?;
            tracing::info!(up_to, "raft log compacted");
        }
        Ok(())
    }
}

/// The member a conf change adds, with the addresses its entry carries.
fn added_member(cc: &ConfChange) -> Option<NodeInfo> {
    let adds = matches!(
        cc.get_change_type(),
        ConfChangeType::AddNode | ConfChangeType::AddLearnerNode
    );
    adds.then(|| protocol::wire::decode::<NodeInfo>(&cc.context).ok())
        .flatten()
        .filter(|node| node.node_id == cc.node_id)
}
