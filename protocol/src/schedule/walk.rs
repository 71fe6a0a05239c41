//! The next fire time of a crontab in a time zone, at a cost bounded by
//! the horizon rather than by how the zone's clock jumps.
//!
//! croner evaluates a line on the zone's wall clock and, for a line that
//! is not fixed-time (a `*` or a list in its seconds, minutes or hours),
//! steps one second at a time through every wall clock time the zone
//! skips (a DST gap) that the line matches. A line that matches only
//! skipped times, such as `* * 1-2 * 3 0L` in Antarctica/Troll (the last
//! Sunday of March, whose 01:00-03:00 never happens), makes it walk 7200
//! seconds for each of the decades the zone's rules cover: about 100 ms a
//! search, for every job listed or previewed.
//!
//! So for such a line the wall clock matches are looked for on a clock
//! without gaps (croner in UTC, cheap), each one that falls in a gap is
//! stepped over to the gap's end by minutes, and croner in the zone is
//! then asked only from the first match that exists, where it answers at
//! once. Fixed-time lines, which croner moves past a gap in one step, go
//! to croner directly, and so does a search that starts inside a repeated
//! hour (croner's fold rules), with the years it may walk cut to two.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::{Cron, CronComponent, JobType, YEAR_LOWER_LIMIT, YEAR_UPPER_LIMIT};

/// Longest gap stepped over, in minutes: a whole day, as when Samoa
/// skipped 30 December 2011.
const MAX_GAP_MINUTES: i64 = 25 * 60;

/// The first fire time strictly after `after` (a whole second) and not
/// after `until`, as croner in `tz` finds it.
pub(super) fn next_fire(
    cron: &Cron,
    after: DateTime<Tz>,
    until: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    // A line whose years have all passed: croner would step year by year
    // to its limit, 5000, to find that out. (At most the horizon's 100
    // years are looked at.)
    // (`until` is in UTC; the zone's year may already be the next one.)
    let last_year = until.year().saturating_add(1);
    if !(after.year()..=last_year).any(|y| cron.pattern.year_match(y).unwrap_or(false)) {
        return None;
    }
    let tz = after.timezone();
    let in_zone = |from: &DateTime<Tz>, inclusive: bool| {
        cron.find_next_occurrence(from, inclusive)
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| *t <= until)
    };
    if cron.determine_job_type() == JobType::FixedTime {
        return in_zone(&after, false);
    }
    let mut cursor = after.naive_local();
    if let LocalResult::Ambiguous(..) = tz.from_local_datetime(&cursor) {
        // Inside a repeated hour only croner knows which instants are
        // still ahead. Asked with the years cut to this one and the next,
        // it walks at most two years; past them the search goes on below
        // from the first second of the year after.
        let year = after.year();
        let found = within_years(cron, year, year.saturating_add(1))
            .and_then(|window| window.find_next_occurrence(&after, false).ok());
        if let Some(t) = found {
            return Some(t.with_timezone(&Utc)).filter(|t| *t <= until);
        }
        cursor = NaiveDate::from_ymd_opt(year.saturating_add(2), 1, 1)?.and_hms_opt(0, 0, 0)?
            - Duration::seconds(1);
    }
    let until_wall = until.with_timezone(&tz).naive_local();
    loop {
        // The next wall clock time the line matches, on a clock without gaps.
        let wall = cron
            .find_next_occurrence(&Utc.from_utc_datetime(&cursor), false)
            .ok()?
            .naive_utc();
        if wall > until_wall {
            return None;
        }
        match tz.from_local_datetime(&wall) {
            // The first match that happens: croner in the zone, asked from
            // that very instant, returns it (or an earlier instant of a
            // repeated hour) without walking.
            LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => {
                return in_zone(&at, true);
            }
            LocalResult::None => cursor = gap_end(tz, wall)? - Duration::seconds(1),
        }
    }
}

/// `cron` with its years cut to `first..=last` (those it names among them).
fn within_years(cron: &Cron, first: i32, last: i32) -> Option<Cron> {
    let named: Vec<String> = (first..=last)
        .filter(|y| cron.pattern.year_match(*y).unwrap_or(false))
        .map(|y| y.to_string())
        .collect();
    if named.is_empty() {
        return None;
    }
    let mut years = CronComponent::new(YEAR_LOWER_LIMIT as u16, YEAR_UPPER_LIMIT as u16, 0, 0);
    years.parse(&named.join(",")).ok()?;
    let mut window = cron.clone();
    window.pattern.years = years;
    Some(window)
}

