//! Key layout of the state machine's sled tree. One tree holds everything
//! so that one `apply_batch` makes each command atomic.
//!
//! ```text
//! j\0{ns}\0{id}            -> Job
//! s\0{ns}\0{id}            -> JobState
//! r\0{run_id}              -> StoredRun
//! rj\0{ns}\0{id}\0{seq}    -> run_id   (runs of a job, oldest first)
//! rs\0{status}\0{seq}      -> run_id   (runs by status)
//! ra\0{seq}                -> run_id   (all runs)
//! n\0{node_id}            -> NodeInfo (scheduler nodes)
//! m\0applied               -> u64      (last applied log index)
//! ```
//! Names never contain NUL (validation allows `[A-Za-z0-9._-]`), and `seq`
//! is big-endian so keys sort by creation.

use protocol::{JobKey, RunStatus};

pub const APPLIED: &[u8] = b"m\0applied";
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

pub fn runs_of_job_prefix(key: &JobKey) -> Vec<u8> {
    join(&[b"rj", key.namespace.as_bytes(), key.id.as_bytes(), b""])
}

pub fn run_of_job(key: &JobKey, seq: u64) -> Vec<u8> {
    let mut k = runs_of_job_prefix(key);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn runs_by_status_prefix(status: RunStatus) -> Vec<u8> {
    join(&[b"rs", status.as_str().as_bytes(), b""])
}

pub fn run_by_status(status: RunStatus, seq: u64) -> Vec<u8> {
    let mut k = runs_by_status_prefix(status);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub const ALL_RUNS_PREFIX: &[u8] = b"ra\0";

pub fn run_in_all(seq: u64) -> Vec<u8> {
    let mut k = ALL_RUNS_PREFIX.to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The `seq` at the end of an index key.
pub fn seq_of(index_key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = index_key
        .get(index_key.len().checked_sub(8)?..)?
        .try_into()
        .ok()?;
    Some(u64::from_be_bytes(tail))
}

/// Run ordering key: log index in the high bits, position in the command
/// in the low 20 bits.
pub fn seq(log_index: u64, position: usize) -> u64 {
    (log_index << 20) | (position as u64 & 0xF_FFFF)
}
