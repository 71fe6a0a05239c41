//! What earlier versions stored and this one derives: the run indexes in
//! the tree (`rj`, `rs`, `ra`; see `keys`), dropped when such a tree is
//! opened or installed.
//!
//! Every node drops the same entries from the same state, so the trees
//! stay the same on every node. The byte total of such a tree counted the
//! entries too: it is dropped with them, and the next command that writes
//! a run counts the records again (see `run_book`).

use super::{keys, StoreError};

/// Keys removed per batch, so that memory stays flat on a large store.
const BATCH: usize = 10_000;

/// Drops the old index entries of `tree`; answers how many there were.
pub(super) fn drop_old_indexes(tree: &sled::Tree) -> Result<u64, StoreError> {
    let mut any = false;
    for prefix in keys::OLD_INDEX_PREFIXES {
        any |= tree
            .scan_prefix(prefix)
            .keys()
            .next()
            .transpose()?
            .is_some();
    }
    if !any {
        return Ok(0);
    }
    // First, so that a crash half-way leaves no total of the old count.
    tree.remove(keys::HISTORY_BYTES)?;
    let mut dropped = 0u64;
    for prefix in keys::OLD_INDEX_PREFIXES {
        loop {
            let mut batch = sled::Batch::default();
            let mut keys = 0;
            for key in tree.scan_prefix(prefix).keys().take(BATCH) {
                batch.remove(key?);
                keys += 1;
            }
            if keys == 0 {
                break;
            }
            tree.apply_batch(batch)?;
            dropped += keys as u64;
        }
    }
    tracing::info!(
        entries = dropped,
        "dropped the run index entries of an earlier version"
    );
    Ok(dropped)
}
