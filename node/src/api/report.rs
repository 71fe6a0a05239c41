//! Run reports from executors, acknowledged once recorded durably:
//! `POST /v1/internal/runs/{id}/report` (one) and `POST
//! /v1/internal/reports` (a batch, one result per report).

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use actors::messages::Reports;
use protocol::{
    dispatch::{ReportBatch, ReportBatchAck, ReportResult, RunReport, MSGPACK, SIGNATURE_HEADER},
    signature::{self, DEFAULT_REPLAY_WINDOW_SECS},
};
use serde::de::DeserializeOwned;

use super::{
    error::{ApiError, ApiResult},
    input::read_body,
    AppState,
};

/// Why a report is refused for good.
enum Refusal {
    OutputTooLong,
    UnknownRun,
}

impl Refusal {
    fn into_error(self, run_id: &str) -> ApiError {
        match self {
            Refusal::OutputTooLong => ApiError::invalid(
                "output",
                "longer than twice the 64 KiB the scheduler keeps; send the tail",
            ),
            Refusal::UnknownRun => ApiError::not_found(format!("run {run_id} does not exist")),
        }
    }
}

/// `POST /v1/internal/reports`.
pub async fn reports(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let (batch, json): (ReportBatch, bool) = signed_body(&state, &req, payload).await?;
    let mut results = Vec::with_capacity(batch.reports.len());
    let mut updates = Vec::with_capacity(batch.reports.len());
    for report in batch.reports {
        match refusal(&state, &report)? {
            None => {
                results.push(ReportResult::Recorded);
                updates.push(report.into_update());
            }
            Some(refusal) => {
                let reason = refusal.into_error(&report.run_id);
                tracing::warn!(run_id = %report.run_id, "refused a report: {reason}");
                results.push(ReportResult::Refused);
            }
        }
    }
    record(&state, updates).await?;
    let ack = ReportBatchAck { results };
    if json {
        return Ok(HttpResponse::Ok().json(ack));
    }
    let encoded = protocol::wire::encode(&ack).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok().content_type(MSGPACK).body(encoded))
}

/// `POST /v1/internal/runs/{id}/report`.
pub async fn report(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let (report, _): (RunReport, bool) = signed_body(&state, &req, payload).await?;
    if report.run_id != *id {
        return Err(ApiError::invalid("run_id", "does not match the URL"));
    }
    if let Some(refusal) = refusal(&state, &report)? {
        return Err(refusal.into_error(&report.run_id));
    }
    record(&state, vec![report.into_update()]).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"ok": true})))
}

/// The body, signed when a secret is set, decoded from MessagePack or
/// JSON; and whether it was JSON (the answer follows suit).
async fn signed_body<T: DeserializeOwned>(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> ApiResult<(T, bool)> {
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
    let json = content_type.is_some_and(|ct| ct.starts_with("application/json"));
    let value =
        protocol::wire::decode_body(content_type, &body).map_err(|e| ApiError::invalid("", e))?;
    Ok((value, json))
}

/// Why `report` can never be recorded, if it cannot.
fn refusal(state: &AppState, report: &RunReport) -> ApiResult<Option<Refusal>> {
    if report.output.len() > protocol::run::OUTPUT_LIMIT * 2 {
        return Ok(Some(Refusal::OutputTooLong));
    }
    if state.store.run(&report.run_id)?.is_none() {
        return Ok(Some(Refusal::UnknownRun));
    }
    Ok(None)
}

/// Hands the updates to the dispatcher and waits until they are durable.
async fn record(state: &AppState, updates: Vec<protocol::RunUpdate>) -> ApiResult<()> {
    if updates.is_empty() {
        return Ok(());
    }
    state
        .dispatcher
        .send(Reports(updates))
        .await?
        .map_err(ApiError::unavailable)
}
