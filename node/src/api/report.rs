//! Run reports from executors, acknowledged once recorded durably:
//! `POST /v1/internal/runs/{id}/report` (one) and `POST
//! /v1/internal/reports` (a batch, one result per report).

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use actors::messages::Reports;
use protocol::{
    dispatch::{ReportBatch, ReportBatchAck, ReportResult, RunReport, MSGPACK, SIGNATURE_HEADER},
    signature_v2::V2Error,
    signing::Request,
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

/// The body, signed for this node when a secret is set (protocol v2; v1
/// too with `--accept-v1-signatures`), decoded from MessagePack or JSON;
/// and whether it was JSON (the answer follows suit).
async fn signed_body<T: DeserializeOwned>(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> ApiResult<(T, bool)> {
    let body = read_body(payload).await?;
    if let Some(verifier) = &state.report_verifier {
        // A header that is not text cannot be a valid signature: malformed.
        let header = req
            .headers()
            .get(SIGNATURE_HEADER)
            .map(|v| v.to_str().unwrap_or(""));
        let now = state.clock.now().timestamp();
        let request = Request {
            header,
            method: req.method().as_str(),
            path_and_query: req
                .uri()
                .path_and_query()
                .map_or(req.path(), |p| p.as_str()),
            body: &body,
            v1_route: true,
        };
        // The executor signed for the member it posted to, which may have
        // forwarded it here: any member's URL is an audience of the cluster.
        let members: Vec<String> = state
            .store
            .nodes()
            .unwrap_or_default()
            .into_iter()
            .map(|n| n.api_url)
            .collect();
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        verifier
            .check_for_any(&request, &members, now)
            .map_err(signature_refusal)?;
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

/// A refused signature: 401, but 503 when the replay cache is full, which
/// the executor retries.
fn signature_refusal(e: V2Error) -> ApiError {
    let status = match e {
        V2Error::CacheFull => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNAUTHORIZED,
    };
    let code = match e {
        V2Error::Replayed => "replayed",
        _ => "bad_signature",
    };
    ApiError::new(status, code, e.to_string())
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
