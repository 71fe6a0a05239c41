//! Schedule expressions and their fire times in a time zone.
//!
//! Crontab lines are parsed by croner (5 fields, 6 with seconds first, 7 with
//! a year last, and the @-macros); `@every`, `@at` and `@manual` are ours.
//! All fire times are instants in UTC; a crontab is evaluated on the wall
//! clock of the job's zone, so a DST gap moves a fire to the first valid
//! instant after it and an overlap fires once.

use std::{str::FromStr, time::Duration};

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

use crate::duration::HumanDuration;

/// Shortest `@every` interval accepted.
pub const MIN_EVERY: Duration = Duration::from_secs(1);
/// Longest `@every` interval accepted.
pub const MAX_EVERY: Duration = Duration::from_secs(366 * 24 * 3600);

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
        let fields = expr.split_whitespace().count();
        if !expr.starts_with('@') && !(5..=7).contains(&fields) {
            return Err(format!(
                "a crontab line has 5, 6 or 7 fields, this one has {fields}"
            ));
        }
        let normalized = crate::vixie::normalize(expr);
        Cron::from_str(&normalized)
            .map(|c| Schedule::Cron(Box::new(c)))
            .map_err(|e| format!("invalid cron expression: {e}"))
    }

    /// The first fire time strictly after `after`, or `None` if there is none.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron(cron) => {
                // croner works in whole seconds: start from the second that
                // contains `after`, exclusive, so a fraction never repeats it.
                let start = Utc
                    .timestamp_opt(after.timestamp(), 0)
                    .single()?
                    .with_timezone(&tz);
                cron.find_next_occurrence(&start, false)
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
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

    /// Up to `count` fire times strictly after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, tz: Tz, count: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(count.min(1024));
        let mut cursor = after;
        while out.len() < count {
            match self.next_after(cursor, tz) {
                Some(next) => {
                    out.push(next);
                    cursor = next;
                }
                None => break,
            }
        }
        out
    }

    /// Fire times in `(after, until]`, oldest first, at most `limit` of the
    /// newest ones; the second value counts the older ones left out.
    pub fn slots_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        tz: Tz,
        limit: usize,
    ) -> (Vec<DateTime<Utc>>, u64) {
        let mut slots = std::collections::VecDeque::new();
        let mut dropped = 0u64;
        let mut cursor = after;
        while let Some(next) = self.next_after(cursor, tz) {
            if next > until {
                break;
            }
            if slots.len() == limit {
                slots.pop_front();
                dropped += 1;
            }
            slots.push_back(next);
            cursor = next;
        }
        (slots.into(), dropped)
    }
}

/// Parses an IANA zone name such as `Europe/Berlin`.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
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
