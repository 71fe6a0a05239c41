//! A write overlay over the tree: reads see the writes made earlier in the
//! same command, and everything lands in one atomic `apply_batch`.

use std::collections::BTreeMap;

use serde::{de::DeserializeOwned, Serialize};

use super::StoreError;

pub struct Txn<'a> {
    tree: &'a sled::Tree,
    /// `None` marks a deletion.
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a> Txn<'a> {
    pub fn new(tree: &'a sled::Tree) -> Self {
        Self {
            tree,
            writes: BTreeMap::new(),
        }
    }

    pub fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.writes.get(key) {
            Some(value) => Ok(value.clone()),
            None => Ok(self.tree.get(key)?.map(|v| v.to_vec())),
        }
    }

    pub fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.get_raw(key)?
            .map(|bytes| super::decode(key, &bytes))
            .transpose()
    }

    pub fn exists(&self, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.get_raw(key)?.is_some())
    }

    pub fn put_raw(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    pub fn put<T: Serialize>(&mut self, key: Vec<u8>, value: &T) -> Result<(), StoreError> {
        let bytes = protocol::wire::encode(value).map_err(|e| StoreError::Encode(e.to_string()))?;
        self.put_raw(key, bytes);
        Ok(())
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Keys and values under `prefix` from `start` on, oldest first, as
    /// this command leaves them: the tree's entries merged with this
    /// command's writes, without the ones it deleted.
    pub fn scan<'s>(
        &'s self,
        prefix: &'s [u8],
        start: &[u8],
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + 's {
        let committed = self
            .tree
            .range(start.to_vec()..)
            .map(|item| {
                item.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(StoreError::from)
            })
            .take_while(move |item| item.as_ref().map_or(true, |(k, _)| k.starts_with(prefix)))
            .peekable();
        let written = self
            .writes
            .range(start.to_vec()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .peekable();
        Merged { committed, written }.filter_map(Result::transpose)
    }

    /// The greatest key under `prefix` as this command leaves it, or
    /// greater: a key this command deleted may be answered.
    pub fn last_key(&self, prefix: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let stored = self
            .tree
            .scan_prefix(prefix)
            .keys()
            .next_back()
            .transpose()?;
        let written = self
            .writes
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.clone())
            .last();
        Ok(stored.map(|k| k.to_vec()).max(written))
    }

    /// The keys this command writes or deletes.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.writes.keys().map(Vec::as_slice)
    }

    /// How many keys this command writes or deletes.
    pub fn changed_keys(&self) -> usize {
        self.writes.len()
    }

    pub fn into_batch(self) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for (key, value) in self.writes {
            match value {
                Some(v) => batch.insert(key, v),
                None => batch.remove(key),
            }
        }
        batch
    }
}

/// The tree's entries and a command's writes, in key order; a write wins
/// over the tree's entry of the same key. Yields `Ok(None)` for a deletion.
struct Merged<'w, C, W>
where
    C: Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>>,
    W: Iterator<Item = (&'w Vec<u8>, &'w Option<Vec<u8>>)>,
{
    committed: std::iter::Peekable<C>,
    written: std::iter::Peekable<W>,
}

impl<'w, C, W> Iterator for Merged<'w, C, W>
where
    C: Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>>,
    W: Iterator<Item = (&'w Vec<u8>, &'w Option<Vec<u8>>)>,
{
    type Item = Result<Option<(Vec<u8>, Vec<u8>)>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let order = match (self.committed.peek(), self.written.peek()) {
            (None, None) => return None,
            (Some(Err(_)), _) | (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(Ok((c, _))), Some((w, _))) => c.cmp(*w),
        };
        if order == std::cmp::Ordering::Less {
            return self.committed.next().map(|item| item.map(Some));
        }
        if order == std::cmp::Ordering::Equal {
            self.committed.next();
        }
        let (key, value) = self.written.next()?;
        Some(Ok(value.clone().map(|v| (key.clone(), v))))
    }
}
