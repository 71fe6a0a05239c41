//! Batching of run transitions into `RecordRuns` commands.

use protocol::RunUpdate;
use tokio::sync::oneshot;

pub type Waiter = oneshot::Sender<Result<(), String>>;

pub struct LogSinkCore {
    updates: Vec<RunUpdate>,
    waiters: Vec<Waiter>,
    /// A batch this large is flushed at once instead of at the next tick.
    max_batch: usize,
}

impl LogSinkCore {
    pub fn new(max_batch: usize) -> Self {
        Self {
            updates: Vec::new(),
            waiters: Vec::new(),
            max_batch: max_batch.max(1),
        }
    }

    /// Adds updates; true when the batch is full and should go now.
    pub fn push(&mut self, updates: Vec<RunUpdate>, waiter: Option<Waiter>) -> bool {
        if self.updates.is_empty() {
            self.updates = updates;
        } else {
            self.updates.extend(updates);
        }
        self.waiters.extend(waiter);
        self.updates.len() >= self.max_batch
    }

    pub fn is_empty(&self) -> bool {
        self.updates.is_empty()
    }

    /// The batch to propose and who waits for it.
    pub fn take(&mut self) -> (Vec<RunUpdate>, Vec<Waiter>) {
        (
            std::mem::take(&mut self.updates),
            std::mem::take(&mut self.waiters),
        )
    }
}

#[cfg(test)]
mod tests {
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
}
