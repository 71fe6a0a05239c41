//! Background tasks of the agent (runs, report deliveries), tracked so a
//! shutdown can wait for them and then cut off the ones that hang on.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::{runtime::Handle, sync::watch};

/// Spawns onto the runtime the agent was started on, which outlives the
/// HTTP workers' own runtimes.
pub struct Tasks {
    runtime: Handle,
    running: Arc<watch::Sender<usize>>,
    abort: watch::Sender<bool>,
}

/// Counts a task as running until dropped (when the task ends or is aborted).
struct Running(Arc<watch::Sender<usize>>);

impl Running {
    fn new(count: Arc<watch::Sender<usize>>) -> Self {
        count.send_modify(|n| *n += 1);
        Self(count)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Tasks {
    pub fn new(runtime: Handle) -> Self {
        Self {
            runtime,
            running: Arc::new(watch::Sender::new(0)),
            abort: watch::Sender::new(false),
        }
    }

    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.runtime.spawn(self.tracked(task));
    }

    /// Spawns many tasks with one hand-over to the runtime (a hand-over
    /// from another thread wakes the runtime; doing it once per run would
    /// make a large batch of runs start late).
    pub fn spawn_all<F>(&self, tasks: Vec<F>)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if tasks.is_empty() {
            return;
        }
        let tracked: Vec<_> = tasks.into_iter().map(|task| self.tracked(task)).collect();
        self.runtime.spawn(async move {
            for task in tracked {
                tokio::spawn(task);
            }
        });
    }

    /// `task`, counted as running until it ends and cut off by an abort.
    fn tracked(
        &self,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let running = Running::new(self.running.clone());
        let mut abort = self.abort.subscribe();
        async move {
            let _running = running;
            tokio::select! {
                () = task => {}
                Ok(_) = abort.wait_for(|abort| *abort) => {}
            }
        }
    }

    pub fn running(&self) -> usize {
        *self.running.borrow()
    }

    /// Waits up to `grace` for every task to end, then drops the rest.
    /// Returns how many were cut off.
    pub async fn drain(&self, grace: Duration) -> usize {
        let mut running = self.running.subscribe();
        if tokio::time::timeout(grace, running.wait_for(|n| *n == 0))
            .await
            .is_ok()
        {
            return 0;
        }
        let left = self.running();
        self.abort.send_replace(true);
        // Aborted tasks end at their next poll; give them a moment.
        let _ = tokio::time::timeout(Duration::from_secs(1), running.wait_for(|n| *n == 0)).await;
        left
    }
}
