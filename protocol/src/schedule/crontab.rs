//! Strict checks of a crontab line, field by field, before the Vixie
//! rewrite and croner see it.
//!
//! Every value, range end and step is held to its field's bounds here, with
//! an error that names the field, so nothing downstream iterates over a
//! number taken from the input: the work any later step does is bounded by
//! the field widths and the line's length. Only the forms croner evaluates
//! are let through, so a line accepted here means what docs/API.md says.

/// Longest list (`1,2,3`) a field may hold. A field has at most 60 values,
/// so a longer list only repeats them.
pub const MAX_LIST_ITEMS: usize = 64;
/// Year bounds of the 7th field; later years would fire beyond any horizon
/// a preview or a job validation looks at.
pub const MIN_YEAR: u32 = 1970;
pub const MAX_YEAR: u32 = 2099;

/// Longest number a field can hold (years have four digits). Checked
/// before parsing, so a long run of digits is refused without overflow.
const MAX_DIGITS: usize = 4;

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// What a field is: its name in errors, its bounds and its extra forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
    Year,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Second => "second",
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
            Field::Year => "year",
        }
    }

    fn bounds(self) -> (u32, u32) {
        match self {
            Field::Second | Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 7),
            Field::Year => (MIN_YEAR, MAX_YEAR),
        }
    }

    /// Largest step: one that reaches past the whole field selects only
    /// its start, which a plain value says better.
    fn max_step(self) -> u32 {
        match self {
            // 0 and 7 are both Sunday: the week has 7 days.
            Field::DayOfWeek => 7,
            _ => {
                let (lo, hi) = self.bounds();
                hi - lo + 1
            }
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            Field::Month => &MONTHS,
            Field::DayOfWeek => &WEEKDAYS,
            _ => &[],
        }
    }
}

/// The fields of a line with `count` fields, in order.
fn layout(count: usize) -> Option<&'static [Field]> {
    use Field::*;
    const FIVE: [Field; 5] = [Minute, Hour, DayOfMonth, Month, DayOfWeek];
    const SIX: [Field; 6] = [Second, Minute, Hour, DayOfMonth, Month, DayOfWeek];
    const SEVEN: [Field; 7] = [Second, Minute, Hour, DayOfMonth, Month, DayOfWeek, Year];
    match count {
        5 => Some(&FIVE),
        6 => Some(&SIX),
        7 => Some(&SEVEN),
        _ => None,
    }
}

/// Checks a crontab line (not an @-macro). The error names the field and
/// what is wrong with it.
pub(crate) fn check(line: &str) -> Result<(), String> {
    if let Some(c) = line.chars().find(|c| !c.is_ascii()) {
        return Err(format!(
            "a crontab line is ASCII; {c:?} is not (use digits, * , - / and the names JAN-DEC, SUN-SAT)"
        ));
    }
    let fields: Vec<&str> = line.split_ascii_whitespace().collect();
    let Some(layout) = layout(fields.len()) else {
        return Err(format!(
            "a crontab line has 5, 6 or 7 fields, this one has {}",
            fields.len()
        ));
    };
    for (field, text) in layout.iter().zip(&fields) {
        check_field(*field, text).map_err(|e| format!("{} field {text:?}: {e}", field.name()))?;
    }
    Ok(())
}

fn check_field(field: Field, text: &str) -> Result<(), String> {
    // croner's `+` before the day of week: the day must match both day
    // fields instead of either.
    let body = match field {
        Field::DayOfWeek => text.strip_prefix('+').unwrap_or(text),
        _ => text,
    };
    if body == "*" {
        return Ok(());
    }
    if body == "?" && matches!(field, Field::DayOfMonth | Field::DayOfWeek) {
        return Ok(());
    }
    let items = body.split(',').count();
    if items > MAX_LIST_ITEMS {
        return Err(format!(
            "a list holds at most {MAX_LIST_ITEMS} items, this one {items}"
        ));
    }
    body.split(',').try_for_each(|item| check_item(field, item))
}

fn check_item(field: Field, item: &str) -> Result<(), String> {
    if item.is_empty() {
        return Err("a list item is empty".into());
    }
    let upper = item.to_ascii_uppercase();
    match field {
        Field::DayOfMonth => {
            if upper == "L" || upper == "LW" {
                return Ok(());
            }
            if let Some(day) = upper.strip_suffix('W') {
                value(field, day)?;
                return Ok(());
            }
        }
        Field::DayOfWeek => {
            if let Some((days, nth)) = upper.split_once('#') {
                if !matches!(nth, "1" | "2" | "3" | "4" | "5") {
                    return Err(format!(
                        "#{nth}: the occurrence after # is 1 to 5 (5#3 is the third Friday)"
                    ));
                }
                return range(field, days).map(|_| ());
            }
            if upper == "L" {
                return Err("L needs a weekday before it (5L is the last Friday)".into());
            }
            if let Some(day) = upper.strip_suffix('L') {
                value(field, day)?;
                return Ok(());
            }
        }
        _ => {}
    }
    let (span, step) = match upper.split_once('/') {
        Some((span, step)) => (span, Some(step)),
        None => (upper.as_str(), None),
    };
    if let Some(step) = step {
        let max = field.max_step();
        match number(step) {
            Some(s) if (1..=max).contains(&s) => {}
            _ => return Err(format!("step {step:?} must be a number from 1 to {max}")),
        }
        if span == "*" {
            return Ok(());
        }
    } else if span == "*" {
        return Err("* stands alone; it cannot be a list item".into());
    }
    range(field, span).map(|_| ())
}

