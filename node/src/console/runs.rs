//! `/runs`: the run history of every job, newest first, filtered by job
//! and status, a page at a time: where to look for what failed overnight.

use actix_web::{web, HttpRequest};
use actors::store::RunFilter;
use maud::html;
use protocol::{JobKey, RunStatus};
use serde::Deserialize;

use super::{
    dashboard::runs_table,
    format,
    layout::{query_or_default, render, Frame, PageResult, Section},
};
use crate::api::{offload, ApiError, AppState};

const PAGE_SIZE: usize = 50;
const STATUSES: [&str; 8] = [
    "pending",
    "dispatched",
    "running",
    "succeeded",
    "failed",
    "timed_out",
    "killed",
    "skipped",
];

#[derive(Deserialize, Default)]
struct RunsQuery {
    #[serde(default)]
    job: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    status: String,
    /// Cursor from the previous page.
    before: Option<u64>,
}

impl RunsQuery {
    /// This page's filters, from the newest run or from `before`.
    fn link(&self, before: Option<u64>) -> String {
        let cursor = before.map(|c| c.to_string()).unwrap_or_default();
        let pairs = [
            ("job", self.job.as_str()),
            ("namespace", &self.namespace),
            ("status", &self.status),
            ("before", &cursor),
        ];
        format::link("/runs", &pairs)
    }
}

pub async fn page(state: web::Data<AppState>, req: HttpRequest) -> PageResult {
    let q = query_or_default::<RunsQuery>(&req);
    let status = match q.status.as_str() {
        "" => None,
        s => Some(
            s.parse::<RunStatus>()
                .map_err(|e| ApiError::invalid("status", e))?,
        ),
    };
    let namespace = match q.namespace.trim() {
        "" => protocol::job::DEFAULT_NAMESPACE,
        ns => ns,
    };
    let filter = RunFilter {
        job: (!q.job.trim().is_empty()).then(|| JobKey::new(namespace, q.job.trim())),
        status,
        ..RunFilter::default()
    };
    let store = state.store.clone();
    let before = q.before;
    // Off the request workers: a filter that matches little reads far.
    let (runs, next) = offload::run(move || Ok(store.runs(&filter, before, PAGE_SIZE)?)).await?;
    let now = state.clock.now();
    let body = html! {
        h1 { "Runs" }
        form.filters method="get" action="/runs" {
            input type="text" name="job" value=(q.job) placeholder="job id" aria-label="job";
            input type="text" name="namespace" value=(q.namespace) placeholder="namespace" aria-label="namespace";
            select name="status" aria-label="status" {
                option value="" selected[q.status.is_empty()] { "any status" }
                @for s in STATUSES { option value=(s) selected[q.status == s] { (s) } }
            }
            button type="submit" { "Filter" }
        }
        section.panel #runs {
            (runs_table(&runs, now, true))
            p.pager {
                @if q.before.is_some() { a href=(q.link(None)) { "← Latest" } " " }
                @if let Some(cursor) = next { a href=(q.link(Some(cursor))) { "Older →" } }
            }
        }
    };
    Ok(render(
        &state,
        Frame {
            title: "Runs",
            section: Some(Section::Runs),
            live: q.before.is_none(),
        },
        body,
    ))
}
