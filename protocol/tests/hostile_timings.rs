//! How long the worst schedules take: parse plus a preview, for the
//! hostile inputs of `hostile_schedules.rs` and a sweep of generated ones.
//! It prints a table (the best of five runs of each) and asserts no
//! duration (machines vary), only that every call returns under the
//! deadline. Run it optimized:
//!
//! ```sh
//! cargo test -p cronmesh-protocol --release --test hostile_timings -- --ignored --nocapture
//! ```

mod support;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use protocol::schedule::{parse_timezone, Schedule};
use support::{
    generate::{schedule_like, Rng},
    within_deadline,
};

/// Where the previews start, unless a case says otherwise.
const FROM: &str = "2026-01-01T00:00:00Z";

/// Parse plus `count` fire times from `from`; the time taken and what
/// came back.
fn timed(expr: &str, tz: &str, from: &str, count: usize) -> (Duration, String) {
    let (expr, tz) = (expr.to_string(), tz.to_string());
    let from: DateTime<Utc> = from.parse().unwrap();
    within_deadline("a timed schedule", move || {
        let tz = parse_timezone(&tz).unwrap();
        let start = Instant::now();
        let outcome = match Schedule::parse(&expr) {
            Ok(s) => format!("{} fires", s.upcoming(from, tz, count).len()),
            Err(e) => format!("refused: {e:.60}"),
        };
        (start.elapsed(), outcome)
    })
}

#[test]
#[ignore = "prints timings; run optimized by hand"]
fn worst_case_timings() {
    let long_list = (0..100_000)
        .map(|i| (i % 60).to_string())
        .collect::<Vec<_>>()
        .join(",");
    let cases: Vec<(String, &str, &str, usize)> = [
        ("0 0 1-4294967295 * *", "UTC", FROM, 5),
        ("*/4294967295 * * * *", "UTC", FROM, 5),
        ("0 0 31 2 *", "UTC", FROM, 5),
        ("0 0 30 2 *", "Europe/Berlin", FROM, 5),
        ("0 0 1 * +1#2", "UTC", FROM, 5),
        ("0 0 1 * +1#2", "Europe/Berlin", FROM, 5),
        ("0 0 0 29 2 * 2097-2099", "UTC", FROM, 5),
        ("0 0 0 1 1 * 1970", "UTC", FROM, 5),
        ("0 0 * 2 5#5", "UTC", FROM, 1000),
        ("0 0 29 2 +1", "UTC", FROM, 1000),
        ("* 2 * 3 0L", "Europe/Berlin", FROM, 1000),
        ("* * 2 * 3 0L", "Europe/Berlin", FROM, 5),
        ("* * 2 29 3 +0", "Europe/Berlin", FROM, 5),
        ("* * 1-2 * 3 0L", "Antarctica/Troll", FROM, 1000),
        // From inside the hour Troll repeats in October.
        (
            "* * 1-2 * 3 0L",
            "Antarctica/Troll",
            "2026-10-24T23:30:00Z",
            1000,
        ),
        ("* * 2 * 3,10 0L", "Europe/Berlin", FROM, 1000),
        ("0 0 0 1 1 * 2099", "UTC", FROM, 1000),
        ("* * * * * *", "UTC", FROM, 1000),
        ("@every 1s", "UTC", FROM, 1000),
        ("@at 9999-12-31T23:59:59Z", "UTC", FROM, 5),
    ]
    .into_iter()
    .map(|(e, tz, from, n)| (e.to_string(), tz, from, n))
    .chain([(format!("{long_list} * * * *"), "UTC", FROM, 5)])
    .collect();
    println!(
        "{:>12}  {:<36} {:<14} count  outcome",
        "time", "schedule", "zone"
    );
    for (expr, tz, from, count) in &cases {
        // The machine is shared: the best of five runs.
        let (took, outcome) = (0..5)
            .map(|_| timed(expr, tz, from, *count))
            .min_by_key(|(took, _)| *took)
            .unwrap();
        println!("{took:>12.3?}  {expr:<36.36} {tz:<16} {count:>5}  {outcome}");
    }

    let mut rng = Rng(0x5EED_C0DE_2026);
    let mut worst = (Duration::ZERO, String::new(), String::new());
    let total = Instant::now();
    for _ in 0..20_000 {
        let expr = schedule_like(&mut rng);
        for tz in ["UTC", "Europe/Berlin"] {
            let (took, outcome) = timed(&expr, tz, FROM, 5);
            if took > worst.0 {
                worst = (took, format!("{expr} in {tz}"), outcome);
            }
        }
    }
    let elapsed = total.elapsed();
    // The machine is shared: time the slowest again, keep the best of five.
    let (expr, tz) = worst.1.rsplit_once(" in ").unwrap();
    let again = (0..5).map(|_| timed(expr, tz, FROM, 5).0).min().unwrap();
    println!(
        "sweep: 20000 generated texts x 2 zones in {elapsed:.2?}; slowest {:.3?} ({again:.3?} timed again): {:?} ({})",
        worst.0, worst.1, worst.2
    );
}