/// The first wall clock second at or after `skipped` that the zone shows.
/// Steps by minutes, then back by seconds, for gaps that end off a minute.
fn gap_end(tz: Tz, skipped: NaiveDateTime) -> Option<NaiveDateTime> {
    let shown = |t: &NaiveDateTime| !matches!(tz.from_local_datetime(t), LocalResult::None);
    let mut end = (1..=MAX_GAP_MINUTES)
        .map(|m| skipped + Duration::minutes(m))
        .find(shown)?;
    for _ in 0..60 {
        let earlier = end - Duration::seconds(1);
        if earlier <= skipped || !shown(&earlier) {
            break;
        }
        end = earlier;
    }
    Some(end)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use chrono::Offset;

    use super::*;

    /// Instants where `tz` changes its offset in `year`, found hour by hour.
    fn transitions(tz: Tz, year: i32) -> Vec<DateTime<Utc>> {
        let mut t = Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(year + 1, 1, 1, 0, 0, 0).unwrap();
        let offset = |t: DateTime<Utc>| t.with_timezone(&tz).offset().fix();
        let mut out = Vec::new();
        while t < end {
            let next = t + Duration::hours(1);
            if offset(t) != offset(next) {
                // Narrow to the minute.
                let mut m = t;
                while offset(m) == offset(t) {
                    m += Duration::minutes(1);
                }
                out.push(m);
            }
            t = next;
        }
        out
    }

    /// croner alone, as `Schedule::next_after` asked it before.
    fn plain(cron: &Cron, after: DateTime<Tz>) -> Option<DateTime<Utc>> {
        cron.find_next_occurrence(&after, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    const ZONES: [Tz; 8] = [
        Tz::UTC,
        Tz::Europe__Berlin,
        Tz::America__New_York,
        Tz::America__Santiago,
        Tz::Australia__Lord_Howe,
        Tz::Antarctica__Troll,
        Tz::Africa__Casablanca,
        Tz::Pacific__Apia,
    ];

    /// Around every offset change of 2026 (and Samoa's skipped day in
    /// 2011), a chain of fire times from several starts is the same as
    /// croner alone gives, for lines that match inside gaps and overlaps.
    #[test]
    fn agrees_with_croner_around_offset_changes() {
        let lines = [
            "* * * * * *",
            "*/7 * * * * *",
            "0 * * * * *",
            "0 */5 * * * *",
            "* 30 2 * * *",
            "0 0-59/15 1-3 * * *",
            "* * 2 * * *",
            "*/13 * 0-3 * * *",
            "0 15,45 1,2,3,23 * * *",
            "0 0 0,1,2 * * *",
            "30 0 2 * * *",
            "0 30 * 29-31 12 *",
        ];
        let mut compared = 0;
        for tz in ZONES {
            let mut changes = transitions(tz, 2026);
            if tz == Tz::Pacific__Apia {
                changes.extend(transitions(tz, 2011));
            }
            if changes.is_empty() {
                changes.push(Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap());
            }
            for change in changes {
                for offset in [
                    -10_800, -3_600, -1_801, -1, 0, 1, 1_799, 3_600, 5_400, 10_800,
                ] {
                    let start = (change + Duration::seconds(offset)).with_timezone(&tz);
                    for line in lines {
                        let cron = Cron::from_str(line).unwrap();
                        let until = start.with_timezone(&Utc) + Duration::days(3650);
                        let (mut a, mut b) = (start, start);
                        for _ in 0..4 {
                            let ours = next_fire(&cron, a, until);
                            let theirs = plain(&cron, b);
                            assert_eq!(ours, theirs, "{line} in {tz} from {start} after {a}");
                            compared += 1;
                            let Some(next) = ours else { break };
                            a = next.with_timezone(&tz);
                            b = a;
                        }
                    }
                }
            }
        }
        assert!(compared > 2000, "{compared}");
    }

    /// A line that matches only skipped times gets the same answer as
    /// croner gives after its long walk, and one beyond `until` none.
    #[test]
    fn steps_over_gaps_to_the_same_answer() {
        let start = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .unwrap()
            .with_timezone(&Tz::Antarctica__Troll);
        let cron = Cron::from_str("* * 1-2 * 3 0L").unwrap();
        let far = Utc.with_ymd_and_hms(2200, 1, 1, 0, 0, 0).unwrap();
        let ours = next_fire(&cron, start, far);
        assert_eq!(ours, plain(&cron, start));
        assert!(
            ours.is_some_and(|t| t.format("%Y").to_string() == "2100"),
            "{ours:?}"
        );
        let near = Utc.with_ymd_and_hms(2036, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(next_fire(&cron, start, near), None);
        // From inside the hour Troll repeats in October (01:30 at +02:00,
        // before the clock goes back to 01:00 at +00:00).
        let in_fold = Utc
            .with_ymd_and_hms(2026, 10, 24, 23, 30, 0)
            .unwrap()
            .with_timezone(&Tz::Antarctica__Troll);
        assert!(tz_fold(in_fold), "the start lies in a repeated hour");
        assert_eq!(next_fire(&cron, in_fold, far), plain(&cron, in_fold));
    }

    fn tz_fold(t: DateTime<Tz>) -> bool {
        matches!(
            t.timezone().from_local_datetime(&t.naive_local()),
            LocalResult::Ambiguous(..)
        )
    }
}
