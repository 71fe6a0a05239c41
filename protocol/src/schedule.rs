//! Schedule expressions and their fire times in a time zone.
//!
//! Crontab lines are parsed by croner (5 fields, 6 with seconds first, 7 with
//! a year last, and the @-macros); `@every`, `@at` and `@manual` are ours.
//! All fire times are instants in UTC; a crontab is evaluated on the wall
//! clock of the job's zone, so a DST gap moves a fire to the first valid
//! instant after it and an overlap fires once.
//!
//! The input is hostile: a schedule is at most [`MAX_SCHEDULE_LEN`] bytes,
//! every crontab field is checked against its bounds before anything
//! iterates over it (`crontab`), and a crontab that names no date at all
//! is refused (`reach`), so parsing costs what the text's length says;
//! a crontab's next fire time is found without walking through DST gaps
//! second by second (`walk`) and no further than [`HORIZON_YEARS`] ahead.

mod crontab;
mod reach;
mod walk;

use std::{str::FromStr, time::Duration};

use chrono::{DateTime, Months, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

use crate::duration::HumanDuration;

pub use crontab::{MAX_LIST_ITEMS, MAX_YEAR, MIN_YEAR};

/// Shortest `@every` interval accepted.
pub const MIN_EVERY: Duration = Duration::from_secs(1);
/// Longest `@every` interval accepted.
pub const MAX_EVERY: Duration = Duration::from_secs(366 * 24 * 3600);
/// Longest schedule, in bytes: room for a 7-field crontab with long lists,
/// and a bound on everything done with the text.
pub const MAX_SCHEDULE_LEN: usize = 256;
/// Longest time zone name, in bytes (the longest IANA name has 32).
pub const MAX_TIMEZONE_LEN: usize = 64;
/// How far ahead a crontab's fire times are looked for: neither
/// [`Schedule::next_after`] nor [`Schedule::upcoming`] answers one beyond
/// it, and [`Schedule::check_fires_ahead`] refuses a job schedule with no
/// fire time within it. Every crontab that names a date fires within a few
/// decades (a 29 February that is a Monday comes back within 40 years),
/// and an `@at` may lie this far ahead (the bench's idle jobs use 2099).
pub const HORIZON_YEARS: u32 = 100;

/// A parsed `schedule` field.
#[derive(Clone, Debug)]
pub enum Schedule {
    Cron(Box<Cron>),
    /// Fires at every multiple of the interval since the Unix epoch, so the
    /// slots are the same on every node and after every restart.
    Every(Duration),
    /// Fires once.
    At(DateTime<Utc>),
    /// Never fires by itself; only `trigger` runs it.
    Manual,
}

impl Schedule {
    pub fn parse(expr: &str) -> Result<Self, String> {
        if expr.len() > MAX_SCHEDULE_LEN {
            return Err(format!(
                "a schedule is at most {MAX_SCHEDULE_LEN} bytes, this one has {}",
                expr.len()
            ));
        }
        let expr = expr.trim();
        if expr.is_empty() {
            return Err("schedule is empty".into());
        }
        if let Some(rest) = strip_macro(expr, "@every") {
            let HumanDuration(every) = rest.parse()?;
            if !(MIN_EVERY..=MAX_EVERY).contains(&every) {
                return Err(format!(
                    "@every interval must be between 1s and 366d, got {rest}"
                ));
            }
            if every.subsec_nanos() != 0 {
                return Err("@every interval must be a whole number of seconds".into());
            }
            return Ok(Schedule::Every(every));
        }
        if let Some(rest) = strip_macro(expr, "@at") {
            let at = DateTime::parse_from_rfc3339(rest).map_err(|e| {
                format!("@at needs an RFC 3339 time such as 2026-12-01T00:00:00Z: {e}")
            })?;
            return Ok(Schedule::At(at.with_timezone(&Utc)));
        }
        if expr.eq_ignore_ascii_case("@manual") {
            return Ok(Schedule::Manual);
        }
        if expr.starts_with('@') && !is_croner_macro(expr) {
            return Err(format!(
                "unknown macro {expr:?}; use @yearly, @monthly, @weekly, @daily, @hourly, @every D, @at T or @manual"
            ));
        }
        if !expr.starts_with('@') {
            crontab::check(expr)?;
        }
        let normalized = crate::vixie::normalize(expr);
        let cron =
            Cron::from_str(&normalized).map_err(|e| format!("invalid cron expression: {e}"))?;
        if !reach::fires_on_some_date(&cron) {
            return Err(format!(
                "{expr:?} never fires: no date matches its day-of-month, month, day-of-week and year fields together"
            ));
        }
        Ok(Schedule::Cron(Box::new(cron)))
    }

    /// Whether the schedule fires within [`HORIZON_YEARS`] of `now`, as a
    /// job's schedule must: a crontab whose dates have passed or lie
    /// beyond is refused, and so is an `@at` beyond it. An `@at` in the
    /// past is accepted (it has fired, and its job stays editable), and so
    /// is `@manual`.
    pub fn check_fires_ahead(&self, now: DateTime<Utc>, tz: Tz) -> Result<(), String> {
        let horizon = horizon_after(now);
        match self {
            Schedule::Manual | Schedule::Every(_) => Ok(()),
            Schedule::At(at) if *at <= horizon => Ok(()),
            Schedule::At(_) => Err(format!("@at lies more than {HORIZON_YEARS} years ahead")),
            Schedule::Cron(_) => match self.next_after(now, tz) {
                Some(next) if next <= horizon => Ok(()),
                _ => Err(format!(
                    "never fires within the next {HORIZON_YEARS} years in {tz} (its years have passed, or its times are ones the clock skips)"
                )),
            },
        }
    }

    /// The first fire time strictly after `after`, or `None` if there is
    /// none within [`HORIZON_YEARS`] of it.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron(cron) => {
                // croner works in whole seconds: start from the second that
                // contains `after`, exclusive, so a fraction never repeats it.
                let start = Utc
                    .timestamp_opt(after.timestamp(), 0)
                    .single()?
                    .with_timezone(&tz);
                walk::next_fire(cron, start, horizon_after(after))
            }
            Schedule::Every(every) => {
                let step = every.as_millis() as i64;
                let now = after.timestamp_millis();
                let next = now.div_euclid(step).checked_add(1)?.checked_mul(step)?;
                Utc.timestamp_millis_opt(next).single()
            }
            Schedule::At(at) => (*at > after).then_some(*at),
            Schedule::Manual => None,
        }
    }

    /// Up to `count` fire times strictly after `after`. A crontab's stop
    /// [`HORIZON_YEARS`] after it, so a rare line's list costs at most a
    /// walk to the horizon whatever `count` says; an `@at` costs nothing
    /// and is listed wherever it lies.
    pub fn upcoming(&self, after: DateTime<Utc>, tz: Tz, count: usize) -> Vec<DateTime<Utc>> {
        let horizon = match self {
            Schedule::Cron(_) => horizon_after(after),
            _ => DateTime::<Utc>::MAX_UTC,
        };
        let mut out = Vec::with_capacity(count.min(1024));
        let mut cursor = after;
        while out.len() < count {
            match self.next_after(cursor, tz) {
                Some(next) if next <= horizon => {
                    out.push(next);
                    cursor = next;
                }
                _ => break,
            }
        }
        out
    }

    /// Fire times in `(after, until]`, oldest first, at most `limit` of the
    /// newest ones; the second value counts the older ones left out.
    /// `@every` slots are counted, not walked, so a long outage costs
    /// `limit` slots.
    pub fn slots_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        tz: Tz,
        limit: usize,
    ) -> (Vec<DateTime<Utc>>, u64) {
        if let Schedule::Every(every) = self {
            if let Some(counted) = every_slots_between(*every, after, until, limit) {
                return counted;
            }
        }
        let mut slots = std::collections::VecDeque::new();
        let mut dropped = 0u64;
        let mut cursor = after;
        while let Some(next) = self.next_after(cursor, tz) {
            if next > until {
                break;
            }
            cursor = next;
            if limit == 0 {
                dropped += 1;
                continue;
            }
            if slots.len() == limit {
                slots.pop_front();
                dropped += 1;
            }
            slots.push_back(next);
        }
        (slots.into(), dropped)
    }
}

