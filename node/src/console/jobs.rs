//! `/jobs`: every job with its next fire and last result, searchable and
//! filtered by namespace, label and state, a page at a time.

use actix_web::{web, HttpRequest};
use actors::store::JobFilter;
use maud::html;
use protocol::{api::JobView, Job, JobKey, RunStatus};
use serde::Deserialize;

use super::{
    format::{self, job_path, run_path},
    layout::{query_or_default, render, Frame, PageResult, Section},
};
use crate::api::{jobs::view, offload, ApiError, AppState};

const PAGE_SIZE: usize = 50;
/// Jobs read from the store per step while filtering in memory.
const SCAN_STEP: usize = 500;

#[derive(Deserialize, Default, Clone)]
struct ListQuery {
    /// Part of the id or description.
    #[serde(default)]
    q: String,
    #[serde(default)]
    namespace: String,
    /// `key=value`.
    #[serde(default)]
    label: String,
    /// `enabled`, `paused` or `failing`; anything else shows all.
    #[serde(default)]
    state: String,
    /// `namespace/id` of the last job of the previous page.
    after: Option<String>,
}

impl ListQuery {
    /// Whether the search text is in the job's id or description.
    fn matches_text(&self, job: &Job) -> bool {
        let q = self.q.trim().to_lowercase();
        q.is_empty()
            || job.id.to_lowercase().contains(&q)
            || job.description.to_lowercase().contains(&q)
    }

    fn link_after(&self, after: &JobKey) -> String {
        let pairs = [
            ("q", self.q.as_str()),
            ("namespace", &self.namespace),
            ("label", &self.label),
            ("state", &self.state),
            ("after", &format!("{}/{}", after.namespace, after.id)),
        ];
        format::link("/jobs", &pairs)
    }
}

/// Whether the job's latest run failed or timed out.
fn is_failing(state: &AppState, key: &JobKey) -> Result<bool, ApiError> {
    Ok(state
        .store
        .last_run(key)?
        .is_some_and(|r| matches!(r.status, RunStatus::Failed | RunStatus::TimedOut)))
}

/// The page's jobs after `after`, and whether more follow.
fn scan(
    state: &AppState,
    q: &ListQuery,
    filter: &JobFilter,
    mut after: Option<JobKey>,
) -> Result<(Vec<JobView>, bool), ApiError> {
    let mut shown: Vec<JobView> = Vec::new();
    loop {
        let (jobs, next) = state.store.jobs(filter, after.as_ref(), SCAN_STEP)?;
        for job in jobs {
            let key = job.key();
            // Cheap checks first: a job's view computes its next fire times.
            let wanted = q.matches_text(&job) && (q.state != "failing" || is_failing(state, &key)?);
            if wanted {
                if shown.len() == PAGE_SIZE {
                    return Ok((shown, true));
                }
                shown.push(view(state, job)?);
            }
            after = Some(key);
        }
        if next.is_none() {
            return Ok((shown, false));
        }
    }
}

pub async fn page(state: web::Data<AppState>, req: HttpRequest) -> PageResult {
    let q = query_or_default::<ListQuery>(&req);
    let labels = match q.label.split_once('=') {
        Some((k, v)) => vec![(k.trim().to_string(), v.trim().to_string())],
        None if q.label.trim().is_empty() => Vec::new(),
        None => return Err(ApiError::invalid("label", "write the label as key=value").into()),
    };
    let filter = JobFilter {
        namespace: (!q.namespace.trim().is_empty()).then(|| q.namespace.trim().to_string()),
        labels,
        enabled: match q.state.as_str() {
            "enabled" => Some(true),
            "paused" => Some(false),
            _ => None,
        },
    };
    let after = q.after.as_deref().and_then(|a| {
        a.split_once('/')
            .map(|(ns, id)| JobKey::new(ns.to_string(), id.to_string()))
    });
    // Off the request workers: a text filter that matches little scans
    // every job, and each view computes next fire times.
    let (shown, more) = {
        let (state, q) = (state.clone(), q.clone());
        offload::run(move || scan(&state, &q, &filter, after)).await?
    };
    let now = state.clock.now();
    let next_link = shown
        .last()
        .filter(|_| more)
        .map(|v| q.link_after(&v.job.key()));

    let body = html! {
        div.title-row {
            h1 { "Jobs" }
            a.button.primary href="/jobs/new" { "New job" }
        }
        form.filters method="get" action="/jobs" {
            input type="search" name="q" value=(q.q) placeholder="Search id or description" aria-label="search";
            input type="text" name="namespace" value=(q.namespace) placeholder="namespace" aria-label="namespace";
            input type="text" name="label" value=(q.label) placeholder="label key=value" aria-label="label";
            select name="state" aria-label="state" {
                @for (value, label) in [("", "any state"), ("enabled", "enabled"), ("paused", "paused"), ("failing", "failing")] {
                    option value=(value) selected[q.state == value] { (label) }
                }
            }
            button type="submit" { "Filter" }
        }
        @if shown.is_empty() {
            p.empty { "No job matches." @if q.q.is_empty() && q.state.is_empty() { " " a href="/jobs/new" { "Create one" } "." } }
        } @else {
            div.scroll { table #jobs {
                thead { tr {
                    th { "Job" } th { "Schedule" } th { "Next fire" } th { "Last run" } th { "State" } th { "Actions" }
                } }
                tbody { @for v in &shown {
                    @let job = &v.job;
                    tr data-job=(job.id) {
                        td {
                            a href=(job_path(&job.namespace, &job.id)) { (job.id) }
                            @if job.namespace != protocol::job::DEFAULT_NAMESPACE { span.ns { (job.namespace) } }
                            @if !job.description.is_empty() { div.small.muted { (job.description) } }
                        }
                        td { code { (job.schedule) } @if job.timezone != "UTC" { span.small.muted { " " (job.timezone) } } }
                        td { (format::when(now, v.next_fire_times.first().copied())) }
                        td { @match &v.last_run {
                            Some(r) => { a href=(run_path(&r.id)) { (format::status(r.status)) } " " (format::when(now, r.finished_at.or(Some(r.scheduled_at)))) },
                            None => { span.muted { "never ran" } },
                        } }
                        td { (format::enabled(job.enabled)) }
                        td.actions {
                            button type="button" data-action=(format!("/v1/jobs/{}/trigger?namespace={}", format::segment(&job.id), format::segment(&job.namespace))) data-done="Triggered" { "Trigger" }
                        }
                    }
                } }
            } }
            @if let Some(link) = &next_link {
                p.pager { a href=(link) { "Next page →" } }
            }
        }
    };
    Ok(render(
        &state,
        Frame {
            title: "Jobs",
            section: Some(Section::Jobs),
            live: true,
        },
        body,
    ))
}
