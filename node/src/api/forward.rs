//! Writes go to the leader: on any other node, a request that changes
//! state (and a read with `?consistent=true`) is forwarded to the leader's
//! API and its answer returned unchanged. The leader serves a consistent
//! read after a Raft read-index round, so it never answers from a stale
//! term. During an election the answer is 503 with a retry hint, never a
//! hang.
//!
//! A forwarded request carries `x-cronmesh-forwarded`. Any value keeps it
//! from being forwarded again (a loop guard: a client that sends one only
//! gets a 503 from a follower). Only a value that proves a member sent it
//! ([`protocol::signature::sign_forward`], with the cluster secret) earns
//! anything more: see [`is_from_member`]. Nothing else about a forwarded
//! request is trusted: the leader checks its token, body and route as it
//! checks any request.

use std::time::Duration;

use actix_web::FromRequest;
use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{Method, StatusCode},
    middleware::Next,
    web, HttpMessage, HttpResponse,
};
use protocol::signature::{sign_forward, verify_forward, FORWARD_WINDOW_SECS};

use super::{error::ApiError, input::read_body_up_to, jobs::MAX_CREATE_BODY, AppState};
use crate::consensus::Route;

/// Marks a forwarded request, so it is never forwarded twice.
pub(super) const FORWARDED: &str = "x-cronmesh-forwarded";
/// Headers that travel with a forwarded request.
const KEPT_HEADERS: [&str; 4] = [
    "content-type",
    "authorization",
    "cookie",
    protocol::dispatch::SIGNATURE_HEADER,
];
const FORWARD_TIMEOUT: Duration = Duration::from_secs(15);

/// Whether `req` carries a valid proof that a member forwarded it: signed
/// with the cluster `secret` over its method, path and query, recently.
/// Never without a secret, whatever the header says.
pub(super) fn is_from_member(req: &ServiceRequest, secret: Option<&[u8]>) -> bool {
    let Some(secret) = secret else {
        return false;
    };
    let Some(proof) = req.headers().get(FORWARDED).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    verify_forward(
        secret,
        Some(proof),
        req.method().as_str(),
        target,
        chrono::Utc::now().timestamp(),
        FORWARD_WINDOW_SECS,
    )
    .is_ok()
}

/// The `x-cronmesh-forwarded` value for `request`: a proof over the path
/// and query exactly as they leave (after the URL is parsed and encoded),
/// or a bare mark without a secret.
fn forward_mark(secret: Option<&[u8]>, request: &reqwest::Request) -> String {
    let Some(secret) = secret else {
        return "1".to_string();
    };
    let url = request.url();
    let target = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    };
    sign_forward(
        secret,
        chrono::Utc::now().timestamp(),
        request.method().as_str(),
        &target,
    )
}

fn is_write(req: &ServiceRequest) -> bool {
    !matches!(*req.method(), Method::GET | Method::HEAD) && req.path().starts_with("/v1/")
}

fn is_consistent_read(req: &ServiceRequest) -> bool {
    req.query_string()
        .split('&')
        .any(|pair| pair == "consistent=true")
}

pub async fn forward_to_leader(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let consistent = is_consistent_read(&req);
    if !is_write(&req) && !consistent {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let leader = match state.consensus.route(&state.store) {
        Route::Here => {
            if consistent {
                if let Err(why) = state.consensus.read_barrier().await {
                    return Ok(req.error_response(ApiError::unavailable(why)));
                }
            }
            return Ok(next.call(req).await?.map_into_boxed_body());
        }
        Route::Leader(_) if req.headers().contains_key(FORWARDED) => {
            return Ok(req.error_response(ApiError::unavailable(
                "the leader changed while forwarding; retry",
            )));
        }
        Route::Leader(url) => url,
        Route::Unavailable(why) => {
            return Ok(req.error_response(ApiError::unavailable(format!("{why}; retry"))))
        }
    };
    // The leader's route checks the body's size for what it is; here it
    // only has to fit the largest any route takes, and arrive in time.
    let mut taken = req.take_payload();
    let payload = web::Payload::from_request(req.request(), &mut taken).await?;
    let body = match read_body_up_to(payload, MAX_CREATE_BODY).await {
        Ok(body) => body,
        Err(refusal) => return Ok(req.error_response(refusal)),
    };
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .unwrap_or(reqwest::Method::POST);
    let mut outgoing = state
        .http
        .request(
            method,
            format!("{}{path_and_query}", leader.trim_end_matches('/')),
        )
        .timeout(FORWARD_TIMEOUT)
        .body(body);
    for name in KEPT_HEADERS {
        if let Some(value) = req.headers().get(name).and_then(|v| v.to_str().ok()) {
            outgoing = outgoing.header(name, value);
        }
    }
    let mut outgoing = match outgoing.build() {
        Ok(outgoing) => outgoing,
        Err(e) => {
            return Ok(req.error_response(ApiError::invalid(
                "",
                format!("the request cannot be forwarded to the leader: {e}"),
            )))
        }
    };
    let mark = forward_mark(state.secret.as_deref().map(Vec::as_slice), &outgoing);
    if let Ok(mark) = reqwest::header::HeaderValue::from_str(&mark) {
        outgoing.headers_mut().insert(FORWARDED, mark);
    }
    let response = match state.http.execute(outgoing).await {
        Ok(response) => response,
        Err(e) => {
            return Ok(req.error_response(ApiError::unavailable(format!(
                "the leader at {leader} did not answer ({e}); retry"
            ))));
        }
    };
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = response.bytes().await.unwrap_or_default();
    let mut answer = HttpResponse::build(status);
    if let Some(content_type) = content_type {
        answer.insert_header(("content-type", content_type));
    }
    Ok(req.into_response(answer.body(bytes)))
}
