//! `--receipts FILE`: one line per run admitted as new, with the moment it
//! arrived, so `cronmesh bench` can tell lost and doubled slots apart and
//! measure lateness as the executors saw it.
//!
//! A line holds six space-separated fields (job ids cannot contain spaces,
//! see `protocol::validate::check_name`):
//!
//! ```text
//! run_id job_id scheduled_at_unix_nanos received_at_unix_nanos attempt shard_index
//! ```
//!
//! Lines are buffered and written out by a background task every
//! [`FLUSH_EVERY`] and when the agent stops, so recording costs the
//! dispatch path a formatted line and a short lock, not a write(2).

use std::{
    fmt,
    fs::{File, OpenOptions},
    io::{BufWriter, Write},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard, Weak,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use protocol::dispatch::DispatchRequest;

/// How often buffered receipts reach the file.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Appends receipts to a file. Cheap to clone: clones share the file.
#[derive(Clone)]
pub struct Receipts {
    inner: Arc<Inner>,
}

struct Inner {
    /// Buffered so that a receipt is a memory copy on the dispatch path;
    /// behind a mutex because dispatches arrive on several HTTP workers.
    writer: Mutex<BufWriter<File>>,
    /// Where the receipts go, for messages.
    path: PathBuf,
    /// Set by the first failed write, so a full disk is logged once and not
    /// once per run.
    failed: AtomicBool,
}

impl Receipts {
    /// Opens `path` for appending, creating it when missing.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open the receipts file {}", path.display()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(BufWriter::with_capacity(256 * 1024, file)),
                path: path.to_path_buf(),
                failed: AtomicBool::new(false),
            }),
        })
    }

    /// Records that `req` was admitted as a new run just now.
    pub fn record(&self, req: &DispatchRequest) {
        let line = line(req, unix_nanos(SystemTime::now()));
        let result = self.inner.writer().write_all(line.as_bytes());
        self.inner.check(result);
    }

    /// Writes buffered receipts to the file.
    pub fn flush(&self) {
        let result = self.inner.writer().flush();
        self.inner.check(result);
    }

    /// Flushes every [`FLUSH_EVERY`] on the current tokio runtime, until
    /// every clone of this recorder is gone.
    pub fn spawn_flusher(&self) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let result = inner.writer().flush();
                inner.check(result);
            }
        });
    }
}

impl Inner {
    fn writer(&self) -> MutexGuard<'_, BufWriter<File>> {
        // A panic while holding the lock leaves at worst a partial line.
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn check(&self, result: std::io::Result<()>) {
        if let Err(e) = result {
            if !self.failed.swap(true, Ordering::Relaxed) {
                tracing::error!(path = %self.path.display(), error = %e, "cannot write receipts; later failures are not logged");
            }
        }
    }
}

impl fmt::Debug for Receipts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Receipts")
            .field(&self.inner.path.display())
            .finish()
    }
}

/// One receipt line, newline included.
fn line(req: &DispatchRequest, received_at_nanos: i128) -> String {
    let scheduled = req.scheduled_at.timestamp_nanos_opt().map_or(
        i128::from(req.scheduled_at.timestamp()) * 1_000_000_000,
        i128::from,
    );
    format!(
        "{} {} {} {} {} {}\n",
        req.run_id, req.job_id, scheduled, received_at_nanos, req.attempt, req.shard.index
    )
}

/// Nanoseconds since the Unix epoch (negative before it).
fn unix_nanos(at: SystemTime) -> i128 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_nanos() as i128,
        Err(before) => -(before.duration().as_nanos() as i128),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use protocol::dispatch::Task;

    fn request(run_id: &str, shard: u32) -> anyhow::Result<DispatchRequest> {
        Ok(DispatchRequest {
            run_id: run_id.into(),
            job_id: "bench-7".into(),
            namespace: "default".into(),
            scheduled_at: Utc
                .timestamp_opt(1_700_000_000, 5)
                .single()
                .context("a valid time")?,
            attempt: 2,
            shard: protocol::run::ShardInfo {
                index: shard,
                count: 4,
                param: String::new(),
            },
            params: String::new(),
            task: Task::Handler {
                handler: "noop".into(),
            },
            timeout_ms: 1000,
            report_to: vec![],
            term: 0,
            expires_at: None,
            parent_run_ids: Vec::new(),
            parent_scheduled_at: None,
        })
    }

    #[test]
    fn a_line_has_six_fields() -> anyhow::Result<()> {
        assert_eq!(
            line(&request("r1", 3)?, 1_700_000_000_250_000_000),
            "r1 bench-7 1700000000000000005 1700000000250000000 2 3\n"
        );
        Ok(())
    }

    #[test]
    fn receipts_reach_the_file_on_flush() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("receipts");
        let receipts = Receipts::create(&path)?;
        receipts.record(&request("r1", 0)?);
        receipts.clone().record(&request("r2", 1)?);
        receipts.flush();
        let text = std::fs::read_to_string(&path)?;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("r1 bench-7 1700000000000000005 "));
        assert!(lines[1].ends_with(" 2 1"));
        let received: i128 = lines[0]
            .split(' ')
            .nth(3)
            .context("a received_at field")?
            .parse()?;
        assert!(received > 1_700_000_000_000_000_000);
        Ok(())
    }
}
