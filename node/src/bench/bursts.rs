//! The burst figures: when many jobs share a slot (`--schedule '0 * * * *
//! *'` with `--jobs 100000`), what happened to each slot of the window as
//! a whole: how many of its runs arrived, how soon the first and the last
//! did, and how late the slot's runs were in between.

use std::{collections::HashMap, fmt::Write as _};

use super::{
    analysis::{percentiles, Span},
    clock::{rfc3339, Nanos},
    load::job_index,
    receipts::Receipt,
};

/// Rows the table prints; the slots beyond are summed up in one line
/// (the JSON holds every slot).
pub const TABLE_ROWS: usize = 30;

/// One slot of the window with at least two runs expected.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Burst {
    /// The slot's time, RFC 3339 UTC.
    pub slot: String,
    /// Seconds from the window's start to the slot: where in the window
    /// it fell, without reading times.
    pub at_seconds: f64,
    /// Runs the schedule gives at this slot: one per job.
    pub expected: u64,
    /// Of those, the ones an executor received (a slot received twice
    /// counts once, as in the lost figure).
    pub received: u64,
    /// `expected - received`.
    pub lost: u64,
    /// From the slot to the earliest first receipt of its runs: when the
    /// burst started arriving. Null when none arrived.
    pub first_receipt_ms: Option<f64>,
    /// From the slot to the latest first receipt of its runs: when the
    /// last job of the burst had been served. Null when none arrived.
    pub last_receipt_ms: Option<f64>,
    /// Lateness (first receipt minus slot) of the slot's received runs.
    pub lateness_p50_ms: Option<f64>,
    pub lateness_p99_ms: Option<f64>,
}

/// The bursts of `span` for jobs `0..jobs` that all fire at `slots`
/// (only those in `span` count), from the receipts of shard 0 as the
/// slot figures take them. Empty when a slot expects fewer than two runs:
/// one job is no burst.
pub fn bursts(jobs: u32, slots: &[Nanos], receipts: &[Receipt], span: Span) -> Vec<Burst> {
    if jobs < 2 {
        return Vec::new();
    }
    // (job, slot) -> its first receipt.
    let mut first: HashMap<(u32, Nanos), Nanos> = HashMap::new();
    for receipt in receipts
        .iter()
        .filter(|r| r.shard_index == 0 && span.contains(r.scheduled_at))
    {
        let Some(job) = job_index(&receipt.job_id).filter(|j| *j < jobs) else {
            continue;
        };
        first
            .entry((job, receipt.scheduled_at))
            .and_modify(|at| *at = (*at).min(receipt.received_at))
            .or_insert(receipt.received_at);
    }
    // Slot -> the lateness of each of its runs received.
    let mut by_slot: HashMap<Nanos, Vec<Nanos>> = HashMap::new();
    for ((_, slot), at) in first {
        by_slot.entry(slot).or_default().push(at - slot);
    }
    let ms = |n: Nanos| n as f64 / 1e6;
    slots
        .iter()
        .copied()
        .filter(|s| span.contains(*s))
        .map(|slot| {
            let mut lateness = by_slot.remove(&slot).unwrap_or_default();
            lateness.sort_unstable();
            let received = lateness.len() as u64;
            let expected = u64::from(jobs);
            let summary = percentiles(&lateness);
            Burst {
                slot: rfc3339(slot),
                at_seconds: ms(slot - span.start) / 1e3,
                expected,
                received,
                lost: expected.saturating_sub(received),
                first_receipt_ms: lateness.first().copied().map(ms),
                last_receipt_ms: lateness.last().copied().map(ms),
                lateness_p50_ms: summary.map(|l| l.p50),
                lateness_p99_ms: summary.map(|l| l.p99),
            }
        })
        .collect()
}

/// The table of bursts: a row per slot up to [`TABLE_ROWS`], then one
/// line for the rest (their sums, and the worst of each time). Empty when
/// there are none.
pub fn table(bursts: &[Burst]) -> String {
    let mut out = String::new();
    if bursts.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nbursts: per slot, from the slot to the first and last receipt, and the slot's lateness (ms)\n{:<10}{:>9}  {:>9}  {:>9}  {:>8}  {:>9}  {:>9}  {:>9}  {:>9}",
        "slot", "at s", "expected", "received", "lost", "first", "last", "p50", "p99"
    );
    for b in bursts.iter().take(TABLE_ROWS) {
        let _ = writeln!(
            out,
            "{:<10}{:>9.1}  {:>9}  {:>9}  {:>8}  {:>9}  {:>9}  {:>9}  {:>9}",
            clock_time(&b.slot),
            b.at_seconds,
            b.expected,
            b.received,
            b.lost,
            opt(b.first_receipt_ms),
            opt(b.last_receipt_ms),
            opt(b.lateness_p50_ms),
            opt(b.lateness_p99_ms),
        );
    }
    let rest = bursts.get(TABLE_ROWS..).unwrap_or_default();
    if !rest.is_empty() {
        let sum = |f: fn(&Burst) -> u64| rest.iter().map(f).sum::<u64>();
        let worst = |f: fn(&Burst) -> Option<f64>| rest.iter().filter_map(f).reduce(f64::max);
        let _ = writeln!(
            out,
            "{:<10}{:>9}  {:>9}  {:>9}  {:>8}  {:>9}  {:>9}  {:>9}  {:>9}",
            format!("+{} more", rest.len()),
            "(worst)",
            sum(|b| b.expected),
            sum(|b| b.received),
            sum(|b| b.lost),
            opt(worst(|b| b.first_receipt_ms)),
            opt(worst(|b| b.last_receipt_ms)),
            opt(worst(|b| b.lateness_p50_ms)),
            opt(worst(|b| b.lateness_p99_ms)),
        );
    }
    out
}

