//! Key layout of the state machine's sled tree. One tree holds everything
//! so that one `apply_batch` makes each command atomic.
//!
//! ```text
//! j\0{ns}\0{id}            -> Job
//! s\0{ns}\0{id}            -> JobState
//! r\0{run_id}              -> StoredRun {seq, run}, packed (`packed_run`)
//! n\0{node_id}            -> NodeInfo (scheduler nodes)
//! m\0applied               -> u64      (last applied log index)
//! m\0history_bytes         -> u64      (bytes of the stored runs)
//! ```
//! Names never contain NUL (validation allows `[A-Za-z0-9._-]`).
//!
//! A run is one record: its indexes (by job, by status, by creation
//! order) are built in memory from the records (`run_index`). Earlier
//! versions kept them in the tree too (`rj`, `rs`, `ra`); those entries
//! are dropped when such a store opens.

use protocol::JobKey;

pub const APPLIED: &[u8] = b"m\0applied";
/// The bytes the stored runs take, by [`run_footprint`] (see `retention`).
pub const HISTORY_BYTES: &[u8] = b"m\0history_bytes";
pub const NODES_PREFIX: &[u8] = b"n\0";

pub fn node(node_id: u64) -> Vec<u8> {
    let mut k = NODES_PREFIX.to_vec();
    k.extend_from_slice(&node_id.to_be_bytes());
    k
}

fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(0);
        }
        key.extend_from_slice(part);
    }
    key
}

pub fn job(key: &JobKey) -> Vec<u8> {
    join(&[b"j", key.namespace.as_bytes(), key.id.as_bytes()])
}

pub fn job_prefix(namespace: Option<&str>) -> Vec<u8> {
    match namespace {
        Some(ns) => join(&[b"j", ns.as_bytes(), b""]),
        None => b"j\0".to_vec(),
    }
}

pub fn job_state(key: &JobKey) -> Vec<u8> {
    join(&[b"s", key.namespace.as_bytes(), key.id.as_bytes()])
}

pub fn run(id: &str) -> Vec<u8> {
    join(&[b"r", id.as_bytes()])
}

/// The run id of a key made by [`run`]; `None` for any other key.
pub fn run_id(key: &[u8]) -> Option<&str> {
    key.strip_prefix(b"r\0")
        .and_then(|id| std::str::from_utf8(id).ok())
}

/// Prefixes of the run indexes earlier versions kept in the tree (by
/// job, by status, all runs): the index is in memory now (`run_index`), and
/// a store that still has them drops them when it opens (`migrate`).
pub const OLD_INDEX_PREFIXES: [&[u8]; 3] = [b"rj\0", b"rs\0", b"ra\0"];

pub fn job_state_prefix() -> Vec<u8> {
    b"s\0".to_vec()
}

/// The job a `s\0{ns}\0{id}` key names.
pub fn job_of_state(key: &[u8]) -> Option<JobKey> {
    let rest = key.strip_prefix(b"s\0")?;
    let split = rest.iter().position(|b| *b == 0)?;
    let (namespace, id) = (&rest[..split], &rest[split + 1..]);
    Some(JobKey::new(
        std::str::from_utf8(namespace).ok()?,
        std::str::from_utf8(id).ok()?,
    ))
}

/// The bytes one run takes in the tree as this version writes it: its
/// record's key and value (`value_len`). The byte budget of the history
/// counts runs by this, so the total is the same on every node and a
/// recount gives what the increments gave.
pub fn run_footprint(run_id: &str, value_len: usize) -> u64 {
    (2 + run_id.len() + value_len) as u64
}

/// Run ordering key: log index in the high bits, position in the command
/// in the low 20 bits. (A store restored from a backup starts its log
/// again: there a run takes the newest stored `seq` plus one when that is
/// greater, see `apply::create_runs`.)
pub fn seq(log_index: u64, position: usize) -> u64 {
    (log_index << 20) | (position as u64 & 0xF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_footprint_of_a_run_is_the_length_of_what_is_written_for_it() {
        let run_id = "0123456789abcdef01234567";
        assert_eq!(run_footprint(run_id, 100), run(run_id).len() as u64 + 100);
    }

    #[test]
    fn a_job_state_key_names_its_job() {
        let key = JobKey::new("default", "nightly-report");
        assert_eq!(job_of_state(&job_state(&key)), Some(key));
        assert_eq!(job_of_state(b"s\0no-id"), None);
        assert_eq!(job_of_state(b"j\0default\0a"), None);
    }
}
