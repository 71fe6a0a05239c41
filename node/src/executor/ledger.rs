//! The records of running processes, one small file per run in the data
//! directory's `executor-runs/`: written when a shell run's process starts,
//! removed once its process group has been killed at the end of the run.
//! A record still there at start-up belongs to a run that a crash of the
//! executor (kill -9, OOM) left behind; `orphans` ends it.
//!
//! Records are not synced to disk: they guard against a crash of this
//! process, after which the page cache still holds them; a power loss
//! takes the processes down with it.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::data_dir::write_atomically;

const EXTENSION: &str = "json";

/// A shell run's process, as recorded while it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub job_id: String,
    pub attempt: u32,
    /// Where the run's final report goes.
    pub report_to: Vec<String>,
    /// The run's process group: the shell's pid.
    pub pgid: i32,
    /// The shell's start time in clock ticks after boot, which tells the
    /// group from a later one given the same id; `None` where `/proc` could
    /// not say.
    pub start_ticks: Option<u64>,
    /// The boot the start time counts from.
    pub boot_id: Option<String>,
    pub started_at: DateTime<Utc>,
}

/// A file of `executor-runs/` that is not a record.
#[derive(Debug)]
pub struct Unreadable {
    pub path: PathBuf,
    pub reason: String,
}

/// The `executor-runs/` directory.
#[derive(Debug)]
pub struct RunLedger {
    dir: PathBuf,
    /// Runs ended at start-up whose record stays until their final report
    /// is delivered, so a crash before then ends them again.
    awaiting_report: Mutex<HashSet<String>>,
    /// Set by the first failed write, so a full disk is logged once.
    failed: AtomicBool,
}

impl RunLedger {
    pub fn open(dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self {
            dir,
            awaiting_report: Mutex::new(HashSet::new()),
            failed: AtomicBool::new(false),
        })
    }

    /// Run ids are letters, digits, `-`, `_` and `.` (checked at admission),
    /// so they are safe file names; the extension keeps `.` and `..` apart
    /// from the directory's own entries.
    fn path_of(&self, run_id: &str) -> PathBuf {
        self.dir.join(format!("{run_id}.{EXTENSION}"))
    }

    /// Records a started process. A failure is logged, and the run goes on:
    /// only a crash of the executor during this run would then leave its
    /// process unreaped.
    pub fn record(&self, record: &RunRecord) {
        let result = serde_json::to_vec(record)
            .map_err(std::io::Error::other)
            .and_then(|bytes| write_atomically(&self.path_of(&record.run_id), &bytes, false));
        if let Err(e) = result {
            if !self.failed.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    dir = %self.dir.display(),
                    run_id = %record.run_id,
                    "cannot record a running process; should this executor crash, such \
                     processes are not killed at its next start (later failures are not \
                     logged): {e}"
                );
            }
        }
    }

    /// Forgets a run whose process group is gone.
    pub fn remove(&self, run_id: &str) {
        remove_file(&self.path_of(run_id));
    }

    /// Keeps the record of a run ended at start-up until [`Self::reported`].
    pub fn keep_until_reported(&self, run_id: &str) {
        self.awaiting().insert(run_id.to_string());
    }

    /// The final report of `run_id` is no longer being delivered (delivered,
    /// refused or abandoned): a record kept for it goes.
    pub fn reported(&self, run_id: &str) {
        if self.awaiting().remove(run_id) {
            self.remove(run_id);
        }
    }

    fn awaiting(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.awaiting_report
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every record in the directory: runs an earlier life of the executor
    /// left behind. Temporary files of an interrupted write are removed.
    pub fn left_behind(&self) -> anyhow::Result<Vec<Result<RunRecord, Unreadable>>> {
        let entries = std::fs::read_dir(&self.dir)
            .with_context(|| format!("cannot list {}", self.dir.display()))?;
        let mut found = Vec::new();
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot list {}", self.dir.display()))?
                .path();
            if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
                remove_file(&path);
                continue;
            }
            found.push(read_record(&path));
        }
        Ok(found)
    }
}

fn read_record(path: &Path) -> Result<RunRecord, Unreadable> {
    let unreadable = |reason: String| Unreadable {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))
}

fn remove_file(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), "cannot remove a run record: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(run_id: &str) -> RunRecord {
        RunRecord {
            run_id: run_id.into(),
            job_id: "job".into(),
            attempt: 2,
            report_to: vec!["http://127.0.0.1:7070".into()],
            pgid: 4242,
            start_ticks: Some(99),
            boot_id: Some("boot".into()),
            started_at: Utc::now(),
        }
    }

    #[test]
    fn records_are_listed_until_removed() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let ledger = RunLedger::open(dir.path().join("runs"))?;
        let a = record("a");
        ledger.record(&a);
        ledger.record(&record(".."));
        std::fs::write(dir.path().join("runs/b.json.tmp"), "{")?;
        std::fs::write(dir.path().join("runs/c.json"), "not json")?;
        let found = ledger.left_behind()?;
        let mut ids: Vec<String> = found
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|r| r.run_id.clone()))
            .collect();
        ids.sort();
        assert_eq!(ids, ["..", "a"]);
        assert!(found
            .iter()
            .any(|r| r.as_ref().err().is_some_and(|u| u.path.ends_with("c.json"))));
        assert!(!dir.path().join("runs/b.json.tmp").exists());
        let read_back = found.iter().flatten().find(|r| r.run_id == "a");
        assert_eq!(read_back, Some(&a), "a record reads back as written");

        ledger.remove("a");
        ledger.remove("never-there");
        ledger.keep_until_reported("..");
        ledger.reported("a");
        assert!(dir.path().join("runs/...json").exists());
        ledger.reported("..");
        assert!(!dir.path().join("runs/...json").exists());
        Ok(())
    }
}
