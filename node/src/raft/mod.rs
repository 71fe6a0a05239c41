//! Raft replication of the metadata log.
//!
//! - `engine`: the RawNode thread and its ready loop; applies committed commands.
//! - `proposer`: the cluster's `Proposer`, through the engine's mailbox.
//! - `storage`: the Raft log, hard state and snapshots in sled.
//! - `transport`: batched TCP between nodes; `faults`: injected faults for tests.

pub mod engine;
pub mod faults;
pub mod proposer;
pub mod storage;
pub mod transport;
