//! Run creation through the log as a bounded pipeline: planned runs are
//! proposed in chunks, a few chunks at a time, and a chunk whose proposal
//! failed while this node still leads is proposed again.
//!
//! The bound keeps the log's queue short, so a job created through the
//! API waits behind at most a few chunks of runs, and it is what pushes
//! back on the trigger: the chunks waiting here hold their fires' backlog
//! tickets. Proposing a chunk again is safe because a slot's run id comes
//! from (job, slot, shard): a run the first proposal created after all is
//! not created twice, and the dispatcher adopts it (`Chunk::retried`).

use std::{collections::VecDeque, sync::Arc, time::Duration};

use super::core::Planned;
use crate::{backlog::Ticket, fire::FireReply, proposer::ProposeError};

/// Most runs one log entry creates.
pub const CHUNK_RUNS: usize = 1024;
/// Chunks proposed and not yet answered (or waiting to be proposed
/// again). Enough to keep the log busy while one chunk commits and the
/// next replicates; more would only lengthen the queue in front of
/// everything else the log carries.
pub const MAX_IN_FLIGHT: usize = 2;
/// The first wait before a failed chunk is proposed again; it doubles up
/// to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Planned runs proposed together in one `CreateRuns`.
pub struct Chunk {
    pub plans: Vec<Planned>,
    /// A manual trigger waiting for its runs (never more than one chunk).
    pub reply: Option<FireReply>,
    /// The backlog ticket of the fires, shared by their chunks.
    pub ticket: Option<Arc<Ticket>>,
    /// The term the runs were planned in: a chunk never outlives it.
    pub term: u64,
    /// Proposals of this chunk that failed before.
    pub attempts: u32,
}

impl Chunk {
    /// An earlier proposal of it failed without an answer, so runs missing
    /// from this one's outcome may be ones that proposal created.
    pub fn retried(&self) -> bool {
        self.attempts > 0
    }
}

/// What to do with a chunk whose proposal failed.
#[derive(Debug, PartialEq, Eq)]
pub enum AfterFailure {
    /// Propose it again after this wait.
    Retry(Duration),
    /// Give it up: leadership moved on, or the log is shut down. A new
    /// leader fires the slots from the log's cursor.
    GiveUp,
}

/// The chunks waiting for their turn and the count in flight.
pub struct CreationQueue {
    queued: VecDeque<Chunk>,
    in_flight: usize,
    max_in_flight: usize,
    chunk_runs: usize,
}

impl Default for CreationQueue {
    fn default() -> Self {
        Self::new(CHUNK_RUNS, MAX_IN_FLIGHT)
    }
}

impl CreationQueue {
    pub fn new(chunk_runs: usize, max_in_flight: usize) -> Self {
        Self {
            queued: VecDeque::new(),
            in_flight: 0,
            max_in_flight: max_in_flight.max(1),
            chunk_runs: chunk_runs.max(1),
        }
    }

    /// Queues planned runs in chunks, in order.
    pub fn push(
        &mut self,
        mut plans: Vec<Planned>,
        mut reply: Option<FireReply>,
        ticket: Option<Arc<Ticket>>,
        term: u64,
    ) {
        while !plans.is_empty() {
            let rest = plans.split_off(plans.len().min(self.chunk_runs));
            self.queued.push_back(Chunk {
                plans,
                // A manual trigger's runs fit one chunk.
                reply: reply.take(),
                ticket: ticket.clone(),
                term,
                attempts: 0,
            });
            plans = rest;
        }
        if let Some(reply) = reply {
            let _ = reply.send(Ok(Vec::new()));
        }
    }

    /// The next chunk to propose, if the pipeline has room for it.
    pub fn next(&mut self) -> Option<Chunk> {
        if self.in_flight >= self.max_in_flight {
            return None;
        }
        let chunk = self.queued.pop_front()?;
        self.in_flight += 1;
        Some(chunk)
    }

