//! The records of shell runs, one small file per run in the data
//! directory's `executor-runs/`: written just before a run's process starts
//! (with no process group yet), again once it has started, and
//! rewritten with the run's final result (status, exit code, end time,
//! error, output tail) when it ends. A record lives until a scheduler has
//! acknowledged the run's final report (or refused it for good), so the
//! records are bounded by the runs not yet acknowledged.
//!
//! At start-up (`orphans`), a record without a result belongs to a run
//! that a crash of the executor (kill -9, OOM) left running: its group is
//! killed and the run reported failed. A record with a result belongs to a
//! run that ended but whose final report was not yet taken: the run is
//! known as finished (a dispatch of its id again is a duplicate, never a
//! second start) and its report is delivered again.
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
use protocol::run::{tail, RunStatus, OUTPUT_LIMIT};
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
    /// The run's process group: the shell's pid; 0 while the process is
    /// being started (the record is written before it starts, so a run
    /// that may have begun is never forgotten).
    pub pgid: i32,
    /// The shell's start time in clock ticks after boot, which tells the
    /// group from a later one given the same id; `None` where `/proc` could
    /// not say.
    pub start_ticks: Option<u64>,
    /// The boot the start time counts from.
    pub boot_id: Option<String>,
    pub started_at: DateTime<Utc>,
    /// How the run ended, once it has; `None` while its process runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<FinalResult>,
}

/// A run's end as its final report carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalResult {
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    pub finished_at: DateTime<Utc>,
    pub error: Option<String>,
    /// The tail of the output, at most [`OUTPUT_LIMIT`] bytes as in a report.
    pub output: String,
}

impl FinalResult {
    pub fn new(
        status: RunStatus,
        exit_code: Option<i32>,
        finished_at: DateTime<Utc>,
        error: Option<String>,
        output: &str,
    ) -> Self {
        Self {
            status,
            exit_code,
            finished_at,
            error,
            output: tail(output, OUTPUT_LIMIT).to_string(),
        }
    }
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
    /// Ended runs whose record stays until their final report is no longer
    /// being delivered, so a crash before then does not lose their end.
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

    /// Writes `record`, replacing an earlier version atomically (a crash
    /// leaves the old one or the new one). A failure is logged, and the run
    /// goes on: only a crash of the executor would then leave its process
    /// unreaped (no record), or its end unknown (no result: it is reported
    /// failed at the next start).
    pub fn record(&self, record: &RunRecord) {
        let result = serde_json::to_vec(record)
            .map_err(std::io::Error::other)
            .and_then(|bytes| write_atomically(&self.path_of(&record.run_id), &bytes, false));
        if let Err(e) = result {
            if !self.failed.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    dir = %self.dir.display(),
                    run_id = %record.run_id,
                    "cannot write a run record; should this executor crash, such a run's \
                     process is not killed, or its end not known, at its next start (later \
                     failures are not logged): {e}"
                );
            }
        }
    }

    /// Forgets a run.
    pub fn remove(&self, run_id: &str) {
        remove_file(&self.path_of(run_id));
    }

    /// Keeps the record of an ended run until [`Self::reported`].
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
            result: None,
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

    #[test]
    fn a_result_is_kept_bounded_and_older_records_read_without_one() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let ledger = RunLedger::open(dir.path().join("runs"))?;
        let mut finished = record("done");
        let long = "x".repeat(OUTPUT_LIMIT + 100);
        finished.result = Some(FinalResult::new(
            RunStatus::Failed,
            Some(3),
            Utc::now(),
            Some("exit code 3".into()),
            &long,
        ));
        ledger.record(&finished);
        let found = ledger.left_behind()?;
        let read_back = found.iter().flatten().find(|r| r.run_id == "done");
        assert_eq!(read_back, Some(&finished));
        let output_len = read_back
            .and_then(|r| r.result.as_ref())
            .map(|r| r.output.len());
        assert_eq!(output_len, Some(OUTPUT_LIMIT));

        // A record written before results were kept has no `result` key.
        let mut old = serde_json::to_value(record("old"))?;
        if let Some(fields) = old.as_object_mut() {
            fields.remove("result");
        }
        std::fs::write(dir.path().join("runs/old.json"), serde_json::to_vec(&old)?)?;
        let found = ledger.left_behind()?;
        let old = found.iter().flatten().find(|r| r.run_id == "old");
        assert_eq!(old.map(|r| r.result.is_none()), Some(true));
        Ok(())
    }
}
