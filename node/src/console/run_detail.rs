//! `/runs/{id}`: one run: its status timeline, where it ran, its output
//! (followed while the run is live), each attempt to deliver its alert,
//! and a kill button while it is active.

use actix_web::web;
use maud::html;

use super::{
    format::{self, job_path, run_path, segment},
    layout::{render, Frame, PageResult, Section},
};
use crate::api::{ApiError, AppState};

pub async fn page(state: web::Data<AppState>, id: web::Path<String>) -> PageResult {
    let run = state
        .store
        .run(&id)?
        .ok_or_else(|| ApiError::not_found(format!("run {id} does not exist")))?;
    let now = state.clock.now();
    let active = run.is_active();
    let api = format!("/v1/runs/{}", segment(&run.id));
    let timeline = [
        ("Created", Some(run.created_at)),
        ("Scheduled for", Some(run.scheduled_at)),
        ("Started", run.started_at),
        ("Finished", run.finished_at),
    ];

    let body = html! {
        div.title-row {
            h1 { "Run " span.mono { (run.id) } }
            div.actions {
                @if active {
                    button.danger #kill type="button" data-action=(format!("{api}/kill"))
                        data-confirm="Kill this run? Its process is stopped." data-done="Kill requested" { "Kill" }
                }
                a.button href=(job_path(&run.namespace, &run.job_id)) { "Job " (run.job_id) }
            }
        }
        section.cards {
            div.card { div.card-title { "Status" } div.card-value #run-status data-run=(run.id) data-status=(run.status.to_string()) { (format::status(run.status)) } }
            div.card { div.card-title { "Trigger" } div.card-value { (run.trigger.to_string()) } div.card-note { "attempt " (run.attempt) } }
            div.card { div.card-title { "Duration" } div.card-value { (format::duration(run.started_at, run.finished_at, now)) } }
            div.card { div.card-title { "Exit code" } div.card-value { @match run.exit_code { Some(c) => { (c) }, None => { "—" } } } }
        }
        div.columns {
            section.panel {
                h2 { "Timeline" }
                ol.timeline {
                    @for (label, at) in timeline {
                        li class=[at.is_none().then_some("pending")] {
                            span.step { (label) }
                            span.at { (format::timestamp(at)) }
                            @if let Some(t) = at { span.muted.small { " · " (format::relative(now, t)) } }
                        }
                    }
                }
                @if let Some(error) = &run.error { p.error-message #run-error { (error) } }
                @if let Some(reason) = &run.pending_reason { p.muted #pending-reason { (reason) } }
            }
            section.panel {
                h2 { "Where" }
                dl.definition {
                    dt { "Job" } dd { a href=(job_path(&run.namespace, &run.job_id)) { (run.namespace) "/" (run.job_id) } }
                    dt { "Executor" } dd.mono { (run.executor.as_deref().unwrap_or("—")) }
                    dt { "Shard" } dd { (run.shard.index + 1) " of " (run.shard.count) @if !run.shard.param.is_empty() { " · " code { (run.shard.param) } } }
                    dt { "Parameters" } dd { @if run.params.is_empty() { "—" } @else { code { (run.params) } } }
                    @if let Some(previous) = &run.retry_of {
                        dt { "Retry of" } dd { a.mono href=(run_path(previous)) { (previous) } }
                    }
                    @if let Some(parent) = &run.parent_job_id {
                        dt { "Parent job" } dd { a href=(job_path(&run.namespace, parent)) { (parent) } }
                    }
                    @if let Some(slot) = run.parent_scheduled_at {
                        dt { "Parent slot" } dd { (format::timestamp(Some(slot))) }
                    }
                    @if !run.parent_run_ids.is_empty() {
                        dt { "Parent runs" } dd #parent-runs {
                            @for id in &run.parent_run_ids { a.mono href=(run_path(id)) { (id) } br; }
                        }
                    }
                }
            }
        }
        @if !run.alerts.is_empty() {
            section.panel #alerts {
                h2 { "Alerts" }
                table {
                    thead { tr { th { "Channel" } th { "Target" } th { "Attempt" } th { "At" } th { "Outcome" } } }
                    tbody {
                        @for delivery in &run.alerts {
                            tr.alert-delivery {
                                td { (delivery.channel.as_str()) }
                                td.mono { (delivery.target) }
                                td { (delivery.attempt) }
                                td { (format::timestamp(Some(delivery.at))) }
                                td {
                                    @if delivery.ok { "delivered" }
                                    @else { span.error-message { "failed: " (delivery.error.as_deref().unwrap_or("")) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.panel {
            h2 { "Output" @if active { span.small.muted #following { " following…" } } }
            pre #output data-follow=[active.then(|| format!("{api}/output"))] { (run.output) }
        }
    };
    Ok(render(
        &state,
        Frame {
            title: &format!("Run {}", run.id),
            section: Some(Section::Runs),
            // The run's own script follows it; a full refresh would reset
            // the output's scroll position.
            live: false,
        },
        body,
    ))
}
