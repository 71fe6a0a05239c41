//! Property: for any schedule-like text, parsing and then asking for the
//! next five fire times always returns (under a deadline), and what comes
//! back is sound: fire times strictly increase after the start, a
//! crontab's stay within the horizon and its first one is the one croner
//! finds on its own, and a refusal is a short message.
//!
//! The texts come from the seeded generator in `support/generate.rs`:
//! near misses of valid lines, lines within the field bounds (which reach
//! croner and the never-fires check), macros and noise. A failure prints
//! the seed, the case and the text.

mod support;

use std::sync::mpsc;

use chrono::{DateTime, Months, Utc};
use chrono_tz::Tz;
use protocol::schedule::{Schedule, HORIZON_YEARS};
use support::{
    generate::{schedule_like, Rng},
    DEADLINE,
};

/// Cases per run; each is parsed once and previewed in every zone.
const CASES: u64 = 20_000;
const SEED: u64 = 0x5EED_C0DE_2026;

/// Where previews start: UTC, and just before DST changes.
fn starts() -> Vec<(Tz, DateTime<Utc>)> {
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    vec![
        (Tz::UTC, at("2026-01-01T00:00:00Z")),
        (Tz::Europe__Berlin, at("2026-03-29T00:30:00Z")),
        (Tz::America__New_York, at("2026-11-01T05:30:00Z")),
        (Tz::Australia__Lord_Howe, at("2026-10-03T14:30:00Z")),
    ]
}

/// Checks one text; `Err` says which property failed.
fn check(expr: &str) -> Result<bool, String> {
    let schedule = match Schedule::parse(expr) {
        Ok(s) => s,
        Err(e) if e.is_empty() => return Err("empty refusal".into()),
        Err(e) if e.len() > 600 => return Err(format!("refusal of {} bytes", e.len())),
        Err(_) => return Ok(false),
    };
    for (tz, from) in starts() {
        // A crontab's fire times stop at the horizon; an @at's need not.
        let horizon = match schedule {
            Schedule::Cron(_) => from
                .checked_add_months(Months::new(HORIZON_YEARS * 12))
                .unwrap(),
            _ => DateTime::<Utc>::MAX_UTC,
        };
        let fires = schedule.upcoming(from, tz, 5);
        let mut previous = from;
        for fire in &fires {
            if *fire <= previous || *fire > horizon {
                return Err(format!("in {tz} from {from}: {fires:?}"));
            }
            previous = *fire;
        }
        if let Schedule::Cron(cron) = &schedule {
            if fires.iter().any(|f| f.timestamp_subsec_nanos() != 0) {
                return Err(format!("fractional fire in {tz}: {fires:?}"));
            }
            // The first fire is croner's own, found without its walk
            // through DST gaps.
            let plain = cron
                .find_next_occurrence(&from.with_timezone(&tz), false)
                .ok()
                .map(|t| t.with_timezone(&Utc))
                .filter(|t| *t <= horizon);
            if fires.first() != plain.as_ref() {
                return Err(format!("in {tz} from {from}: {fires:?}, croner {plain:?}"));
            }
        }
    }
    Ok(true)
}

#[test]
fn any_schedule_like_text_parses_and_previews_in_bounded_time() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut rng = Rng(SEED);
        for case in 0..CASES {
            let expr = schedule_like(&mut rng);
            // Announce the case before running it, so a hang names it.
            if tx.send((case, expr.clone(), None)).is_err() {
                return;
            }
            let outcome = check(&expr);
            if tx.send((case, expr, Some(outcome))).is_err() {
                return;
            }
        }
    });
    let mut current = String::new();
    let mut parsed = 0;
    let mut done = 0;
    while done < CASES {
        match rx.recv_timeout(DEADLINE) {
            Ok((_, expr, None)) => current = expr,
            Ok((case, expr, Some(outcome))) => {
                done += 1;
                match outcome {
                    Ok(true) => parsed += 1,
                    Ok(false) => {}
                    Err(e) => panic!("seed {SEED:#x}, case {case}, {expr:?}: {e}"),
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("seed {SEED:#x}: {current:?} did not return within {DEADLINE:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("seed {SEED:#x}: {current:?} panicked")
            }
        }
    }
    eprintln!("{parsed} of {CASES} texts parsed");
    // The generator must reach valid lines too, or the property says little.
    assert!(
        parsed * 20 >= CASES,
        "only {parsed} of {CASES} texts parsed; the generator drifted"
    );
}
