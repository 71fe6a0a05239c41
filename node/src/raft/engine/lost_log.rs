//! Members that lost their log: a data directory wiped (or a disk replaced)
//! and the node started again with the same id.
//!
//! Raft assumes a member never loses what it acknowledged, and raft-rs
//! treats the two symptoms of such a loss as fatal or as noise:
//!
//! - **On the member:** the leader's heartbeats carry a commit index up to
//!   what it believes the member holds; beyond the member's last entry
//!   raft-rs panics. A heartbeat whose commit lies beyond this node's log
//!   is therefore taken without its commit (it keeps the commit it has);
//!   the appends or the snapshot that follow bring the entries and their
//!   commit, checked as always.
//! - **On the leader:** the member's progress says it holds entries it no
//!   longer has, and raft-rs drops its rejections as stale, so the leader
//!   never sends it anything again. A rejection of an append at or after
//!   the member's matched index, hinting that its log ends below that
//!   index, can only come from a member that lost entries: its progress is
//!   reset to probe from the hint, and the next append (or a snapshot, if
//!   the log no longer holds those entries) restores it. Lowering a
//!   matched index never lowers the commit index, so nothing committed is
//!   undone.

use raft::{
    eraftpb::{Message, MessageType},
    StateRole,
};

use super::Engine;

impl Engine {
    /// Passes `message` on to raft, changed or dropped as the module says.
    pub(super) fn guard_lost_logs(&mut self, mut message: Message) -> Option<Message> {
        match message.get_msg_type() {
            MessageType::MsgHeartbeat => {
                let log = &self.raw.raft.raft_log;
                if message.commit > log.last_index() {
                    tracing::warn!(
                        leader = message.from,
                        commit = message.commit,
                        last_index = log.last_index(),
                        "the leader's commit is beyond this node's log (was its data lost?); \
                         keeping this node's commit until its log catches up"
                    );
                    message.commit = log.committed;
                }
                Some(message)
            }
            MessageType::MsgAppendResponse
                if message.reject && self.raw.raft.state == StateRole::Leader =>
            {
                let from = message.from;
                let progress = self.raw.raft.mut_prs().get_mut(from)?;
                if message.index >= progress.matched && message.reject_hint < progress.matched {
                    tracing::warn!(
                        member = from,
                        matched = progress.matched,
                        its_last_index = message.reject_hint,
                        "a member lost log entries it had acknowledged; sending them again"
                    );
                    progress.matched = message.reject_hint;
                    progress.become_probe();
                    return None;
                }
                Some(message)
            }
            _ => Some(message),
        }
    }
}
