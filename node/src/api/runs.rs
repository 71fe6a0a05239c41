//! `/v1/runs` and `/v1/jobs/{id}/runs`: history, one run, kill, output.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use actors::{
    messages::{KillError, KillRun},
    store::RunFilter,
};
use chrono::{DateTime, Utc};
use protocol::{api::Page, JobKey, Run, RunStatus, Target};
use serde::Deserialize;

use super::{
    error::{ApiError, ApiResult},
    input::{page_limit, query},
    AppState,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunsQuery {
    job: Option<String>,
    namespace: Option<String>,
    status: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    limit: Option<usize>,
    cursor: Option<String>,
}

fn list_runs(state: &AppState, q: RunsQuery, job: Option<String>) -> ApiResult<HttpResponse> {
    let namespace = q
        .namespace
        .unwrap_or_else(|| protocol::job::DEFAULT_NAMESPACE.to_string());
    let job = job.or(q.job).map(|id| JobKey::new(namespace, id));
    let status = q
        .status
        .map(|s| {
            s.parse::<RunStatus>()
                .map_err(|e| ApiError::invalid("status", e))
        })
        .transpose()?;
    let before = q
        .cursor
        .map(|c| {
            c.parse::<u64>()
                .map_err(|_| ApiError::invalid("cursor", "not a cursor from this API"))
        })
        .transpose()?;
    let filter = RunFilter {
        job,
        status,
        since: q.since,
        until: q.until,
    };
    let (items, next) = state.store.runs(&filter, before, page_limit(q.limit)?)?;
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: next.map(|n| n.to_string()),
    }))
}

pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    list_runs(&state, query(&req)?, None)
}

pub async fn of_job(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let q: RunsQuery = query(&req)?;
    if state
        .store
        .job(&JobKey::new(
            q.namespace.clone().unwrap_or_else(|| "default".into()),
            id.as_str(),
        ))?
        .is_none()
    {
        return Err(ApiError::not_found(format!("job {id} does not exist")));
    }
    list_runs(&state, q, Some(id.into_inner()))
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
            live_output(&state, endpoint, &run.id).await
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

async fn live_output(state: &AppState, endpoint: &str, run_id: &str) -> Option<String> {
    let url = format!("{}/v1/runs/{run_id}/output", endpoint.trim_end_matches('/'));
    let response = state
        .http
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.text().await.ok()
}
