//! `/jobs/{namespace}/{id}`: a job's definition, next fires, success rate,
//! a chart of its latest runs' durations and its run history a page at a
//! time, with its actions.

use actix_web::{web, HttpRequest};
use actors::store::RunFilter;
use maud::{html, Markup, PreEscaped};
use protocol::{selector::Shown, JobKey, Run, RunStatus, Target};
use serde::Deserialize;

use super::{
    chart,
    dashboard::runs_table,
    format::{self, job_path, plain, segment},
    layout::{query_or_default, render, Frame, PageResult, Section},
};
use crate::api::{
    jobs::{stored_job, view},
    offload, AppState,
};

const RUNS_PER_PAGE: usize = 20;
/// The success rate is taken over this many of the latest runs.
const RATE_WINDOW: usize = 100;

#[derive(Deserialize, Default)]
struct HistoryQuery {
    /// Cursor of the run page (from the previous page).
    before: Option<u64>,
}

pub async fn page(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> PageResult {
    let (namespace, id) = path.into_inner();
    let key = JobKey::new(namespace, id);
    let q = query_or_default::<HistoryQuery>(&req);
    let job = stored_job(&state, &key)?;
    let v = view(&state, job)?;
    let job = &v.job;
    // Checked now, against the executors the Router would choose among:
    // a job nothing can take has its next fire fail, which is worth saying
    // before it does.
    let placement = crate::discovery::placement(&state.router, job).await?;
    let filter = RunFilter {
        job: Some(key.clone()),
        ..RunFilter::default()
    };
    let store = state.store.clone();
    let before = q.before;
    let parents_of = key.clone();
    let ((runs, next), (latest, _), parents) = offload::run(move || {
        Ok((
            store.runs(&filter, before, RUNS_PER_PAGE)?,
            store.runs(&filter, None, RATE_WINDOW)?,
            store.parents(&parents_of)?,
        ))
    })
    .await?;
    let now = state.clock.now();
    let api_path = format!("/v1/jobs/{}", segment(&job.id));
    let ns_query = format!("?namespace={}", segment(&job.namespace));
    let json = serde_json::to_string_pretty(job).unwrap_or_default();
    let oldest_first: Vec<Run> = latest.iter().rev().cloned().collect();
    let durations = chart::run_durations(&oldest_first, now);

    let body = html! {
        div.title-row {
            h1 { (job.id) @if job.namespace != protocol::job::DEFAULT_NAMESPACE { span.ns { (job.namespace) } } " " (format::enabled(job.enabled)) }
            div.actions #job-actions {
                button.primary type="button" data-action=(format!("{api_path}/trigger{ns_query}")) data-done="Triggered" { "Trigger now" }
                @if job.enabled {
                    button type="button" data-action=(format!("{api_path}/pause{ns_query}")) data-done="Paused" { "Pause" }
                } @else {
                    button type="button" data-action=(format!("{api_path}/resume{ns_query}")) data-done="Resumed" { "Resume" }
                }
                a.button href=(format!("{}/edit", job_path(&job.namespace, &job.id))) { "Edit" }
                button.danger type="button" data-action=(format!("{api_path}{ns_query}")) data-method="DELETE"
                    data-confirm=(format!("Delete job {}? Its run history goes with it.", job.id)) data-then="/jobs" { "Delete" }
            }
        }
        @if !job.description.is_empty() { p.muted { (job.description) } }
        @if let Some(problem) = &placement.problem {
            p.error-message #placement-warning {
                strong { "No executor can take this job's runs: " } (problem) ". "
                @if job.enabled && !v.next_fire_times.is_empty() { "Its next fire will fail unless one that matches joins." }
                @else { "A run started now would fail." }
            }
        }
        section.cards {
            div.card { div.card-title { "Schedule" } div.card-value { code { (job.schedule) } } div.card-note { (job.timezone) } }
            div.card { div.card-title { "Next fire" } div.card-value { (format::when(now, v.next_fire_times.first().copied())) } div.card-note { @if !job.enabled { "paused" } } }
            div.card { div.card-title { "Success rate" } div.card-value #success-rate { (success_rate(&latest)) } div.card-note { "of the last " (RATE_WINDOW) " runs that ended" } }
            div.card { div.card-title { "Target" } div.card-value.small { (target(&job.target)) } }
        }
        section.panel #durations {
            h2 { "Duration of the latest runs" span.legend {
                span.key.ok { "succeeded" } span.key.bad { "failed" } span.key.other { "other" }
            } }
            @match &durations {
                _ if !oldest_first.iter().any(|r| r.started_at.is_some()) => p.empty { "No run has started yet." },
                Ok(svg) => div.chart-box { (PreEscaped(svg)) },
                Err(why) => p.error-message { "The chart could not be drawn: " (why) },
            }
        }
        div.columns {
            section.panel {
                h2 { "Definition" }
                dl.definition {
                    dt { "Routing" } dd { (plain(&job.routing)) }
                    dt { "Shards" } dd { (job.shards) }
                    dt { "Timeout" } dd { (job.timeout) }
                    dt { "Retries" } dd { (job.retry.max_retries) " (backoff " (job.retry.backoff) ", at most " (job.retry.max_backoff) ")" }
                    dt { "Concurrency" } dd { (plain(&job.concurrency)) }
                    dt { "Misfire" } dd { (plain(&job.misfire.policy)) " after " (job.misfire.threshold) }
                    dt { "Failover" } dd { (if job.failover { "yes" } else { "no" }) }
                    @if job.group().is_some() {
                        dt { "Selector" } dd #selector { @if job.selector.is_empty() { "— (any executor of the group)" } @else { code { (Shown(&job.selector)) } } }
                        dt { "Executors" } dd #placement { (placement.executors.len()) " live executor" (if placement.executors.len() == 1 { "" } else { "s" }) " can take its runs" }
                    }
                    dt { "Labels" } dd { @if job.labels.is_empty() { "—" } @for (k, val) in &job.labels { span.label { (k) "=" (val) } " " } }
                }
                details { summary { "JSON" } pre.json { (json) } }
            }
            section.panel #links {
                h2 { "Children and parents" }
                dl.definition {
                    dt { "Children" } dd #children {
                        @if job.children.is_empty() { "—" }
                        @for link in &job.children {
                            a href=(job_path(&job.namespace, &link.job)) { (link.job) }
                            " on " (plain(&link.on))
                            @if link.params == protocol::job::ChildParams::Parent { " with the parent's params" }
                            br;
                        }
                    }
                    dt { "Parents" } dd #parents {
                        @if parents.is_empty() { "—" }
                        @for parent in &parents {
                            a href=(job_path(&parent.namespace, &parent.id)) { (parent.id) } br;
                        }
                    }
                }
            }
            section.panel {
                h2 { "Next fire times" }
                @if v.next_fire_times.is_empty() {
                    p.empty { @if job.enabled { "This schedule does not fire again." } @else { "Paused." } }
                } @else {
                    ol.fire-times { @for t in &v.next_fire_times { li { (format::timestamp(Some(*t))) " · " (format::relative(now, *t)) } } }
                }
            }
        }
        section.panel #history {
            h2 { "Runs" }
            (runs_table(&runs, now, false))
            p.pager {
                @if q.before.is_some() { a href=(job_path(&job.namespace, &job.id)) { "← Latest" } " " }
                @if let Some(cursor) = next { a href=(format!("{}?before={cursor}", job_path(&job.namespace, &job.id))) { "Older →" } }
            }
        }
    };
    Ok(render(
        &state,
        Frame {
            title: &job.id,
            section: Some(Section::Jobs),
            live: true,
        },
        body,
    ))
}

/// `87% (26 of 30)` over runs that ended, skipped ones left out.
fn success_rate(runs: &[Run]) -> String {
    let ended: Vec<&Run> = runs
        .iter()
        .filter(|r| r.status.is_terminal() && r.status != RunStatus::Skipped)
        .collect();
    if ended.is_empty() {
        return "—".into();
    }
    let ok = ended
        .iter()
        .filter(|r| r.status == RunStatus::Succeeded)
        .count();
    format!("{}% ({ok} of {})", ok * 100 / ended.len(), ended.len())
}

fn target(target: &Target) -> Markup {
    match target {
        Target::Shell { group, command } => {
            html! { "shell on " b { (group) } ": " code { (command) } }
        }
        Target::Executor { group, handler } => {
            html! { "handler " code { (handler) } " on " b { (group) } }
        }
        Target::Http { url, method, .. } => html! { (method) " " code { (url) } },
    }
}
