//! `POST /v1/internal/runs/{id}/report`: run reports from executors,
//! acknowledged once recorded durably.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use actors::messages::Report;
use protocol::{
    dispatch::{RunReport, SIGNATURE_HEADER},
    signature::{self, DEFAULT_REPLAY_WINDOW_SECS},
};

use super::{
    error::{ApiError, ApiResult},
    input::read_body,
    AppState,
};

pub async fn report(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let body = read_body(payload).await?;
    if let Some(secret) = &state.secret {
        let header = req
            .headers()
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok());
        let now = state.clock.now().timestamp();
        signature::verify(secret, header, &body, now, DEFAULT_REPLAY_WINDOW_SECS)
            .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string()))?;
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    let report: RunReport =
        protocol::wire::decode_body(content_type, &body).map_err(|e| ApiError::invalid("", e))?;
    if report.run_id != *id {
        return Err(ApiError::invalid("run_id", "does not match the URL"));
    }
    if report.output.len() > protocol::run::OUTPUT_LIMIT * 2 {
        return Err(ApiError::invalid(
            "output",
            "longer than twice the 64 KiB the scheduler keeps; send the tail",
        ));
    }
    if state.store.run(&report.run_id)?.is_none() {
        return Err(ApiError::not_found(format!(
            "run {} does not exist",
            report.run_id
        )));
    }
    state
        .dispatcher
        .send(Report(report.into_update()))
        .await?
        .map_err(ApiError::unavailable)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"ok": true})))
}