/// `HH:MM:SS` of an RFC 3339 time, which is all a row needs.
fn clock_time(rfc3339: &str) -> &str {
    rfc3339.get(11..19).unwrap_or(rfc3339)
}

fn opt(ms: Option<f64>) -> String {
    ms.map_or_else(|| "-".to_string(), |ms| format!("{ms:.1}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;
    const MS: Nanos = 1_000_000;

    fn receipt(job: &str, slot: Nanos, late_ms: Nanos) -> Receipt {
        Receipt {
            run_id: format!("r-{job}-{slot}-{late_ms}"),
            job_id: job.to_string(),
            scheduled_at: slot,
            received_at: slot + late_ms * MS,
            attempt: 1,
            shard_index: 0,
            executor: 0,
        }
    }

    #[test]
    fn a_row_per_slot_of_the_window() {
        let span = Span {
            start: 1_700_000_000 * S,
            end: 1_700_000_120 * S,
        };
        let minute = 1_700_000_040 * S;
        let next = minute + 60 * S;
        let slots = [minute - 60 * S, minute, next, next + 60 * S];
        let mut receipts: Vec<Receipt> = (0..100)
            .map(|j| receipt(&format!("bench-{j}"), minute, 10 + j))
            .collect();
        // A second receipt of job 0 (a retry) counts once, at its first.
        receipts.push(receipt("bench-0", minute, 900));
        // Not the bench's, beyond --jobs, another shard, outside the span.
        receipts.push(receipt("probe-1", minute, 1));
        receipts.push(receipt("bench-500", minute, 1));
        receipts.push(Receipt {
            shard_index: 1,
            ..receipt("bench-1", minute, 1)
        });
        receipts.push(receipt("bench-1", minute - 60 * S, 1));
        // The next slot: half of it lost.
        receipts.extend(
            (0..60)
                .step_by(2)
                .map(|j| receipt(&format!("bench-{j}"), next, 5)),
        );
        receipts.extend((60..120).map(|j| receipt(&format!("bench-{j}"), next, 5)));

        let rows = bursts(120, &slots, &receipts, span);
        assert_eq!(rows.len(), 2);
        let first = &rows[0];
        assert_eq!(first.slot, "2023-11-14T22:14:00.000Z");
        assert_eq!(first.at_seconds, 40.0);
        assert_eq!((first.expected, first.received, first.lost), (120, 100, 20));
        assert_eq!(first.first_receipt_ms, Some(10.0));
        assert_eq!(first.last_receipt_ms, Some(109.0));
        assert_eq!(first.lateness_p50_ms, Some(59.0));
        assert_eq!(first.lateness_p99_ms, Some(108.0));
        let second = &rows[1];
        assert_eq!(
            (second.expected, second.received, second.lost),
            (120, 90, 30)
        );
        assert_eq!(second.first_receipt_ms, Some(5.0));
        assert_eq!(second.last_receipt_ms, Some(5.0));
    }

    #[test]
    fn nothing_received_and_no_burst() {
        let span = Span {
            start: 10 * S,
            end: 12 * S,
        };
        let rows = bursts(5, &[10 * S, 11 * S], &[], span);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].lost, 5);
        assert_eq!(rows[0].first_receipt_ms, None);
        assert_eq!(rows[0].lateness_p99_ms, None);
        assert!(table(&rows).contains("        -"));
        // One job is no burst.
        assert!(bursts(1, &[10 * S], &[receipt("bench-0", 10 * S, 1)], span).is_empty());
        assert_eq!(table(&[]), "");
    }

    #[test]
    fn the_table_sums_up_beyond_its_rows() {
        let span = Span {
            start: 0,
            end: 40 * S,
        };
        let slots: Vec<Nanos> = (0..40).map(|i| i * S).collect();
        let receipts: Vec<Receipt> = slots
            .iter()
            .flat_map(|slot| {
                let late = slot / S;
                [
                    receipt("bench-0", *slot, late),
                    receipt("bench-1", *slot, 2 * late),
                ]
            })
            .collect();
        let rows = bursts(3, &slots, &receipts, span);
        assert_eq!(rows.len(), 40);
        let text = table(&rows);
        // A heading, its column names, TABLE_ROWS rows and the summary.
        assert_eq!(text.trim().lines().count(), 2 + TABLE_ROWS + 1);
        let summary = text.trim().lines().last().unwrap_or_default();
        assert!(summary.starts_with("+10 more"), "{summary}");
        // 10 slots of 3 expected and 2 received; the worst last is 78 ms.
        let fields: Vec<&str> = summary.split_whitespace().collect();
        assert_eq!(fields[3..8], ["30", "20", "10", "39.0", "78.0"]);
    }
}