/// The `@every` slots of [`Schedule::slots_between`], by arithmetic on the
/// multiples of the interval; `None` if a number does not fit.
fn every_slots_between(
    every: Duration,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: usize,
) -> Option<(Vec<DateTime<Utc>>, u64)> {
    let step = i64::try_from(every.as_millis()).ok().filter(|s| *s > 0)?;
    // The first multiple strictly after `after`, the last at or before `until`.
    let first = after.timestamp_millis().div_euclid(step).checked_add(1)?;
    let last = until.timestamp_millis().div_euclid(step);
    if last < first {
        return Some((Vec::new(), 0));
    }
    let total = u64::try_from(last.checked_sub(first)?.checked_add(1)?).ok()?;
    let kept = total.min(u64::try_from(limit).unwrap_or(u64::MAX));
    let oldest_kept = last
        .checked_sub(i64::try_from(kept).ok()?)?
        .checked_add(1)?;
    let slots = (oldest_kept..=last)
        .map(|n| {
            n.checked_mul(step)
                .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        })
        .collect::<Option<Vec<_>>>()?;
    Some((slots, total - kept))
}

/// [`HORIZON_YEARS`] after `t`, or the end of time.
fn horizon_after(t: DateTime<Utc>) -> DateTime<Utc> {
    t.checked_add_months(Months::new(HORIZON_YEARS * 12))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Parses an IANA zone name such as `Europe/Berlin`.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    if name.len() > MAX_TIMEZONE_LEN {
        return Err(format!(
            "a time zone name is at most {MAX_TIMEZONE_LEN} bytes; use an IANA name such as Europe/Berlin"
        ));
    }
    name.parse::<Tz>()
        .map_err(|_| format!("unknown time zone {name:?}; use an IANA name such as Europe/Berlin"))
}

