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

    /// The values under `prefix`, by key, as this command sees them: the
    /// tree's with the command's own writes and deletions over them.
    pub fn values_with_prefix<T: DeserializeOwned>(
        &self,
        prefix: &[u8],
    ) -> Result<Vec<T>, StoreError> {
        let mut found: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for entry in self.tree.scan_prefix(prefix) {
            let (key, value) = entry?;
            found.insert(key.to_vec(), value.to_vec());
        }
        for (key, value) in self
            .writes
            .range(prefix.to_vec()..)
            .take_while(|(key, _)| key.starts_with(prefix))
        {
            match value {
                Some(value) => found.insert(key.clone(), value.clone()),
                None => found.remove(key),
            };
        }
        found
            .iter()
            .map(|(key, bytes)| super::decode(key, bytes))
            .collect()
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
