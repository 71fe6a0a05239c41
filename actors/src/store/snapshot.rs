//! The state machine as one blob, for Raft snapshots: every key and value
//! of the tree, each as a u32 length and its bytes.

use super::{StateMachine, StoreError};

impl StateMachine {
    /// The applied index and the whole state as of that index. Called on
    /// the thread that applies, so no command lands half-way through.
    pub fn snapshot(&self) -> Result<(u64, Vec<u8>), StoreError> {
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
        let mut batch = sled::Batch::default();
        for entry in self.tree.iter() {
            batch.remove(entry?.0);
        }
        let mut rest = data;
        while !rest.is_empty() {
            let key = take(&mut rest)?;
            let value = take(&mut rest)?;
            batch.insert(key, value);
        }
        self.tree.apply_batch(batch)?;
        self.flush()
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
