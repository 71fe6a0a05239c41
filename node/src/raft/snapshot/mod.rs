//! Raft snapshots as files: built from a point-in-time view of the state
//! machine in the background, reused while they are recent enough, sent to
//! followers as a stream of chunks beside the Raft messages (see the
//! transport), and installed crash-safely.
//!
//! - `builder`: the leader's snapshot, built in the background and reused.
//! - `descriptor`: what the Raft message carries in place of the state.
//! - `files`: where snapshot files live and how a received one becomes whole.

pub mod builder;
pub mod descriptor;
pub mod files;
