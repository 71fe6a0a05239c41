//! The wire format (MessagePack with named fields, `protocol::wire`):
//! encoding and decoding a typical `Run`, a `DispatchRequest`, and a batch
//! of 1,000 runs.
//!
//! `cargo bench -p cronmesh-protocol --bench run_encoding` (add
//! `-- --quick` for a short run).

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use protocol::{
    dispatch::{DispatchRequest, Task},
    run::{slot_run_id, ShardInfo},
    wire, Run, RunStatus, TriggerKind,
};

fn run(i: i64) -> Run {
    let slot = Utc
        .timestamp_opt(1_700_000_000 + i, 0)
        .single()
        .expect("a valid time");
    let job_id = format!("bench-{}", i % 1000);
    Run {
        id: slot_run_id("default", &job_id, slot, 0),
        job_id,
        namespace: "default".into(),
        scheduled_at: slot,
        trigger: TriggerKind::Schedule,
        shard: ShardInfo {
            index: 0,
            count: 1,
            param: String::new(),
        },
        attempt: 1,
        status: RunStatus::Succeeded,
        executor: Some("http://127.0.0.1:7080".into()),
        created_at: slot,
        started_at: Some(slot),
        finished_at: Some(slot),
        exit_code: Some(0),
        output: "report written to /var/reports/daily.csv\n".into(),
        error: None,
        params: String::new(),
        retry_of: None,
        pending_reason: None,
        parent_run_ids: Vec::new(),
        parent_scheduled_at: None,
        parent_job_id: None,
        alerts: Vec::new(),
    }
}

fn dispatch_request() -> DispatchRequest {
    let run = run(0);
    DispatchRequest {
        run_id: run.id,
        job_id: run.job_id,
        namespace: run.namespace,
        scheduled_at: run.scheduled_at,
        attempt: 1,
        shard: run.shard,
        params: String::new(),
        task: Task::Handler {
            handler: "noop".into(),
        },
        timeout_ms: 30_000,
        report_to: vec![
            "http://127.0.0.1:7070".into(),
            "http://127.0.0.1:7170".into(),
            "http://127.0.0.1:7270".into(),
        ],
        term: 0,
        expires_at: None,
        parent_run_ids: Vec::new(),
        parent_scheduled_at: None,
    }
}

fn encoding(c: &mut Criterion) {
    let one = run(0);
    let bytes = wire::encode(&one).expect("encodes");
    c.bench_function("run/encode", |b| {
        b.iter(|| wire::encode(black_box(&one)).expect("encodes"))
    });
    c.bench_function("run/decode", |b| {
        b.iter(|| wire::decode::<Run>(black_box(&bytes)).expect("decodes"))
    });

    let request = dispatch_request();
    let bytes = wire::encode(&request).expect("encodes");
    c.bench_function("dispatch_request/encode", |b| {
        b.iter(|| wire::encode(black_box(&request)).expect("encodes"))
    });
    c.bench_function("dispatch_request/decode", |b| {
        b.iter(|| wire::decode::<DispatchRequest>(black_box(&bytes)).expect("decodes"))
    });

    let batch: Vec<Run> = (0..1_000).map(run).collect();
    let bytes = wire::encode(&batch).expect("encodes");
    let mut group = c.benchmark_group("runs_1000");
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("encode", |b| {
        b.iter(|| wire::encode(black_box(&batch)).expect("encodes"))
    });
    group.bench_function("decode", |b| {
        b.iter(|| wire::decode::<Vec<Run>>(black_box(&bytes)).expect("decodes"))
    });
    group.finish();
}

criterion_group!(benches, encoding);
criterion_main!(benches);
