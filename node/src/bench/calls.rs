//! `--target http`: the calls the bench's receiver got, matched to the
//! runs they were for and turned into receipts, so the slot analysis
//! reads them as it reads the executors'.
//!
//! A call names its job (by its path) but not its slot, and a call made
//! before its slot would look like the previous slot's. So, per job, the
//! k-th call in time order is matched with the k-th run that succeeded
//! (the receiver answers every call 200, so those are the runs whose call
//! arrived), by `scheduled_at`, from the job's first run on. If any
//! one-to-one match has every call at or after its run's slot, this one
//! does; a call it puts before its slot was made early, or is a second
//! call of a slot.

use std::collections::HashMap;

use serde::Serialize;

use super::{
    analysis::Span, load::job_index, receipts::Receipt, receiver::Received, run_records::CalledRun,
};

/// What matching found, besides the slot figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CallFigures {
    /// Calls for the bench's jobs, from the first job's creation until
    /// the run records were read (after the drain).
    pub calls_received: u64,
    /// Runs of the bench's jobs that succeeded, scheduled from their
    /// creation to the window's end: what the calls are matched with.
    pub runs_succeeded: u64,
    /// Of those runs, the ones their job received fewer calls than: 0
    /// unless calls went missing.
    pub runs_without_call: u64,
    /// Calls of the window's slots that arrived before their slot.
    pub early_calls: u64,
    /// How long before its slot the earliest of them arrived.
    pub earliest_call_ms: Option<f64>,
    /// Requests to the receiver that were not a bench job's call.
    pub other_requests: u64,
}

/// One receipt per matched call (at the receiver: `executor` 0) and the
/// figures of the match. `runs` are every succeeded run of the bench's
/// jobs scheduled before `window.end`, from the first.
pub fn match_calls(
    runs: &[CalledRun],
    received: &Received,
    window: Span,
) -> (Vec<Receipt>, CallFigures) {
    let mut runs_of: HashMap<&str, Vec<&CalledRun>> = HashMap::new();
    for run in runs {
        runs_of.entry(&run.job_id).or_default().push(run);
    }
    let mut calls_of: HashMap<&str, Vec<i128>> = HashMap::new();
    for arrival in &received.arrivals {
        if job_index(&arrival.job_id).is_some() {
            calls_of
                .entry(&arrival.job_id)
                .or_default()
                .push(arrival.received_at);
        }
    }
    let mut figures = CallFigures {
        calls_received: calls_of.values().map(|c| c.len() as u64).sum(),
        runs_succeeded: runs.len() as u64,
        other_requests: received.other_requests,
        ..CallFigures::default()
    };
    let mut receipts = Vec::with_capacity(runs.len());
    for (job, mut runs) in runs_of {
        runs.sort_by_key(|r| (r.scheduled_at, r.attempt, r.shard_index));
        let mut calls = calls_of.remove(job).unwrap_or_default();
        calls.sort_unstable();
        figures.runs_without_call += runs.len().saturating_sub(calls.len()) as u64;
        receipts.extend(runs.iter().zip(calls).map(|(run, at)| Receipt {
            run_id: run.run_id.clone(),
            job_id: run.job_id.clone(),
            scheduled_at: run.scheduled_at,
            received_at: at,
            attempt: run.attempt,
            shard_index: run.shard_index,
            executor: 0,
        }));
    }
    let early = receipts
        .iter()
        .filter(|r| window.contains(r.scheduled_at))
        .map(|r| r.scheduled_at - r.received_at)
        .filter(|early| *early > 0);
    for early in early {
        figures.early_calls += 1;
        let ms = early as f64 / 1e6;
        figures.earliest_call_ms = Some(figures.earliest_call_ms.map_or(ms, |m| m.max(ms)));
    }
    receipts.sort_by(|a, b| (a.received_at, &a.run_id).cmp(&(b.received_at, &b.run_id)));
    (receipts, figures)
}

#[cfg(test)]
mod tests {
    use super::{super::receiver::Arrival, *};

    const S: i128 = 1_000_000_000;
    const MS: i128 = 1_000_000;

