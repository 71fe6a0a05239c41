//! `/v1/jobs`: create, list, read, replace, delete, trigger, pause, resume.

use std::time::Duration;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use actors::{
    fire::Fire,
    job_store::Propose,
    messages::Fires,
    store::{
        links::{BadLink, LinkProblem},
        JobFilter, Outcome, Rejection,
    },
};
use protocol::{
    api::{JobView, Page, RunSummary, TriggerRequest, TriggerResponse},
    schedule::{parse_timezone, Schedule},
    validate::{check_name, validate_job},
    Job, JobKey, MetaCommand, PutMode, TriggerKind,
};
use serde::Deserialize;

use super::{
    error::{ApiError, ApiResult},
    input::{
        empty_body, json_array_body, json_body, page_limit, query, read_body, read_body_up_to,
        MAX_BODY,
    },
    AppState,
};

/// How long a manual trigger waits for its runs to be committed.
const TRIGGER_WAIT: Duration = Duration::from_secs(10);

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NamespaceQuery {
    namespace: Option<String>,
}

fn job_key(req: &HttpRequest, id: String) -> ApiResult<JobKey> {
    let q: NamespaceQuery = query(req)?;
    let namespace = q
        .namespace
        .unwrap_or_else(|| protocol::job::DEFAULT_NAMESPACE.to_string());
    check_name("namespace", &namespace)?;
    check_name("id", &id)?;
    Ok(JobKey::new(namespace, id))
}

pub(crate) fn view(state: &AppState, job: Job) -> ApiResult<JobView> {
    let now = state.clock.now();
    let next_fire_times = match (
        Schedule::parse(&job.schedule),
        parse_timezone(&job.timezone),
    ) {
        (Ok(schedule), Ok(tz)) if job.enabled => schedule.upcoming(now, tz, 5),
        _ => Vec::new(),
    };
    let last_run = state
        .store
        .last_run(&job.key())?
        .as_ref()
        .map(RunSummary::from);
    Ok(JobView {
        job,
        next_fire_times,
        last_run,
    })
}

async fn propose(state: &AppState, cmd: MetaCommand) -> ApiResult<Outcome> {
    Ok(state.job_store.send(Propose(cmd)).await??)
}

fn rejection(r: Rejection) -> ApiError {
    match r {
        Rejection::JobExists(key) => {
            ApiError::conflict(format!("job {key} exists already; use PUT to replace it"))
        }
        Rejection::JobNotFound(key) => ApiError::not_found(format!("job {key} does not exist")),
        Rejection::BadChildLink(bad) => bad_link(&bad, ""),
        Rejection::JobIsChild { key, parents } => {
            let names: Vec<&str> = parents.iter().map(|p| p.id.as_str()).collect();
            ApiError::conflict(format!(
                "job {key} is a child of {}; delete with ?force=true to unlink it",
                names.join(", ")
            ))
        }
    }
}

/// A refused child link, naming `{prefix}children[i].job`.
fn bad_link(bad: &BadLink, prefix: &str) -> ApiError {
    let field = format!("{prefix}children[{}].job", bad.index);
    let message = match &bad.problem {
        LinkProblem::Missing => format!("job {}/{} does not exist", bad.job.namespace, bad.child),
        LinkProblem::Cycle(path) => format!(
            "the link closes a cycle: {} -> {}",
            bad.job.id,
            path.join(" -> ")
        ),
        LinkProblem::TooLarge => format!(
            "more than {} jobs are reachable through children from this link",
            actors::store::links::MAX_LINK_WALK
        ),
    };
    ApiError::invalid(field, message)
}

fn job_outcome(state: &AppState, outcome: Outcome) -> ApiResult<JobView> {
    match outcome {
        Outcome::JobPut { job, .. } => view(state, *job),
        Outcome::Rejected(r) => Err(rejection(r)),
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
}

/// Most jobs one `POST /v1/jobs` array may create.
const MAX_JOBS_PER_REQUEST: usize = 10_000;
/// Largest body of `POST /v1/jobs`: an array of many jobs is large. No
/// route takes a larger one.
pub(crate) const MAX_CREATE_BODY: usize = 32 * 1024 * 1024;

/// `POST /v1/jobs`: one job (an object), or many (an array), all or none.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let body = read_body_up_to(payload, MAX_CREATE_BODY).await?;
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return create_many(&state, &req, &body).await;
    }
    if body.len() > MAX_BODY {
        return Err(ApiError {
            field: Some("body".into()),
            ..ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("a job is at most {MAX_BODY} bytes"),
            )
        });
    }
    let job: Job = json_body(&req, &body, false)?;
    validate_job(&job)?;
    if state.store.job(&job.key())?.is_some() {
        return Err(rejection(Rejection::JobExists(job.key())));
    }
    let outcome = propose(
        &state,
        MetaCommand::PutJob {
            job: Box::new(job),
            mode: PutMode::Create,
            at: state.clock.now(),
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(job_outcome(&state, outcome)?))
}

