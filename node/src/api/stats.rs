//! `GET /v1/stats`: runs per minute over the last hour by outcome, how late
//! scheduled runs start, and the jobs that are failing. The dashboard draws
//! it; scripts may read it.

use std::{collections::HashSet, sync::Mutex};

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Duration, DurationRound, Utc};
use protocol::{
    api::{Lateness, MinuteCounts, RunStats, RunSummary, RunSummaryOfJob},
    Run, RunStatus, TriggerKind,
};

use super::{error::ApiResult, AppState};

/// Minutes the counts cover.
pub const WINDOW_MINUTES: i64 = 60;
/// Lateness is measured over runs started this recently.
const LATENESS_WINDOW: Duration = Duration::minutes(5);
/// Most runs read for one answer: a busy hour is sampled, not read whole.
const MAX_RUNS_READ: usize = 100_000;

pub async fn stats(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    super::offload::json(move || run_stats(&state)).await
}

/// [`run_stats`] off the request workers (an answer not cached reads up
/// to an hour of runs): what a page served by the API server should call.
pub async fn current(state: web::Data<AppState>) -> ApiResult<RunStats> {
    super::offload::run(move || run_stats(&state)).await
}

/// The last answer, reused for [`FRESH_FOR`]: every dashboard open on a
/// busy cluster refreshes, and each answer reads up to an hour of runs.
#[derive(Default)]
pub struct StatsCache(Mutex<Option<(DateTime<Utc>, RunStats)>>);

const FRESH_FOR: Duration = Duration::seconds(2);

pub fn run_stats(state: &AppState) -> ApiResult<RunStats> {
    let now = state.clock.now();
    let cached = state.stats.0.lock().ok().and_then(|c| c.clone());
    if let Some((_, stats)) = cached.filter(|(at, _)| *at <= now && now - *at < FRESH_FOR) {
        return Ok(stats);
    }
    let stats = compute(state, now)?;
    if let Ok(mut cache) = state.stats.0.lock() {
        *cache = Some((now, stats.clone()));
    }
    Ok(stats)
}

fn compute(state: &AppState, now: DateTime<Utc>) -> ApiResult<RunStats> {
    let since = window_start(now);
    let runs = state.store.recent_runs(since, MAX_RUNS_READ)?;
    let active = state.store.active_runs()?.len();
    let mut stats = stats_of(&runs, now);
    stats.active_runs = active;
    stats.truncated = runs.len() == MAX_RUNS_READ;
    Ok(stats)
}

fn window_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let minute = now.duration_trunc(Duration::minutes(1)).unwrap_or(now);
    minute - Duration::minutes(WINDOW_MINUTES - 1)
}

