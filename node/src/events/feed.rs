//! The node's event broadcast: publishers send, each `/v1/events` client
//! holds a receiver. A client too slow to keep up loses the oldest events
//! and is told how many (see `api::events`).

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use super::Event;

/// Events kept for a slow subscriber before it starts losing them.
const BACKLOG: usize = 4096;

#[derive(Clone)]
pub struct EventFeed {
    tx: broadcast::Sender<Arc<Event>>,
    /// Turns true when the node stops: open streams end, so a browser
    /// left open does not hold the server's graceful shutdown.
    closed: watch::Sender<bool>,
}

impl Default for EventFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl EventFeed {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(BACKLOG);
        let (closed, _) = watch::channel(false);
        Self { tx, closed }
    }

    /// Sends to every subscriber; with none, the event is dropped.
    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Ends every open stream.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Resolves once [`close`](Self::close) was called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + 'static {
        let mut rx = self.closed.subscribe();
        async move {
            let _ = rx.wait_for(|closed| *closed).await;
        }
    }
}
