//! `cronmesh job ...`

use protocol::api::TriggerRequest;
use reqwest::Method;
use serde_json::Value;

use super::{json_out, note, to_body, value, Ctx};
use crate::client::{
    args::{JobCommand, JobFileArgs, JobIdArgs, JobListArgs},
    error::CliError,
    jobfile,
    render::{jobs_table, key_values, runs_table, JOB_ORDER},
};

const NOT_FOUND_HINT: &str =
    "check the id and the namespace (--namespace, `default` unless given); `cronmesh job list -A` lists all jobs";
const EXISTS_HINT: &str =
    "a job with this id exists in the namespace: replace it with `cronmesh job update ID -f FILE`";

pub(super) async fn execute(ctx: &Ctx, cmd: JobCommand) -> Result<Vec<u8>, CliError> {
    let names_a_job = !matches!(cmd, JobCommand::Create(_) | JobCommand::List(_));
    let result = dispatch(ctx, cmd).await;
    if names_a_job {
        result.map_err(|e| e.hint_on(404, NOT_FOUND_HINT))
    } else {
        result
    }
}

async fn dispatch(ctx: &Ctx, cmd: JobCommand) -> Result<Vec<u8>, CliError> {
    match cmd {
        JobCommand::Create(file) => create(ctx, file).await,
        JobCommand::List(args) => list(ctx, args).await,
        JobCommand::Get(job) => get(ctx, job).await,
        JobCommand::Update { id, file } => update(ctx, id, file).await,
        JobCommand::Delete { job, force } => {
            let mut url = job_url(ctx, &job, None);
            if force {
                url.query_pairs_mut().append_pair("force", "true");
            }
            let body = ctx.api.send(Method::DELETE, url, None).await?;
            done(ctx, &body, format!("deleted job {}", name(&job)))
        }
        JobCommand::Trigger { job, params, wait } => trigger(ctx, job, params, wait).await,
        JobCommand::Pause(job) => {
            let body = ctx
                .api
                .send(Method::POST, job_url(ctx, &job, Some("pause")), None)
                .await?;
            done(ctx, &body, format!("paused job {}", name(&job)))
        }
        JobCommand::Resume(job) => {
            let body = ctx
                .api
                .send(Method::POST, job_url(ctx, &job, Some("resume")), None)
                .await?;
            done(ctx, &body, format!("resumed job {}", name(&job)))
        }
    }
}

/// One job, or many: a JSON array of jobs, or a TOML file of `[[jobs]]`
/// tables. Many are created all or none in one request.
async fn create(ctx: &Ctx, file: JobFileArgs) -> Result<Vec<u8>, CliError> {
    let mut job = jobfile::read(&file.file)?;
    if let Some(mut jobs) = many_jobs(&mut job) {
        for job in &mut jobs {
            apply_namespace(job, file.namespace.as_deref())?;
        }
        let count = jobs.len();
        let url = ctx.api.url(&["v1", "jobs"], &[]);
        let body = ctx
            .api
            .send(Method::POST, url, Some(to_body(&Value::Array(jobs))?))
            .await
            .map_err(|e| e.hint_on(409, EXISTS_HINT))?;
        return done(ctx, &body, format!("created {count} jobs"));
    }
    apply_namespace(&mut job, file.namespace.as_deref())?;
    let url = ctx.api.url(&["v1", "jobs"], &[]);
    let body = ctx
        .api
        .send(Method::POST, url.clone(), Some(to_body(&job)?))
        .await
        .map_err(|e| e.hint_on(409, EXISTS_HINT))?;
    show_job(ctx, &url, &body, "created the job")
}

async fn update(ctx: &Ctx, id: String, file: JobFileArgs) -> Result<Vec<u8>, CliError> {
    let mut job = jobfile::read(&file.file)?;
    let namespace = apply_namespace(&mut job, file.namespace.as_deref())?;
    let url = ctx
        .api
        .url(&["v1", "jobs", &id], &[("namespace", namespace.clone())]);
    let body = ctx
        .api
        .send(Method::PUT, url.clone(), Some(to_body(&job)?))
        .await?;
    show_job(ctx, &url, &body, &format!("updated job {namespace}/{id}"))
}

async fn get(ctx: &Ctx, job: JobIdArgs) -> Result<Vec<u8>, CliError> {
    let url = job_url(ctx, &job, None);
    let body = ctx.api.get(url.clone()).await?;
    show_job(ctx, &url, &body, &format!("job {}", name(&job)))
}

async fn list(ctx: &Ctx, args: JobListArgs) -> Result<Vec<u8>, CliError> {
    let mut query = Vec::new();
    if !args.all_namespaces {
        query.push(("namespace", args.ns.namespace.clone()));
    }
    if let Some(label) = &args.label {
        query.push(("label", label.clone()));
    }
    if let Some(enabled) = args.enabled {
        query.push(("enabled", enabled.to_string()));
    }
    let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
    let listing = ctx.api.list(&["v1", "jobs"], &query, Some(limit)).await?;
    if ctx.json() {
        return Ok(json_out(listing.to_json().as_bytes()));
    }
    let jobs = listing.values().map_err(|message| CliError::BadResponse {
        url: ctx.api.url(&["v1", "jobs"], &query).to_string(),
        message,
    })?;
    if jobs.is_empty() {
        note(&if args.all_namespaces {
            "no jobs match".to_string()
        } else {
            format!("no jobs in namespace {:?} match", args.ns.namespace)
        });
        return Ok(Vec::new());
    }
    if listing.more {
        note(&format!(
            "showing the first {} jobs; pass a larger --limit for more",
            jobs.len()
        ));
    }
    Ok(jobs_table(&jobs).into_bytes())
}

