//! How many connections the admin API holds at once.
//!
//! Every connection costs a file descriptor, and so does everything else a
//! node does: Raft peers, gossip, sled's files, calls to executors. A flood
//! of idle or slow connections (a request head or body trickled a byte a
//! second) must never take the last descriptor, or the node can no longer
//! accept a health check or open a file. So the process raises its soft
//! limit on open files to the hard one, and the API's workers together hold
//! at most a quarter of it; past that, new connections wait in the
//! listener's backlog until one closes. Slow clients lose their connection
//! after the server's timeouts (`serve`).

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Descriptors kept back for everything but API connections, at the least.
const RESERVED: u64 = 256;
/// No limit is taken above this, even when the hard limit allows more.
const CEILING: u64 = 1 << 20;

/// The open-files limit after raising the soft limit to the hard one.
pub fn raise_open_files() -> u64 {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            let wanted = hard.min(CEILING).max(soft);
            if wanted > soft && setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).is_ok() {
                wanted
            } else {
                soft
            }
        }
        Err(_) => 1024,
    }
}

/// Connections each of `workers` may hold when the process may open
/// `open_files` descriptors.
pub fn per_worker(open_files: u64, workers: usize) -> usize {
    let for_api = (open_files / 4).min(open_files.saturating_sub(RESERVED));
    let each = for_api / workers.max(1) as u64;
    usize::try_from(each).unwrap_or(usize::MAX).max(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_connections_leave_most_descriptors_to_the_rest_of_the_node() {
        assert_eq!(per_worker(20_000, 2), 2_500);
        assert_eq!(per_worker(1024, 2), 128);
        // A tiny limit still serves someone.
        assert_eq!(per_worker(100, 2), 16);
    }

    #[test]
    fn raising_never_lowers_the_limit() {
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        assert!(raise_open_files() >= soft);
    }
}
