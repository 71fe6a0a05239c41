//! Whether a crontab line names any date at all: `0 0 31 2 *` (February
//! 31st) or `0 0 1 * +1#2` (a 1st that is a second Monday) never fires.
//!
//! croner finds that out only by walking day by day to its search limit,
//! the year 5000, which takes tens of milliseconds for each next fire time
//! asked for. Refusing such a line when it is parsed keeps the cost of a
//! next fire time bounded by the distance to the fire, which for a line
//! that fires at all is a few decades at most.

use chrono::{Datelike, NaiveDate};
use croner::{Cron, Weekday};

use super::crontab::{MAX_YEAR, MIN_YEAR};

/// Whether some date in the years a crontab may name matches its day of
/// month, month, day of week and year fields.
///
/// A day's match depends only on its month, its day, the weekday the month
/// starts on and, for February, whether the year is a leap year; each such
/// month shape is examined once. Every shape occurs in any 28 years without
/// a skipped leap year, so a line without a year field is tested in full,
/// and one with a year field is tested in exactly the years it names. At
/// most 12 x 7 + 7 shapes of at most 31 days are examined.
pub(super) fn fires_on_some_date(cron: &Cron) -> bool {
    let pattern = &cron.pattern;
    let mut seen = [[[false; 2]; 7]; 12];
    for year in MIN_YEAR as i32..=MAX_YEAR as i32 {
        if !pattern.year_match(year).unwrap_or(false) {
            continue;
        }
        for month in 1..=12u32 {
            if !pattern.month_match(month).unwrap_or(false) {
                continue;
            }
            let Some(first) = NaiveDate::from_ymd_opt(year, month, 1) else {
                continue;
            };
            let starts_on = first.weekday().num_days_from_sunday();
            let leap = month == 2 && first.leap_year();
            let shape = &mut seen[month as usize - 1][starts_on as usize][usize::from(leap)];
            if *shape {
                continue;
            }
            *shape = true;
            let length = days_in_month(first);
            let any = (1..=length).any(|day| {
                let weekday = Weekday::from_days_from_sunday((starts_on + day - 1) % 7);
                pattern
                    .day_match(year, month, day, weekday)
                    .unwrap_or(false)
            });
            if any {
                return true;
            }
        }
    }
    false
}

fn days_in_month(first: NaiveDate) -> u32 {
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    };
    next.map(|n| (n - first).num_days() as u32).unwrap_or(28)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn fires(line: &str) -> bool {
        fires_on_some_date(&Cron::from_str(line).unwrap())
    }

    #[test]
    fn dates_that_exist_fire() {
        for line in [
            "0 0 * * *",
            "0 0 29 2 *",
            "0 0 L 2 *",
            "0 0 31 1-12/2 *",
            "0 0 * 2 5#5",
            "0 0 29 2 +1",
            "0 0 13 * +5",
            "0 0 31 2 5",
            "0 0 0 29 2 * 2028",
            "0 0 0 1 1 * 1970",
        ] {
            assert!(fires(line), "{line} should fire");
        }
    }

    /// The month-shape shortcut agrees with trying every day from 1970 to
    /// 2099, over a family of day fields that mixes both day fields, the
    /// AND form, `L`, `W`, `#`, leap days and years.
    #[test]
    fn agrees_with_trying_every_day() {
        let mut never = 0;
        for dom in ["*", "1", "29", "30", "31", "L", "15W", "8-14"] {
            for month in ["*", "2", "4", "2,4"] {
                for dow in ["*", "1", "+1", "1#5", "+1#5", "+5L", "+1#2"] {
                    for year in ["*", "2027", "2028"] {
                        let line = format!("0 0 0 {dom} {month} {dow} {year}");
                        let cron = Cron::from_str(&line).unwrap();
                        let p = &cron.pattern;
                        let mut day = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
                        let mut any = false;
                        while day.year() <= 2099 && !any {
                            let weekday = Weekday::from_days_from_sunday(
                                day.weekday().num_days_from_sunday(),
                            );
                            any = p.year_match(day.year()).unwrap()
                                && p.month_match(day.month()).unwrap()
                                && p.day_match(day.year(), day.month(), day.day(), weekday)
                                    .unwrap();
                            day = day.succ_opt().unwrap();
                        }
                        assert_eq!(fires_on_some_date(&cron), any, "{line}");
                        never += usize::from(!any);
                    }
                }
            }
        }
        assert!(
            never > 20,
            "the family holds lines that never fire: {never}"
        );
    }

    #[test]
    fn dates_that_do_not_exist_never_fire() {
        for line in [
            "0 0 31 2 *",
            "0 0 30 2 *",
            "0 0 31 4,6,9,11 *",
            "0 0 1 * +1#2",
            "0 0 0 29 2 * 2027",
            "0 0 0 29 2 * 2097-2099",
            "0 0 0 * 2 1#5 2026",
        ] {
            assert!(!fires(line), "{line} should never fire");
        }
    }
}
