//! Where a request's heavy work runs: off the API server's request workers
//! (two of them), on blocking threads, a few at a time.
//!
//! A request worker serves every connection it holds on one thread, so a
//! handler that computes for a second delays `/healthz`, `/readyz` and the
//! executors' reports queued behind it. Schedule previews, pages of jobs
//! and runs (with their JSON), the dashboard's stats and backups therefore
//! run here. At most [`slots`] of them run at once, so a flood of them
//! cannot take every core either; the rest wait for a slot, and after
//! [`WAIT_FOR_SLOT`] get 503 with a retry hint instead of waiting on.

use std::{sync::LazyLock, time::Duration};

use actix_web::web;
use tokio::sync::Semaphore;

use crate::api::error::{ApiError, ApiResult};

/// How long a request waits for a free slot before it is told to retry.
pub const WAIT_FOR_SLOT: Duration = Duration::from_secs(10);

/// Heavy work running at once: one per core, at least two (so a slow
/// backup does not hold up every list).
pub fn slots() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2)
        .max(2)
}

static SLOTS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(slots()));

/// Runs `work` on a blocking thread once a slot is free. The slot is held
/// until `work` returns, even if the client has gone: the thread cannot be
/// stopped, so it counts until it ends.
pub async fn run<T, F>(work: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> ApiResult<T> + Send + 'static,
{
    let permit = tokio::time::timeout(WAIT_FOR_SLOT, SLOTS.acquire())
        .await
        .map_err(|_| ApiError::unavailable("the node is busy with other heavy requests; retry"))?
        .map_err(|_| ApiError::internal("the pool for heavy requests is closed"))?;
    web::block(move || {
        let _held = permit;
        work()
    })
    .await
    .map_err(|e| ApiError::internal(format!("the request's work stopped: {e}")))?
}

/// [`run`] for work whose answer is JSON: the value is serialized on the
/// blocking thread too (a page of a thousand runs is megabytes of it).
pub async fn json<T, F>(work: F) -> ApiResult<actix_web::HttpResponse>
where
    T: serde::Serialize,
    F: FnOnce() -> ApiResult<T> + Send + 'static,
{
    let body = run(move || {
        let value = work()?;
        serde_json::to_vec(&value)
            .map_err(|e| ApiError::internal(format!("the answer could not be encoded: {e}")))
    })
    .await?;
    Ok(actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn work_runs_off_the_calling_thread_and_its_errors_come_back() {
        let caller = std::thread::current().id();
        let ran_on = run(|| Ok(std::thread::current().id())).await.unwrap();
        assert_ne!(ran_on, caller);
        let refused: ApiResult<()> = run(|| Err(ApiError::invalid("count", "too many"))).await;
        assert_eq!(refused.unwrap_err().field.as_deref(), Some("count"));
    }

    #[actix_web::test]
    async fn a_panic_in_the_work_is_a_500_not_a_crash() {
        let answer: ApiResult<()> = run(|| panic!("a bug")).await;
        assert_eq!(answer.unwrap_err().status.as_u16(), 500);
    }
}
