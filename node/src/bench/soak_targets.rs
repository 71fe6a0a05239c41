//! The soak's derived figures and the targets they are held to: how much
//! the lateness p99 and the servers' memory moved from early in the run to
//! its end, what the disk holds per run kept, and nothing lost or doubled.
//!
//! - p99 drift: the p99 lateness of the last full interval against that
//!   of interval 2 (interval 1 is warm-up).
//! - RSS drift: the largest server RSS at the last interval against the
//!   largest at the interval whose end is nearest a third of the run
//!   (minute 10 of 30), after retention has begun to trim.
//! - bytes per run kept: the largest server data directory at the end
//!   over the runs the servers keep (per job, its runs received, at most
//!   the history limit: the servers expose no count of their own).

use serde::Serialize;

/// The p99 drift allowed, in percent.
pub const P99_DRIFT_TARGET: f64 = 20.0;
/// The RSS drift allowed, in percent.
pub const RSS_DRIFT_TARGET: f64 = 10.0;
/// Data-directory bytes allowed per run kept.
pub const BYTES_PER_RUN_TARGET: f64 = 500.0;

/// What each interval contributes to the derived figures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IntervalInputs {
    /// Seconds from the window's start to the interval's end.
    pub end_seconds: f64,
    /// Whether it is as long as the others (the last may be shorter).
    pub full: bool,
    pub lateness_p99_ms: Option<f64>,
    /// The largest RSS of the servers at its end.
    pub max_server_rss_bytes: Option<u64>,
    /// The largest server data directory at its end.
    pub max_data_dir_bytes: Option<u64>,
}

/// The derived figures; each null when its inputs are missing.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Drift {
    /// Interval 2 (numbered from 1) and its p99 lateness.
    pub p99_base_interval: Option<usize>,
    pub p99_base_ms: Option<f64>,
    /// The last full interval and its p99 lateness.
    pub p99_last_interval: Option<usize>,
    pub p99_last_ms: Option<f64>,
    /// (last − base) / base, in percent.
    pub p99_drift_percent: Option<f64>,
    /// The interval nearest a third of the run and the largest server
    /// RSS at its end.
    pub rss_base_interval: Option<usize>,
    pub rss_base_bytes: Option<u64>,
    /// The largest server RSS at the last interval's end.
    pub rss_last_bytes: Option<u64>,
    pub rss_drift_percent: Option<f64>,
    /// The largest server data directory at the end.
    pub data_dir_bytes_at_end: Option<u64>,
    /// Runs the servers keep, as the bench counts them.
    pub runs_retained_estimate: u64,
    pub bytes_per_retained_run: Option<f64>,
}

/// One target and whether the run met it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetCheck {
    /// What is held to it, as the table names it.
    pub figure: &'static str,
    /// The target in words (`≤ 20 %`).
    pub target: String,
    /// The figure; null when it could not be worked out.
    pub value: Option<f64>,
    /// Null when the figure is unknown.
    pub met: Option<bool>,
}

/// (later − earlier) / earlier in percent; `None` without a positive
/// earlier figure.
pub fn drift_percent(earlier: f64, later: f64) -> Option<f64> {
    (earlier > 0.0 && earlier.is_finite() && later.is_finite())
        .then(|| (later - earlier) / earlier * 100.0)
}

/// The derived figures of `intervals` (in order) over a run of
/// `duration_seconds`, with `runs_retained` runs kept.
pub fn drift(intervals: &[IntervalInputs], duration_seconds: f64, runs_retained: u64) -> Drift {
    let number = |i: usize| i + 1;
    let mut out = Drift {
        runs_retained_estimate: runs_retained,
        ..Drift::default()
    };
    // p99: interval 2 against the last full one after it.
    let last_full = intervals.iter().rposition(|i| i.full);
    if let (Some(base), Some(last)) = (intervals.get(1), last_full.filter(|l| *l > 1)) {
        out.p99_base_interval = Some(number(1));
        out.p99_base_ms = base.lateness_p99_ms;
        out.p99_last_interval = Some(number(last));
        out.p99_last_ms = intervals[last].lateness_p99_ms;
        out.p99_drift_percent = out
            .p99_base_ms
            .zip(out.p99_last_ms)
            .and_then(|(base, last)| drift_percent(base, last));
    }
    // RSS: the interval nearest a third of the run against the last.
    let third = duration_seconds / 3.0;
    let base = intervals
        .iter()
        .enumerate()
        .min_by(|(_, a), (_, b)| {
            (a.end_seconds - third)
                .abs()
                .total_cmp(&(b.end_seconds - third).abs())
        })
        .map(|(i, _)| i);
    if let (Some(base), Some(last)) = (base, intervals.last()) {
        out.rss_base_interval = Some(number(base));
        out.rss_base_bytes = intervals[base].max_server_rss_bytes;
        out.rss_last_bytes = last.max_server_rss_bytes;
        out.rss_drift_percent = out
            .rss_base_bytes
            .zip(out.rss_last_bytes)
            .and_then(|(base, last)| drift_percent(base as f64, last as f64));
        out.data_dir_bytes_at_end = last.max_data_dir_bytes;
    }
    out.bytes_per_retained_run = out
        .data_dir_bytes_at_end
        .filter(|_| runs_retained > 0)
        .map(|bytes| bytes as f64 / runs_retained as f64);
    out
}

