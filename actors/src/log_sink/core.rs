//! Batching of run transitions into `RecordRuns` commands.

use std::collections::HashMap;

use protocol::RunUpdate;
use tokio::sync::oneshot;

pub type Waiter = oneshot::Sender<Result<(), String>>;

pub struct LogSinkCore {
    /// One update per run: later ones are folded into it, so a run that is
    /// dispatched and ends within one batch costs one write, not two.
    updates: Vec<RunUpdate>,
    /// Where each run's update sits in `updates`.
    position: HashMap<String, usize>,
    waiters: Vec<Waiter>,
    /// A batch this large is flushed at once instead of at the next tick.
    max_batch: usize,
}

impl LogSinkCore {
    pub fn new(max_batch: usize) -> Self {
        Self {
            updates: Vec::new(),
            position: HashMap::new(),
            waiters: Vec::new(),
            max_batch: max_batch.max(1),
        }
    }

    /// Adds updates; true when the batch is full and should go now.
    pub fn push(&mut self, updates: Vec<RunUpdate>, waiter: Option<Waiter>) -> bool {
        for update in updates {
            match self.position.get(&update.run_id) {
                Some(&at) => self.updates[at].absorb(update),
                None => {
                    self.position
                        .insert(update.run_id.clone(), self.updates.len());
                    self.updates.push(update);
                }
            }
        }
        self.waiters.extend(waiter);
        self.updates.len() >= self.max_batch
    }

    pub fn is_empty(&self) -> bool {
        self.updates.is_empty()
    }

    /// The batch to propose and who waits for it.
    pub fn take(&mut self) -> (Vec<RunUpdate>, Vec<Waiter>) {
        self.position.clear();
        (
            std::mem::take(&mut self.updates),
            std::mem::take(&mut self.waiters),
        )
    }

    /// Everything queued, cut into commands of at most `max_batch`
    /// updates (a burst's reports must not become one command that holds
    /// every node's log for a second), and who waits for all of them.
    pub fn take_batches(&mut self) -> (Vec<Vec<RunUpdate>>, Vec<Waiter>) {
        let (mut updates, waiters) = self.take();
        let mut batches = Vec::with_capacity(updates.len().div_ceil(self.max_batch));
        while updates.len() > self.max_batch {
            let rest = updates.split_off(self.max_batch);
            batches.push(updates);
            updates = rest;
        }
        if !updates.is_empty() {
            batches.push(updates);
        }
        (batches, waiters)
    }
}

#[cfg(test)]
mod tests {
    use protocol::RunStatus;

    use super::*;

    #[test]
    fn fills_then_empties() {
        let mut core = LogSinkCore::new(2);
        assert!(!core.push(
            vec![RunUpdate {
                run_id: "a".into(),
                ..Default::default()
            }],
            None
        ));
        let (tx, _rx) = oneshot::channel();
        assert!(core.push(
            vec![RunUpdate {
                run_id: "b".into(),
                ..Default::default()
            }],
            Some(tx)
        ));
        let (updates, waiters) = core.take();
        assert_eq!((updates.len(), waiters.len()), (2, 1));
        assert!(core.is_empty());
    }

    #[test]
    fn transitions_of_one_run_in_a_batch_become_one_update() {
        let mut core = LogSinkCore::new(100);
        let update = |status, executor: Option<&str>, error: Option<&str>| RunUpdate {
            run_id: "r".into(),
            status: Some(status),
            executor: executor.map(str::to_string),
            error: error.map(str::to_string),
            ..Default::default()
        };
        core.push(
            vec![update(RunStatus::Dispatched, Some("http://e"), None)],
            None,
        );
        core.push(
            vec![
                update(RunStatus::Failed, None, Some("exit 1")),
                // Late and out of order: a terminal status is final.
                update(RunStatus::Running, None, Some("ignored")),
            ],
            None,
        );
        let (updates, _) = core.take();
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0].status, Some(RunStatus::Failed));
        assert_eq!(updates[0].executor.as_deref(), Some("http://e"));
        assert_eq!(updates[0].error.as_deref(), Some("exit 1"));
    }

    #[test]
    fn a_burst_of_reports_becomes_commands_of_at_most_a_batch_each() {
        let mut core = LogSinkCore::new(100);
        let updates: Vec<RunUpdate> = (0..250)
            .map(|i| RunUpdate {
                run_id: format!("r{i}"),
                status: Some(RunStatus::Succeeded),
                ..Default::default()
            })
            .collect();
        let (tx, _rx) = oneshot::channel();
        core.push(updates, Some(tx));
        let (batches, waiters) = core.take_batches();
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert_eq!(waiters.len(), 1);
        let ids: Vec<&str> = batches
            .iter()
            .flatten()
            .map(|u| u.run_id.as_str())
            .collect();
        assert_eq!(ids.len(), 250);
        assert_eq!((ids[0], ids[249]), ("r0", "r249"), "in order");
        assert!(core.is_empty());
    }
}
