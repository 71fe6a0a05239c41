//! `/v1/cluster`: the Raft group's state and membership changes.

use std::net::SocketAddr;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use protocol::{api::MemberRequest, meta::NodeInfo};

use super::{
    error::{ApiError, ApiResult},
    input::{json_body, read_body},
    AppState,
};
use crate::{
    consensus::Consensus,
    raft::engine::{EngineHandle, MemberChange},
};

pub async fn status(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.cluster_status().await))
}

fn engine(state: &AppState) -> ApiResult<&EngineHandle> {
    match &state.consensus {
        Consensus::Raft(engine) => Ok(engine),
        Consensus::Local { .. } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_clustered",
            "this node runs without Raft; start it with --raft to form a cluster",
        )),
    }
}

async fn change(state: &AppState, change: MemberChange) -> ApiResult<HttpResponse> {
    engine(state)?
        .change_members(change)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(HttpResponse::Ok().json(state.cluster_status().await))
}

pub async fn add(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let body = read_body(payload).await?;
    let request: MemberRequest = json_body(&req, &body, false)?;
    if request.node_id == 0 {
        return Err(ApiError::invalid("node_id", "node ids start at 1"));
    }
    let raft_addr = request
        .raft_addr
        .parse::<SocketAddr>()
        .map_err(|e| ApiError::invalid("raft_addr", format!("not an IP:PORT address: {e}")))?;
    match url::Url::parse(&request.api_url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        _ => return Err(ApiError::invalid("api_url", "must be an http or https URL")),
    }
    prove_secret(&state, request.node_id, raft_addr).await?;
    let node = NodeInfo {
        node_id: request.node_id,
        api_url: request.api_url,
        raft_addr: request.raft_addr,
    };
    change(&state, MemberChange::Add(node)).await
}

/// Refuses to add a node whose Raft port does not pass what this node's
/// connections require (proof of the cluster secret, mutual TLS with a
/// certificate of the cluster's CA): such a member could never be reached
/// (the transport refuses it both ways) yet would count among the voters,
/// costing the cluster a node of its fault tolerance.
async fn prove_secret(state: &AppState, node_id: u64, raft_addr: SocketAddr) -> ApiResult<()> {
    engine(state)?
        .transport
        .prove_peer(raft_addr, node_id)
        .await
        .map_err(|e| {
            ApiError::invalid(
                "raft_addr",
                format!(
                    "node {node_id} at {raft_addr} did not prove it belongs to this cluster: {e}"
                ),
            )
        })
}

pub async fn remove(state: web::Data<AppState>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::invalid("node_id", "not a node id"))?;
    let voters = engine(&state)?
        .status()
        .await
        .map(|s| s.voters)
        .unwrap_or_default();
    if !voters.contains(&id) {
        return Err(ApiError::not_found(format!("node {id} is not a member")));
    }
    change(&state, MemberChange::Remove(id)).await
}
