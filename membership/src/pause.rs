//! Local pause guard: after this node itself stalled, deaths it observes are
//! held back until the gossip that queued up meanwhile has been processed.
//!
//! When the whole process stops (CPU starvation, a blocking call on the
//! runtime, SIGSTOP, a VM steal), no heartbeat is processed and chitchat,
//! on waking, may judge every peer by its silence before reading the
//! datagrams waiting in the socket: each peer would be declared dead and
//! alive again a round later. The Router fails runs over on a death, so
//! such a flap is costly. Cassandra's failure detector has the same guard.
//!
//! A pause is a gap between two observations of more than twice the gossip
//! interval (the observer runs every interval). Deaths are then held for
//! five intervals (at least one second): enough for fresh heartbeats to
//! revive peers that are alive. A peer that really died is reported once the
//! hold ends.

use std::time::{Duration, Instant};

use tracing::warn;

pub(crate) struct PauseGuard {
    /// A gap between observations longer than this is a local pause.
    threshold: Duration,
    /// How long deaths are held after a pause.
    hold: Duration,
    last: Option<Instant>,
    hold_until: Option<Instant>,
}

impl PauseGuard {
    pub(crate) fn new(gossip_interval: Duration) -> Self {
        PauseGuard {
            threshold: gossip_interval * 2,
            hold: (gossip_interval * 5).max(Duration::from_secs(1)),
            last: None,
            hold_until: None,
        }
    }

    /// Records an observation at `now`; tells whether deaths seen in it must
    /// be held back.
    pub(crate) fn hold_deaths(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let gap = now.saturating_duration_since(last);
            if gap > self.threshold {
                warn!(
                    paused_ms = gap.as_millis() as u64,
                    hold_ms = self.hold.as_millis() as u64,
                    "membership observer was paused; holding back deaths"
                );
                self.hold_until = Some(now + self.hold);
            }
        }
        self.last = Some(self.last.map_or(now, |last| last.max(now)));
        self.hold_until.is_some_and(|until| now < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_deaths_only_after_a_pause() {
        let interval = Duration::from_millis(200);
        let mut guard = PauseGuard::new(interval);
        let t0 = Instant::now();
        assert!(!guard.hold_deaths(t0));
        // Regular observations.
        for i in 1..=10 {
            assert!(!guard.hold_deaths(t0 + interval * i));
        }
        // A 900 ms gap: held for 1 s from then.
        let after_pause = t0 + interval * 10 + Duration::from_millis(900);
        assert!(guard.hold_deaths(after_pause));
        assert!(guard.hold_deaths(after_pause + Duration::from_millis(200)));
        assert!(guard.hold_deaths(after_pause + Duration::from_millis(400)));
        assert!(guard.hold_deaths(after_pause + Duration::from_millis(600)));
        assert!(guard.hold_deaths(after_pause + Duration::from_millis(800)));
        assert!(!guard.hold_deaths(after_pause + Duration::from_millis(1000)));
    }

    #[test]
    fn short_intervals_still_hold_for_a_second() {
        let mut guard = PauseGuard::new(Duration::from_millis(50));
        let t0 = Instant::now();
        guard.hold_deaths(t0);
        assert!(guard.hold_deaths(t0 + Duration::from_millis(150)));
        let mut t = t0 + Duration::from_millis(150);
        while t < t0 + Duration::from_millis(1100) {
            t += Duration::from_millis(50);
            assert!(guard.hold_deaths(t) || t >= t0 + Duration::from_millis(1150));
        }
        assert!(!guard.hold_deaths(t0 + Duration::from_millis(1200)));
    }
}
