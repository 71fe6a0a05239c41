//! Raft replication of the metadata log.
//!
//! - `engine`: the RawNode thread and its ready loop; applies committed commands.
//! - `proposer`: the cluster's `Proposer`, through the engine's mailbox.
//! - `snapshot`: snapshot files: built, reused, sent out of band, installed.
//! - `storage`: the Raft log, hard state and the snapshot point in sled.
//! - `transport`: batched TCP between nodes, authenticated by the cluster
//!   secret and, with certificates, mutual TLS; `faults`: injected faults for tests.

pub mod engine;
pub mod faults;
pub mod proposer;
pub mod snapshot;
pub mod storage;
pub mod transport;
