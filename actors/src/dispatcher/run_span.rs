//! The `run` span: every line the scheduler logs about one run carries the
//! run's id, job and attempt, the same fields the executor's lines carry,
//! so one filter on `run_id` follows a run across both sides.

use protocol::{Run, RunStatus};

/// The span of `run`'s lines.
pub fn run_span(run: &Run) -> tracing::Span {
    tracing::info_span!("run", run_id = %run.id, job = %run.job_id, attempt = run.attempt)
}

/// The span of a run known only by its id.
pub fn run_id_span(run_id: &str) -> tracing::Span {
    tracing::info_span!("run", run_id = %run_id)
}

/// Logs that `run` was created; at debug level, since every slot has one.
pub fn log_created(run: &Run) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        run_span(run).in_scope(|| {
            tracing::debug!(
                scheduled_at = %run.scheduled_at,
                executor = run.executor.as_deref().unwrap_or(""),
                trigger = ?run.trigger,
                "run created"
            )
        });
    }
}

/// Logs how `run` ended. Successes are routine (every run is recorded), so
/// they log at debug; anything else is worth a line at the default level.
pub fn log_ended(run: &Run) {
    if run.status == RunStatus::Succeeded {
        if tracing::enabled!(tracing::Level::DEBUG) {
            run_span(run).in_scope(|| tracing::debug!(status = %run.status, "run ended"));
        }
        return;
    }
    run_span(run).in_scope(|| {
        tracing::info!(
            status = %run.status,
            executor = run.executor.as_deref().unwrap_or(""),
            error = run.error.as_deref().unwrap_or(""),
            "run ended"
        )
    });
}
