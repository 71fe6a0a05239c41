//! The leader lease: the only permission this node has to act on the
//! world. A send to an executor, a kill, an HTTP target call and an alert
//! each ask [`Lease::confirm`] immediately before they leave, so a leader
//! that was frozen (SIGSTOP, a VM stall, swap) and wakes up still believing
//! it leads sends nothing until a quorum has confirmed it again.
//!
//! The Raft engine grants the lease: each round of heartbeats it sends is
//! stamped with the lease clock, and once a quorum has answered that round
//! the lease runs until `stamp + duration`, where `duration` is below the
//! shortest time a follower that answered would take to vote for anyone
//! else. The lease clock is `CLOCK_BOOTTIME`: monotonic, and it keeps
//! counting while the process is stopped or the machine is suspended, so a
//! pause always eats the lease.
//!
//! Alone (`dev`, a server without Raft) the node is the whole cluster and
//! its lease never ends.

use std::time::Duration;

use tokio::sync::watch;

/// What the engine last granted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Grant {
    /// The term the lease was granted in; 0 is no lease.
    pub term: u64,
    /// Until when, on the lease clock; `None` never ends (a lone node).
    pub until: Option<Duration>,
}

impl Grant {
    /// Whether this grant lets a sender of `term` act at `now`.
    pub fn holds(&self, term: u64, now: Duration) -> bool {
        self.term != 0 && self.term == term && self.until.is_none_or(|until| now < until)
    }
}

/// Why an action was not allowed to leave this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotLeading {
    #[error("this node's leader lease for term {term} lapsed and was not renewed")]
    Lapsed { term: u64 },
}

/// The lease, shared by the engine (which grants and revokes it) and every
/// sender (which confirms it).
pub struct Lease {
    grant: watch::Sender<Grant>,
    /// The highest term an executor said it has seen: proof that this node
    /// was deposed. The engine steps down when it is above its own term.
    superseded_by: std::sync::atomic::AtomicU64,
}

/// How long a sender waits for a lapsed lease of its term to be renewed
/// before it gives up: a leader that keeps its quorum renews within one
/// heartbeat round; one that lost it steps down within an election timeout.
pub const RENEWAL_WAIT: Duration = Duration::from_secs(1);

