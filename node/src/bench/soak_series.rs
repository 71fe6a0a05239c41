//! The soak's receipts, interval by interval. The window is cut into
//! intervals of `--sample-seconds` (the last one shorter if the window
//! does not divide); each receipt counts in the interval it was received
//! in (runs received), and its slot's first receipt gives the lateness of
//! the interval its slot falls in. Lateness is kept as raw figures only
//! while an interval is open: it closes [`close_after`] past its end,
//! when its percentiles are taken and its figures dropped, so memory
//! stays at a few intervals' worth however long the run. A receipt that
//! comes after its interval closed still counts in the slot figures and
//! the interval's maximum, and is counted as such.

use serde::Serialize;

use super::{
    analysis::{percentiles, Lateness, Span, LATE_AFTER},
    clock::{Nanos, SECOND},
    load::job_index,
    receipts::Receipt,
    soak_slots::{SlotBook, SlotCounts},
};

/// The least time an interval stays open past its end for late runs.
const LEAST_OPEN_AFTER: Nanos = 10 * SECOND;

/// How long past its end an interval of `length` stays open: one more
/// interval, and never less than [`LEAST_OPEN_AFTER`].
pub fn close_after(length: Nanos) -> Nanos {
    length.max(LEAST_OPEN_AFTER)
}

/// The window cut into intervals of one length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Intervals {
    pub window: Span,
    /// Every interval's length but maybe the last's.
    pub length: Nanos,
}

impl Intervals {
    pub fn new(window: Span, seconds: u64) -> Self {
        Self {
            window,
            length: i128::from(seconds.max(1)) * SECOND,
        }
    }

    /// How many: the last may be shorter than the others.
    pub fn count(&self) -> usize {
        let duration = (self.window.end - self.window.start).max(0);
        usize::try_from((duration + self.length - 1) / self.length).unwrap_or(0)
    }

    /// Interval `i`, `[start, end)`; the last ends with the window.
    pub fn span(&self, i: usize) -> Span {
        let start = self.window.start + i as Nanos * self.length;
        Span {
            start,
            end: (start + self.length).min(self.window.end),
        }
    }

    /// The interval `at` falls in; `None` outside the window.
    pub fn of(&self, at: Nanos) -> Option<usize> {
        self.window
            .contains(at)
            .then(|| ((at - self.window.start) / self.length) as usize)
    }
}

/// One interval while receipts come in.
#[derive(Debug, Default)]
struct Tally {
    /// Receipts of the bench's jobs received in the interval.
    runs_received: u64,
    /// From slot to first receipt, of each of the interval's slots that
    /// arrived while it was open; emptied when it closes.
    lateness: Vec<Nanos>,
    /// The percentiles taken when it closed.
    closed: Option<Option<Lateness>>,
    /// First receipts of its slots that came after it closed, and the
    /// latest of them: they are in no percentile but the maximum.
    after_close: u64,
    latest_after_close: Option<Nanos>,
    /// Of its slots, those first received more than [`LATE_AFTER`] late.
    late_slots: u64,
}

/// What became of one interval's runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IntervalRuns {
    /// Runs the executors admitted as new during the interval, whatever
    /// their slot.
    pub runs_received: u64,
    /// One per job and slot of the interval.
    pub slots_expected: u64,
    /// Of those, the ones no executor received by the end of the drain.
    pub lost_slots: u64,
    /// (job, slot, shard) of the interval received more than once.
    pub duplicate_slots: u64,
    /// Slots first received more than 1 s after their time.
    pub late_slots: u64,
    /// From slot to first receipt, over the interval's slots received
    /// while it was open; the maximum includes those received later.
    pub lateness_ms: Option<Lateness>,
    /// Slots first received after the interval closed (more than an
    /// interval late, or 10 s): in `lost_slots` they are not, in the
    /// percentiles they are not.
    pub received_after_close: u64,
}

/// The whole run's figures of the receipts.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunTotals {
    /// One per job and slot of the window.
    pub slots_expected: u64,
    /// Every receipt of the bench's jobs, from their creation to the end.
    pub runs_received: u64,
    /// Those received before the window and after it (the drain).
    pub runs_before_window: u64,
    pub runs_after_window: u64,
    pub lost_slots: u64,
    pub duplicate_slots: u64,
    pub late_slots: u64,
    /// Runs the servers hold at the end by the bench's count: per job,
    /// its runs received, at most the history limit.
    pub runs_retained_estimate: u64,
}

