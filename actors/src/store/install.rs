//! Replacing the whole state with a dump's (a Raft snapshot or a backup),
//! crash-safely and in flat memory.
//!
//! The dump is loaded into a new tree beside the current one, a batch of
//! records at a time; the run index is built from it (after dropping the
//! index entries a dump of an earlier version holds); the new tree is
//! flushed; then one write to
//! `store-meta` names it current, and the handle readers take is switched.
//! A crash before that write leaves the old state (the half-loaded tree is
//! dropped at the next start), a crash after it the new one. Applies wait
//! only for the switch itself.

use std::io::Read;

use super::{
    dump::DumpReader, migrate, run_index::RunIndex, StateMachine, StoreError, ACTIVE_KEY,
    FIRST_TREE,
};

/// Bytes of records gathered into one batch while a dump is loaded.
const LOAD_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// What an install put in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Installed {
    /// The applied index the new state carries.
    pub index: u64,
    /// Records read from the dump.
    pub records: u64,
}

/// The steps of an install, named for kill points in tests.
pub mod steps {
    /// Half of the dump's records are in the new tree.
    pub const LOADING: &str = "store-install-loading";
    /// The new tree is complete and flushed; the old one is still current.
    pub const LOADED: &str = "store-install-loaded";
    /// The new tree is current on disk.
    pub const SWITCHED: &str = "store-install-switched";
}

impl StateMachine {
    /// Makes the dump's records (those `keep` accepts) the whole state.
    pub fn install_dump(
        &self,
        input: impl Read,
        mut keep: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<Installed, StoreError> {
        let mut reader = DumpReader::new(input)?;
        let current = self.tree().name();
        // Trees of earlier installs (and a crashed one's) go first.
        drop_stale_trees(&self.db, &String::from_utf8_lossy(&current))?;
        let name = format!("{FIRST_TREE}.{}", generation(&current).unwrap_or(0) + 1);
        let fresh = self.db.open_tree(&name)?;
        let loaded = (|| {
            let mut batch = sled::Batch::default();
            let mut batch_bytes = 0;
            let mut records = 0u64;
            while let Some((key, value)) = reader.next_record()? {
                records += 1;
                if !keep(&key, &value) {
                    continue;
                }
                batch_bytes += key.len() + value.len();
                batch.insert(key, value);
                if batch_bytes >= LOAD_BATCH_BYTES {
                    fresh.apply_batch(std::mem::take(&mut batch))?;
                    batch_bytes = 0;
                    crate::kill_point(steps::LOADING);
                }
            }
            fresh.apply_batch(batch)?;
            migrate::drop_old_indexes(&fresh)?;
            let runs = RunIndex::build(&fresh)?;
            self.db.flush()?;
            Ok::<_, StoreError>((records, runs))
        })();
        let (records, runs) = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                drop(fresh);
                let _ = self.db.drop_tree(name.as_bytes());
                return Err(e);
            }
        };
        crate::kill_point(steps::LOADED);
        let index = {
            let _whole = self.gate();
            self.meta.insert(ACTIVE_KEY, name.as_bytes())?;
            self.db.flush()?;
            // Readers see the new tree with its index: both are switched
            // while the index is held.
            let mut held = self.index_mut();
            let old = std::mem::replace(
                &mut *self
                    .tree
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                fresh,
            );
            *held = runs;
            drop(held);
            crate::kill_point(steps::SWITCHED);
            // The old tree stays until the next start or install drops it:
            // a reader may still hold it.
            drop(old);
            self.applied_index()?
        };
        Ok(Installed { index, records })
    }
}

/// The generation of a state tree's name: 0 for `state`, N for `state.N`.
fn generation(name: &[u8]) -> Option<u64> {
    let name = std::str::from_utf8(name).ok()?;
    if name == FIRST_TREE {
        return Some(0);
    }
    name.strip_prefix(FIRST_TREE)?
        .strip_prefix('.')?
        .parse()
        .ok()
}

/// Drops every state tree but the current one: leftovers of installs that
/// finished (the old state) or crashed (a half-loaded new one).
pub(super) fn drop_stale_trees(db: &sled::Db, active: &str) -> Result<(), StoreError> {
    for name in db.tree_names() {
        if generation(&name).is_some() && name.as_ref() != active.as_bytes() {
            tracing::info!(
                tree = %String::from_utf8_lossy(&name),
                "dropping a state tree left by an earlier install"
            );
            db.drop_tree(&name)?;
        }
    }
    Ok(())
}
