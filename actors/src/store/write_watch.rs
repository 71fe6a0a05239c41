//! How the store's writes are going: how long the write in progress has
//! gone on, and the I/O error a write failed with, if one did.
//!
//! sled 0.34 does not get over a write that failed for want of space:
//! either its flush waits for ever (for a stable log position no write
//! will reach) or it keeps the error and fails every later write. So a
//! write that has gone on for seconds, or one failed I/O, is how a wedged
//! store shows. The threads that write (the single-node log, the Raft
//! engine) mark their writes and record failures; a watcher elsewhere
//! reads [`WriteWatch::stuck_for`] and [`WriteWatch::failure`].

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, PoisonError,
    },
    time::{Duration, Instant},
};

#[derive(Debug)]
pub struct WriteWatch {
    /// What the marks count from.
    origin: Instant,
    /// Microseconds from `origin` to the start of the write in progress,
    /// plus one; 0 while none is.
    started: AtomicU64,
    /// The first I/O error a write of the store failed with; it stays, as
    /// sled's own does.
    failure: Mutex<Option<WriteFailure>>,
}

/// An I/O error a write of the store failed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteFailure {
    pub error: String,
    /// Whether it was for want of space (ENOSPC, EDQUOT): then room is
    /// what the store needs to write again.
    pub out_of_space: bool,
}

/// Whether `error` says the disk (or the user's quota) is full.
pub fn is_out_of_space(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

impl Default for WriteWatch {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            started: AtomicU64::new(0),
            failure: Mutex::new(None),
        }
    }
}

/// A write in progress; it ends when dropped.
#[must_use = "the write counts as in progress until this is dropped"]
pub struct WriteMark<'a> {
    watch: &'a WriteWatch,
    /// The mark of an outer write, put back when this one ends (writes of
    /// one thread may nest: a batch, then its flush).
    outer: u64,
}

impl WriteWatch {
    /// Marks a write as begun, from now until the mark is dropped.
    pub fn begin(&self) -> WriteMark<'_> {
        let now = self.micros_since_origin() + 1;
        let outer = self.started.load(Ordering::Relaxed);
        if outer == 0 {
            self.started.store(now, Ordering::Relaxed);
        }
        WriteMark { watch: self, outer }
    }

    /// How long the write in progress has been going; `None` when no
    /// write is.
    pub fn stuck_for(&self) -> Option<Duration> {
        match self.started.load(Ordering::Relaxed) {
            0 => None,
            started => Some(Duration::from_micros(
                self.micros_since_origin().saturating_sub(started - 1),
            )),
        }
    }

    /// Records that a write failed with an I/O error (the first one is
    /// kept).
    pub fn failed(&self, failure: WriteFailure) {
        let mut kept = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.is_none() {
            *kept = Some(failure);
        }
    }

    /// The I/O error a write failed with, if one did.
    pub fn failure(&self) -> Option<WriteFailure> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn micros_since_origin(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX - 1)
    }
}

impl Drop for WriteMark<'_> {
    fn drop(&mut self) {
        if self.outer == 0 {
            self.watch.started.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_counts_from_its_start_until_its_mark_drops() {
        let watch = WriteWatch::default();
        assert_eq!(watch.stuck_for(), None);
        let outer = watch.begin();
        std::thread::sleep(Duration::from_millis(5));
        let inner = watch.begin();
        assert!(watch
            .stuck_for()
            .is_some_and(|d| d >= Duration::from_millis(5)));
        drop(inner);
        // The outer write still goes on, from its own start.
        assert!(watch
            .stuck_for()
            .is_some_and(|d| d >= Duration::from_millis(5)));
        drop(outer);
        assert_eq!(watch.stuck_for(), None);
    }

    #[test]
    fn the_first_failure_stays() {
        let watch = WriteWatch::default();
        assert_eq!(watch.failure(), None);
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert!(is_out_of_space(&full));
        assert!(!is_out_of_space(&std::io::Error::from(
            std::io::ErrorKind::PermissionDenied
        )));
        watch.failed(WriteFailure {
            error: full.to_string(),
            out_of_space: true,
        });
        watch.failed(WriteFailure {
            error: "something later".into(),
            out_of_space: false,
        });
        assert_eq!(watch.failure().map(|f| f.error), Some(full.to_string()));
    }
}
