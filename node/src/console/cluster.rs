//! `/cluster`: the Raft group as this node sees it.

use actix_web::web;
use maud::html;

use super::layout::{render, Frame, PageResult, Section};
use crate::api::AppState;

pub async fn page(state: web::Data<AppState>) -> PageResult {
    let status = state.cluster_status().await;
    let body = html! {
        h1 { "Cluster" }
        section.cards {
            div.card { div.card-title { "This node" } div.card-value { (status.node_id) } }
            div.card { div.card-title { "Leader" } div.card-value #leader {
                @match status.leader_id { Some(id) => { (id) }, None => { "none" } } } }
            div.card { div.card-title { "Term" } div.card-value #term { (status.term) } }
            div.card { div.card-title { "Commit index" } div.card-value { (status.commit_index) } }
            div.card { div.card-title { "Applied index" } div.card-value { (status.applied_index) } }
            div.card { div.card-title { "Log starts at" } div.card-value { (status.log_start_index) } }
        }
        section.panel {
            h2 { "Members" }
            div.scroll { table #members {
                thead { tr { th { "Node" } th { "Role" } th { "Admin API" } th { "Raft address" } th { "Replicated to" } } }
                tbody { @for m in &status.members {
                    tr {
                        td { (m.node_id) }
                        td { span class={ "badge role-" (m.role) } { (m.role) } }
                        td { @match &m.api_url { Some(url) => a href=(url) { (url) }, None => { "—" } } }
                        td.mono { (m.raft_addr.as_deref().unwrap_or("—")) }
                        td { @match m.matched_index { Some(i) => { (i) }, None => { "—" } } }
                    }
                } }
            } }
        }
    };
    Ok(render(
        &state,
        Frame {
            title: "Cluster",
            section: Some(Section::Cluster),
            live: true,
        },
        body,
    ))
}
