//! How the engine grants the leader lease (`actors::lease`): every
//! heartbeat interval a leader sends a read-index round stamped with the
//! lease clock; once a quorum has answered it, the lease runs until the
//! stamp plus [`EngineConfig::lease_duration`]. A follower that answered
//! heard from this leader after the stamp, and raft-rs (with
//! `check_quorum`) makes it refuse any vote for the next election timeout
//! of its own ticks, so no other leader can exist before the lease ends.
//!
//! The lease ends early whenever this node stops leading, changes term or
//! hands leadership over, and the engine steps down when an executor says
//! it has seen a newer term.

use std::{collections::BTreeMap, time::Duration};

use actors::lease;
use raft::StateRole;

use super::{Engine, EngineConfig};

/// The first byte of a lease round's read-index context; user reads carry
/// a bare 8-byte id.
const LEASE_CONTEXT: u8 = b'L';

/// Lease rounds in flight.
#[derive(Default)]
pub(super) struct LeaseRounds {
    /// Rounds by id: the term they were sent in and when, on the lease clock.
    sent: BTreeMap<u64, (u64, Duration)>,
    next_id: u64,
    last_sent: Option<Duration>,
    /// When the engine's loop last ran, to notice it was frozen.
    last_loop: Option<Duration>,
}

impl EngineConfig {
    /// How long a quorum's answer keeps the lease. A follower resets its
    /// election clock when it hears from the leader and refuses votes until
    /// `election_ticks` ticks later; its first tick may come at once, so
    /// only `election_ticks - 1` whole ticks are certain. A tenth of that
    /// is left for clock-rate drift between machines and for scheduling.
    pub fn lease_duration(&self) -> Duration {
        let certain = self.tick * (self.election_ticks.saturating_sub(1) as u32);
        certain.mul_f64(0.9)
    }

    /// How often a leader starts a lease round: once a heartbeat.
    fn lease_interval(&self) -> Duration {
        self.tick * self.heartbeat_ticks.max(1) as u32
    }
}

impl Engine {
    /// Starts a lease round when one is due, and keeps the lease in step
    /// with this node's role: revoked the moment it is not a ready leader
    /// of the lease's term. Called once per loop turn.
    pub(super) fn tend_lease(&mut self) {
        let now = lease::now();
        if let Some(last) = self.lease_rounds.last_loop.replace(now) {
            let gap = now.saturating_sub(last);
            if gap > self.config.lease_duration() && self.raw.raft.state == StateRole::Leader {
                tracing::warn!(
                    frozen_ms = gap.as_millis() as u64,
                    "the raft thread did not run for longer than the leader lease; \
                     nothing leaves this node until a quorum confirms it still leads"
                );
            }
        }
        self.step_down_if_superseded();
        let raft = &self.raw.raft;
        let leads = raft.state == StateRole::Leader
            && raft.lead_transferee.is_none()
            && self.applied_term == raft.term;
        let grant = self.lease.current();
        if grant.term != 0 && (!leads || grant.term != raft.term) {
            self.lease.revoke();
        }
        if !leads {
            self.lease_rounds.sent.clear();
            self.lease_rounds.last_sent = None;
            return;
        }
        let due = self
            .lease_rounds
            .last_sent
            .is_none_or(|at| now.saturating_sub(at) >= self.config.lease_interval());
        if !due {
            return;
        }
        let rounds = &mut self.lease_rounds;
        let id = rounds.next_id;
        rounds.next_id += 1;
        rounds.last_sent = Some(now);
        rounds.sent.insert(id, (raft.term, now));
        // Rounds never answered (lost heartbeats) go once they could no
        // longer extend the lease.
        let stale = now.saturating_sub(self.config.lease_duration());
        rounds.sent.retain(|_, (_, at)| *at >= stale);
        let mut context = vec![LEASE_CONTEXT];
        context.extend_from_slice(&id.to_be_bytes());
        self.raw.read_index(context);
    }

    /// A read state came back; returns whether it was a lease round (and
    /// then extends the lease if it still can).
    pub(super) fn on_lease_round(&mut self, context: &[u8]) -> bool {
        let Some((&LEASE_CONTEXT, id)) = context.split_first() else {
            return false;
        };
        let Ok(id) = <[u8; 8]>::try_from(id).map(u64::from_be_bytes) else {
            return false;
        };
        let Some((term, sent)) = self.lease_rounds.sent.remove(&id) else {
            return true;
        };
        // Earlier rounds can only give a shorter lease.
        self.lease_rounds.sent.retain(|earlier, _| *earlier > id);
        let raft = &self.raw.raft;
        if raft.state == StateRole::Leader && raft.lead_transferee.is_none() && raft.term == term {
            self.lease.extend(term, sent + self.config.lease_duration());
        }
        true
    }

    /// An executor refused this node for a term newer than its own: another
    /// node leads. Step down at once instead of waiting to hear of it. The
    /// term itself is not adopted: it comes from outside the Raft group.
    fn step_down_if_superseded(&mut self) {
        let newer = self.lease.take_superseded();
        let raft = &mut self.raw.raft;
        if newer > raft.term && raft.state == StateRole::Leader {
            tracing::warn!(
                term = raft.term,
                newer,
                "an executor has seen a newer leader term; stepping down"
            );
            let term = raft.term;
            raft.become_follower(term, raft::INVALID_ID);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_is_shorter_than_the_certain_part_of_an_election_timeout() {
        let config = EngineConfig::new(1);
        let election = config.tick * config.election_ticks as u32;
        let lease = config.lease_duration();
        assert!(lease < election - config.tick, "{lease:?} vs {election:?}");
        assert!(
            lease > config.lease_interval() * 2,
            "renewed several times per lease"
        );
    }
}
