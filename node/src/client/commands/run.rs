//! `cronmesh run ...`

use reqwest::Method;
use serde_json::Value;

use super::{json_out, note, value, Ctx};
use crate::client::{
    args::{RunCommand, RunListArgs},
    error::CliError,
    render::{key_values, runs_table, RUN_ORDER},
};

const NOT_FOUND_HINT: &str = "check the run id: `cronmesh run list --job JOB_ID` shows them";

pub(super) async fn execute(ctx: &Ctx, cmd: RunCommand) -> Result<Vec<u8>, CliError> {
    match cmd {
        RunCommand::List(args) => list(ctx, args).await,
        RunCommand::Get { id } => {
            let url = ctx.api.url(&["v1", "runs", &id], &[]);
            let body = ctx.api.get(url.clone()).await.map_err(not_found)?;
            if ctx.json() {
                return Ok(json_out(&body));
            }
            let mut run = value(&url, &body)?;
            crate::client::render::alert_lines(&mut run);
            Ok(key_values(&run, RUN_ORDER).into_bytes())
        }
        RunCommand::Kill { id } => {
            let url = ctx.api.url(&["v1", "runs", &id, "kill"], &[]);
            let body = ctx
                .api
                .send(Method::POST, url.clone(), None)
                .await
                .map_err(not_found)?;
            if ctx.json() {
                return Ok(json_out(&body));
            }
            let status = value(&url, &body)
                .ok()
                .and_then(|v| v.get("status").and_then(Value::as_str).map(str::to_string));
            Ok(match status {
                Some(status) => format!("kill requested for run {id} (status: {status})\n"),
                None => format!("kill requested for run {id}\n"),
            }
            .into_bytes())
        }
        RunCommand::Output { id, follow: true } => {
            super::wait::follow_output(ctx, &id)
                .await
                .map_err(not_found)?;
            Ok(Vec::new())
        }
        RunCommand::Output { id, follow: false } => {
            let url = ctx.api.url(&["v1", "runs", &id, "output"], &[]);
            Ok(ctx.api.get(url).await.map_err(not_found)?.to_vec())
        }
    }
}

async fn list(ctx: &Ctx, args: RunListArgs) -> Result<Vec<u8>, CliError> {
    let mut query = Vec::new();
    if let Some(job) = &args.job {
        query.push(("job", job.clone()));
    }
    if let Some(namespace) = &args.namespace {
        query.push(("namespace", namespace.clone()));
    }
    if let Some(status) = args.status {
        query.push(("status", status.as_str().to_string()));
    }
    let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
    let listing = ctx.api.list(&["v1", "runs"], &query, Some(limit)).await?;
    if ctx.json() {
        return Ok(json_out(listing.to_json().as_bytes()));
    }
    let runs = listing.values().map_err(|message| CliError::BadResponse {
        url: ctx.api.url(&["v1", "runs"], &query).to_string(),
        message,
    })?;
    if runs.is_empty() {
        note("no runs match");
        return Ok(Vec::new());
    }
    if listing.more {
        note(&format!(
            "showing the first {} runs; pass a larger --limit for more",
            runs.len()
        ));
    }
    Ok(runs_table(&runs).into_bytes())
}

fn not_found(err: CliError) -> CliError {
    err.hint_on(404, NOT_FOUND_HINT)
}
