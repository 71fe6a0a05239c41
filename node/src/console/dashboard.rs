//! `/`: the cluster at a glance: who leads, how many nodes and executors
//! are up, runs per minute over the last hour, lateness, failing jobs and
//! the latest runs.

use actix_web::web;
use actors::store::RunFilter;
use maud::{html, Markup, PreEscaped};
use protocol::Run;

use super::{
    chart,
    format::{self, job_path, run_path},
    layout::{render, Frame, PageResult, Section},
};
use crate::api::{offload, stats, AppState};

const RECENT_RUNS: usize = 15;

/// Under the lateness figures: how many runs they cover, or, while the
/// cluster cannot create runs as fast as slots come, how far behind the
/// leader's trigger runs (`cronmesh_trigger_behind_seconds`).
fn lateness_note(samples: usize, behind: std::time::Duration) -> String {
    if behind >= std::time::Duration::from_secs(1) {
        format!(
            "running {:.1} s behind: slots wait for the log and start late, in order",
            behind.as_secs_f64()
        )
    } else {
        format!("{samples} runs started in the last 5 min")
    }
}

pub async fn page(state: web::Data<AppState>) -> PageResult {
    let now = state.clock.now();
    let cluster = state.cluster_status().await;
    let executors =
        crate::discovery::executor_list(&state.router, state.membership.as_ref()).await?;
    // Off the request workers: an hour of runs may be many.
    let stats = stats::current(state.clone()).await?;
    let store = state.store.clone();
    let (recent, _) =
        offload::run(move || Ok(store.runs(&RunFilter::default(), None, RECENT_RUNS)?)).await?;
    let alive = executors.iter().filter(|e| e.alive).count();
    let last_hour: (u64, u64) = stats
        .minutes
        .iter()
        .fold((0, 0), |(ok, bad), m| (ok + m.succeeded, bad + m.failed));
    let chart = chart::runs_per_minute(&stats.minutes);
    let ms = |v: Option<i64>| v.map_or_else(|| "—".to_string(), |v| format!("{v} ms"));

    let storage = cluster.storage.clone();
    let body = html! {
        h1 { "Dashboard" }
        @if let Some(why) = storage.as_ref().and_then(|s| s.reason.clone()) {
            p.error-message #storage-warning { "This node's storage: " (why) }
        }
        section.cards {
            (card("Leader", html! {
                @match cluster.leader_id { Some(id) => { "node " (id) }, None => { "electing…" } }
            }, &format!("term {}", cluster.term)))
            (card("Scheduler nodes", html! { (cluster.members.len()) }, "in the Raft group"))
            (card("Executors", html! { (alive) " live" }, &format!("{} known", executors.len())))
            (card("Active runs", html! { (stats.active_runs) }, "pending, dispatched or running"))
            (card("Lateness p50 / p99", html! { (ms(stats.lateness.p50_ms)) " / " (ms(stats.lateness.p99_ms)) },
                &lateness_note(stats.lateness.samples, state.backlog.behind(now))))
            @if let Some(storage) = &storage {
                (card("Data disk", html! {
                    @match storage.free_bytes {
                        Some(free) => { (format::bytes(free)) " free" },
                        None => { "—" },
                    }
                }, &format!("this node: {}", storage.state.as_str().replace('_', " "))))
            }
            (card("Last hour", html! {
                span.ok { (last_hour.0) } " / " span.bad { (last_hour.1) }
            }, "succeeded / failed"))
        }
        section.panel {
            h2 { "Runs per minute" span.legend {
                span.key.ok { "succeeded" } span.key.bad { "failed" } span.key.other { "killed / skipped" }
            } }
            @match &chart {
                Ok(svg) => div.chart-box { (PreEscaped(svg)) },
                Err(why) => p.error-message { "The chart could not be drawn: " (why) },
            }
        }
        div.columns {
            section.panel #failing-jobs {
                h2 { "Failing jobs" }
                @if stats.failing_jobs.is_empty() {
                    p.empty { "No job's latest run failed in the last hour." }
                } @else {
                    div.scroll { table {
                        thead { tr { th { "Job" } th { "Last run" } th { "Ended" } } }
                        tbody { @for job in &stats.failing_jobs {
                            tr {
                                td { a href=(job_path(&job.namespace, &job.job_id)) { (job.job_id) }
                                     @if job.namespace != protocol::job::DEFAULT_NAMESPACE { span.ns { (job.namespace) } } }
                                td { a href=(run_path(&job.run.id)) { (format::status(job.run.status)) } }
                                td { (format::when(now, job.run.finished_at)) }
                            }
                        } }
                    } }
                }
            }
            section.panel #recent-runs {
                h2 { "Latest runs" }
                (runs_table(&recent, now, true))
            }
        }
    };
    Ok(render(
        &state,
        Frame {
            title: "Dashboard",
            section: Some(Section::Dashboard),
            live: true,
        },
        body,
    ))
}

fn card(title: &str, value: Markup, note: &str) -> Markup {
    html! {
        div.card {
            div.card-title { (title) }
            div.card-value { (value) }
            div.card-note { (note) }
        }
    }
}

/// Runs as a table; `with_job` adds the job column (not needed on a job's page).
pub fn runs_table(runs: &[Run], now: chrono::DateTime<chrono::Utc>, with_job: bool) -> Markup {
    html! {
        @if runs.is_empty() {
            p.empty { "No runs yet." }
        } @else {
            div.scroll { table.runs {
                thead { tr {
                    th { "Run" }
                    @if with_job { th { "Job" } }
                    th { "Status" } th { "Scheduled" } th { "Trigger" } th { "Duration" } th { "Executor" }
                } }
                tbody { @for run in runs {
                    tr data-run=(run.id) {
                        td { a.mono href=(run_path(&run.id)) { (run.id.get(..10).unwrap_or(&run.id)) } }
                        @if with_job { td { a href=(job_path(&run.namespace, &run.job_id)) { (run.job_id) } } }
                        td title=[run.pending_reason.as_deref()] {
                            (format::status(run.status)) @if run.attempt > 1 { span.attempt { " #" (run.attempt) } }
                            @if run.pending_reason.is_some() { span.small.muted.waiting { " waiting for room" } }
                        }
                        td { (format::when(now, Some(run.scheduled_at))) }
                        td { (run.trigger.to_string()) }
                        td { (format::duration(run.started_at, run.finished_at, now)) }
                        td.mono.small { (run.executor.as_deref().unwrap_or("—")) }
                    }
                } }
            } }
        }
    }
}
