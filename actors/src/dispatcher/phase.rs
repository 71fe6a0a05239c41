//! Where an active run stands, as the leader's dispatcher sees it, and what
//! a send's answer means for it.

use chrono::{DateTime, Utc};

/// The phase of an active run. Every event the dispatcher handles (a slot
/// coming, a send's answer, a move committed, a report, a tick) is one
/// `match` on it in `DispatcherCore`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Created ahead of its slot: sent when the slot comes, not before.
    Waiting,
    /// Queued behind the job's active run (`concurrency = queue`).
    Held,
    /// Every executor that may take it is running its `max_concurrent`
    /// (the run's `pending_reason` says so): it waits at the scheduler, in
    /// slot order, until the router finds room (`asked` while it is being
    /// asked) or its start deadline passes. `pinned`: the one executor it
    /// must go to (a broadcast run).
    AwaitingRoom { pinned: Option<String>, asked: bool },
    /// The router found room on `to`; it goes there once the log records
    /// the placement (a deposed leader's proposal fails, so it places
    /// nothing).
    Placing { to: String, pinned: Option<String> },
    /// Sent to its executor; the answer has not come back.
    Sending,
    /// Tried without an answer that settles it: this node's lease lapsed,
    /// or the request may or may not have reached the executor. It goes to
    /// the same executor again at `resend_at` (an executor starts a run id
    /// once, so a repeat is harmless); it never moves to another executor
    /// on this evidence.
    Unconfirmed { resend_at: DateTime<Utc> },
    /// Its executor certainly did not take it; moving to `to` once the log
    /// records the move (a deposed leader's proposal fails, so it moves
    /// nothing).
    Moving { to: String },
    /// Its executor (or the HTTP target) has it. Recorded `dispatched` at
    /// `record_dispatched_at` unless a report comes first (most runs report
    /// at once, and then one write records both).
    Delivered {
        record_dispatched_at: Option<DateTime<Utc>>,
    },
    /// Its executor was declared dead before it answered. The dispatch may
    /// still sit in its socket, so the run fails over only at `decide_at`,
    /// once that dispatch has expired there; a report before then means
    /// the executor has it after all.
    Lost {
        decide_at: DateTime<Utc>,
        reason: String,
    },
}

impl Phase {
    /// Whether the run counts as the job's active run for its concurrency
    /// policy (a held run is waiting for one).
    pub fn occupies_job(&self) -> bool {
        !matches!(self, Phase::Held)
    }

    /// Whether its executor may have the run, so ending it means killing
    /// it there.
    pub fn maybe_on_executor(&self) -> bool {
        match self {
            Phase::Sending
            | Phase::Unconfirmed { .. }
            | Phase::Delivered { .. }
            | Phase::Lost { .. } => true,
            Phase::Waiting
            | Phase::Held
            | Phase::AwaitingRoom { .. }
            | Phase::Placing { .. }
            | Phase::Moving { .. } => false,
        }
    }

    /// Whether its timeout runs: from the moment it is first sent.
    pub fn has_deadline(&self) -> bool {
        !matches!(
            self,
            Phase::Waiting | Phase::Held | Phase::AwaitingRoom { .. } | Phase::Placing { .. }
        )
    }
}

/// How one send of a run to its executor went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// The executor has the run (started now, or known already).
    Accepted,
    /// Nothing left this node: its lease lapsed and was not renewed, or an
    /// executor said a newer leader exists.
    NotLeading,
    /// The executor certainly does not have it: the connection was never
    /// made, or the executor answered that it would not take it.
    Refused(String),
    /// The executor did not take it because it is running its
    /// `max_concurrent` (its count and this leader's disagreed, e.g. a
    /// killed process still ending there): asked again after a while.
    Busy(String),
    /// The request may have reached the executor: the connection broke or
    /// timed out after it was made, or the answer could not be read.
    Unknown(String),
}