/// The receipts of a soak, accounted for interval by interval.
#[derive(Debug)]
pub struct SoakSeries {
    intervals: Intervals,
    /// The schedule's fire times in the window, sorted: a receipt's slot
    /// number is its place here.
    slots: Vec<Nanos>,
    book: SlotBook,
    tallies: Vec<Tally>,
    /// Receipts per bench job over the whole run: what retention keeps.
    runs_by_job: Vec<u64>,
    runs_before_window: u64,
    runs_after_window: u64,
}

impl SoakSeries {
    /// A series of `jobs` jobs firing at `slots` (those in the window
    /// count) over `intervals`. An error if there are too many (job,
    /// slot) pairs to track.
    pub fn new(jobs: u32, slots: &[Nanos], intervals: Intervals) -> anyhow::Result<Self> {
        let mut slots: Vec<Nanos> = slots
            .iter()
            .copied()
            .filter(|s| intervals.window.contains(*s))
            .collect();
        slots.sort_unstable();
        slots.dedup();
        Ok(Self {
            book: SlotBook::new(jobs, slots.len())?,
            slots,
            tallies: (0..intervals.count()).map(|_| Tally::default()).collect(),
            intervals,
            runs_by_job: vec![0; jobs as usize],
            runs_before_window: 0,
            runs_after_window: 0,
        })
    }

    /// Accounts for one receipt; those of other jobs than the bench's are
    /// passed over.
    pub fn note(&mut self, receipt: &Receipt) {
        let Some(job) = job_index(&receipt.job_id) else {
            return;
        };
        let Some(runs) = self.runs_by_job.get_mut(job as usize) else {
            return;
        };
        *runs += 1;
        match self.intervals.of(receipt.received_at) {
            Some(i) => self.tallies[i].runs_received += 1,
            None if receipt.received_at < self.intervals.window.start => {
                self.runs_before_window += 1;
            }
            None => self.runs_after_window += 1,
        }
        let Ok(slot) = self.slots.binary_search(&receipt.scheduled_at) else {
            return;
        };
        let first = self.book.note(job, slot, receipt.shard_index);
        if !first || receipt.shard_index != 0 {
            return;
        }
        let Some(tally) = self
            .intervals
            .of(receipt.scheduled_at)
            .and_then(|i| self.tallies.get_mut(i))
        else {
            return;
        };
        let lateness = receipt.received_at - receipt.scheduled_at;
        if lateness > LATE_AFTER {
            tally.late_slots += 1;
        }
        if tally.closed.is_some() {
            tally.after_close += 1;
            tally.latest_after_close = tally.latest_after_close.max(Some(lateness));
        } else {
            tally.lateness.push(lateness);
        }
    }

    /// Closes every interval that ended at least [`close_after`] before
    /// `now`: takes its percentiles and drops its raw figures.
    pub fn close_until(&mut self, now: Nanos) {
        let wait = close_after(self.intervals.length);
        for (i, tally) in self.tallies.iter_mut().enumerate() {
            if tally.closed.is_none() && self.intervals.span(i).end + wait <= now {
                close(tally);
            }
        }
    }

    /// Whether interval `i` is closed (its lateness taken).
    pub fn is_closed(&self, i: usize) -> bool {
        self.tallies.get(i).is_some_and(|t| t.closed.is_some())
    }

    /// The lateness of interval `i` once it is closed.
    pub fn closed_lateness(&self, i: usize) -> Option<Lateness> {
        self.tallies.get(i)?.closed.flatten()
    }

    /// Receipts of the bench's jobs so far, over the whole run.
    pub fn runs_received(&self) -> u64 {
        self.runs_by_job.iter().sum()
    }

    /// Closes what is still open and answers each interval's figures and
    /// the totals; a job keeps at most `history_limit` runs.
    pub fn finish(mut self, history_limit: usize) -> (Vec<IntervalRuns>, RunTotals) {
        for tally in &mut self.tallies {
            if tally.closed.is_none() {
                close(tally);
            }
        }
        let mut runs = Vec::with_capacity(self.tallies.len());
        for (i, tally) in self.tallies.iter().enumerate() {
            let counts = self.book.count(self.slot_numbers(self.intervals.span(i)));
            let lateness_ms = tally.closed.flatten().map(|l| Lateness {
                max: l.max.max(tally.latest_after_close.map_or(l.max, ms)),
                ..l
            });
            runs.push(IntervalRuns {
                runs_received: tally.runs_received,
                slots_expected: counts.expected,
                lost_slots: counts.lost,
                duplicate_slots: counts.duplicate,
                late_slots: tally.late_slots,
                lateness_ms: lateness_ms.or_else(|| {
                    // Every slot came after the interval closed.
                    tally.latest_after_close.map(|late| Lateness {
                        p50: ms(late),
                        p99: ms(late),
                        max: ms(late),
                    })
                }),
                received_after_close: tally.after_close,
            });
        }
        let all: SlotCounts = self.book.count(0..self.slots.len());
        let limit = history_limit as u64;
        let totals = RunTotals {
            slots_expected: all.expected,
            runs_received: self.runs_received(),
            runs_before_window: self.runs_before_window,
            runs_after_window: self.runs_after_window,
            lost_slots: all.lost,
            duplicate_slots: all.duplicate,
            late_slots: self.tallies.iter().map(|t| t.late_slots).sum(),
            runs_retained_estimate: self.runs_by_job.iter().map(|r| (*r).min(limit)).sum(),
        };
        (runs, totals)
    }

