//! The smallest whole deployment: one `cronmesh server` with executors of
//! group `default` that it knows by URL.

use crate::{
    api::Api,
    process::{executor, server, Proc},
};

/// One scheduler and its executors, all stopped on drop.
pub struct Fleet {
    pub api: Api,
    pub server: Proc,
    pub executors: Vec<Proc>,
    /// Holds the scheduler's data; scratch space for the test too.
    pub dir: tempfile::TempDir,
}

impl Fleet {
    /// A scheduler with `executor_count` executors.
    pub fn start(executor_count: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let executors: Vec<_> = (0..executor_count).map(|_| executor("default")).collect();
        let urls: Vec<&str> = executors.iter().map(|e| e.url.as_str()).collect();
        let server = server(dir.path(), "127.0.0.1:0", &urls);
        Fleet {
            api: Api::new(server.url.clone()),
            server,
            executors,
            dir,
        }
    }
}