    fn run(job: u32, slot: i128) -> CalledRun {
        CalledRun {
            run_id: format!("r{job}-{slot}"),
            job_id: format!("bench-{job}"),
            scheduled_at: slot,
            attempt: 1,
            shard_index: 0,
        }
    }

    fn call(job: u32, at: i128) -> Arrival {
        Arrival {
            job_id: format!("bench-{job}"),
            received_at: at,
        }
    }

    fn matched(receipts: &[Receipt], job: u32) -> Vec<(i128, i128)> {
        let mut pairs: Vec<(i128, i128)> = receipts
            .iter()
            .filter(|r| r.job_id == format!("bench-{job}"))
            .map(|r| (r.scheduled_at, r.received_at))
            .collect();
        pairs.sort_unstable();
        pairs
    }

    #[test]
    fn calls_match_their_runs_in_order() {
        let window = Span {
            start: 10 * S,
            end: 13 * S,
        };
        let runs = [
            run(0, 9 * S),
            run(0, 10 * S),
            run(0, 11 * S),
            run(0, 12 * S),
            run(1, 10 * S),
            run(1, 11 * S),
            run(1, 12 * S),
        ];
        let received = Received {
            arrivals: vec![
                // job 0 on time, a call of slot 13 already in
                call(0, 9 * S + 3 * MS),
                call(0, 10 * S + 2 * MS),
                call(0, 11 * S + 40 * MS),
                call(0, 12 * S + 5 * MS),
                call(0, 13 * S + MS),
                // job 1 called early: each call would floor to the second before
                call(1, 10 * S - 25 * MS),
                call(1, 11 * S - 5 * MS),
                call(1, 12 * S + MS),
                call(7, 12 * S),
                // not a bench job
                Arrival {
                    job_id: "other".into(),
                    received_at: 12 * S,
                },
            ],
            other_requests: 2,
        };
        let (receipts, figures) = match_calls(&runs, &received, window);
        assert_eq!(
            matched(&receipts, 0),
            [
                (9 * S, 9 * S + 3 * MS),
                (10 * S, 10 * S + 2 * MS),
                (11 * S, 11 * S + 40 * MS),
                (12 * S, 12 * S + 5 * MS)
            ]
        );
        assert_eq!(
            matched(&receipts, 1),
            [
                (10 * S, 10 * S - 25 * MS),
                (11 * S, 11 * S - 5 * MS),
                (12 * S, 12 * S + MS)
            ]
        );
        assert!(receipts
            .windows(2)
            .all(|w| w[0].received_at <= w[1].received_at));
        assert_eq!(
            figures,
            CallFigures {
                calls_received: 9,
                runs_succeeded: 7,
                runs_without_call: 0,
                early_calls: 2,
                earliest_call_ms: Some(25.0),
                other_requests: 2,
            }
        );
    }

    #[test]
    fn a_second_call_of_a_slot_shows_as_early_and_a_missing_one_is_counted() {
        let window = Span {
            start: 10 * S,
            end: 13 * S,
        };
        let runs = [
            run(0, 10 * S),
            run(0, 11 * S),
            run(0, 12 * S),
            run(1, 10 * S),
        ];
        let received = Received {
            arrivals: vec![
                call(0, 10 * S + 2 * MS),
                call(0, 10 * S + 3 * MS), // twice
                call(0, 11 * S + 2 * MS),
            ],
            other_requests: 0,
        };
        let (receipts, figures) = match_calls(&runs, &received, window);
        // Matched in order, the second call of slot 10 goes to slot 11 and
        // slot 11's call to slot 12: both before their slot.
        assert_eq!(
            matched(&receipts, 0),
            [
                (10 * S, 10 * S + 2 * MS),
                (11 * S, 10 * S + 3 * MS),
                (12 * S, 11 * S + 2 * MS)
            ]
        );
        assert_eq!(figures.early_calls, 2);
        assert_eq!(figures.earliest_call_ms, Some(998.0));
        // job 1's only run had no call
        assert_eq!(figures.runs_without_call, 1);
    }
}
