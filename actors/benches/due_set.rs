//! The trigger's due set: how long taking every fire due at one slot
//! takes with 1,000, 10,000 and 50,000 `@every 1s` jobs tracked.
//!
//! `cargo bench -p cronmesh-actors --bench due_set` (add `-- --quick` for
//! a short run).

use std::hint::black_box;

use actors::trigger::TriggerCore;
use chrono::{DateTime, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use protocol::Job;

const SIZES: [usize; 3] = [1_000, 10_000, 50_000];

fn job(i: usize) -> Job {
    serde_json::from_value(serde_json::json!({
        "id": format!("job-{i}"),
        "schedule": "@every 1s",
        "target": {"type": "executor", "group": "bench", "handler": "noop"},
    }))
    .expect("a valid job")
}

/// A core tracking `n` jobs from half-way through a second, so all of
/// them are due at the next whole second.
fn tracked(n: usize) -> TriggerCore {
    let now: DateTime<Utc> = Utc
        .timestamp_opt(1_700_000_000, 500_000_000)
        .single()
        .expect("a valid time");
    let mut core = TriggerCore::new(1_000);
    for i in 0..n {
        core.track(&job(i), now);
    }
    core
}

fn due_at_one_slot(c: &mut Criterion) {
    let mut group = c.benchmark_group("due_at_one_slot");
    for n in SIZES {
        let mut core = tracked(n);
        // Taking a slot's fires schedules each job's next one, a second
        // later: every iteration takes the next slot's n fires.
        let first = core.next_wake().expect("jobs are tracked");
        assert_eq!(core.due(first).len(), n, "every job fires at the slot");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                let slot = core.next_wake().expect("jobs are tracked");
                let fires = core.due(black_box(slot));
                debug_assert_eq!(fires.len(), n);
                black_box(fires)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, due_at_one_slot);
criterion_main!(benches);
