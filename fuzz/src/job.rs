//! Target `job`: a `POST /v1/jobs` body, as node/src/api/jobs.rs reads it:
//! one job (an object) or many (an array), decoded with
//! `protocol::validate::from_json` and checked with `validate_job`; then,
//! for a valid job, what the node does next with it: it is stored as
//! MessagePack (the replicated log and sled) and its next fire times are
//! shown in the answer.
//!
//! Invariants of every job that validates:
//! - it round-trips through JSON (what GET answers and a client sends
//!   back with PUT) and MessagePack (what the store keeps) unchanged, and
//!   the copy still validates;
//! - its schedule and time zone parse, and its fire times hold the
//!   `schedule` target's invariants.

use chrono::{DateTime, Utc};
use protocol::{
    schedule::{parse_timezone, Schedule},
    validate::{from_json, validate_job},
    Job,
};

/// The `now` the fire times are previewed from.
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-01T12:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

pub fn run(data: &[u8]) {
    // The API sends an array to `create_many`, anything else to `create`.
    if data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        if let Ok(jobs) = from_json::<Vec<Job>>(data) {
            for job in jobs {
                if validate_job(&job).is_ok() {
                    check_valid(&job);
                }
            }
        }
    } else if let Ok(job) = from_json::<Job>(data) {
        if validate_job(&job).is_ok() {
            check_valid(&job);
        }
    }
}

/// The invariants above, for a job `validate_job` accepted.
pub fn check_valid(job: &Job) {
    let json = serde_json::to_vec(job).unwrap_or_else(|e| panic!("{job:?}: no JSON: {e}"));
    let back: Job = from_json(&json).unwrap_or_else(|e| {
        panic!(
            "{job:?}: its own JSON {} does not decode: {e}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(&back, job, "JSON round trip");
    assert_eq!(validate_job(&back), Ok(()), "{back:?}: copy invalid");
    let packed =
        protocol::wire::encode(job).unwrap_or_else(|e| panic!("{job:?}: no MessagePack: {e}"));
    let unpacked: Job = protocol::wire::decode(&packed)
        .unwrap_or_else(|e| panic!("{job:?}: its own MessagePack does not decode: {e}"));
    assert_eq!(&unpacked, job, "MessagePack round trip");

    let schedule = Schedule::parse(&job.schedule)
        .unwrap_or_else(|e| panic!("{job:?}: valid, but its schedule does not parse: {e}"));
    let tz = parse_timezone(&job.timezone)
        .unwrap_or_else(|e| panic!("{job:?}: valid, but its zone does not parse: {e}"));
    let from = now();
    let fires = schedule.upcoming(from, tz, crate::schedule::PREVIEW);
    crate::schedule::check_fires(&schedule, &job.schedule, tz, from, &fires);
}