    /// The numbers of the slots in `span`.
    fn slot_numbers(&self, span: Span) -> std::ops::Range<usize> {
        let from = self.slots.partition_point(|s| *s < span.start);
        let to = self.slots.partition_point(|s| *s < span.end);
        from..to
    }
}

/// Takes the percentiles of an open tally and drops its raw figures.
fn close(tally: &mut Tally) {
    let mut lateness = std::mem::take(&mut tally.lateness);
    lateness.sort_unstable();
    tally.closed = Some(percentiles(&lateness));
}

fn ms(nanos: Nanos) -> f64 {
    nanos as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = SECOND;
    const MS: Nanos = 1_000_000;

    fn receipt(job: u32, slot: Nanos, received: Nanos) -> Receipt {
        Receipt {
            run_id: format!("r{job}-{slot}-{received}"),
            job_id: format!("bench-{job}"),
            scheduled_at: slot,
            received_at: received,
            attempt: 1,
            shard_index: 0,
            executor: 0,
        }
    }

    /// A window of 10 s from 100 s, in intervals of 3 s: 3, 3, 3 and 1.
    fn intervals() -> Intervals {
        Intervals::new(
            Span {
                start: 100 * S,
                end: 110 * S,
            },
            3,
        )
    }

    fn every_second() -> Vec<Nanos> {
        (99..=111).map(|s| s * S).collect()
    }

    #[test]
    fn the_window_is_cut_into_intervals() {
        let intervals = intervals();
        assert_eq!(intervals.count(), 4);
        assert_eq!(
            intervals.span(0),
            Span {
                start: 100 * S,
                end: 103 * S
            }
        );
        assert_eq!(
            intervals.span(3),
            Span {
                start: 109 * S,
                end: 110 * S
            }
        );
        assert_eq!(intervals.of(100 * S), Some(0));
        assert_eq!(intervals.of(103 * S - 1), Some(0));
        assert_eq!(intervals.of(103 * S), Some(1));
        assert_eq!(intervals.of(109 * S + 5), Some(3));
        assert_eq!(intervals.of(110 * S), None);
        assert_eq!(intervals.of(99 * S), None);
        let whole = Intervals::new(
            Span {
                start: 0,
                end: 12 * S,
            },
            3,
        );
        assert_eq!(whole.count(), 4);
        assert_eq!(whole.span(3).end - whole.span(3).start, 3 * S);
    }

    #[test]
    fn receipts_land_in_their_intervals() -> anyhow::Result<()> {
        let mut series = SoakSeries::new(2, &every_second(), intervals())?;
        // Before the window: counted, in no interval.
        series.note(&receipt(0, 99 * S, 99 * S + 5 * MS));
        // Slot 102 received at 103.2: lateness for interval 0, a run
        // received in interval 1.
        series.note(&receipt(0, 102 * S, 103 * S + 200 * MS));
        for slot in 100..110 {
            series.note(&receipt(1, slot * S, slot * S + (slot as Nanos - 99) * MS));
        }
        // A job that is not the bench's, and one past `--jobs`.
        let mut other = receipt(0, 100 * S, 100 * S);
        other.job_id = "probe-1".into();
        series.note(&other);
        series.note(&receipt(7, 100 * S, 100 * S));
        // In the drain, 1 s after its slot: not late.
        series.note(&receipt(0, 109 * S, 110 * S));
        assert_eq!(series.runs_received(), 13);

        let (runs, totals) = series.finish(1000);
        let received: Vec<u64> = runs.iter().map(|r| r.runs_received).collect();
        assert_eq!(received, [3, 4, 3, 1]);
        let expected: Vec<u64> = runs.iter().map(|r| r.slots_expected).collect();
        assert_eq!(expected, [6, 6, 6, 2]);
        // Job 0 received only slots 102 and 109.
        let lost: Vec<u64> = runs.iter().map(|r| r.lost_slots).collect();
        assert_eq!(lost, [2, 3, 3, 0]);
        let first = runs[0].lateness_ms.expect("interval 0 has runs");
        // Job 1: 1, 2, 3 ms; job 0: 1,200 ms.
        assert_eq!((first.p50, first.p99, first.max), (2.0, 1200.0, 1200.0));
        assert_eq!(runs[0].late_slots, 1);
        let second = runs[1].lateness_ms.expect("interval 1 has runs");
        assert_eq!((second.p50, second.max), (5.0, 6.0));
        assert_eq!(totals.slots_expected, 20);
        assert_eq!(totals.lost_slots, 8);
        assert_eq!(totals.duplicate_slots, 0);
        assert_eq!(
            (totals.runs_before_window, totals.runs_after_window),
            (1, 1)
        );
        assert_eq!(totals.runs_received, 13);
        assert_eq!(totals.late_slots, 1);
        Ok(())
    }

    #[test]
    fn percentiles_per_interval_use_nearest_rank() -> anyhow::Result<()> {
        let window = Span {
            start: 0,
            end: 2 * S,
        };
        let slots = [0, S];
        let mut series = SoakSeries::new(100, &slots, Intervals::new(window, 1))?;
        for job in 0..100 {
            // Slot 0: 1 to 100 ms late; slot 1: 10 ms each.
            series.note(&receipt(job, 0, (job as Nanos + 1) * MS));
            series.note(&receipt(job, S, S + 10 * MS));
        }
        let (runs, _) = series.finish(1000);
        let first = runs[0].lateness_ms.expect("runs");
        assert_eq!((first.p50, first.p99, first.max), (50.0, 99.0, 100.0));
        let second = runs[1].lateness_ms.expect("runs");
        assert_eq!((second.p50, second.p99, second.max), (10.0, 10.0, 10.0));
        Ok(())
    }

    #[test]
    fn duplicates_count_once_per_slot_and_only_first_receipts_time() -> anyhow::Result<()> {
        let mut series = SoakSeries::new(1, &every_second(), intervals())?;
        series.note(&receipt(0, 100 * S, 100 * S + 5 * MS));
        // The same slot again, twice (a failover run, say): one duplicate.
        series.note(&receipt(0, 100 * S, 100 * S + 900 * MS));
        series.note(&receipt(0, 100 * S, 100 * S + 950 * MS));
        let mut shard = receipt(0, 101 * S, 101 * S + 5 * MS);
        shard.shard_index = 1;
        series.note(&shard);
        series.note(&shard);
        let (runs, totals) = series.finish(1000);
        assert_eq!(totals.duplicate_slots, 2);
        assert_eq!(runs[0].duplicate_slots, 2);
        let first = runs[0].lateness_ms.expect("runs");
        assert_eq!(first.max, 5.0, "only the first receipt of a slot is timed");
        assert_eq!(totals.runs_received, 5);
        Ok(())
    }

    #[test]
    fn closed_intervals_drop_their_figures_but_keep_late_ones() -> anyhow::Result<()> {
        let mut series = SoakSeries::new(2, &every_second(), intervals())?;
        series.note(&receipt(0, 100 * S, 100 * S + 4 * MS));
        // Interval 0 ends at 103 s and closes 10 s later.
        series.close_until(112 * S);
        assert!(!series.is_closed(0));
        series.close_until(113 * S);
        assert!(series.is_closed(0) && !series.is_closed(1));
        assert_eq!(series.closed_lateness(0).map(|l| l.p99), Some(4.0));
        // Slot 100 of job 1 comes 20 s late.
        series.note(&receipt(1, 100 * S, 120 * S));
        let (runs, totals) = series.finish(1000);
        let first = runs[0].lateness_ms.expect("runs");
        assert_eq!((first.p50, first.p99, first.max), (4.0, 4.0, 20_000.0));
        assert_eq!(runs[0].received_after_close, 1);
        assert_eq!(runs[0].late_slots, 1);
        assert_eq!(runs[0].lost_slots, 4);
        assert_eq!(runs[3].lateness_ms, None, "nothing came for it");
        assert_eq!(totals.runs_after_window, 1);
        Ok(())
    }

    #[test]
    fn retention_caps_the_runs_kept_per_job() -> anyhow::Result<()> {
        let mut series = SoakSeries::new(3, &every_second(), intervals())?;
        for n in 0..5 {
            series.note(&receipt(0, 100 * S, 100 * S + n));
        }
        for n in 0..2 {
            series.note(&receipt(1, 100 * S, 100 * S + n));
        }
        let (_, totals) = series.finish(3);
        assert_eq!(totals.runs_received, 7);
        assert_eq!(totals.runs_retained_estimate, 3 + 2);
        Ok(())
    }

    #[test]
    fn an_interval_stays_open_at_least_ten_seconds() {
        assert_eq!(close_after(S), 10 * S);
        assert_eq!(close_after(60 * S), 60 * S);
    }
}