impl Lease {
    /// No lease until the engine grants one.
    pub fn new() -> Self {
        Self {
            grant: watch::Sender::new(Grant::default()),
            superseded_by: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A lease that never ends, for a node that is the whole cluster.
    pub fn unbounded(term: u64) -> Self {
        let lease = Self::new();
        lease.grant.send_replace(Grant { term, until: None });
        lease
    }

    /// The current grant.
    pub fn current(&self) -> Grant {
        *self.grant.borrow()
    }

    /// Extends the lease of `term` to `until` (never shortens it).
    pub fn extend(&self, term: u64, until: Duration) {
        self.grant.send_if_modified(|grant| {
            let longer = grant.term != term || grant.until.is_some_and(|u| u < until);
            if longer {
                *grant = Grant {
                    term,
                    until: Some(until),
                };
            }
            longer
        });
    }

    /// Ends the lease at once (leadership lost or being handed over).
    pub fn revoke(&self) {
        self.grant.send_if_modified(|grant| {
            let held = grant.term != 0;
            *grant = Grant::default();
            held
        });
    }

    /// Whether a sender of `term` may act now.
    pub fn holds(&self, term: u64) -> bool {
        self.current().holds(term, now())
    }

    /// Resolves when a sender of `term` may act: at once while the lease
    /// holds; after a renewal if it lapsed; `NotLeading` if it is not
    /// renewed within [`RENEWAL_WAIT`] or belongs to another term.
    pub async fn confirm(&self, term: u64) -> Result<(), NotLeading> {
        if self.holds(term) {
            return Ok(());
        }
        let mut grants = self.grant.subscribe();
        let renewed = async {
            loop {
                let grant = *grants.borrow_and_update();
                if grant.holds(term, now()) {
                    return true;
                }
                if grant.term > term {
                    return false;
                }
                if grants.changed().await.is_err() {
                    return false;
                }
            }
        };
        match tokio::time::timeout(RENEWAL_WAIT, renewed).await {
            Ok(true) => Ok(()),
            _ => Err(NotLeading::Lapsed { term }),
        }
    }

    /// An executor refused this node for a stale term: it was deposed.
    /// Revokes the lease at once; the engine steps down.
    pub fn superseded(&self, term: u64) {
        self.revoke();
        self.superseded_by
            .fetch_max(term, std::sync::atomic::Ordering::SeqCst);
    }

    /// The highest term executors reported since the last call (0: none).
    pub fn take_superseded(&self) -> u64 {
        self.superseded_by
            .swap(0, std::sync::atomic::Ordering::SeqCst)
    }
}

impl Default for Lease {
    fn default() -> Self {
        Self::new()
    }
}

/// The lease clock: time since boot, counting through process stops and
/// suspends (`CLOCK_BOOTTIME`). Falls back to the monotonic clock where
/// the boot clock cannot be read.
pub fn now() -> Duration {
    use nix::time::{clock_gettime, ClockId};
    let read =
        clock_gettime(ClockId::CLOCK_BOOTTIME).or_else(|_| clock_gettime(ClockId::CLOCK_MONOTONIC));
    match read {
        Ok(ts) => Duration::new(
            u64::try_from(ts.tv_sec()).unwrap_or_default(),
            u32::try_from(ts.tv_nsec()).unwrap_or_default(),
        ),
        Err(_) => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_holds_only_for_its_term_and_until_it_ends() {
        let grant = Grant {
            term: 3,
            until: Some(Duration::from_secs(10)),
        };
        assert!(grant.holds(3, Duration::from_secs(9)));
        assert!(!grant.holds(3, Duration::from_secs(10)), "ends at until");
        assert!(!grant.holds(2, Duration::from_secs(1)), "another term");
        assert!(!Grant::default().holds(0, Duration::ZERO), "no lease");
        let lone = Grant {
            term: 1,
            until: None,
        };
        assert!(lone.holds(1, Duration::from_secs(u64::MAX / 4)));
    }

    #[test]
    fn extending_never_shortens_and_a_new_term_replaces() {
        let lease = Lease::new();
        let base = now();
        lease.extend(2, base + Duration::from_secs(5));
        lease.extend(2, base + Duration::from_secs(1));
        assert_eq!(lease.current().until, Some(base + Duration::from_secs(5)));
        lease.extend(3, base + Duration::from_secs(1));
        assert_eq!(lease.current().term, 3);
        lease.revoke();
        assert!(!lease.holds(3));
    }

    #[test]
    fn the_lease_clock_moves_forward() {
        let a = now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(now() > a);
    }

    #[tokio::test]
    async fn confirm_waits_for_a_renewal_of_its_own_term() {
        let lease = std::sync::Arc::new(Lease::new());
        lease.extend(4, now() - Duration::from_millis(1));
        assert!(!lease.holds(4), "the lease lapsed");
        let renewer = lease.clone();
        let renew = tokio::spawn(async move {
            tokio::task::yield_now().await;
            renewer.extend(4, now() + Duration::from_secs(5));
        });
        assert_eq!(lease.confirm(4).await, Ok(()));
        renew.await.expect("renewer");
        lease.extend(5, now() + Duration::from_secs(5));
        assert_eq!(
            lease.confirm(4).await,
            Err(NotLeading::Lapsed { term: 4 }),
            "a later term never confirms an earlier one"
        );
    }

    #[tokio::test]
    async fn confirm_gives_up_when_nothing_renews() {
        let lease = Lease::new();
        lease.extend(1, now() - Duration::from_millis(1));
        assert_eq!(lease.confirm(1).await, Err(NotLeading::Lapsed { term: 1 }));
    }

    #[test]
    fn an_executor_refusal_revokes_and_is_taken_once() {
        let lease = Lease::unbounded(1);
        lease.superseded(7);
        lease.superseded(5);
        assert!(!lease.holds(1));
        assert_eq!(lease.take_superseded(), 7);
        assert_eq!(lease.take_superseded(), 0);
    }
}
