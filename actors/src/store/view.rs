//! A point-in-time view of the whole state, read while applies go on.
//!
//! sled has no snapshot reads, so a view keeps the old values itself: while
//! a view is open, every write first records, for each key it changes, the
//! value that key had when the view began (`None`: the key did not exist),
//! unless the view has one already. Reading the view is then a walk of the
//! tree in which a key with a kept value yields the kept value, plus at the
//! end the kept values of keys deleted before the walk reached them.
//!
//! A walk that reads a key's current value just before a write keeps its
//! old value yields that same old value twice; a dump may therefore repeat
//! a record, always with the same value, and loading it is idempotent.
//!
//! Applies wait only for the moment a view begins (under the apply gate).
//! What a view costs is the old values of the keys written while it is
//! read: the writes of the seconds a snapshot takes, not the state. They
//! are bounded by [`MAX_KEPT_BYTES`]: past it the view stops keeping,
//! drops what it kept, and fails when it is written (a snapshot is then
//! built again a moment later, a backup asked again).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
};

use super::{dump::DumpWriter, StateMachine, StoreError};

/// Old values by key: the value a key had when the view began.
type OldValues = BTreeMap<Vec<u8>, Option<sled::IVec>>;

/// Most bytes of old values (keys included) one view keeps.
pub const MAX_KEPT_BYTES: u64 = 256 * 1024 * 1024;

/// What one open view shares with the writers.
struct Kept {
    /// The tree the view reads; writes to another tree (after a switch)
    /// do not concern it.
    tree_name: sled::IVec,
    old: Mutex<OldValues>,
    /// Bytes in `old`, keys included.
    bytes: AtomicU64,
    /// Set once `bytes` passed the limit: `old` is dropped and the view
    /// fails when written.
    overflowed: AtomicBool,
    /// The limit on `bytes`.
    limit: u64,
}

impl Kept {
    fn old(&self) -> MutexGuard<'_, OldValues> {
        self.old.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `key`'s old value is kept (or no longer needed: overflowed).
    fn has(&self, key: &[u8]) -> bool {
        self.overflowed() || self.old().contains_key(key)
    }

    fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Keeps `value` as `key`'s old value unless one is kept already.
    fn keep(&self, key: &[u8], value: &Option<sled::IVec>) {
        let mut old = self.old();
        if self.overflowed() || old.contains_key(key) {
            return;
        }
        let size = (key.len() + value.as_ref().map_or(0, |v| v.len())) as u64;
        if self.bytes.fetch_add(size, Ordering::Relaxed) + size > self.limit {
            self.overflowed.store(true, Ordering::Relaxed);
            *old = BTreeMap::new();
            return;
        }
        old.insert(key.to_vec(), value.clone());
    }
}

/// The views open on a store.
#[derive(Default)]
pub(super) struct Views {
    open: Arc<Mutex<Vec<Arc<Kept>>>>,
}

impl Views {
    fn open(&self) -> MutexGuard<'_, Vec<Arc<Kept>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called under the apply gate before a write to `tree` of `keys`.
    pub(super) fn keep_old_values<'k>(
        &self,
        tree: &sled::Tree,
        keys: impl Iterator<Item = &'k [u8]>,
    ) -> Result<(), StoreError> {
        let open = self.open();
        let concerned: Vec<&Arc<Kept>> = open
            .iter()
            .filter(|kept| kept.tree_name == tree.name() && !kept.overflowed())
            .collect();
        if concerned.is_empty() {
            return Ok(());
        }
        for key in keys {
            // A key every view kept already needs no read.
            if concerned.iter().all(|kept| kept.has(key)) {
                continue;
            }
            let current = tree.get(key)?;
            for kept in &concerned {
                kept.keep(key, &current);
            }
        }
        Ok(())
    }
}

/// The whole state as of one applied index, readable while applies go on.
/// Dropping it stops the keeping of old values.
pub struct StateView {
    index: u64,
    tree: sled::Tree,
    kept: Arc<Kept>,
    open: Arc<Mutex<Vec<Arc<Kept>>>>,
}

/// What writing a view produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// The applied index of the state written.
    pub index: u64,
    /// Records written (a record may repeat; see the module comment).
    pub records: u64,
    /// Bytes of the dump, header and trailer included.
    pub bytes: u64,
}

impl StateMachine {
    /// Begins a view of the whole state as it is now. Applies wait only
    /// while it begins.
    pub fn view(&self) -> Result<StateView, StoreError> {
        self.view_keeping_at_most(MAX_KEPT_BYTES)
    }

    /// [`StateMachine::view`] with another bound on the old values kept.
    pub fn view_keeping_at_most(&self, limit: u64) -> Result<StateView, StoreError> {
        let _whole = self.gate();
        let tree = self.tree();
        let index = self.applied_index()?;
        let kept = Arc::new(Kept {
            tree_name: tree.name(),
            old: Mutex::new(BTreeMap::new()),
            bytes: AtomicU64::new(0),
            overflowed: AtomicBool::new(false),
            limit,
        });
        self.views.open().push(kept.clone());
        Ok(StateView {
            index,
            tree,
            kept,
            open: self.views.open.clone(),
        })
    }
}

#[cfg(test)]
impl StateMachine {
    /// How many views are open.
    pub(super) fn views_open(&self) -> usize {
        self.views.open().len()
    }
}

impl StateView {
    /// The applied index of the state this view shows.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Every record of the view, in key order, then those deleted since it
    /// began; `keep` picks which go into the dump.
    pub fn write_dump<W: std::io::Write>(
        self,
        out: W,
        mut keep: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<Written, StoreError> {
        let mut dump = DumpWriter::new(out)?;
        // Keys whose kept value the walk already used.
        let mut used: BTreeSet<Vec<u8>> = BTreeSet::new();
        for entry in self.tree.iter() {
            let (key, current) = entry?;
            let value = match self.kept.old().get(key.as_ref()) {
                Some(old) => {
                    used.insert(key.to_vec());
                    old.clone()
                }
                None => Some(current),
            };
            if let Some(value) = value {
                if keep(&key, &value) {
                    dump.record(&key, &value)?;
                }
            }
        }
        let old = std::mem::take(&mut *self.kept.old());
        if self.kept.overflowed() {
            return Err(StoreError::ViewOverflow {
                limit: self.kept.limit,
            });
        }
        for (key, value) in old {
            if let (false, Some(value)) = (used.contains(&key), value) {
                if keep(&key, &value) {
                    dump.record(&key, &value)?;
                }
            }
        }
        let (records, bytes) = dump.finish()?;
        Ok(Written {
            index: self.index,
            records,
            bytes,
        })
    }
}

impl Drop for StateView {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|kept| !Arc::ptr_eq(kept, &self.kept));
    }
}
