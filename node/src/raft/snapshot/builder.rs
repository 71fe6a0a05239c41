//! The leader's snapshots: built in the background from a point-in-time
//! view of the state machine, written to a file, and reused for every
//! follower that needs one while the log still holds the entries after it.
//!
//! raft-rs asks for a snapshot on its own thread, from
//! `Storage::snapshot`, and retries when told one is temporarily
//! unavailable. So the first ask begins a view (applies wait only for that
//! moment) and hands the copy to a thread; later asks get the file's
//! descriptor once it is whole. A failed build is tried again after
//! [`RETRY_AFTER`], not on every ask.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    time::{Duration, Instant},
};

use actors::store::StateMachine;
use raft::eraftpb::{ConfState, Snapshot};

use super::{
    descriptor::SnapshotDescriptor,
    files::{self, Side, SnapshotDir},
};
use crate::raft::storage::{LogView, SnapshotSource};

/// Wait after a failed build before the next.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Builds and keeps the leader's snapshot file.
pub struct SnapshotBuilder {
    dir: SnapshotDir,
    store: Arc<StateMachine>,
    phase: Arc<Mutex<Phase>>,
    /// Snapshots built since the start (for metrics and tests).
    builds: Arc<AtomicU64>,
}

/// Where the builder is.
enum Phase {
    /// No snapshot at hand and none being built.
    Idle,
    /// A thread is writing a snapshot.
    Building,
    /// A whole snapshot file is at hand.
    Ready(Built),
    /// The last build failed; the next may start at `retry_at`.
    Failed { retry_at: Instant },
}

/// A snapshot file built here.
#[derive(Clone, Debug)]
struct Built {
    index: u64,
    term: u64,
    /// The members as of `index`: a follower restoring it takes them.
    conf_state: ConfState,
    bytes: u64,
}

impl Built {
    fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot {
            data: SnapshotDescriptor {
                index: self.index,
                term: self.term,
                bytes: self.bytes,
            }
            .encode()
            .into(),
            ..Default::default()
        };
        let meta = snapshot.mut_metadata();
        meta.index = self.index;
        meta.term = self.term;
        meta.set_conf_state(self.conf_state.clone());
        snapshot
    }
}

impl SnapshotBuilder {
    /// A builder writing into `dir`; outgoing files of an earlier run are
    /// removed (the log they matched may be gone).
    pub fn new(dir: SnapshotDir, store: Arc<StateMachine>) -> Self {
        dir.remove_others(Side::Outgoing, None);
        Self {
            dir,
            store,
            phase: Arc::new(Mutex::new(Phase::Idle)),
            builds: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Where snapshot files live (received ones too).
    pub fn dir(&self) -> &SnapshotDir {
        &self.dir
    }

    /// Snapshots built since the start.
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        lock(&self.phase)
    }

    /// Begins a view now and copies it to a file on a thread of its own.
    fn begin(&self, log: &LogView<'_>) -> anyhow::Result<u64> {
        let view = self.store.view()?;
        let index = view.index();
        let term = (log.term_of)(index)
            .ok_or_else(|| anyhow::anyhow!("the log no longer knows the term of {index}"))?;
        let conf_state = log.conf_state.clone();
        let dir = self.dir.clone();
        let phase = self.phase.clone();
        let builds = self.builds.clone();
        std::thread::Builder::new()
            .name("cronmesh-snapshot".into())
            .spawn(move || {
                let started = Instant::now();
                let written = (|| {
                    let out = files::create(&dir.partial(Side::Outgoing, index, term))?;
                    let mut out = out;
                    let written = view.write_dump(&mut out, |_, _| true)?;
                    files::finish(out)?;
                    dir.complete(Side::Outgoing, index, term)?;
                    Ok::<_, anyhow::Error>(written)
                })();
                let next = match written {
                    Ok(written) => {
                        builds.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                            index,
                            bytes = written.bytes,
                            records = written.records,
                            millis = started.elapsed().as_millis() as u64,
                            "raft snapshot built"
                        );
                        dir.remove_others(Side::Outgoing, Some((index, term)));
                        Phase::Ready(Built {
                            index,
                            term,
                            conf_state,
                            bytes: written.bytes,
                        })
                    }
                    Err(e) => {
                        tracing::warn!(index, error = %format!("{e:#}"), "raft snapshot build failed");
                        let _ = std::fs::remove_file(dir.partial(Side::Outgoing, index, term));
                        Phase::Failed {
                            retry_at: Instant::now() + RETRY_AFTER,
                        }
                    }
                };
                *lock(&phase) = next;
            })?;
        Ok(index)
    }
}

impl SnapshotSource for SnapshotBuilder {
    fn snapshot_for(
        &self,
        to: u64,
        oldest: u64,
        log: &LogView<'_>,
    ) -> anyhow::Result<Option<Snapshot>> {
        let mut phase = self.phase();
        match &*phase {
            Phase::Ready(built) if built.index >= oldest && is_member(&built.conf_state, to) => {
                return Ok(Some(built.snapshot()));
            }
            Phase::Building => return Ok(None),
            Phase::Failed { retry_at } if Instant::now() < *retry_at => return Ok(None),
            _ => {}
        }
        let index = self.begin(log)?;
        tracing::info!(index, for_peer = to, "building a raft snapshot");
        *phase = Phase::Building;
        Ok(None)
    }
}

/// Whether `id` is among the members a snapshot names: raft-rs refuses to
/// restore a snapshot that leaves the restoring node out.
fn is_member(conf_state: &ConfState, id: u64) -> bool {
    conf_state.voters.contains(&id) || conf_state.learners.contains(&id)
}

fn lock(phase: &Mutex<Phase>) -> MutexGuard<'_, Phase> {
    phase.lock().unwrap_or_else(PoisonError::into_inner)
}
