//! Schedule preview, executor views, health.

use actix_web::{web, HttpRequest, HttpResponse};
use protocol::{
    api::{PreviewRequest, PreviewResponse, StorageState, MAX_PREVIEW},
    schedule::{parse_timezone, Schedule},
};

use super::{
    error::{ApiError, ApiResult},
    input::{json_body, read_body},
    offload, AppState,
};

pub async fn preview(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let body = read_body(payload).await?;
    let request: PreviewRequest = json_body(&req, &body, false)?;
    let schedule =
        Schedule::parse(&request.schedule).map_err(|e| ApiError::invalid("schedule", e))?;
    let tz = parse_timezone(&request.timezone).map_err(|e| ApiError::invalid("timezone", e))?;
    if request.count == 0 || request.count > MAX_PREVIEW {
        return Err(ApiError::invalid(
            "count",
            format!("must be between 1 and {MAX_PREVIEW}"),
        ));
    }
    let from = request.from.unwrap_or_else(|| state.clock.now());
    // A thousand fire times of a sparse schedule take a while to find.
    offload::json(move || {
        let fire_times = schedule.upcoming(from, tz, request.count as usize);
        Ok(PreviewResponse { fire_times })
    })
    .await
}

/// Executors the router knows (static and live), plus those gossip has
/// seen die recently.
pub async fn executors(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let listed = crate::discovery::executor_list(&state.router, state.membership.as_ref()).await?;
    Ok(HttpResponse::Ok().json(listed))
}

/// `GET /metrics`: the Prometheus (OpenMetrics) text format.
pub async fn metrics(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let cluster = state.cluster_status().await;
    let executors =
        crate::discovery::executor_list(&state.router, state.membership.as_ref()).await?;
    let alive = executors.iter().filter(|e| e.alive).count();
    let pipeline =
        crate::metrics::PipelineGauges::of(&state.backlog, &state.store, state.clock.now());
    let body = state
        .metrics
        .render(&cluster, &pipeline, alive, executors.len() - alive);
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(body))
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: 200 once the node knows a leader and has applied all
/// it knows to be committed, so its reads are current, and its disk takes
/// writes; 503 with the reason until then (a load balancer sends no
/// traffic to a node catching up or short of room).
pub async fn readyz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let status = state.cluster_status().await;
    let storage = status.storage.clone();
    let short = storage
        .as_ref()
        .filter(|s| s.state != StorageState::Ok)
        .map(crate::disk::guard::why);
    let (ready, reason) = match (short, status.leader_id) {
        (Some(why), _) => (false, why),
        (None, None) => (
            false,
            "no leader is known; an election may be running".into(),
        ),
        (None, Some(_)) if status.applied_index < status.commit_index => {
            (false, "catching up with the log".into())
        }
        (None, Some(_)) => (true, "ready".to_string()),
    };
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not_ready" },
        "reason": reason,
        "leader_id": status.leader_id,
        "commit_index": status.commit_index,
        "applied_index": status.applied_index,
        "storage": storage,
    });
    Ok(if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    })
}

pub async fn not_found(req: HttpRequest) -> ApiResult<HttpResponse> {
    Err(ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}
