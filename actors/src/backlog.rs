//! Backpressure between the Trigger and the log: how many fires the
//! trigger has handed over whose runs are not created yet.
//!
//! The trigger takes a [`Ticket`] for every batch of fires it hands to the
//! Router; the ticket travels with the fires (Router, Dispatcher, the
//! creation proposals) and gives its fires back when it is dropped, which
//! is when the last of their runs was created or given up on. The trigger
//! hands over no more than [`Backlog::room`] fires: a job whose slot came
//! while there was no room stays in the trigger's own queue (one entry per
//! job, so that queue never grows with time) and fires late, in order,
//! instead of piling up in mailboxes, proposals and memory.

use std::sync::{
    atomic::{AtomicI64, AtomicUsize, Ordering},
    Arc,
};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

/// Fires handed over and not yet created, shared by the trigger (which
/// takes) and the tickets (which give back).
#[derive(Clone)]
pub struct Backlog {
    inner: Arc<Inner>,
}

struct Inner {
    /// Fires handed over whose runs are not created yet.
    outstanding: AtomicUsize,
    /// Most fires outstanding at once.
    limit: usize,
    /// Woken when a ticket gives fires back.
    freed: Notify,
    /// Since when (Unix milliseconds) the earliest fire still in the
    /// trigger has been due; 0 while the trigger is not behind.
    behind_since_ms: AtomicI64,
}

impl Backlog {
    /// Fires the trigger may have outstanding unless configured otherwise:
    /// a few creation proposals' worth, so the log always has the next
    /// chunk ready without holding more than a second of a large cluster.
    pub const DEFAULT_LIMIT: usize = 16_384;

    pub fn new(limit: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                outstanding: AtomicUsize::new(0),
                limit: limit.max(1),
                freed: Notify::new(),
                behind_since_ms: AtomicI64::new(0),
            }),
        }
    }

    /// How many more fires may be handed over now.
    pub fn room(&self) -> usize {
        self.inner
            .limit
            .saturating_sub(self.inner.outstanding.load(Ordering::Acquire))
    }

    /// Fires handed over and not yet created.
    pub fn outstanding(&self) -> usize {
        self.inner.outstanding.load(Ordering::Acquire)
    }

    /// Counts `fires` as handed over until the ticket is dropped.
    pub fn take(&self, fires: usize) -> Ticket {
        self.inner.outstanding.fetch_add(fires, Ordering::AcqRel);
        Ticket {
            inner: self.inner.clone(),
            fires,
        }
    }

    /// The trigger notes the earliest fire it holds back for want of room
    /// (`None`: it holds none back).
    pub fn set_behind_since(&self, since: Option<DateTime<Utc>>) {
        let ms = since.map_or(0, |t| t.timestamp_millis().max(1));
        self.inner.behind_since_ms.store(ms, Ordering::Release);
    }

    /// How long the earliest fire held back has been due, at `now`.
    pub fn behind(&self, now: DateTime<Utc>) -> std::time::Duration {
        match self.inner.behind_since_ms.load(Ordering::Acquire) {
            0 => std::time::Duration::ZERO,
            ms => u64::try_from(now.timestamp_millis().saturating_sub(ms))
                .map(std::time::Duration::from_millis)
                .unwrap_or_default(),
        }
    }

    /// Resolves once some ticket gave its fires back after the call (or
    /// had done so since the last wait: a give-back is never missed).
    pub async fn freed(&self) {
        self.inner.freed.notified().await
    }
}

/// Fires counted as outstanding until this is dropped.
pub struct Ticket {
    inner: Arc<Inner>,
    fires: usize,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("fires", &self.fires)
            .finish()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.inner
            .outstanding
            .fetch_sub(self.fires, Ordering::AcqRel);
        self.inner.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_holds_its_fires_until_it_is_dropped() {
        let backlog = Backlog::new(10);
        let first = backlog.take(6);
        assert_eq!((backlog.room(), backlog.outstanding()), (4, 6));
        let second = Arc::new(backlog.take(4));
        let shared = second.clone();
        assert_eq!(backlog.room(), 0);
        drop(first);
        assert_eq!(backlog.room(), 6);
        drop(second);
        assert_eq!(
            backlog.room(),
            6,
            "a ticket shared by chunks gives back once"
        );
        drop(shared);
        assert_eq!(backlog.room(), 10);
    }

    #[tokio::test]
    async fn a_wait_for_room_ends_when_fires_are_given_back() {
        let backlog = Backlog::new(1);
        let ticket = backlog.take(1);
        let waiter = tokio::spawn({
            let backlog = backlog.clone();
            async move { backlog.freed().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(ticket);
        tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
            .await
            .expect("woken")
            .expect("joined");
        assert_eq!(backlog.room(), 1);
    }
}
