//! `cronmesh_store_disk_bytes`: what the node's sled database (the state
//! and the Raft log) takes on disk, as sled counts it, read at each
//! scrape. A collector rather than a registered gauge, so that a scrape
//! at which sled could not tell leaves the sample out instead of showing
//! a size of 0.

use std::sync::{Mutex, PoisonError};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::gauge::ConstGauge,
};

/// The gauge's value, set by each scrape before it encodes.
#[derive(Debug, Default)]
pub struct StoreDiskBytes {
    /// The last size read; `None` until one was, or when the last read
    /// failed.
    bytes: Mutex<Option<u64>>,
}

impl StoreDiskBytes {
    pub fn set(&self, bytes: Option<u64>) {
        *self.bytes.lock().unwrap_or_else(PoisonError::into_inner) = bytes;
    }

    fn get(&self) -> Option<u64> {
        *self.bytes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Collector for StoreDiskBytes {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(bytes) = self.get() else {
            return Ok(());
        };
        let gauge = ConstGauge::new(i64::try_from(bytes).unwrap_or(i64::MAX));
        let metric = encoder.encode_descriptor(
            "store_disk_bytes",
            "Bytes the node's sled database (state and Raft log) takes on disk, as sled reports it",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(metric)
    }
}