/// An array of jobs: every one is checked before any is proposed, and the
/// log stores all of them or none (one log entry). Errors name the item:
/// `[3].schedule`.
async fn create_many(state: &AppState, req: &HttpRequest, body: &[u8]) -> ApiResult<HttpResponse> {
    let jobs: Vec<Job> = json_array_body(req, body)?;
    if jobs.is_empty() {
        return Err(ApiError::invalid("", "an empty array creates no job"));
    }
    if jobs.len() > MAX_JOBS_PER_REQUEST {
        return Err(ApiError::invalid(
            "",
            format!("at most {MAX_JOBS_PER_REQUEST} jobs per request"),
        ));
    }
    let mut keys: Vec<JobKey> = Vec::with_capacity(jobs.len());
    let mut seen = std::collections::HashSet::new();
    for (i, job) in jobs.iter().enumerate() {
        validate_job(job).map_err(|e| {
            let field = if e.field.is_empty() {
                format!("[{i}]")
            } else {
                format!("[{i}].{}", e.field)
            };
            ApiError::invalid(field, e.message)
        })?;
        keys.push(job.key());
        if !seen.insert(job.key()) {
            return Err(ApiError::invalid(
                format!("[{i}].id"),
                format!("job {} appears twice in the array", job.key()),
            ));
        }
        if state.store.job(&job.key())?.is_some() {
            return Err(rejection(Rejection::JobExists(job.key())));
        }
    }
    let outcome = propose(
        state,
        MetaCommand::CreateJobs {
            jobs,
            at: state.clock.now(),
        },
    )
    .await?;
    match outcome {
        Outcome::JobsCreated(jobs) => {
            let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
            Ok(HttpResponse::Created().json(serde_json::json!({"created": ids.len(), "ids": ids})))
        }
        Outcome::Rejected(Rejection::BadChildLink(bad)) => {
            let position = keys.iter().position(|k| *k == bad.job).unwrap_or_default();
            Err(bad_link(&bad, &format!("[{position}].")))
        }
        Outcome::Rejected(r) => Err(rejection(r)),
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    namespace: Option<String>,
    label: Option<String>,
    enabled: Option<bool>,
    limit: Option<usize>,
    cursor: Option<String>,
}

pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    let q: ListQuery = query(&req)?;
    let labels = match &q.label {
        Some(label) => {
            let (k, v) = label
                .split_once('=')
                .ok_or_else(|| ApiError::invalid("label", "write it as key=value"))?;
            vec![(k.to_string(), v.to_string())]
        }
        None => Vec::new(),
    };
    let after = match &q.cursor {
        Some(cursor) => {
            let not_ours = || ApiError::invalid("cursor", "not a cursor from this API");
            let (ns, id) = cursor.split_once('/').ok_or_else(not_ours)?;
            check_name("cursor", ns)
                .and(check_name("cursor", id))
                .map_err(|_| not_ours())?;
            Some(JobKey::new(ns, id))
        }
        None => None,
    };
    if let Some(namespace) = &q.namespace {
        check_name("namespace", namespace)?;
    }
    let filter = JobFilter {
        namespace: q.namespace,
        labels,
        enabled: q.enabled,
    };
    let limit = page_limit(q.limit)?;
    // A page is up to a thousand jobs, each with its next fire times to
    // find: off the request workers (see `offload`).
    super::offload::json(move || {
        let (jobs, next) = state.store.jobs(&filter, after.as_ref(), limit)?;
        let items = jobs
            .into_iter()
            .map(|job| view(&state, job))
            .collect::<ApiResult<Vec<_>>>()?;
        Ok(Page {
            items,
            next_cursor: next.map(|k| format!("{}/{}", k.namespace, k.id)),
        })
    })
    .await
}

