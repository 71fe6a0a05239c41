//! `POST /v1/internal/runs/{id}/report`: run reports from executors,
//! acknowledged once recorded durably.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use actors::messages::{Report, Reports};
use protocol::{
    dispatch::{ReportBatch, ReportBatchAck, ReportResult, RunReport, MSGPACK, SIGNATURE_HEADER},
    signature::{self, DEFAULT_REPLAY_WINDOW_SECS},
};

use super::{
    error::{ApiError, ApiResult},
    input::read_body,
    AppState,
};

/// `POST /v1/internal/reports`: a batch of run reports, answered with one
/// result per report once the recorded ones are durable.
pub async fn reports(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let body = read_body(payload).await?;
    check_signature(&state, &req, &body)?;
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    let batch: ReportBatch =
        protocol::wire::decode_body(content_type, &body).map_err(|e| ApiError::invalid("", e))?;
    let mut results = Vec::with_capacity(batch.reports.len());
    let mut updates = Vec::with_capacity(batch.reports.len());
    for report in batch.reports {
        match acceptable(&state, &report)? {
            Ok(()) => {
                results.push(ReportResult::Recorded);
                updates.push(report.into_update());
            }
            Err(reason) => {
                tracing::warn!(run_id = %report.run_id, "refused a report: {reason}");
                results.push(ReportResult::Refused);
            }
        }
    }
    if !updates.is_empty() {
        state
            .dispatcher
            .send(Reports(updates))
            .await?
            .map_err(ApiError::unavailable)?;
    }
    let ack = ReportBatchAck { results };
    let is_json = content_type.is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        return Ok(HttpResponse::Ok().json(ack));
    }
    let encoded = protocol::wire::encode(&ack).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok().content_type(MSGPACK).body(encoded))
}

/// Whether a report may be recorded: `Err(reason)` refuses it for good.
fn acceptable(state: &AppState, report: &RunReport) -> ApiResult<Result<(), String>> {
    if report.output.len() > protocol::run::OUTPUT_LIMIT * 2 {
        return Ok(Err(
            "output longer than twice the 64 KiB the scheduler keeps; send the tail".into(),
        ));
    }
    if state.store.run(&report.run_id)?.is_none() {
        return Ok(Err(format!("run {} does not exist", report.run_id)));
    }
    Ok(Ok(()))
}

fn check_signature(state: &AppState, req: &HttpRequest, body: &[u8]) -> ApiResult<()> {
    let Some(secret) = &state.secret else {
        return Ok(());
    };
    let header = req
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    let now = state.clock.now().timestamp();
    signature::verify(secret, header, body, now, DEFAULT_REPLAY_WINDOW_SECS)
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string()))
}

pub async fn report(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let body = read_body(payload).await?;
    check_signature(&state, &req, &body)?;
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