/// A value or a range `a-b`, both ends in bounds and `a <= b`.
fn range(field: Field, text: &str) -> Result<(u32, u32), String> {
    match text.split_once('-') {
        Some((a, b)) => {
            let a = value(field, a)?;
            // croner reads `SUN` at the end of a range as 7 (`FRI-SUN`).
            let b = match field {
                Field::DayOfWeek if b == "SUN" => 7,
                _ => value(field, b)?,
            };
            if a > b {
                return Err(format!(
                    "range {text} runs backwards; write the smaller end first"
                ));
            }
            Ok((a, b))
        }
        None => value(field, text).map(|v| (v, v)),
    }
}

/// A number within the field's bounds, or one of its names.
fn value(field: Field, text: &str) -> Result<u32, String> {
    if let Some(i) = field.names().iter().position(|n| *n == text) {
        let first = field.bounds().0;
        return Ok(first + i as u32);
    }
    let (lo, hi) = field.bounds();
    match number(text) {
        Some(v) if (lo..=hi).contains(&v) => Ok(v),
        Some(_) => Err(format!("{text} is out of range {lo}-{hi}")),
        None if text.len() > MAX_DIGITS && text.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("{text} is out of range {lo}-{hi}"))
        }
        None if field.names().is_empty() => {
            Err(format!("{text:?} is not a number from {lo} to {hi}"))
        }
        None => Err(format!(
            "{text:?} is neither a number from {lo} to {hi} nor one of {}",
            field.names().join(" ")
        )),
    }
}

/// A run of at most `MAX_DIGITS` ASCII digits.
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > MAX_DIGITS || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::check;

    fn error(line: &str) -> String {
        match check(line) {
            Ok(()) => panic!("{line:?} should be refused"),
            Err(e) => e,
        }
    }

    #[test]
    fn accepts_every_documented_form() {
        for line in [
            "* * * * *",
            "0,15,30,45 */2 1-15 JAN-MAR mon-fri",
            "10-50/20 0 L * *",
            "5/15 0 15W * *",
            "0 0 LW * *",
            "0 0 * * 5L",
            "0 0 * * 5#3",
            "0 0 * * FRI#5",
            "0 0 ? * FRI-SUN",
            "0 0 1 * +5",
            "0 0 1 * 7",
            "0 0 * * */7",
            "*/60 * * * *",
            "59 59 23 31 12 7",
            "0 0 0 1 1 * 2030-2040/5",
            "0 0 0 1 1 ? 1970,2099",
        ] {
            assert_eq!(check(line), Ok(()), "{line}");
        }
    }

    #[test]
    fn names_the_field_and_the_problem() {
        let e = error("0 0 1-4294967295 * *");
        assert!(e.starts_with("day-of-month field"), "{e}");
        assert!(e.contains("out of range 1-31"), "{e}");
        assert!(error("60 * * * *").starts_with("minute field"));
        assert!(error("0 24 * * *").starts_with("hour field"));
        assert!(error("0 0 0 * *").starts_with("day-of-month field"));
        assert!(error("0 0 * 13 *").starts_with("month field"));
        assert!(error("0 0 * * 8").starts_with("day-of-week field"));
        assert!(error("60 0 0 * * *").starts_with("second field"));
        assert!(error("0 0 0 * * * 2100").starts_with("year field"));
        assert!(error("0 0 0 * * * 1969").starts_with("year field"));
    }

    #[test]
    fn refuses_bad_steps_ranges_and_lists() {
        assert!(error("*/0 * * * *").contains("step"));
        assert!(error("*/61 * * * *").contains("step"));
        assert!(error("*/99999999999999999999 * * * *").contains("step"));
        assert!(error("0 0 * * */8").contains("step"));
        assert!(error("0 0 20-10 * *").contains("backwards"));
        assert!(error("0 0 * * 5-0").contains("backwards"));
        assert!(error("1,,2 * * * *").contains("empty"));
        assert!(error("*,5 * * * *").contains("stands alone"));
        let long = vec!["1"; 65].join(",");
        assert!(error(&format!("{long} * * * *")).contains("at most 64"));
    }

    #[test]
    fn refuses_forms_outside_their_field() {
        assert!(error("0 0 * MON *").starts_with("month field"));
        assert!(error("0 0 * * JAN").starts_with("day-of-week field"));
        assert!(error("0 0 5L * *").starts_with("day-of-month field"));
        assert!(error("0 0 * * L").contains("needs a weekday"));
        assert!(error("0 0 * * 5#6").contains("1 to 5"));
        assert!(error("0 0 * * 5#0").contains("1 to 5"));
        assert!(error("0 L * * *").starts_with("hour field"));
        assert!(error("0 0 32W * *").contains("out of range"));
        assert!(error("0 0 ? ? *").starts_with("month field"));
        assert!(error("0 0 * * -1").starts_with("day-of-week field"));
        assert!(error("0 0 * * +").starts_with("day-of-week field"));
        assert!(error("0 0 * * 1\u{3000}2").contains("ASCII"));
        assert!(error("* * * *").contains("5, 6 or 7 fields"));
    }
}
