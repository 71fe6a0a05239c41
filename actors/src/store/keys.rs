//! Key layout of the state machine's sled tree. One tree holds everything
//! so that one `apply_batch` makes each command atomic.
//!
//! ```text
//! j\0{ns}\0{id}            -> Job
//! s\0{ns}\0{id}            -> JobState
//! r\0{run_id}              -> StoredRun
//! rj\0{ns}\0{id}\0{seq}    -> empty    (runs of a job, oldest first)
//! rs\0{status}\0{seq}      -> empty    (runs by status)
//! ra\0{seq}                -> run_id   (all runs)
//! n\0{node_id}            -> NodeInfo (scheduler nodes)
//! m\0applied               -> u64      (last applied log index)
//! m\0history_bytes         -> u64      (bytes of the stored runs)
//! ```
//! Names never contain NUL (validation allows `[A-Za-z0-9._-]`), and `seq`
//! is big-endian so keys sort by creation.
//!
//! Only `ra` holds the run id: an `rj` or `rs` entry finds its run through
//! the `ra` entry of the same `seq` ([`IndexTarget`]). Entries written by
//! earlier versions hold the id in all three, and are read as before.

use protocol::{JobKey, RunStatus};

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

/// Where the run of an `rj`, `rs` or `ra` entry is named.
#[derive(Debug, PartialEq, Eq)]
pub enum IndexTarget {
    /// The entry holds the run id (`ra`, and every entry of earlier versions).
    Id(String),
    /// The entry is empty: the `ra` entry of this `seq` holds the id.
    All(u64),
    /// An empty entry whose key ends in no `seq`: a corrupt entry.
    Unknown,
}

/// What an index entry (`key`, `value`) points at.
pub fn index_target(key: &[u8], value: &[u8]) -> IndexTarget {
    if !value.is_empty() {
        return IndexTarget::Id(String::from_utf8_lossy(value).into_owned());
    }
    match seq_of(key) {
        Some(seq) => IndexTarget::All(seq),
        None => IndexTarget::Unknown,
    }
}

/// The bytes one run takes in the tree as this version writes it: its
/// record's key and value (`value_len`) and its three index entries. The
/// byte budget of the history counts runs by this, so the total is the
/// same on every node and a recount gives what the increments gave.
pub fn run_footprint(job: &JobKey, run_id: &str, status: RunStatus, value_len: usize) -> u64 {
    let record = 2 + run_id.len() + value_len;
    let of_job = 3 + job.namespace.len() + 1 + job.id.len() + 1 + 8;
    let by_status = 3 + status.as_str().len() + 1 + 8;
    let all = 3 + 8 + run_id.len();
    (record + of_job + by_status + all) as u64
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
        let job = JobKey::new("default", "nightly-report");
        let (run_id, seq, status) = ("0123456789abcdef01234567", seq(77, 3), RunStatus::TimedOut);
        let written = [
            run(run_id).len() + 100,
            run_of_job(&job, seq).len(),
            run_by_status(status, seq).len(),
            run_in_all(seq).len() + run_id.len(),
        ];
        assert_eq!(
            run_footprint(&job, run_id, status, 100),
            written.iter().sum::<usize>() as u64
        );
    }

    #[test]
    fn an_index_entry_names_its_run_by_id_or_through_the_all_runs_index() {
        let key = run_of_job(&JobKey::new("default", "a"), 42);
        assert_eq!(index_target(&key, b"r1"), IndexTarget::Id("r1".into()));
        assert_eq!(index_target(&key, b""), IndexTarget::All(42));
        assert_eq!(index_target(b"short", b""), IndexTarget::Unknown);
    }
}