/// The five targets of a soak.
pub fn targets(drift: &Drift, lost: u64, duplicate: u64) -> Vec<TargetCheck> {
    let at_most = |figure, target: f64, unit: &str, value: Option<f64>| TargetCheck {
        figure,
        target: format!("≤ {target}{unit}"),
        value,
        met: value.map(|v| v <= target),
    };
    vec![
        at_most("p99 drift", P99_DRIFT_TARGET, " %", drift.p99_drift_percent),
        at_most("RSS drift", RSS_DRIFT_TARGET, " %", drift.rss_drift_percent),
        at_most(
            "bytes per retained run",
            BYTES_PER_RUN_TARGET,
            " B",
            drift.bytes_per_retained_run,
        ),
        at_most("lost slots", 0.0, "", Some(lost as f64)),
        at_most("duplicate slots", 0.0, "", Some(duplicate as f64)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(n: usize, p99: f64, rss_mib: u64, disk_mib: u64) -> IntervalInputs {
        IntervalInputs {
            end_seconds: 60.0 * n as f64,
            full: true,
            lateness_p99_ms: Some(p99),
            max_server_rss_bytes: Some(rss_mib << 20),
            max_data_dir_bytes: Some(disk_mib << 20),
        }
    }

    #[test]
    fn drift_of_a_thirty_minute_run() {
        // p99 10 ms in minute 2, 11 ms at the end; RSS 100 MiB at minute
        // 10, 105 MiB at the end; 400 MiB of disk for a million runs.
        let intervals: Vec<IntervalInputs> = (1..=30)
            .map(|n| {
                let p99 = match n {
                    1 => 50.0,
                    2 => 10.0,
                    30 => 11.0,
                    _ => 12.0,
                };
                let rss = match n {
                    10 => 100,
                    30 => 105,
                    _ => 90,
                };
                minute(n, p99, rss, 400)
            })
            .collect();
        let drift = drift(&intervals, 1800.0, 1_000_000);
        assert_eq!(drift.p99_base_interval, Some(2));
        assert_eq!(drift.p99_last_interval, Some(30));
        assert!((drift.p99_drift_percent.unwrap_or(f64::NAN) - 10.0).abs() < 1e-9);
        assert_eq!(drift.rss_base_interval, Some(10));
        assert_eq!(drift.rss_base_bytes, Some(100 << 20));
        assert!((drift.rss_drift_percent.unwrap_or(f64::NAN) - 5.0).abs() < 1e-9);
        let per_run = drift.bytes_per_retained_run.unwrap_or(f64::NAN);
        assert!((per_run - 419.4304).abs() < 1e-6, "{per_run}");

        let checks = targets(&drift, 0, 0);
        let met: Vec<Option<bool>> = checks.iter().map(|c| c.met).collect();
        assert_eq!(met, [Some(true); 5]);
        let missed = targets(&drift, 3, 0);
        assert_eq!(missed[3].met, Some(false));
        assert_eq!(missed[3].value, Some(3.0));
        assert_eq!(checks[0].target, "≤ 20 %");
    }

    #[test]
    fn a_short_last_interval_is_not_compared() {
        let mut intervals: Vec<IntervalInputs> = (1..=4)
            .map(|n| minute(n, 10.0 * n as f64, 100, 1))
            .collect();
        intervals[3].full = false;
        intervals[3].end_seconds = 210.0;
        let drift = drift(&intervals, 210.0, 0);
        // Interval 3 is the last full one: 30 against 20 ms.
        assert_eq!(drift.p99_last_interval, Some(3));
        assert!((drift.p99_drift_percent.unwrap_or(f64::NAN) - 50.0).abs() < 1e-9);
        // A third of 210 s is 70 s: interval 1 ends at 60 s.
        assert_eq!(drift.rss_base_interval, Some(1));
        assert_eq!(drift.rss_drift_percent, Some(0.0));
        assert_eq!(drift.bytes_per_retained_run, None, "no run kept");
        let checks = targets(&drift, 0, 0);
        assert_eq!(checks[0].met, Some(false));
        assert_eq!(checks[2].met, None);
    }

    #[test]
    fn too_few_intervals_or_figures_give_no_drift() {
        let one = [minute(1, 10.0, 100, 1)];
        let drift = drift(&one, 60.0, 10);
        assert_eq!(drift.p99_drift_percent, None);
        assert_eq!(drift.rss_base_interval, Some(1));
        let two = [minute(1, 10.0, 100, 1), minute(2, 10.0, 100, 1)];
        assert_eq!(super::drift(&two, 120.0, 10).p99_drift_percent, None);
        assert_eq!(drift_percent(0.0, 5.0), None);
        assert_eq!(drift_percent(f64::NAN, 5.0), None);
        assert_eq!(drift_percent(4.0, 5.0), Some(25.0));
        assert_eq!(drift_percent(4.0, 3.0), Some(-25.0));
        let empty = super::drift(&[], 60.0, 10);
        assert_eq!(
            empty,
            Drift {
                runs_retained_estimate: 10,
                ..Drift::default()
            }
        );
    }
}