/// The stats of `runs` (newest first) at `now`.
pub fn stats_of(runs: &[Run], now: DateTime<Utc>) -> RunStats {
    let since = window_start(now);
    let mut minutes: Vec<MinuteCounts> = (0..WINDOW_MINUTES)
        .map(|i| MinuteCounts {
            minute: since + Duration::minutes(i),
            ..MinuteCounts::default()
        })
        .collect();
    for run in runs {
        let Some(finished) = run.finished_at.filter(|f| *f >= since) else {
            continue;
        };
        let slot = (finished - since).num_minutes();
        let Some(counts) = usize::try_from(slot).ok().and_then(|i| minutes.get_mut(i)) else {
            continue;
        };
        match run.status {
            RunStatus::Succeeded => counts.succeeded += 1,
            RunStatus::Failed | RunStatus::TimedOut => counts.failed += 1,
            RunStatus::Killed | RunStatus::Skipped => counts.other += 1,
            RunStatus::Pending | RunStatus::Dispatched | RunStatus::Running => {}
        }
    }

    let mut late: Vec<i64> = runs
        .iter()
        .filter(|r| r.trigger == TriggerKind::Schedule)
        .filter_map(|r| r.started_at.map(|s| (s, r.scheduled_at)))
        .filter(|(started, _)| *started >= now - LATENESS_WINDOW)
        .map(|(started, scheduled)| (started - scheduled).num_milliseconds().max(0))
        .collect();
    late.sort_unstable();
    let at = |q: f64| {
        let last = late.len().checked_sub(1)?;
        late.get(((last as f64) * q).round() as usize).copied()
    };
    let lateness = Lateness {
        samples: late.len(),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: late.last().copied(),
    };

    // The newest ended run of each job decides whether it is failing.
    let mut seen = HashSet::new();
    let failing_jobs = runs
        .iter()
        .filter(|r| r.status.is_terminal() && r.status != RunStatus::Skipped)
        .filter(|r| seen.insert((r.namespace.as_str(), r.job_id.as_str())))
        .filter(|r| matches!(r.status, RunStatus::Failed | RunStatus::TimedOut))
        .map(|r| RunSummaryOfJob {
            namespace: r.namespace.clone(),
            job_id: r.job_id.clone(),
            run: RunSummary::from(r),
        })
        .collect();

    RunStats {
        since,
        minutes,
        lateness,
        active_runs: 0,
        failing_jobs,
        truncated: false,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use protocol::run::ShardInfo;

    use super::*;

    fn ended(job: &str, status: RunStatus, scheduled: DateTime<Utc>, late_ms: i64) -> Run {
        let started = scheduled + Duration::milliseconds(late_ms);
        Run {
            id: format!("{job}-{}", scheduled.timestamp()),
            job_id: job.into(),
            namespace: "default".into(),
            scheduled_at: scheduled,
            trigger: TriggerKind::Schedule,
            shard: ShardInfo {
                index: 0,
                count: 1,
                param: String::new(),
            },
            attempt: 1,
            status,
            executor: None,
            created_at: scheduled,
            started_at: Some(started),
            finished_at: Some(started + Duration::seconds(1)),
            exit_code: None,
            output: String::new(),
            error: None,
            params: String::new(),
            retry_of: None,
            pending_reason: None,
            parent_run_ids: Vec::new(),
            parent_scheduled_at: None,
            parent_job_id: None,
            alerts: Vec::new(),
        }
    }

    #[test]
    fn counts_runs_by_the_minute_they_ended_and_names_failing_jobs() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 30, 20).unwrap();
        let t = |m: u32, s: u32| Utc.with_ymd_and_hms(2026, 11, 22, 12, m, s).unwrap();
        // Newest first, as the store answers.
        let runs = vec![
            ended("flaky", RunStatus::Failed, t(30, 0), 40),
            ended("steady", RunStatus::Succeeded, t(29, 0), 10),
            ended("flaky", RunStatus::Succeeded, t(29, 0), 20),
            ended("recovered", RunStatus::Succeeded, t(28, 0), 30),
            ended("recovered", RunStatus::TimedOut, t(27, 0), 0),
        ];
        let stats = stats_of(&runs, now);

        assert_eq!(stats.minutes.len(), WINDOW_MINUTES as usize);
        let last = stats.minutes.last().unwrap();
        assert_eq!(last.minute, t(30, 0));
        assert_eq!((last.succeeded, last.failed), (0, 1));
        let at_29 = &stats.minutes[stats.minutes.len() - 2];
        assert_eq!((at_29.succeeded, at_29.failed), (2, 0));
        let at_27 = &stats.minutes[stats.minutes.len() - 4];
        assert_eq!((at_27.succeeded, at_27.failed), (0, 1));

        let failing: Vec<&str> = stats
            .failing_jobs
            .iter()
            .map(|j| j.job_id.as_str())
            .collect();
        assert_eq!(failing, ["flaky"]);

        assert_eq!(stats.lateness.samples, 5);
        assert_eq!(stats.lateness.p50_ms, Some(20));
        assert_eq!(stats.lateness.max_ms, Some(40));
    }

    #[test]
    fn runs_older_than_the_window_are_not_counted() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 30, 0).unwrap();
        let old = ended("old", RunStatus::Succeeded, now - Duration::hours(2), 0);
        let stats = stats_of(&[old], now);
        assert!(stats.minutes.iter().all(|m| m.succeeded == 0));
        assert_eq!(stats.lateness.samples, 0);
        assert_eq!(stats.lateness.p50_ms, None);
    }
}