async fn trigger(
    ctx: &Ctx,
    job: JobIdArgs,
    params: Option<String>,
    wait: bool,
) -> Result<Vec<u8>, CliError> {
    let url = job_url(ctx, &job, Some("trigger"));
    let request = to_body(&TriggerRequest { params })?;
    let body = ctx
        .api
        .send(Method::POST, url.clone(), Some(request))
        .await?;
    let answer = value(&url, &body)?;
    // `{"runs": [...]}`; a bare run is accepted too.
    let runs: Vec<Value> = match answer.get("runs").and_then(Value::as_array) {
        Some(runs) => runs.clone(),
        None if answer.get("id").is_some() => vec![answer],
        None => Vec::new(),
    };
    if wait {
        let ids: Vec<String> = runs
            .iter()
            .filter_map(|r| r.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        if !ctx.json() {
            note(&format!(
                "triggered job {}; waiting for {} run(s) to end",
                name(&job),
                ids.len()
            ));
        }
        super::wait::wait_for_runs(ctx, &ids).await?;
        return Ok(Vec::new());
    }
    if ctx.json() {
        return Ok(json_out(&body));
    }
    let count = match runs.len() {
        1 => "1 run".to_string(),
        n => format!("{n} runs"),
    };
    let mut out = format!("triggered job {}: {count}\n", name(&job));
    if !runs.is_empty() {
        out.push('\n');
        out.push_str(&runs_table(&runs));
    }
    Ok(out.into_bytes())
}

/// Makes `--namespace` and the file's `namespace` agree; returns the
/// namespace the job lives in.
fn apply_namespace(job: &mut Value, flag: Option<&str>) -> Result<String, CliError> {
    let Some(object) = job.as_object_mut() else {
        return Err(CliError::usage("a job file must hold one object"));
    };
    match (flag, object.get("namespace")) {
        (None, Some(Value::String(ns))) => Ok(ns.clone()),
        (None, _) => Ok("default".to_string()),
        (Some(flag), None) => {
            object.insert("namespace".into(), Value::String(flag.to_string()));
            Ok(flag.to_string())
        }
        (Some(flag), Some(Value::String(ns))) if ns == flag => Ok(flag.to_string()),
        (Some(flag), Some(other)) => Err(CliError::usage(format!(
            "the job file says namespace {other} but --namespace says {flag:?}; \
             make them agree or drop one"
        ))),
    }
}

fn job_url(ctx: &Ctx, job: &JobIdArgs, action: Option<&str>) -> url::Url {
    let mut segments = vec!["v1", "jobs", job.id.as_str()];
    segments.extend(action);
    ctx.api
        .url(&segments, &[("namespace", job.ns.namespace.clone())])
}

fn name(job: &JobIdArgs) -> String {
    format!("{}/{}", job.ns.namespace, job.id)
}

/// The job the server answered with, or `fallback` when it sent no body.
fn show_job(
    ctx: &Ctx,
    url: &url::Url,
    body: &bytes::Bytes,
    fallback: &str,
) -> Result<Vec<u8>, CliError> {
    if ctx.json() {
        return Ok(json_out(body));
    }
    match value(url, body)? {
        Value::Null => Ok(format!("{fallback}\n").into_bytes()),
        job => Ok(key_values(&job, JOB_ORDER).into_bytes()),
    }
}

/// A confirmation line, or the server's JSON.
/// The jobs of a file that holds many: a top-level array, or an object
/// whose only key is `jobs` with an array (TOML's `[[jobs]]`).
fn many_jobs(file: &mut Value) -> Option<Vec<Value>> {
    match file {
        Value::Array(items) => Some(std::mem::take(items)),
        Value::Object(map) if map.len() == 1 => match map.get_mut("jobs") {
            Some(Value::Array(items)) => Some(std::mem::take(items)),
            _ => None,
        },
        _ => None,
    }
}

fn done(ctx: &Ctx, body: &[u8], message: String) -> Result<Vec<u8>, CliError> {
    if ctx.json() {
        return Ok(json_out(body));
    }
    Ok(format!("{message}\n").into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn namespace_flag_and_file_agree() {
        let mut job = json!({"id": "a"});
        assert_eq!(
            apply_namespace(&mut job, None).ok().as_deref(),
            Some("default")
        );
        assert_eq!(job, json!({"id": "a"}), "left for the server to default");

        assert_eq!(
            apply_namespace(&mut job, Some("ops")).ok().as_deref(),
            Some("ops")
        );
        assert_eq!(job, json!({"id": "a", "namespace": "ops"}));

        assert_eq!(apply_namespace(&mut job, None).ok().as_deref(), Some("ops"));
        assert_eq!(
            apply_namespace(&mut job, Some("ops")).ok().as_deref(),
            Some("ops")
        );
        let err = apply_namespace(&mut job, Some("prod")).expect_err("conflict");
        assert_eq!(err.exit_code(), 2);
    }
}