fn strip_macro<'a>(expr: &'a str, name: &str) -> Option<&'a str> {
    let head = expr.get(..name.len())?;
    let rest = &expr[name.len()..];
    (head.eq_ignore_ascii_case(name) && rest.starts_with(char::is_whitespace)).then(|| rest.trim())
}

fn is_croner_macro(expr: &str) -> bool {
    [
        "@yearly",
        "@annually",
        "@monthly",
        "@weekly",
        "@daily",
        "@midnight",
        "@hourly",
    ]
    .iter()
    .any(|m| expr.eq_ignore_ascii_case(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn upcoming(expr: &str, tz: &str, from: &str, n: usize) -> Vec<String> {
        let tz = parse_timezone(tz).unwrap();
        Schedule::parse(expr)
            .unwrap()
            .upcoming(utc(from), tz, n)
            .into_iter()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .collect()
    }

    #[test]
    fn five_six_and_seven_fields() {
        assert_eq!(
            upcoming("30 9 * * *", "UTC", "2026-01-01T00:00:00Z", 1),
            ["2026-01-01T09:30:00Z"]
        );
        assert_eq!(
            upcoming("15 30 9 * * *", "UTC", "2026-01-01T00:00:00Z", 1),
            ["2026-01-01T09:30:15Z"]
        );
        assert_eq!(
            upcoming("0 0 0 1 1 * 2030", "UTC", "2026-01-01T00:00:00Z", 2),
            ["2030-01-01T00:00:00Z"]
        );
    }

    #[test]
    fn macros() {
        assert_eq!(
            upcoming("@daily", "UTC", "2026-01-01T10:00:00Z", 1),
            ["2026-01-02T00:00:00Z"]
        );
        assert_eq!(
            upcoming("@hourly", "UTC", "2026-01-01T10:00:00Z", 1),
            ["2026-01-01T11:00:00Z"]
        );
        assert_eq!(
            upcoming("@every 30s", "UTC", "2026-01-01T10:00:10Z", 2),
            ["2026-01-01T10:00:30Z", "2026-01-01T10:01:00Z"]
        );
        assert_eq!(
            upcoming("@at 2026-12-01T00:00:00Z", "UTC", "2026-01-01T00:00:00Z", 3),
            ["2026-12-01T00:00:00Z"]
        );
        assert!(upcoming("@manual", "UTC", "2026-01-01T00:00:00Z", 3).is_empty());
    }

    #[test]
    fn fraction_of_a_second_never_repeats_a_slot() {
        let s = Schedule::parse("* * * * * *").unwrap();
        let next = s
            .next_after(utc("2026-01-01T00:00:00.500Z"), Tz::UTC)
            .unwrap();
        assert_eq!(next, utc("2026-01-01T00:00:01Z"));
        let every = Schedule::parse("@every 1s").unwrap();
        assert_eq!(
            every
                .next_after(utc("2026-01-01T00:00:00.500Z"), Tz::UTC)
                .unwrap(),
            utc("2026-01-01T00:00:01Z")
        );
    }

    #[test]
    fn rejects_bad_expressions() {
        for bad in [
            "",
            "* * *",
            "61 * * * *",
            "@every",
            "@every 0s",
            "@every 1.5s",
            "@at tomorrow",
            "@sometimes",
            "* * * * * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn slots_between_keeps_the_newest() {
        let s = Schedule::parse("@every 1s").unwrap();
        let (slots, dropped) = s.slots_between(
            utc("2026-01-01T00:00:00Z"),
            utc("2026-01-01T00:00:10Z"),
            Tz::UTC,
            3,
        );
        assert_eq!(dropped, 7);
        assert_eq!(
            slots,
            vec![
                utc("2026-01-01T00:00:08Z"),
                utc("2026-01-01T00:00:09Z"),
                utc("2026-01-01T00:00:10Z")
            ]
        );
    }
}
