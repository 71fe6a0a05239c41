//! Schedules built to hang, crash or bloat a node: each is refused with an
//! error that names what is wrong, or, when it is valid, its fire times
//! come back at once and stop at the horizon. Every call runs under a
//! deadline, so a regression fails instead of hanging the suite.

mod support;

use chrono::{DateTime, Utc};
use protocol::{
    schedule::{parse_timezone, Schedule, HORIZON_YEARS, MAX_SCHEDULE_LEN},
    validate::{from_json, validate_job},
    Job,
};
use support::within_deadline;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The parse error of `expr`, under the deadline; panics if it parses.
fn refusal(expr: &str) -> String {
    let owned = expr.to_string();
    let result = within_deadline(&format!("parse of {:.80?}", expr), move || {
        Schedule::parse(&owned).map(|_| ())
    });
    match result {
        Ok(()) => panic!("{expr:.80?} should be refused"),
        Err(e) => e,
    }
}

/// `count` fire times of `expr` in `tz` from `from`, under the deadline.
fn fires(expr: &str, tz: &str, from: &str, count: usize) -> Vec<DateTime<Utc>> {
    let (expr, tz, from) = (expr.to_string(), tz.to_string(), utc(from));
    within_deadline(&format!("{expr} in {tz}"), move || {
        let schedule = Schedule::parse(&expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        schedule.upcoming(from, parse_timezone(&tz).unwrap(), count)
    })
}

#[test]
fn out_of_bounds_values_name_their_field() {
    for (expr, field, problem) in [
        ("0 0 1-4294967295 * *", "day-of-month", "out of range 1-31"),
        ("0 0 1-4294967296 * *", "day-of-month", "out of range 1-31"),
        (
            "0 0 1-99999999999999999999 * *",
            "day-of-month",
            "out of range",
        ),
        ("60 * * * *", "minute", "out of range 0-59"),
        ("0 24 * * *", "hour", "out of range 0-23"),
        ("0 0 0 * *", "day-of-month", "out of range 1-31"),
        ("0 0 32 * *", "day-of-month", "out of range 1-31"),
        ("0 0 * 0 *", "month", "out of range 1-12"),
        ("0 0 * 13 *", "month", "out of range 1-12"),
        ("0 0 * * 8", "day-of-week", "out of range 0-7"),
        ("60 * * * * *", "second", "out of range 0-59"),
        ("0 0 0 1 1 * 5000", "year", "out of range 1970-2099"),
        ("0 0 0 1 1 * 1-5000", "year", "out of range 1970-2099"),
        ("0 0 0 1 1 * 65535", "year", "out of range"),
        ("0 0 32W * *", "day-of-month", "out of range 1-31"),
        ("0 0 * * 9L", "day-of-week", "out of range 0-7"),
        ("0 0 * * 9#1", "day-of-week", "out of range 0-7"),
    ] {
        let e = refusal(expr);
        assert!(e.starts_with(&format!("{field} field")), "{expr}: {e}");
        assert!(e.contains(problem), "{expr}: {e}");
    }
}

#[test]
fn steps_ranges_and_special_forms_are_checked() {
    for (expr, problem) in [
        ("*/0 * * * *", "step \"0\" must be a number from 1 to 60"),
        ("0-59/0 * * * *", "step"),
        ("*/61 * * * *", "from 1 to 60"),
        ("*/4294967295 * * * *", "step"),
        ("0 0 1-31/4294967296 * *", "step"),
        ("0 */25 * * *", "from 1 to 24"),
        ("0 0 * * */8", "from 1 to 7"),
        ("0 0 20-10 * *", "runs backwards"),
        ("0 0 * * 5-1", "runs backwards"),
        ("1,,2 * * * *", "empty"),
        ("0 0 * * L", "needs a weekday"),
        ("0 0 * * 5#0", "1 to 5"),
        ("0 0 * * 5#6", "1 to 5"),
        ("0 0 * * 5#99999999999", "1 to 5"),
        ("0 0 5L * *", "day-of-month"),
        ("0 0 L-3 * *", "day-of-month"),
        ("0 0 1W-5 * *", "day-of-month"),
        ("0 L * * *", "hour"),
        ("0 0 * MON *", "month"),
        ("0 0 * * JAN", "day-of-week"),
        ("0 0 * * MONDAY", "day-of-week"),
        ("0 0 * * ++1", "day-of-week"),
        ("٣ * * * *", "ASCII"),
        ("0 0 * * ＊", "ASCII"),
        ("* * *", "5, 6 or 7 fields"),
        ("* * * * * * * *", "5, 6 or 7 fields"),
    ] {
        let e = refusal(expr);
        assert!(e.contains(problem), "{expr}: {e}");
    }
}

#[test]
fn long_texts_and_long_lists_are_refused_by_length() {
    // 100 000 list items: refused by the length bound before any parsing.
    let items = (0..100_000)
        .map(|i| (i % 60).to_string())
        .collect::<Vec<_>>()
        .join(",");
    let e = refusal(&format!("{items} * * * *"));
    assert!(
        e.contains(&format!("at most {MAX_SCHEDULE_LEN} bytes")),
        "{e:.200}"
    );
    assert!(e.len() < 200, "the error does not quote the text back");
    // 65 items fit in 256 bytes but exceed the list bound.
    let e = refusal(&format!("{} * * * *", vec!["1"; 65].join(",")));
    assert!(
        e.starts_with("minute field") && e.contains("at most 64 items"),
        "{e}"
    );
    // A megabyte of blanks around a valid line is still a megabyte.
    let padded = format!("{}* * * * *{}", " ".repeat(1 << 19), " ".repeat(1 << 19));
    assert!(refusal(&padded).contains("at most 256 bytes"));
    let e = refusal(&format!("@every {}", "1s ".repeat(50)));
    assert!(e.contains("at most 64 bytes"), "{e}");
    let e = within_deadline("a long zone name", || {
        parse_timezone(&"Europe/Berlin".repeat(100_000)).unwrap_err()
    });
    assert!(e.contains("at most 64 bytes") && e.len() < 200, "{e}");
}

#[test]
fn schedules_that_name_no_date_are_refused() {
    for expr in [
        "0 0 31 2 *",
        "0 0 30 2 *",
        "0 0 30,31 2 *",
        "0 0 31 4,6,9,11 *",
        "0 0 1 * +1#2",
        "0 0 8-14 * +1#1",
        "0 0 0 29 2 * 2027",
        "0 0 0 29 2 * 2097-2099",
        "0 0 0 * 2 1#5 2026",
    ] {
        let e = refusal(expr);
        assert!(e.contains("never fires"), "{expr}: {e}");
    }
}

#[test]
fn durations_refuse_overflow_and_bounds() {
    for (expr, problem) in [
        ("@every 99999999999999999999999s", "too large"),
        ("@every 18446744073709551615s 1s", "too large"),
        ("@every 1000000d", "between 1s and 366d"),
        ("@every 0s", "between 1s and 366d"),
        ("@every 1.5s", "whole number of seconds"),
        ("@every -1s", "negative"),
    ] {
        let e = refusal(expr);
        assert!(e.contains(problem), "{expr}: {e}");
    }
}

#[test]
fn rare_schedules_stop_at_the_horizon() {
    let from = "2026-01-01T00:00:00Z";
    let horizon = utc(from) + chrono::Months::new(HORIZON_YEARS * 12);
    // A fifth Friday in February comes every 28 years or so.
    let got = fires("0 0 * 2 5#5", "UTC", from, 1000);
    assert_eq!(got.first(), Some(&utc("2036-02-29T00:00:00Z")));
    assert!(
        got.len() < 10 && got.iter().all(|t| *t <= horizon),
        "{got:?}"
    );
    // 29 February on a Monday (both day fields, croner's +).
    let got = fires("0 0 29 2 +1", "UTC", from, 1000);
    assert_eq!(got.first(), Some(&utc("2044-02-29T00:00:00Z")));
    assert!(got.len() < 10, "{got:?}");
    // One year only.
    assert_eq!(
        fires("0 0 0 1 1 * 2099", "UTC", from, 1000),
        [utc("2099-01-01T00:00:00Z")]
    );
    // Every minute of the hour the clock skips on the last Sunday of March
    // in Berlin: croner walks second by second through each gap.
    let got = fires("* * 2 * 3 0L", "Europe/Berlin", from, 5);
    assert!(got.iter().all(|t| *t <= horizon), "{got:?}");
    // A far @at costs nothing to list (a job refuses it, below).
    assert_eq!(
        fires("@at 9999-12-31T23:59:59Z", "UTC", from, 5),
        [utc("9999-12-31T23:59:59Z")]
    );
    // Frequent schedules fill a large count.
    assert_eq!(fires("* * * * * *", "UTC", from, 1000).len(), 1000);
    assert_eq!(fires("@every 1s", "UTC", from, 1000).len(), 1000);
}

#[test]
fn catching_up_every_second_of_a_century_keeps_only_the_limit() {
    let (slots, dropped) = within_deadline("slots_between over 100 years", || {
        Schedule::parse("@every 1s").unwrap().slots_between(
            utc("2000-01-01T00:00:00Z"),
            utc("2100-01-01T00:00:00Z"),
            chrono_tz::UTC,
            3,
        )
    });
    assert_eq!(
        slots,
        [
            utc("2099-12-31T23:59:58Z"),
            utc("2099-12-31T23:59:59Z"),
            utc("2100-01-01T00:00:00Z")
        ]
    );
    let seconds = (utc("2100-01-01T00:00:00Z") - utc("2000-01-01T00:00:00Z")).num_seconds();
    assert_eq!(dropped, seconds as u64 - 3);
}

#[test]
fn a_job_whose_schedule_never_fires_is_refused_on_schedule() {
    for schedule in [
        "0 0 31 2 *",
        "0 0 0 1 1 * 1999",
        "@at 9999-12-31T23:59:59Z",
        "0 0 1-4294967295 * *",
    ] {
        let body = format!(
            r#"{{"id":"a","schedule":"{schedule}","target":{{"type":"shell","command":"true"}}}}"#
        );
        let result = within_deadline(schedule, move || {
            from_json::<Job>(body.as_bytes()).and_then(|job| validate_job(&job))
        });
        let e = result.expect_err(schedule);
        assert_eq!(e.field, "schedule", "{schedule}: {e}");
    }
}
