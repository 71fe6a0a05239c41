//! Fire times checked against data computed by another implementation
//! (croniter, in `tests/data/cron-next-fire.json`), and the DST and weekday
//! behaviour docs/API.md promises.

use chrono::{DateTime, Datelike, Utc, Weekday};
use protocol::schedule::{parse_timezone, Schedule};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    schedule: String,
    timezone: String,
    from: DateTime<Utc>,
    next: Vec<DateTime<Utc>>,
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn agrees_with_every_croniter_vector() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/cron-next-fire.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let vectors: Vectors = serde_json::from_str(&text).unwrap();
    assert!(
        vectors.cases.len() >= 200,
        "expected at least 200 cases, found {}",
        vectors.cases.len()
    );
    let mut failures = Vec::new();
    for case in &vectors.cases {
        let tz = parse_timezone(&case.timezone).unwrap();
        let schedule = Schedule::parse(&case.schedule).unwrap();
        let got = schedule.upcoming(case.from, tz, case.next.len());
        if got != case.next {
            failures.push(format!(
                "{} in {} from {}: want {:?}, got {:?}",
                case.schedule, case.timezone, case.from, case.next, got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        vectors.cases.len(),
        failures.join("\n")
    );
}

fn preview(expr: &str, tz: &str, from: &str, count: usize) -> Vec<DateTime<Utc>> {
    Schedule::parse(expr)
        .unwrap()
        .upcoming(utc(from), parse_timezone(tz).unwrap(), count)
}

#[test]
fn daily_0230_in_berlin_fires_once_on_spring_forward_day() {
    // 2026-03-29: clocks jump from 02:00 to 03:00 CET->CEST; 02:30 does not exist.
    let fires = preview("30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z", 4);
    let on_day: Vec<_> = fires
        .iter()
        .filter(|t| t.date_naive().to_string() == "2026-03-29")
        .collect();
    assert_eq!(on_day.len(), 1, "fires: {fires:?}");
    // The first valid instant after the gap is 03:00 CEST = 01:00 UTC.
    assert_eq!(*on_day[0], utc("2026-03-29T01:00:00Z"));
    assert_eq!(fires[0], utc("2026-03-28T01:30:00Z"));
    assert_eq!(fires[2], utc("2026-03-30T00:30:00Z"));
}

#[test]
fn daily_0230_in_berlin_fires_once_on_fall_back_day() {
    // 2026-10-25: 02:00-03:00 happens twice (CEST then CET).
    let fires = preview("30 2 * * *", "Europe/Berlin", "2026-10-23T12:00:00Z", 4);
    let on_day: Vec<_> = fires
        .iter()
        .filter(|t| t.date_naive().to_string() == "2026-10-25")
        .collect();
    assert_eq!(on_day.len(), 1, "fires: {fires:?}");
    assert_eq!(*on_day[0], utc("2026-10-25T00:30:00Z"));
    assert_eq!(fires[0], utc("2026-10-24T00:30:00Z"));
    assert_eq!(fires[2], utc("2026-10-26T01:30:00Z"));
}

#[test]
fn weekday_crontab_fires_monday_to_friday() {
    // 2026-11-21 is a Saturday.
    let fires = preview("0 9 * * 1-5", "UTC", "2026-11-21T00:00:00Z", 10);
    let days: Vec<Weekday> = fires.iter().map(|t| t.weekday()).collect();
    use Weekday::*;
    assert_eq!(days, vec![Mon, Tue, Wed, Thu, Fri, Mon, Tue, Wed, Thu, Fri]);
    assert!(fires
        .iter()
        .all(|t| t.format("%H:%M:%S").to_string() == "09:00:00"));
    assert_eq!(fires[0], utc("2026-11-23T09:00:00Z"));
}

#[test]
fn either_day_field_matches_when_both_are_restricted() {
    // Vixie cron: the 1st of the month OR any Friday.
    let fires = preview("0 0 1 * 5", "UTC", "2026-11-25T00:00:00Z", 3);
    assert_eq!(
        fires,
        vec![
            utc("2026-11-27T00:00:00Z"),
            utc("2026-12-01T00:00:00Z"),
            utc("2026-12-04T00:00:00Z")
        ]
    );
}
