//! Installing a snapshot the leader sent, crash-safely.
//!
//! The transport delivers a snapshot message only once its file is whole
//! on disk and its checksum matched. The install then runs in this order:
//!
//! 1. the state machine loads the file into a new tree and switches to it
//!    in one write (a crash before leaves the old state, after, the new);
//! 2. the Raft storage takes the snapshot's point: commit, members, and a
//!    log starting after it (one sled transaction).
//!
//! A crash between the two leaves a state machine ahead of its log. That
//! is a state the node starts from anyway (it applies before it persists
//! the commit): Raft starts at the stored commit, hands over entries the
//! state machine skips as applied, and the leader sends what is missing,
//! by entries or by another snapshot.

use std::io::BufReader;

use raft::eraftpb::Snapshot;

use super::Engine;
use crate::raft::snapshot::{descriptor::SnapshotDescriptor, files::Side};

/// The steps of an install, named for kill points in tests (those of the
/// state machine's own load are in `actors::store::install::steps`).
pub mod steps {
    /// The received file is whole; nothing is installed yet.
    pub const RECEIVED: &str = "raft-install-received";
    /// The state machine holds the snapshot's state; the Raft storage does
    /// not know it yet.
    pub const STATE_SWITCHED: &str = "raft-install-state-switched";
    /// Both hold the snapshot; the file is still there.
    pub const DONE: &str = "raft-install-done";
}

impl Engine {
    pub(super) fn install_snapshot(&mut self, snapshot: &Snapshot) -> anyhow::Result<()> {
        let meta = snapshot.get_metadata();
        let (index, term) = (meta.index, meta.term);
        let descriptor = SnapshotDescriptor::decode(&snapshot.data, index, term)
            .map_err(|e| anyhow::anyhow!(e))?;
        let path = self.snapshots.dir().file(Side::Incoming, index, term);
        actors::kill_point(steps::RECEIVED);
        let file = std::fs::File::open(&path).map_err(|e| {
            anyhow::anyhow!(
                "snapshot {index}/{term} has no file at {}: {e}",
                path.display()
            )
        })?;
        let started = std::time::Instant::now();
        let installed = self
            .store
            .install_dump(BufReader::with_capacity(1024 * 1024, file), |_, _| true)?;
        if installed.index != index {
            anyhow::bail!(
                "snapshot {index}/{term} holds a state at applied index {}",
                installed.index
            );
        }
        actors::kill_point(steps::STATE_SWITCHED);
        self.storage.apply_snapshot(snapshot)?;
        actors::kill_point(steps::DONE);
        self.applied_term = term;
        self.snapshots.dir().remove_others(Side::Incoming, None);
        self.installed_snapshots += 1;
        tracing::info!(
            index,
            term,
            bytes = descriptor.bytes,
            records = installed.records,
            millis = started.elapsed().as_millis() as u64,
            "installed a snapshot from the leader"
        );
        Ok(())
    }
}
