//! Target `schedule`: a job's `schedule` field, parsed as `POST /v1/jobs`
//! and the schedule preview parse it, then the next five fire times as the
//! API shows them, in UTC and just before DST changes in three zones.
//!
//! Input: the expression as UTF-8 (JSON strings are always UTF-8; other
//! bytes are skipped). Invariants of every schedule that parses:
//! - fire times are strictly increasing, and the first is after the start;
//! - crontab and `@every` fire times are whole seconds; `@every` ones are
//!   multiples of the interval since the epoch, one interval apart;
//! - `@at T` fires once, at T, when T is after the start; `@manual` never;
//! - no fire is skipped: the next fire after a second before a fire time
//!   is that fire time;
//! - parsing is deterministic: a second parse gives the same fire times.

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use protocol::schedule::Schedule;

/// How many fire times the API previews for a job.
pub const PREVIEW: usize = 5;

/// Where the next fires are computed from, and in which zone: UTC, and
/// half an hour before a DST gap or overlap where the wall clock jumps.
pub fn starts() -> [(Tz, DateTime<Utc>); 5] {
    let at = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    };
    [
        (Tz::UTC, at("2026-01-01T00:00:00Z")),
        // 02:00 CET jumps to 03:00 CEST at 01:00 UTC.
        (Tz::Europe__Berlin, at("2026-03-29T00:30:00Z")),
        // 03:00 CEST falls back to 02:00 CET at 01:00 UTC: 02:xx twice.
        (Tz::Europe__Berlin, at("2026-10-25T00:30:00Z")),
        // 02:00 EST jumps to 03:00 EDT at 07:00 UTC.
        (Tz::America__New_York, at("2026-03-08T06:30:00Z")),
        // Lord Howe moves by half an hour: 02:00 jumps to 02:30 at 15:00 UTC.
        (Tz::Australia__Lord_Howe, at("2026-10-03T14:30:00Z")),
    ]
}

pub fn run(data: &[u8]) {
    let Ok(expr) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(schedule) = Schedule::parse(expr) else {
        return;
    };
    for (tz, from) in starts() {
        // What one request costs a node: the parse and one preview.
        let parsed = crate::budget::request("schedule", || {
            Schedule::parse(expr).map(|again| (again.upcoming(from, tz, PREVIEW), again))
        });
        let Ok((fires, again)) = parsed else {
            panic!("{expr:?}: parsed once, refused the second time");
        };
        check_fires(&again, expr, tz, from, &fires);
        assert_eq!(
            schedule.upcoming(from, tz, PREVIEW),
            fires,
            "{expr:?} in {tz}: a second parse fires differently"
        );
    }
}

/// The invariants above, for `fires` computed from `from` in `tz`.
pub fn check_fires(
    schedule: &Schedule,
    expr: &str,
    tz: Tz,
    from: DateTime<Utc>,
    fires: &[DateTime<Utc>],
) {
    let context = || format!("{expr:?} in {tz} from {from}: {fires:?}");
    assert!(fires.len() <= PREVIEW, "{}", context());
    let mut previous = from;
    for &fire in fires {
        assert!(
            fire > previous,
            "{}: not strictly increasing after the start",
            context()
        );
        previous = fire;
    }
    match schedule {
        Schedule::Manual => assert!(fires.is_empty(), "{}", context()),
        Schedule::At(at) => {
            let expected: Vec<_> = Some(*at).filter(|at| *at > from).into_iter().collect();
            assert_eq!(fires, expected.as_slice(), "{}", context());
        }
        Schedule::Every(every) => {
            let step = i64::try_from(every.as_secs()).unwrap_or(i64::MAX);
            assert_eq!(fires.len(), PREVIEW, "{}: @every always fires", context());
            for fire in fires {
                assert_eq!(fire.timestamp_subsec_nanos(), 0, "{}", context());
                assert_eq!(fire.timestamp().rem_euclid(step), 0, "{}", context());
            }
            for pair in fires.windows(2) {
                assert_eq!(pair[1] - pair[0], Duration::seconds(step), "{}", context());
            }
        }
        Schedule::Cron(_) => {
            for fire in fires {
                assert_eq!(fire.timestamp_subsec_nanos(), 0, "{}", context());
                let second_before = Utc
                    .timestamp_opt(fire.timestamp() - 1, 0)
                    .single()
                    .unwrap_or(from);
                if second_before >= from {
                    assert_eq!(
                        schedule.next_after(second_before, tz),
                        Some(*fire),
                        "{}: starting a second before {fire} skips it",
                        context()
                    );
                }
            }
        }
    }
}
