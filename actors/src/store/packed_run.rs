//! The run record as this version writes it: [`PACKED`], then the run's
//! fields by position with its times as nanoseconds and without its id,
//! which the record's key holds. About half the bytes of the earlier
//! form, whose times were RFC 3339 text (30 bytes each, four or five per
//! finished run) and which repeated the id.
//!
//! Records of every earlier form still read: they begin with a MessagePack
//! array or map, never with [`PACKED`], which MessagePack never uses. A
//! run with a time outside what nanoseconds hold (before 1677 or after
//! 2262) is written in the earlier form, so nothing is ever rounded.
//!
//! Fields may only be added at the end, each with `#[serde(default)]`, so
//! records already stored keep reading.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use protocol::{alert::AlertDelivery, run::ShardInfo, Run, RunStatus, TriggerKind};
use serde::{Deserialize, Serialize};

/// The first byte of a packed record: `0xC1` is the one byte MessagePack
/// never uses, so no record of an earlier form begins with it.
pub const PACKED: u8 = 0xC1;

/// A run as packed, borrowed for writing and owned for reading. Field
/// order is the format: see the module documentation.
#[derive(Serialize, Deserialize)]
struct Packed<'a> {
    seq: u64,
    job_id: Cow<'a, str>,
    namespace: Cow<'a, str>,
    scheduled_at: i64,
    trigger: TriggerKind,
    shard: Cow<'a, ShardInfo>,
    attempt: u32,
    status: RunStatus,
    executor: Option<Cow<'a, str>>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    exit_code: Option<i32>,
    output: Cow<'a, str>,
    error: Option<Cow<'a, str>>,
    params: Cow<'a, str>,
    retry_of: Option<Cow<'a, str>>,
    pending_reason: Option<Cow<'a, str>>,
    parent_run_ids: Cow<'a, [String]>,
    parent_scheduled_at: Option<i64>,
    parent_job_id: Option<Cow<'a, str>>,
    alerts: Cow<'a, [AlertDelivery]>,
}

fn nanos(time: DateTime<Utc>) -> Option<i64> {
    time.timestamp_nanos_opt()
}

fn time(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

/// The packed record of `run` at `seq`; `None` when one of its times does
/// not fit in nanoseconds (the caller then writes the earlier form).
pub fn encode(seq: u64, run: &Run) -> Option<Result<Vec<u8>, String>> {
    let optional = |t: Option<DateTime<Utc>>| match t {
        Some(t) => nanos(t).map(Some),
        None => Some(None),
    };
    let packed = Packed {
        seq,
        job_id: Cow::Borrowed(&run.job_id),
        namespace: Cow::Borrowed(&run.namespace),
        scheduled_at: nanos(run.scheduled_at)?,
        trigger: run.trigger,
        shard: Cow::Borrowed(&run.shard),
        attempt: run.attempt,
        status: run.status,
        executor: run.executor.as_deref().map(Cow::Borrowed),
        created_at: nanos(run.created_at)?,
        started_at: optional(run.started_at)?,
        finished_at: optional(run.finished_at)?,
        exit_code: run.exit_code,
        output: Cow::Borrowed(&run.output),
        error: run.error.as_deref().map(Cow::Borrowed),
        params: Cow::Borrowed(&run.params),
        retry_of: run.retry_of.as_deref().map(Cow::Borrowed),
        pending_reason: run.pending_reason.as_deref().map(Cow::Borrowed),
        parent_run_ids: Cow::Borrowed(&run.parent_run_ids),
        parent_scheduled_at: optional(run.parent_scheduled_at)?,
        parent_job_id: run.parent_job_id.as_deref().map(Cow::Borrowed),
        alerts: Cow::Borrowed(&run.alerts),
    };
    let mut bytes = vec![PACKED];
    Some(
        protocol::wire::encode_compact_into(&mut bytes, &packed)
            .map(|()| bytes)
            .map_err(|e| e.to_string()),
    )
}

/// The run `id` at `seq` from a packed record (`bytes` without
/// [`PACKED`]).
pub fn decode(id: &str, bytes: &[u8]) -> Result<(u64, Run), String> {
    let packed: Packed<'static> = protocol::wire::decode(bytes).map_err(|e| e.to_string())?;
    let run = Run {
        id: id.to_string(),
        job_id: packed.job_id.into_owned(),
        namespace: packed.namespace.into_owned(),
        scheduled_at: time(packed.scheduled_at),
        trigger: packed.trigger,
        shard: packed.shard.into_owned(),
        attempt: packed.attempt,
        status: packed.status,
        executor: packed.executor.map(Cow::into_owned),
        created_at: time(packed.created_at),
        started_at: packed.started_at.map(time),
        finished_at: packed.finished_at.map(time),
        exit_code: packed.exit_code,
        output: packed.output.into_owned(),
        error: packed.error.map(Cow::into_owned),
        params: packed.params.into_owned(),
        retry_of: packed.retry_of.map(Cow::into_owned),
        pending_reason: packed.pending_reason.map(Cow::into_owned),
        parent_run_ids: packed.parent_run_ids.into_owned(),
        parent_scheduled_at: packed.parent_scheduled_at.map(time),
        parent_job_id: packed.parent_job_id.map(Cow::into_owned),
        alerts: packed.alerts.into_owned(),
    };
    Ok((packed.seq, run))
}
