//! What a Raft snapshot message carries in place of the state: which file
//! to fetch and how large it is. The state itself travels out of band, as
//! a stream of chunks (see the transport), and the receiver checks the
//! dump's own checksum before Raft sees the message.

use serde::{Deserialize, Serialize};

/// The `data` of a snapshot in Raft messages and in the log storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotDescriptor {
    /// Applied index of the state (also in the snapshot's metadata).
    pub index: u64,
    /// Term of the entry at `index`.
    pub term: u64,
    /// Bytes of the dump file.
    pub bytes: u64,
}

impl SnapshotDescriptor {
    pub fn encode(&self) -> Vec<u8> {
        // A struct of three integers always encodes.
        protocol::wire::encode(self).unwrap_or_default()
    }

    /// The descriptor in a snapshot's data, checked against its metadata.
    pub fn decode(data: &[u8], index: u64, term: u64) -> Result<Self, String> {
        let descriptor: Self = protocol::wire::decode(data)
            .map_err(|e| format!("snapshot data is not a descriptor: {e}"))?;
        if (descriptor.index, descriptor.term) != (index, term) {
            return Err(format!(
                "snapshot descriptor says {}/{} but its metadata {index}/{term}",
                descriptor.index, descriptor.term
            ));
        }
        Ok(descriptor)
    }
}
