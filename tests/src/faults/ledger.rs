//! The ledger: what really ran. Every job's command appends one line to a
//! file that all executors share (they share this machine's filesystem):
//!
//! ```text
//! RUN_ID JOB_ID SCHEDULED_AT SHARD_INDEX ATTEMPT EXECUTOR
//! ```
//!
//! then sleeps up to 1.2 s. Lines are written by one `echo` with
//! `O_APPEND`, so concurrent runs never interleave within a line.

use std::{collections::BTreeMap, path::Path};

use chrono::DateTime;

use super::cluster::EXECUTOR_NAME_VAR;

/// The shell command of a ledger job (for `sh -c`, which is dash on
/// Debian: no `$RANDOM`, so the sleep of 0.0 to 1.2 s comes from the
/// shell's pid).
pub fn command(ledger: &Path) -> String {
    format!(
        "echo \"$CRONMESH_RUN_ID $CRONMESH_JOB_ID $CRONMESH_SCHEDULED_AT $CRONMESH_SHARD_INDEX \
         $CRONMESH_ATTEMPT ${{{EXECUTOR_NAME_VAR}:-unknown}}\" >> '{}'; \
         t=$(( $$ % 13 )); sleep \"$(( t / 10 )).$(( t % 10 ))\"",
        ledger.display()
    )
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// 1-based, in the file's order (the order the runs started in).
    pub number: usize,
    pub run_id: String,
    pub job: String,
    /// The slot, in seconds since the epoch.
    pub slot: i64,
    pub shard: u32,
    pub attempt: u32,
    pub executor: String,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: run {} job {} slot {} shard {} attempt {} on {}",
            self.number,
            self.run_id,
            self.job,
            slot_text(self.slot),
            self.shard,
            self.attempt,
            self.executor
        )
    }
}

/// A slot as RFC 3339 (UTC).
pub fn slot_text(slot: i64) -> String {
    DateTime::from_timestamp(slot, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| slot.to_string())
}

/// An RFC 3339 time as whole seconds since the epoch.
pub fn parse_slot(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}

#[derive(Debug, Default)]
pub struct Ledger {
    pub lines: Vec<Line>,
    /// Lines that do not have the six fields.
    pub malformed: Vec<String>,
}

impl Ledger {
    /// Reads the ledger (an absent file is an empty ledger).
    pub fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Self {
        let mut ledger = Self::default();
        for (i, raw) in text.lines().enumerate() {
            let fields: Vec<&str> = raw.split_whitespace().collect();
            let parsed = match fields[..] {
                [run_id, job, slot, shard, attempt, executor] => Some(Line {
                    number: i + 1,
                    run_id: run_id.to_string(),
                    job: job.to_string(),
                    slot: parse_slot(slot).unwrap_or(i64::MIN),
                    shard: shard.parse().unwrap_or(u32::MAX),
                    attempt: attempt.parse().unwrap_or(u32::MAX),
                    executor: executor.to_string(),
                })
                .filter(|l| l.slot != i64::MIN && l.shard != u32::MAX),
                _ => None,
            };
            match parsed {
                Some(line) => ledger.lines.push(line),
                None => ledger.malformed.push(format!("line {}: {raw:?}", i + 1)),
            }
        }
        ledger
    }

    /// Lines by run id.
    pub fn by_run(&self) -> BTreeMap<&str, Vec<&Line>> {
        let mut runs: BTreeMap<&str, Vec<&Line>> = BTreeMap::new();
        for line in &self.lines {
            runs.entry(&line.run_id).or_default().push(line);
        }
        runs
    }

    /// Lines by (job, slot, shard), each list in the file's order.
    pub fn by_slot(&self) -> BTreeMap<(&str, i64, u32), Vec<&Line>> {
        let mut slots: BTreeMap<(&str, i64, u32), Vec<&Line>> = BTreeMap::new();
        for line in &self.lines {
            slots
                .entry((&line.job, line.slot, line.shard))
                .or_default()
                .push(line);
        }
        slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_groups_them() {
        let ledger = Ledger::parse(
            "r1 j 2026-01-01T00:00:01Z 0 1 e1\n\
             r2 j 2026-01-01T00:00:01Z 0 1 e2\n\
             r1 j 2026-01-01T00:00:01Z 0 1 e3\n\
             half a line\n",
        );
        assert_eq!(ledger.lines.len(), 3);
        assert_eq!(ledger.malformed.len(), 1);
        assert_eq!(ledger.by_run()["r1"].len(), 2);
        let slot = parse_slot("2026-01-01T00:00:01Z").expect("a time");
        assert_eq!(ledger.by_slot()[&("j", slot, 0)].len(), 3);
        assert_eq!(ledger.lines[2].executor, "e3");
    }
}
