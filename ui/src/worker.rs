//! The part that talks to the API, on a tokio runtime beside the screen:
//! refreshes when asked, runs each action on its own task, and sends back
//! [`Update`]s the event loop drains between frames.

use std::sync::{mpsc, Arc};

use tokio::{
    runtime::Handle,
    sync::{mpsc::UnboundedSender, watch, Mutex},
};

use crate::{
    api::Api,
    conn::Connection,
    msg::{Action, Update},
};

/// What the event loop asks of the worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Read a new snapshot (with fail-over). The loop sends one at a time.
    Refresh,
    Act(Action),
}

/// The event loop's end of the worker.
pub struct Worker {
    requests: UnboundedSender<Request>,
    /// Updates, read without blocking between frames.
    pub updates: mpsc::Receiver<Update>,
}

impl Worker {
    /// Starts the worker's task on `runtime`.
    pub fn start(runtime: &Handle, conn: Connection) -> Self {
        let (requests, mut incoming) = tokio::sync::mpsc::unbounded_channel();
        let (updates_tx, updates) = mpsc::channel();
        // Actions go to the node the last refresh read from.
        let (current_tx, current) = watch::channel(conn.api());
        let current_tx = Arc::new(current_tx);
        let conn = Arc::new(Mutex::new(conn));
        let handle = runtime.clone();
        runtime.spawn(async move {
            while let Some(request) = incoming.recv().await {
                let updates = updates_tx.clone();
                match request {
                    Request::Refresh => {
                        let conn = conn.clone();
                        let current_tx = current_tx.clone();
                        handle.spawn(async move {
                            let mut conn = conn.lock().await;
                            let (link, snapshot) = conn.refresh().await;
                            current_tx.send_replace(conn.api());
                            let _ = updates.send(Update::Refreshed {
                                link,
                                snapshot: snapshot.map_err(|e| e.to_string()),
                            });
                        });
                    }
                    Request::Act(action) => {
                        let api = current.borrow().clone();
                        handle.spawn(async move {
                            let _ = updates.send(perform(&api, action).await);
                        });
                    }
                }
            }
        });
        Self { requests, updates }
    }

    /// Queues a request; false once the worker has stopped.
    pub fn send(&self, request: Request) -> bool {
        self.requests.send(request).is_ok()
    }
}

/// Carries out one action against `api`.
pub async fn perform(api: &Api, action: Action) -> Update {
    let text = |e: crate::api::ApiError| e.to_string();
    match action {
        Action::Trigger { namespace, job } => Update::Triggered {
            runs: api.trigger(&namespace, &job).await.map_err(text),
            job,
        },
        Action::SetEnabled {
            namespace,
            job,
            enabled,
        } => Update::EnabledSet {
            result: api
                .set_enabled(&namespace, &job, enabled)
                .await
                .map_err(text),
            job,
            enabled,
        },
        Action::Kill { run_id } => Update::Killed {
            status: api.kill(&run_id).await.map(|run| run.status).map_err(text),
            run_id,
        },
        Action::LoadRun { run_id } => Update::RunLoaded {
            run: api.run_with_output(&run_id).await.map_err(text),
            run_id,
        },
    }
}
