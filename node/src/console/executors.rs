//! `/executors`: every executor this node knows, live and recently dead, and
//! gossip members announcing themselves as executors without the cluster's
//! signature (marked "unverified": they get no runs).

use actix_web::web;
use maud::html;

use super::{
    format,
    layout::{render, Frame, PageResult, Section},
};
use crate::api::AppState;

pub async fn page(state: web::Data<AppState>) -> PageResult {
    let now = state.clock.now();
    let mut executors =
        crate::discovery::executor_list(&state.router, state.membership.as_ref()).await?;
    executors.sort_by(|a, b| {
        (&a.group, !a.verified, !a.alive, &a.id).cmp(&(&b.group, !b.verified, !b.alive, &b.id))
    });
    let body = html! {
        h1 { "Executors" }
        @if executors.is_empty() {
            p.empty { "No executor has joined. Start one with "
                code { "cronmesh executor --group default --seeds GOSSIP_ADDR" } "." }
        } @else {
            div.scroll { table #executors {
                thead { tr {
                    th { "Executor" } th { "Group" } th { "State" } th { "Running" }
                    th { "Weight" } th { "Handlers" } th { "Labels" } th { "Last seen" }
                } }
                tbody { @for e in &executors {
                    tr data-endpoint=(e.endpoint) {
                        td.mono { (e.id) @if e.id != e.endpoint { br; span.small { (e.endpoint) } } }
                        td { (e.group) }
                        td {
                            @if e.alive { span.badge.status-alive { "alive" } } @else { span.badge.status-dead { "dead" } }
                            @if !e.verified {
                                " " span.badge.status-failed title="Its gossip announcement is not signed with the cluster secret: it gets no runs" { "unverified" }
                            }
                        }
                        td { (e.running) @if e.max_concurrent > 0 { " of " (e.max_concurrent) } }
                        td { (e.weight) }
                        td { @if e.handlers.is_empty() { "—" } @else { (e.handlers.join(", ")) } }
                        td.small { @for (k, v) in &e.labels { span.label { (k) "=" (v) } " " } }
                        td { @match e.last_seen {
                            Some(t) => (format::when(now, Some(t))),
                            None => { "now" },
                        } }
                    }
                } }
            } }
        }
    };
    Ok(render(
        &state,
        Frame {
            title: "Executors",
            section: Some(Section::Executors),
            live: true,
        },
        body,
    ))
}
