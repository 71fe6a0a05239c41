//! `cronmesh cluster ...` and `cronmesh executors`.

use reqwest::Method;
use serde_json::json;

use super::{json_out, note, to_body, value, Ctx};
use crate::client::{
    args::ClusterCommand,
    error::CliError,
    render::{cluster_view, executors_table},
};

pub(super) async fn execute(ctx: &Ctx, cmd: ClusterCommand) -> Result<Vec<u8>, CliError> {
    match cmd {
        ClusterCommand::Status => {
            let url = ctx.api.url(&["v1", "cluster"], &[]);
            let body = ctx.api.get(url.clone()).await?;
            if ctx.json() {
                return Ok(json_out(&body));
            }
            Ok(cluster_view(&value(&url, &body)?).into_bytes())
        }
        ClusterCommand::Add {
            node_id,
            raft_addr,
            http_url,
        } => {
            let url = ctx.api.url(&["v1", "cluster", "members"], &[]);
            let request = json!({"node_id": node_id, "raft_addr": raft_addr, "api_url": http_url});
            let body = ctx
                .api
                .send(Method::POST, url.clone(), Some(to_body(&request)?))
                .await?;
            if ctx.json() {
                return Ok(json_out(&body));
            }
            let mut out = format!("added node {node_id} (raft {raft_addr}, api {http_url})\n");
            // Show the new membership when the server answers with it.
            if let Ok(status) = value(&url, &body) {
                if status.get("members").is_some() {
                    out.push('\n');
                    out.push_str(&cluster_view(&status));
                }
            }
            Ok(out.into_bytes())
        }
        ClusterCommand::Remove { node_id } => {
            let id = node_id.to_string();
            let url = ctx.api.url(&["v1", "cluster", "members", &id], &[]);
            let body = ctx
                .api
                .send(Method::DELETE, url, None)
                .await
                .map_err(|e| e.hint_on(404, "`cronmesh cluster status` lists the members"))?;
            if ctx.json() {
                return Ok(json_out(&body));
            }
            Ok(format!("removed node {node_id}\n").into_bytes())
        }
    }
}

pub(super) async fn executors(ctx: &Ctx) -> Result<Vec<u8>, CliError> {
    let listing = ctx.api.list(&["v1", "executors"], &[], None).await?;
    if ctx.json() {
        return Ok(json_out(listing.to_json().as_bytes()));
    }
    let executors = listing.values().map_err(|message| CliError::BadResponse {
        url: ctx.api.url(&["v1", "executors"], &[]).to_string(),
        message,
    })?;
    if executors.is_empty() {
        note("no executors seen: start one with `cronmesh executor --group G --seeds GOSSIP_ADDR`");
        return Ok(Vec::new());
    }
    Ok(executors_table(&executors).into_bytes())
}