    /// A chunk's proposal was answered (or given up): its place is free.
    pub fn finished(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Decides about a chunk whose proposal failed with `error`, the
    /// dispatcher leading in `term` now. A retried chunk keeps its place
    /// in flight while it waits, so a struggling log is not handed more.
    pub fn after_failure(
        chunk: &mut Chunk,
        error: &ProposeError,
        term: Option<u64>,
    ) -> AfterFailure {
        if term != Some(chunk.term) || *error == ProposeError::Closed {
            return AfterFailure::GiveUp;
        }
        let wait = FIRST_BACKOFF
            .saturating_mul(1 << chunk.attempts.min(10))
            .min(MAX_BACKOFF);
        chunk.attempts += 1;
        AfterFailure::Retry(wait)
    }

    /// Leadership ended: every queued chunk is dropped (its tickets with
    /// it). Chunks in flight are answered and dropped by their term.
    pub fn clear(&mut self) -> Vec<Chunk> {
        self.queued.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{TimeZone, Utc};
    use protocol::TriggerKind;

    use super::*;
    use crate::{
        backlog::Backlog,
        fire::Fire,
        router::{assign, RouterCore},
    };

    fn plans(n: usize) -> Vec<Planned> {
        let job: protocol::Job = protocol::validate::from_json(
            br#"{"id":"j","schedule":"@every 1s","target":{"type":"shell","command":"true"}}"#,
        )
        .expect("job");
        let job = Arc::new(job);
        let mut router = RouterCore::new(1);
        (0..n)
            .flat_map(|i| {
                let slot = Utc.timestamp_opt(1_800_000_000 + i as i64, 0).unwrap();
                let fire = Fire::new(job.key(), slot, TriggerKind::Schedule);
                assign(&mut router, &fire, &job, slot)
            })
            .map(|assignment| Planned {
                assignment,
                hold: false,
            })
            .collect()
    }

    #[test]
    fn runs_go_in_chunks_and_no_more_chunks_are_in_flight_than_allowed() {
        let backlog = Backlog::new(100);
        let ticket = Arc::new(backlog.take(10));
        let mut queue = CreationQueue::new(3, 2);
        queue.push(plans(10), None, Some(ticket), 7);
        let first = queue.next().expect("first chunk");
        let second = queue.next().expect("second chunk");
        assert!(queue.next().is_none(), "two in flight at most");
        assert_eq!((first.plans.len(), second.plans.len()), (3, 3));
        queue.finished();
        let third = queue.next().expect("third chunk");
        queue.finished();
        let fourth = queue.next().expect("fourth chunk");
        assert_eq!((third.plans.len(), fourth.plans.len()), (3, 1));
        assert_eq!(backlog.outstanding(), 10, "the chunks hold the fires");
        drop((first, second, third));
        assert_eq!(backlog.outstanding(), 10);
        drop(fourth);
        assert_eq!(backlog.outstanding(), 0, "the last chunk gives them back");
    }

    #[test]
    fn a_failed_chunk_is_retried_with_growing_waits_while_the_term_lasts() {
        let mut queue = CreationQueue::new(8, 1);
        queue.push(plans(2), None, None, 3);
        let mut chunk = queue.next().expect("chunk");
        let mut waits = Vec::new();
        for _ in 0..8 {
            match CreationQueue::after_failure(&mut chunk, &ProposeError::Timeout, Some(3)) {
                AfterFailure::Retry(wait) => waits.push(wait),
                AfterFailure::GiveUp => panic!("gave up while leading"),
            }
        }
        assert!(chunk.retried());
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert_eq!(waits.last(), Some(&MAX_BACKOFF));
        let not_leader = ProposeError::NotLeader { leader: None };
        assert_eq!(
            CreationQueue::after_failure(&mut chunk, &not_leader, Some(4)),
            AfterFailure::GiveUp,
            "a new term plans afresh"
        );
        assert_eq!(
            CreationQueue::after_failure(&mut chunk, &not_leader, None),
            AfterFailure::GiveUp
        );
        assert_eq!(
            CreationQueue::after_failure(&mut chunk, &ProposeError::Closed, Some(3)),
            AfterFailure::GiveUp
        );
    }

    #[test]
    fn a_manual_trigger_is_answered_even_with_nothing_to_create() {
        let mut queue = CreationQueue::default();
        let (reply, answer) = tokio::sync::oneshot::channel();
        queue.push(Vec::new(), Some(reply), None, 1);
        assert!(queue.next().is_none());
        assert_eq!(answer.blocking_recv().expect("answered"), Ok(Vec::new()));
    }
}
