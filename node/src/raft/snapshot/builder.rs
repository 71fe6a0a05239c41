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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actors::store::retention::HistoryPolicy;
    use protocol::{meta::NodeInfo, MetaCommand};

    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Arc<StateMachine>,
        builder: SnapshotBuilder,
        applied: u64,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("a temp dir");
            let store = Arc::new(
                StateMachine::open(&dir.path().join("state"), HistoryPolicy::default())
                    .expect("a store"),
            );
            let snapshots = SnapshotDir::open(dir.path().join("snapshots")).expect("a dir");
            let builder = SnapshotBuilder::new(snapshots, store.clone());
            Self {
                _dir: dir,
                store,
                builder,
                applied: 0,
            }
        }

        fn apply(&mut self, n: u64) {
            for _ in 0..n {
                self.applied += 1;
                let node = NodeInfo {
                    node_id: self.applied,
                    api_url: format!("http://127.0.0.1:{}", 7000 + self.applied),
                    raft_addr: format!("127.0.0.1:{}", 8000 + self.applied),
                };
                self.store
                    .apply(self.applied, &MetaCommand::RegisterNode { node })
                    .expect("applies");
            }
        }

        /// Asks as raft does: every entry's term is 3, the members are 1–3.
        fn ask(&self, to: u64, oldest: u64) -> Option<Snapshot> {
            self.ask_with(to, oldest, &[1, 2, 3])
        }

        /// Asks with `voters` as the members now.
        fn ask_with(&self, to: u64, oldest: u64, voters: &[u64]) -> Option<Snapshot> {
            let conf_state = ConfState {
                voters: voters.to_vec(),
                ..Default::default()
            };
            let term_of = |_: u64| Some(3);
            let log = LogView {
                conf_state: &conf_state,
                term_of: &term_of,
            };
            self.builder.snapshot_for(to, oldest, &log).expect("asks")
        }

        /// Asks until a snapshot is at hand (the build runs on a thread).
        fn ask_until_built(&self, to: u64, oldest: u64) -> Snapshot {
            self.ask_until_built_with(to, oldest, &[1, 2, 3])
        }

        fn ask_until_built_with(&self, to: u64, oldest: u64, voters: &[u64]) -> Snapshot {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(snapshot) = self.ask_with(to, oldest, voters) {
                    return snapshot;
                }
                assert!(Instant::now() < deadline, "no snapshot was built");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    #[test]
    fn the_first_ask_begins_a_build_and_later_asks_reuse_its_file() {
        let mut f = Fixture::new();
        f.apply(5);
        assert!(f.ask(2, 0).is_none(), "nothing at hand at first");
        let snapshot = f.ask_until_built(2, 0);
        let meta = snapshot.get_metadata();
        assert_eq!((meta.index, meta.term), (5, 3));
        assert_eq!(meta.get_conf_state().voters, vec![1, 2, 3]);
        let descriptor = SnapshotDescriptor::decode(&snapshot.data, 5, 3).expect("a descriptor");
        let file = f.builder.dir().file(Side::Outgoing, 5, 3);
        assert_eq!(
            std::fs::metadata(&file).expect("the file").len(),
            descriptor.bytes
        );

        // More applies: the snapshot still serves a follower whose log
        // can go on from it, and is not built again.
        f.apply(3);
        let again = f.ask(3, 4).expect("reused");
        assert_eq!(again.get_metadata().index, 5);
        assert_eq!(f.builder.builds(), 1);
    }

    #[test]
    fn a_snapshot_older_than_needed_or_without_the_follower_is_built_again() {
        let mut f = Fixture::new();
        f.apply(5);
        f.ask_until_built(2, 0);
        f.apply(4);
        // The log no longer holds what follows index 5.
        assert!(f.ask(2, 7).is_none());
        let newer = f.ask_until_built(2, 7);
        assert_eq!(newer.get_metadata().index, 9);
        assert_eq!(f.builder.builds(), 2);
        assert!(
            !f.builder.dir().file(Side::Outgoing, 5, 3).exists(),
            "the older file is removed"
        );
        // A member added since: a snapshot that does not name it is no use
        // to it (raft-rs would refuse to restore it).
        f.apply(1);
        assert!(f.ask_with(4, 0, &[1, 2, 3, 4]).is_none());
        let with_4 = f.ask_until_built_with(4, 0, &[1, 2, 3, 4]);
        assert_eq!(
            with_4.get_metadata().get_conf_state().voters,
            vec![1, 2, 3, 4]
        );
        assert_eq!(f.builder.builds(), 3);
    }

    #[test]
    fn a_failed_build_is_tried_again_after_a_pause_not_on_every_ask() {
        let mut f = Fixture::new();
        f.apply(2);
        let dir = f.builder.dir().path().to_path_buf();
        std::fs::remove_dir_all(&dir).expect("removes the directory");
        assert!(f.ask(2, 0).is_none());
        let deadline = Instant::now() + Duration::from_secs(30);
        let retry_at = loop {
            if let Phase::Failed { retry_at } = *f.builder.phase() {
                break retry_at;
            }
            assert!(Instant::now() < deadline, "the build did not fail");
            std::thread::sleep(Duration::from_millis(10));
        };
        std::fs::create_dir_all(&dir).expect("makes the directory again");
        if Instant::now() < retry_at {
            assert!(f.ask(2, 0).is_none());
            assert!(
                matches!(*f.builder.phase(), Phase::Failed { .. }),
                "an ask before the retry time begins no build"
            );
        }
        let snapshot = f.ask_until_built(2, 0);
        assert_eq!(snapshot.get_metadata().index, 2);
        assert_eq!(f.builder.builds(), 1);
    }
}
