//! [`GuardedProposer`]: the node's proposer behind the disk's state.
//! What the state does not take (see [`super::phase::admits`]) is refused
//! at once with `ProposeError::NoSpace`, before it reaches the log: the
//! caller gets 507 instead of a write that would fill the disk or wait on
//! a wedged store.

use std::sync::Arc;

use actors::proposer::{ProposeError, ProposeResult, Proposer};
use futures::{future::BoxFuture, FutureExt};
use protocol::{
    api::{StorageState, StorageStatus},
    MetaCommand,
};

use super::{
    monitor::DiskHandle,
    phase::{admits, WriteClass},
};
use crate::metrics::Metrics;

pub struct GuardedProposer {
    pub inner: Arc<dyn Proposer>,
    pub disk: DiskHandle,
    /// Counts each refusal (`cronmesh_storage_errors_total`).
    pub metrics: Metrics,
}

/// Whether the disk's state now takes a write of `class`; if not, the
/// refusal (counted in `cronmesh_storage_errors_total`). The guard asks
/// for every command; the API asks for a manual trigger, whose runs join
/// the log among scheduled ones.
pub fn admit(disk: &DiskHandle, class: WriteClass, metrics: &Metrics) -> Result<(), ProposeError> {
    let refusal = disk.with_status(|status| (!admits(status.state, class)).then(|| why(status)));
    match refusal {
        None => Ok(()),
        Some(reason) => {
            metrics.storage_error("refused_no_space");
            Err(ProposeError::NoSpace(reason))
        }
    }
}

impl Proposer for GuardedProposer {
    fn propose(&self, cmd: MetaCommand) -> BoxFuture<'static, ProposeResult> {
        let metrics = self.metrics.clone();
        if let Err(refused) = admit(&self.disk, WriteClass::of(&cmd), &metrics) {
            return futures::future::ready(Err(refused)).boxed();
        }
        let proposed = self.inner.propose(cmd);
        let mut changes = self.disk.changes();
        async move {
            // A write caught in a store that wedges meanwhile would wait
            // for ever: it is answered when the monitor sees the wedge.
            let wedged = async {
                let reason = changes
                    .wait_for(|s| s.state == StorageState::Stalled)
                    .await
                    .map(|status| why(&status));
                match reason {
                    Ok(reason) => reason,
                    Err(_) => std::future::pending().await,
                }
            };
            tokio::select! {
                result = proposed => {
                    if let Err(ProposeError::Storage(_)) = &result {
                        metrics.storage_error("write_failed");
                    }
                    result
                }
                reason = wedged => Err(ProposeError::NoSpace(reason)),
            }
        }
        .boxed()
    }
}

/// What is wrong with the disk, in the status's own words (for a
/// refusal, or `/readyz`).
pub fn why(status: &StorageStatus) -> String {
    status
        .reason
        .clone()
        .unwrap_or_else(|| format!("storage is {}", status.state.as_str()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actors::store::Outcome;
    use protocol::RunUpdate;
    use tokio::sync::watch;

    use super::*;

    /// A log that takes every command, or none: its proposals never end
    /// (a store wedged in a write).
    struct Log {
        wedged: bool,
    }

    impl Proposer for Log {
        fn propose(&self, _: MetaCommand) -> BoxFuture<'static, ProposeResult> {
            if self.wedged {
                std::future::pending().boxed()
            } else {
                futures::future::ready(Ok(Outcome::AlreadyApplied)).boxed()
            }
        }
    }

    fn status(state: StorageState) -> StorageStatus {
        StorageStatus {
            state,
            free_bytes: Some(1 << 20),
            total_bytes: Some(64 << 20),
            floor_bytes: 16 << 20,
            reason: (state != StorageState::Ok).then(|| format!("disk full ({})", state.as_str())),
        }
    }

    fn guarded(
        wedged: bool,
        tx_state: StorageState,
    ) -> (GuardedProposer, watch::Sender<StorageStatus>) {
        let (tx, rx) = watch::channel(status(tx_state));
        let guard = GuardedProposer {
            inner: Arc::new(Log { wedged }),
            disk: DiskHandle::fed_by(rx),
            metrics: Metrics::new(),
        };
        (guard, tx)
    }

    fn create() -> MetaCommand {
        MetaCommand::CreateJobs {
            jobs: Vec::new(),
            at: chrono::Utc::now(),
        }
    }

    fn record() -> MetaCommand {
        MetaCommand::RecordRuns {
            updates: vec![RunUpdate::default()],
        }
    }

    #[tokio::test]
    async fn short_of_room_new_work_is_refused_and_upkeep_goes_through() {
        let (guard, tx) = guarded(false, StorageState::LowSpace);
        match guard.propose(create()).await {
            Err(ProposeError::NoSpace(why)) => assert!(why.contains("disk full"), "{why}"),
            other => panic!("a new job on a short disk: {other:?}"),
        }
        assert!(guard.propose(record()).await.is_ok(), "a run's end is kept");
        tx.send_replace(status(StorageState::Critical));
        assert!(matches!(
            guard.propose(record()).await,
            Err(ProposeError::NoSpace(_))
        ));
        tx.send_replace(status(StorageState::Ok));
        assert!(guard.propose(create()).await.is_ok(), "room again");
    }

    #[tokio::test]
    async fn a_write_caught_in_a_wedged_store_is_answered_when_the_wedge_is_seen() {
        let (guard, tx) = guarded(true, StorageState::Ok);
        let caught = tokio::spawn(guard.propose(record()));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!caught.is_finished(), "the write waits on the store");
        tx.send_replace(status(StorageState::Stalled));
        let answer = tokio::time::timeout(Duration::from_secs(10), caught)
            .await
            .expect("answered once the wedge is seen")
            .expect("the task ran");
        assert!(
            matches!(answer, Err(ProposeError::NoSpace(_))),
            "{answer:?}"
        );
    }
}
