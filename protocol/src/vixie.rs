//! Rewrites a crontab line so croner evaluates it the way Vixie cron and the
//! reference implementation the shared test vectors come from (croniter) do.
//!
//! Where they differ from croner:
//! - a range written with equal ends (`5-5`, `5-5/2`) spans the whole
//!   field, stepping from the field's start;
//! - `a/s` means `a-max/s`;
//! - a day field whose values cover the whole field counts as `*` when the
//!   other day field contains a `*`, and a `*` day field means the other day
//!   field alone decides. Otherwise, with both day fields restricted, a day
//!   matches when either does (croner's default).

/// Field bounds by position for 5 fields (minute first) and 6 or 7 fields
/// (second first, year last; the year is left as written).
fn bounds(count: usize) -> &'static [(u32, u32)] {
    const MINUTE_FIRST: [(u32, u32); 5] = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)];
    const SECOND_FIRST: [(u32, u32); 6] = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6)];
    if count == 5 {
        &MINUTE_FIRST
    } else {
        &SECOND_FIRST
    }
}

const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// The normalized line; anything it does not understand is left for croner
/// to accept or reject.
pub(crate) fn normalize(expr: &str) -> String {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if expr.starts_with('@') || !(5..=7).contains(&fields.len()) {
        return expr.to_string();
    }
    let bounds = bounds(fields.len());
    let mut out: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(i, field)| match bounds.get(i) {
            Some(&(lo, hi)) => field
                .split(',')
                .map(|part| widen(part, lo, hi))
                .collect::<Vec<_>>()
                .join(","),
            None => field.to_string(),
        })
        .collect();
    let (dom, dow) = (bounds.len() - 3, bounds.len() - 1);
    let dom_all = covers(&out[dom], 1, 31, false) && fields[dow].contains('*');
    let dow_all = covers(&out[dow], 0, 6, true) && fields[dom].contains('*');
    if dom_all {
        out[dom] = "*".into();
    }
    if dow_all {
        out[dow] = "*".into();
    }
    out.join(" ")
}

fn widen(part: &str, lo: u32, hi: u32) -> String {
    let (range, step) = match part.split_once('/') {
        Some((range, step)) => (range, Some(step)),
        None => (part, None),
    };
    let step_suffix = step.map(|s| format!("/{s}")).unwrap_or_default();
    match range.split_once('-') {
        Some((a, b)) if is_number(a) && a == b => format!("{lo}-{hi}{step_suffix}"),
        None if step.is_some() && is_number(range) => format!("{range}-{hi}{step_suffix}"),
        _ => part.to_string(),
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether every value of `lo..=hi` is selected by `field`. Unknown syntax
/// (L, W, #, ?) counts as not covering.
///
/// The line was checked against the field bounds before, but this walk
/// does not rely on it: range ends are clamped to the field (7 for a
/// weekday, Sunday again) and steps are taken by `step_by`, so the work is
/// bounded by the field's width whatever numbers the text holds.
fn covers(field: &str, lo: u32, hi: u32, weekday: bool) -> bool {
    let top = if weekday { 7 } else { hi };
    let mut seen = [false; 32];
    let value = |s: &str| -> Option<u32> {
        let upper = s.to_ascii_uppercase();
        let n = match WEEKDAYS.iter().position(|d| *d == upper) {
            Some(i) if weekday => i as u32,
            _ => s.parse().ok()?,
        };
        Some(if weekday && n == 7 { 0 } else { n })
    };
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => match s.parse::<u32>() {
                Ok(s) if s > 0 => (r, s),
                _ => return false,
            },
            None => (part, 1),
        };
        let (a, b) = match range {
            "*" => (lo, hi),
            _ => match range.split_once('-') {
                Some((a, b)) => match (value(a), value(b)) {
                    (Some(a), Some(b)) => (a, if weekday && b == 0 { 7 } else { b }),
                    _ => return false,
                },
                None => match value(range) {
                    Some(a) => (a, a),
                    None => return false,
                },
            },
        };
        let Ok(step) = usize::try_from(step) else {
            return false;
        };
        for v in (a..=b.min(top)).step_by(step) {
            let slot = if weekday && v == 7 { 0 } else { v };
            if let Some(seen) = seen.get_mut(slot as usize) {
                *seen = true;
            }
        }
    }
    seen.get(lo as usize..=hi as usize)
        .is_some_and(|range| range.iter().all(|s| *s))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn equal_ends_span_the_field() {
        assert_eq!(normalize("0 0 5-5 * 3"), "0 0 1-31 * 3");
        assert_eq!(normalize("0 0 5 * 3-3/2"), "0 0 5 * 0-6/2");
        assert_eq!(normalize("5/15 * * * *"), "5-59/15 * * * *");
    }

    #[test]
    fn huge_numbers_cost_no_more_than_the_field() {
        // Checked before normalize in a schedule, but covers alone is
        // bounded too: these return at once.
        assert_eq!(normalize("0 0 1-4294967295 * *"), "0 0 * * *");
        assert_eq!(
            normalize("0 0 1-4294967295/4294967295 * 0-4294967295"),
            "0 0 1-4294967295/4294967295 * 0-4294967295"
        );
        assert_eq!(normalize("0 0 * * 0-4294967295"), "0 0 * * *");
    }

    #[test]
    fn a_full_day_field_is_a_star_only_beside_a_star() {
        assert_eq!(normalize("*/12 10 23-23 * */2"), "*/12 10 * * */2");
        assert_eq!(normalize("48 * 21-21 1-10 0"), "48 * 1-31 1-10 0");
        assert_eq!(normalize("0 0 * * 0-6"), "0 0 * * *");
        assert_eq!(normalize("0 0 5 * 0-6"), "0 0 5 * 0-6");
    }
}
