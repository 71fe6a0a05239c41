//! The view shared by every handle, and the fan-out of its changes to
//! subscribers.
//!
//! The view and the subscriber list sit under one lock, so a new subscriber
//! gets the alive members as `Added` and then every later change, with no
//! change lost or doubled in between. Each subscriber has its own unbounded
//! queue: membership changes are rare and small, and a slow subscriber must
//! not make another one miss an `Removed` (the Router fails runs over on it).

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::Stream;
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::member::{MemberState, MembershipChange};
use crate::pause::PauseGuard;
use crate::view::{Observation, View};

pub(crate) struct Hub {
    inner: Mutex<Inner>,
}

struct Inner {
    view: View,
    /// Holds deaths back right after this node was paused.
    pause: PauseGuard,
    subscribers: Vec<mpsc::UnboundedSender<MembershipChange>>,
    /// Set at shutdown: streams end and new ones only get the last view.
    closed: bool,
}

impl Hub {
    pub(crate) fn new(gossip_interval: Duration) -> Self {
        Hub {
            inner: Mutex::new(Inner {
                view: View::default(),
                pause: PauseGuard::new(gossip_interval),
                subscribers: Vec::new(),
                closed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding it; recover rather than propagate.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies an observation of the cluster and sends the changes out.
    pub(crate) fn apply(&self, observations: Vec<Observation>, now: DateTime<Utc>) {
        let mut inner = self.lock();
        let hold_deaths = inner.pause.hold_deaths(Instant::now());
        let changes = inner.view.apply(observations, now, hold_deaths);
        for change in changes {
            log_change(&change, now);
            inner
                .subscribers
                .retain(|subscriber| subscriber.send(change.clone()).is_ok());
        }
    }

    pub(crate) fn members(&self) -> Vec<MemberState> {
        self.lock().view.members()
    }

    /// A stream of `Added` for the members alive now, then every change.
    pub(crate) fn subscribe(
        &self,
    ) -> impl Stream<Item = MembershipChange> + Send + Unpin + 'static {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut inner = self.lock();
        for state in inner.view.alive() {
            let _ = tx.send(MembershipChange::Added(state.clone()));
        }
        if !inner.closed {
            inner.subscribers.push(tx);
        }
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }

    /// Ends every stream.
    pub(crate) fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.subscribers.clear();
    }
}

fn log_change(change: &MembershipChange, now: DateTime<Utc>) {
    let state = change.state();
    let role = match state.member {
        crate::Member::Scheduler(_) => "scheduler",
        crate::Member::Executor(_) => "executor",
    };
    let id = state.member.id();
    match change {
        MembershipChange::Added(_) => {
            info!(role, %id, node = %state.gossip_id, "member joined")
        }
        MembershipChange::Updated(_) => {
            debug!(role, %id, node = %state.gossip_id, "member updated")
        }
        MembershipChange::Removed(_) => {
            let silent_ms = state.last_seen.map(|seen| (now - seen).num_milliseconds());
            info!(role, %id, node = %state.gossip_id, ?silent_ms, "member declared dead")
        }
    }
}
