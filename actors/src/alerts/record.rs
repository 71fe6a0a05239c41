//! Gathers alert attempts into `RecordAlertDeliveries` commands: attempts
//! made within a short linger go through the log as one command, so a
//! burst of failed runs with several destinations each costs a few
//! proposals, not one per attempt.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use protocol::{alert::AlertDelivery, MetaCommand};

use crate::proposer::Proposer;

/// How long the first attempt waits for others to share its command.
const LINGER: Duration = Duration::from_millis(50);
/// Most attempts in one command.
pub const MAX_PER_COMMAND: usize = 1024;

/// Attempts waiting to be recorded, shared by every alert of the node.
#[derive(Clone, Default)]
pub struct Recorder {
    pending: Arc<Mutex<Vec<(String, AlertDelivery)>>>,
}

impl Recorder {
    /// Queues an attempt on `run_id`; the first of a batch starts the
    /// task that proposes it (through `proposer`) after the linger.
    pub fn push(&self, run_id: String, delivery: AlertDelivery, proposer: Arc<dyn Proposer>) {
        let first = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.push((run_id, delivery));
            pending.len() == 1
        };
        if first {
            let recorder = self.clone();
            actix::spawn(async move {
                tokio::time::sleep(LINGER).await;
                while let Some(batch) = recorder.take() {
                    let count = batch.len();
                    let command = MetaCommand::RecordAlertDeliveries { deliveries: batch };
                    if let Err(error) = proposer.propose(command).await {
                        tracing::warn!(%error, attempts = count, "alert attempts were not recorded");
                    }
                }
            });
        }
    }

    /// The next batch, or `None` when nothing waits.
    fn take(&self) -> Option<Vec<(String, AlertDelivery)>> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.is_empty() {
            return None;
        }
        let count = pending.len().min(MAX_PER_COMMAND);
        Some(pending.drain(..count).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::future::BoxFuture;
    use protocol::alert::AlertChannel;

    use super::*;
    use crate::{proposer::ProposeResult, store::Outcome};

    #[derive(Default)]
    struct Commands(Mutex<Vec<MetaCommand>>);

    impl Proposer for Commands {
        fn propose(&self, cmd: MetaCommand) -> BoxFuture<'static, ProposeResult> {
            self.0.lock().unwrap().push(cmd);
            Box::pin(async { Ok(Outcome::AlreadyApplied) })
        }
    }

    fn delivery(attempt: u32) -> AlertDelivery {
        AlertDelivery {
            channel: AlertChannel::Email,
            target: "ops@example.com".into(),
            attempt,
            at: chrono::Utc::now(),
            ok: false,
            error: None,
        }
    }

    #[test]
    fn attempts_made_together_are_one_command() {
        actix::System::new().block_on(attempts_made_together());
    }

    async fn attempts_made_together() {
        let commands = Arc::new(Commands::default());
        let recorder = Recorder::default();
        for attempt in 1..=3 {
            recorder.push(format!("r{attempt}"), delivery(attempt), commands.clone());
        }
        tokio::time::sleep(LINGER * 4).await;
        let sent = commands.0.lock().unwrap().clone();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let MetaCommand::RecordAlertDeliveries { deliveries } = &sent[0] else {
            panic!("{sent:?}")
        };
        assert_eq!(deliveries.len(), 3);
        recorder.push("r4".into(), delivery(4), commands.clone());
        tokio::time::sleep(LINGER * 4).await;
        assert_eq!(
            commands.0.lock().unwrap().len(),
            2,
            "a later attempt is recorded too"
        );
    }
}
