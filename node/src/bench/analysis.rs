//! The slot figures: which slots the schedule gave in a span of time,
//! which of them reached an executor, once or more, and how late.

use std::collections::{HashMap, HashSet};

use protocol::schedule::Schedule;

use super::{
    clock::{nanos, time, Nanos},
    load::job_index,
    receipts::Receipt,
};

/// A slot received this much after its time counts as late.
pub const LATE_AFTER: Nanos = 1_000_000_000;

/// `[start, end)` in Unix nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: Nanos,
    pub end: Nanos,
}

impl Span {
    pub fn contains(&self, at: Nanos) -> bool {
        self.start <= at && at < self.end
    }
}

/// Percentiles of the lateness of the slots that arrived, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Lateness {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// What happened to the slots of a span.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct SlotFigures {
    /// Every slot of every job's schedule in the span.
    pub slots_expected: u64,
    /// Runs of the bench's jobs, scheduled in the span, that executors
    /// admitted as new.
    pub runs_received: u64,
    /// Expected slots no executor received.
    pub lost_slots: u64,
    /// (job, slot, shard) received as a new run more than once.
    pub duplicate_slots: u64,
    /// Duplicate slots where one run id was received more than once, so on
    /// more than one executor (an executor admits a run id once).
    pub duplicate_slots_same_run: u64,
    /// Expected slots first received more than [`LATE_AFTER`] after their time.
    pub late_slots: u64,
    /// From slot time to first receipt, over the expected slots received.
    pub lateness_ms: Option<Lateness>,
}

/// The fire times of `schedule` (in UTC) in `span`.
pub fn expected_slots(schedule: &Schedule, span: Span) -> Vec<Nanos> {
    let (Ok(after), Ok(until)) = (time(span.start - 1), time(span.end - 1)) else {
        return Vec::new();
    };
    // (after, until] is [start, end) for instants a nanosecond apart.
    let (slots, _) = schedule.slots_between(after, until, chrono_tz::UTC, usize::MAX);
    slots.into_iter().map(nanos).collect()
}

/// The figures of `span` for jobs `0..jobs` that all fire at `slots`
/// (only those in `span` count).
pub fn slot_figures(jobs: u32, slots: &[Nanos], receipts: &[Receipt], span: Span) -> SlotFigures {
    // (job, slot, shard) -> (times received, first receipt).
    let mut seen: HashMap<(u32, Nanos, u32), (u32, Nanos)> = HashMap::new();
    // Each run id's slot, and the slots whose run id came more than once.
    let mut run_ids: HashMap<&str, (u32, Nanos, u32)> = HashMap::new();
    let mut same_run: HashSet<(u32, Nanos, u32)> = HashSet::new();
    let mut runs_received = 0;
    for receipt in receipts.iter().filter(|r| span.contains(r.scheduled_at)) {
        let Some(job) = job_index(&receipt.job_id) else {
            continue;
        };
        runs_received += 1;
        let key = (job, receipt.scheduled_at, receipt.shard_index);
        if run_ids.insert(&receipt.run_id, key).is_some() {
            same_run.insert(key);
        }
        let entry = seen.entry(key).or_insert((0, receipt.received_at));
        entry.0 += 1;
        entry.1 = entry.1.min(receipt.received_at);
    }
    let slots: Vec<Nanos> = slots
        .iter()
        .copied()
        .filter(|s| span.contains(*s))
        .collect();
    let mut lateness = Vec::with_capacity(slots.len() * jobs as usize);
    let mut lost_slots = 0;
    for job in 0..jobs {
        for slot in &slots {
            match seen.get(&(job, *slot, 0)) {
                Some((_, first)) => lateness.push(first - slot),
                None => lost_slots += 1,
            }
        }
    }
    lateness.sort_unstable();
    SlotFigures {
        slots_expected: u64::from(jobs) * slots.len() as u64,
        runs_received,
        lost_slots,
        duplicate_slots: seen.values().filter(|(count, _)| *count > 1).count() as u64,
        duplicate_slots_same_run: same_run.len() as u64,
        late_slots: lateness.iter().filter(|l| **l > LATE_AFTER).count() as u64,
        lateness_ms: percentiles(&lateness),
    }
}

/// p50, p99 and max of sorted nanoseconds, in milliseconds (nearest rank).
pub fn percentiles(sorted: &[Nanos]) -> Option<Lateness> {
    let max = *sorted.last()?;
    let rank = |p: f64| {
        let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[index]
    };
    let ms = |n: Nanos| n as f64 / 1e6;
    Some(Lateness {
        p50: ms(rank(0.50)),
        p99: ms(rank(0.99)),
        max: ms(max),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    fn receipt(job: u32, slot: Nanos, late_ms: Nanos) -> Receipt {
        Receipt {
            run_id: format!("r{job}-{slot}"),
            job_id: format!("bench-{job}"),
            scheduled_at: slot,
            received_at: slot + late_ms * 1_000_000,
            attempt: 1,
            shard_index: 0,
            executor: 0,
        }
    }

    #[test]
    fn expected_slots_are_the_schedules_in_the_half_open_span() -> anyhow::Result<()> {
        let every = Schedule::parse("@every 1s").map_err(anyhow::Error::msg)?;
        let span = Span {
            start: 1_700_000_000 * S,
            end: 1_700_000_005 * S,
        };
        let slots = expected_slots(&every, span);
        assert_eq!(slots.len(), 5);
        assert_eq!(slots.first(), Some(&span.start));
        assert_eq!(slots.last(), Some(&(span.end - S)));
        let minutely = Schedule::parse("@every 1m").map_err(anyhow::Error::msg)?;
        assert_eq!(expected_slots(&minutely, span).len(), 0);
        Ok(())
    }

    #[test]
    fn lost_doubled_late_and_lateness() {
        let span = Span {
            start: 10 * S,
            end: 13 * S,
        };
        let slots = [9 * S, 10 * S, 11 * S, 12 * S, 13 * S];
        let receipts = vec![
            receipt(0, 10 * S, 10),
            receipt(0, 11 * S, 20),
            // doubled by a failover run of the slot
            Receipt {
                run_id: "failover".into(),
                attempt: 2,
                ..receipt(0, 11 * S, 30)
            },
            receipt(0, 12 * S, 1500), // late
            receipt(1, 10 * S, 40),
            // job 1 loses 11 and 12
            receipt(1, 13 * S, 5), // outside the span
            receipt(2, 10 * S, 5), // not a job of this bench (jobs = 2)
        ];
        // The same run on a second executor.
        let mut again = receipt(1, 10 * S, 45);
        again.executor = 1;
        let mut other = receipt(0, 10 * S, 1);
        other.job_id = "someone-else".into();
        let mut all = receipts;
        all.push(other);
        all.push(again);
        let figures = slot_figures(2, &slots, &all, span);
        assert_eq!(figures.slots_expected, 6);
        assert_eq!(figures.runs_received, 7);
        assert_eq!(figures.lost_slots, 2);
        assert_eq!(figures.duplicate_slots, 2);
        assert_eq!(figures.duplicate_slots_same_run, 1);
        assert_eq!(figures.late_slots, 1);
        let lateness = figures.lateness_ms.expect("slots arrived");
        assert_eq!(lateness.p50, 20.0);
        assert_eq!(lateness.max, 1500.0);
    }
}
