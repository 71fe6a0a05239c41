//! From what the bench observed to its report: the slot figures of the
//! window, those around each failover event, and the setup they came from.

use protocol::schedule::Schedule;

use super::{
    analysis::{expected_slots, slot_figures, Span},
    api_probe::ApiLatency,
    args::BenchArgs,
    bursts::bursts,
    calls::CallFigures,
    clock::{rfc3339, Nanos, SECOND},
    failover::{self, Event},
    load::{job_index, Creation},
    per_run::{per_run, NodeWindow},
    receipts::Receipts,
    report::{ProcessFigures, Report, Setup, Window},
    run_records::RunRecords,
    workdir::WorkDir,
};

/// Everything gathered while the bench ran.
pub struct Observed {
    pub creation: Creation,
    pub window: Span,
    pub leader_at_start: u64,
    pub leader_at_end: Option<u64>,
    pub elections: Option<u64>,
    pub records: RunRecords,
    pub processes: Vec<ProcessFigures>,
    /// The executors' receipts, or with `--target http` the calls
    /// matched to their runs.
    pub receipts: Receipts,
    pub calls: Option<CallFigures>,
    pub events: Vec<Event>,
    /// The API probe's figures, if it ran.
    pub api_latency: Option<ApiLatency>,
    /// Each scheduler node's CPU and store writes over the window.
    pub nodes: Vec<NodeWindow>,
}

pub fn summarise(
    args: &BenchArgs,
    schedule: &Schedule,
    workdir: &WorkDir,
    observed: Observed,
) -> Report {
    let Observed {
        creation,
        window,
        leader_at_start,
        leader_at_end,
        elections,
        records,
        processes,
        receipts,
        calls,
        events,
        api_latency,
        nodes,
    } = observed;
    let slots = expected_slots(schedule, window);
    let figures = slot_figures(args.jobs, &slots, &receipts.receipts, window);
    let mut received: Vec<Nanos> = receipts
        .receipts
        .iter()
        .filter(|r| job_index(&r.job_id).is_some())
        .map(|r| r.received_at)
        .collect();
    received.sort_unstable();
    let failover = events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            // From a second before this event to a second before the next.
            let from = |e: &Event| (e.killed_at - SECOND).max(window.start);
            let span = Span {
                start: from(event),
                end: events.get(i + 1).map_or(window.end, from),
            };
            let around = slot_figures(args.jobs, &slots, &receipts.receipts, span);
            failover::figures(
                event,
                window.start,
                &received,
                span,
                &around,
                &records.skipped,
            )
        })
        .collect();
    let bursts = bursts(args.jobs, &slots, &receipts.receipts, window);
    let per_run = per_run(&nodes, figures.runs_received);
    Report {
        setup: Setup {
            nodes: args.nodes,
            executors: args.executors,
            jobs: args.jobs,
            schedule: args.schedule.clone(),
            target: args.target,
            duration_seconds: args.duration,
            drain_seconds: args.drain,
            data_dir: workdir.path.display().to_string(),
            data_dir_kept: workdir.is_kept(),
        },
        job_creation: creation,
        window: Window {
            start: rfc3339(window.start),
            end: rfc3339(window.end),
            seconds: args.duration,
        },
        dispatches_per_second: figures.runs_received as f64 / args.duration as f64,
        slots: figures,
        run_records: records.total,
        run_records_by_status: records.by_status,
        slots_with_run_record: records.slots.len() as u64,
        malformed_receipts: receipts.malformed_lines,
        leader_at_start,
        leader_at_end,
        elections,
        processes,
        failover,
        http_calls: calls,
        bursts,
        api_latency,
        per_run,
    }
}
