//! The state machine as one blob, for Raft snapshots and backups: every
//! key and value of the tree, each as a u32 length and its bytes.

use super::{StateMachine, StoreError};

impl StateMachine {
    /// The applied index and the whole state as of that index. Called on
    /// the thread that applies, so no command lands half-way through.
    pub fn snapshot(&self) -> Result<(u64, Vec<u8>), StoreError> {
        let _whole = self.gate();
        let index = self.applied_index()?;
        let mut out = Vec::new();
        for entry in self.tree.iter() {
            let (k, v) = entry?;
            for part in [k.as_ref(), v.as_ref()] {
                let len = u32::try_from(part.len())
                    .map_err(|_| corrupt("a record is larger than 4 GiB"))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(part);
            }
        }
        Ok((index, out))
    }

    /// Replaces the whole state with a snapshot's, atomically.
    pub fn restore(&self, data: &[u8]) -> Result<(), StoreError> {
        self.restore_keeping(data, |_, _| true)
    }

    /// Replaces the whole state with the snapshot's records (key, value)
    /// that `keep` accepts, in one batch: a crash leaves the old state or
    /// the new.
    pub(super) fn restore_keeping(
        &self,
        data: &[u8],
        mut keep: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let _whole = self.gate();
        let mut batch = sled::Batch::default();
        for entry in self.tree.iter() {
            batch.remove(entry?.0);
        }
        let mut rest = data;
        while !rest.is_empty() {
            let key = take(&mut rest)?;
            let value = take(&mut rest)?;
            if keep(key, value) {
                batch.insert(key, value);
            }
        }
        self.tree.apply_batch(batch)?;
        self.flush()
    }
}

impl StateMachine {
    /// Excludes applies while held (see `apply_gate`). A panic while it was
    /// held leaves no half-applied command (each is one sled batch), so a
    /// poisoned gate is taken all the same.
    pub(super) fn gate(&self) -> std::sync::MutexGuard<'_, ()> {
        self.apply_gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn take<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], StoreError> {
    let (len, tail) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| corrupt("truncated length"))?;
    let len = u32::from_be_bytes(*len) as usize;
    if tail.len() < len {
        return Err(corrupt("truncated record"));
    }
    let (part, tail) = tail.split_at(len);
    *rest = tail;
    Ok(part)
}

fn corrupt(reason: &str) -> StoreError {
    StoreError::Corrupt {
        key: "snapshot".into(),
        reason: reason.into(),
    }
}
