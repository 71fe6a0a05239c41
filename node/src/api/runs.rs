//! `/v1/runs` and `/v1/jobs/{id}/runs`: history, one run, kill, output.
//! Pages of runs are read and encoded off the request workers (a page is
//! up to a thousand runs with their output); [`live`] asks an executor
//! for a running run's output, reading no more than the output limit.

mod live;

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use actors::{
    messages::{KillError, KillRun},
    store::RunFilter,
};
use chrono::{DateTime, Utc};
use protocol::{api::Page, validate::check_name, JobKey, Run, RunStatus, Target};
use serde::Deserialize;

use super::{
    error::{ApiError, ApiResult},
    input::{page_limit, query},
    offload, AppState,
};

/// The query as text: each number and time is parsed by [`run_filter`],
/// so one out of range (`limit=99999999999999999999999`) gets a 400
/// naming its field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunsQuery {
    job: Option<String>,
    namespace: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `value` parsed, or a 400 naming `field` with `expected`.
fn parsed<T: std::str::FromStr>(
    field: &str,
    value: Option<String>,
    expected: &str,
) -> ApiResult<Option<T>> {
    value
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| ApiError::invalid(field, expected))
        })
        .transpose()
}

const A_TIME: &str = "must be an RFC 3339 time, such as 2026-01-31T12:00:00Z";

/// The filter, cursor and page size of a query, each checked: a 400
/// names the field that is out of range.
fn run_filter(q: RunsQuery, job: Option<String>) -> ApiResult<(RunFilter, Option<u64>, usize)> {
    let namespace = q
        .namespace
        .unwrap_or_else(|| protocol::job::DEFAULT_NAMESPACE.to_string());
    check_name("namespace", &namespace)?;
    let job = job.or(q.job);
    if let Some(id) = &job {
        check_name("job", id)?;
    }
    let job = job.map(|id| JobKey::new(namespace, id));
    let since: Option<DateTime<Utc>> = parsed("since", q.since, A_TIME)?;
    let until: Option<DateTime<Utc>> = parsed("until", q.until, A_TIME)?;
    if let (Some(since), Some(until)) = (since, until) {
        if until < since {
            return Err(ApiError::invalid("until", "must not be before since"));
        }
    }
    let status = q
        .status
        .map(|s| {
            s.parse::<RunStatus>()
                .map_err(|e| ApiError::invalid("status", e))
        })
        .transpose()?;
    let before = parsed("cursor", q.cursor, "not a cursor from this API")?;
    let limit = parsed("limit", q.limit, "must be a whole number from 1 to 1000")?;
    let filter = RunFilter {
        job,
        status,
        since,
        until,
    };
    Ok((filter, before, page_limit(limit)?))
}

/// A page of runs, read and encoded off the request workers.
async fn list_runs(
    state: web::Data<AppState>,
    q: RunsQuery,
    job: Option<String>,
) -> ApiResult<HttpResponse> {
    let (filter, before, limit) = run_filter(q, job)?;
    offload::json(move || {
        let (items, next) = state.store.runs(&filter, before, limit)?;
        Ok(Page {
            items,
            next_cursor: next.map(|n| n.to_string()),
        })
    })
    .await
}

pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    list_runs(state, query(&req)?, None).await
}

pub async fn of_job(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let q: RunsQuery = query(&req)?;
    let namespace = q
        .namespace
        .clone()
        .unwrap_or_else(|| protocol::job::DEFAULT_NAMESPACE.to_string());
    check_name("namespace", &namespace)?;
    check_name("id", &id)?;
    if state
        .store
        .job(&JobKey::new(namespace, id.as_str()))?
        .is_none()
    {
        return Err(ApiError::not_found(format!("job {id} does not exist")));
    }
    list_runs(state, q, Some(id.into_inner())).await
}

fn find(state: &AppState, id: &str) -> ApiResult<Run> {
    state
        .store
        .run(id)?
        .ok_or_else(|| ApiError::not_found(format!("run {id} does not exist")))
}

pub async fn get(state: web::Data<AppState>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(find(&state, &id)?))
}

pub async fn kill(state: web::Data<AppState>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let run = find(&state, &id)?;
    if run.status.is_terminal() {
        return Err(ApiError::conflict(format!(
            "run {id} has already ended ({})",
            run.status
        )));
    }
    match state.dispatcher.send(KillRun(id.to_string())).await? {
        Ok(()) => {}
        Err(KillError::NotActive) => {
            return Err(ApiError::conflict(format!(
                "run {id} is not active on this scheduler"
            )))
        }
        Err(e @ KillError::NotLeader) => return Err(ApiError::unavailable(e.to_string())),
    }
    // The kill is recorded through the log; answer with the run once it is.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let run = find(&state, &id)?;
        if run.status.is_terminal() || tokio::time::Instant::now() >= deadline {
            return Ok(HttpResponse::Accepted().json(run));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The run's output: live from its executor while it runs, else stored.
pub async fn output(state: web::Data<AppState>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let run = find(&state, &id)?;
    let live = match (&run.executor, run.status) {
        (Some(endpoint), RunStatus::Dispatched | RunStatus::Running)
            if !is_http_target(&state, &run) =>
        {
            live::output(&state.http, state.signer.as_deref(), endpoint, &run.id).await
        }
        _ => None,
    };
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(live.unwrap_or(run.output)))
}

fn is_http_target(state: &AppState, run: &Run) -> bool {
    matches!(
        state.store.job(&JobKey::new(run.namespace.clone(), run.job_id.clone())),
        Ok(Some(job)) if matches!(job.target, Target::Http { .. })
    )
}