/// The stored job `key`, or 404 saying it does not exist.
pub(crate) fn stored_job(state: &AppState, key: &JobKey) -> ApiResult<Job> {
    state
        .store
        .job(key)?
        .ok_or_else(|| ApiError::not_found(format!("job {key} does not exist")))
}

pub async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let key = job_key(&req, id.into_inner())?;
    let job = stored_job(&state, &key)?;
    Ok(HttpResponse::Ok().json(view(&state, job)?))
}

/// `GET /v1/jobs/{id}/placement`.
pub async fn placement(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let key = job_key(&req, id.into_inner())?;
    let job = stored_job(&state, &key)?;
    let placement = crate::discovery::placement(&state.router, &job).await?;
    Ok(HttpResponse::Ok().json(placement))
}

pub async fn replace(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let key = job_key(&req, id.into_inner())?;
    let body = read_body(payload).await?;
    let mut value: serde_json::Value = json_body(&req, &body, false)?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| ApiError::invalid("", "the body must be a JSON object"))?;
    for (field, expected) in [("id", &key.id), ("namespace", &key.namespace)] {
        match object.get(field) {
            None => {
                object.insert(field.into(), expected.clone().into());
            }
            Some(given) if given.as_str() == Some(expected.as_str()) => {}
            Some(_) => {
                return Err(ApiError::invalid(
                    field,
                    format!("does not match the URL ({expected}); a job cannot be renamed"),
                ))
            }
        }
    }
    let job: Job = protocol::validate::from_json(value.to_string().as_bytes())?;
    validate_job(&job)?;
    let outcome = propose(
        &state,
        MetaCommand::PutJob {
            job: Box::new(job),
            mode: PutMode::Replace,
            at: state.clock.now(),
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(job_outcome(&state, outcome)?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    namespace: Option<String>,
    /// Remove the links of the jobs that name this one as a child.
    force: Option<bool>,
}

pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let q: DeleteQuery = query(&req)?;
    let namespace = q
        .namespace
        .unwrap_or_else(|| protocol::job::DEFAULT_NAMESPACE.to_string());
    check_name("namespace", &namespace)?;
    let id = id.into_inner();
    check_name("id", &id)?;
    let key = JobKey::new(namespace, id);
    let force = q.force.unwrap_or(false);
    match propose(
        &state,
        MetaCommand::DeleteJob {
            key: key.clone(),
            force,
        },
    )
    .await?
    {
        Outcome::JobDeleted { existed: true, .. } => Ok(HttpResponse::NoContent().finish()),
        Outcome::Rejected(r) => Err(rejection(r)),
        _ => Err(ApiError::not_found(format!("job {key} does not exist"))),
    }
}

async fn set_enabled(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: String,
    payload: web::Payload,
    enabled: bool,
) -> ApiResult<HttpResponse> {
    let key = job_key(&req, id)?;
    empty_body(&req, &read_body(payload).await?)?;
    let outcome = propose(
        &state,
        MetaCommand::SetJobEnabled {
            key,
            enabled,
            at: state.clock.now(),
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(job_outcome(&state, outcome)?))
}

pub async fn pause(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    set_enabled(state, req, id.into_inner(), payload, false).await
}

pub async fn resume(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    set_enabled(state, req, id.into_inner(), payload, true).await
}

pub async fn trigger(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let key = job_key(&req, id.into_inner())?;
    let body = read_body(payload).await?;
    let request: TriggerRequest = json_body(&req, &body, true)?;
    if let Some(params) = &request.params {
        if params.len() > protocol::validate::MAX_PARAMS_LEN {
            return Err(ApiError::invalid("params", "at most 64 KiB"));
        }
    }
    if state.store.job(&key)?.is_none() {
        return Err(ApiError::not_found(format!("job {key} does not exist")));
    }
    state.room_for_new_work()?;
    let (reply, runs) = tokio::sync::oneshot::channel();
    let fire = Fire {
        params: request.params,
        ..Fire::new(key, state.clock.now(), TriggerKind::Manual)
    };
    state
        .router
        .send(Fires {
            fires: vec![fire],
            reply: Some(reply),
            ticket: None,
        })
        .await?;
    let runs = tokio::time::timeout(TRIGGER_WAIT, runs)
        .await
        .map_err(|_| ApiError::unavailable("the runs were not committed in time; retry"))?
        .map_err(|_| ApiError::unavailable("the scheduler dropped the trigger; retry"))?
        .map_err(ApiError::unavailable)?;
    Ok(HttpResponse::Accepted().json(TriggerResponse { runs }))
}
