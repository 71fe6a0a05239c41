//! The executor HTTP API (docs/EXECUTOR-PROTOCOL.md).

use std::{fmt, net::TcpListener, sync::Arc, time::Duration};

use actix_web::{
    dev::Server,
    http::{header, StatusCode},
    web, App, HttpRequest, HttpResponse, HttpServer, ResponseError,
};
use bytes::Bytes;
use protocol::{
    api::{ErrorBody, ErrorDetail},
    dispatch::{
        DispatchBatch, DispatchBatchAck, DispatchRequest, KillRequest, MSGPACK, SIGNATURE_HEADER,
        STALE_TERM_CODE, TERM_HEADER,
    },
    replay::ReplayCache,
    signature_v2::V2Error,
    signing::{Accepted, Verifier},
};
use serde_json::json;

use crate::api::origin::{refuse_cross_site, HostPolicy};

use super::{
    agent::{Agent, DispatchError, KillResult},
    fence::StaleTerm,
};

/// Largest request body accepted. A dispatch holds at most a 64 KiB
/// command and 64 KiB of params; this leaves room for the rest.
const MAX_BODY: usize = 1024 * 1024;
/// Largest batch body accepted: schedulers send at most a few hundred
/// kilobytes per frame, but a batch of long commands may be larger.
const MAX_BATCH_BODY: usize = 64 * 1024 * 1024;
/// How long a kill request waits for the run to end before answering 202.
const KILL_WAIT: Duration = Duration::from_secs(3);
/// Worker threads: the API does little work per request.
const WORKERS: usize = 2;
/// Seconds in-flight requests get to finish when the server stops.
const SHUTDOWN_TIMEOUT_SECS: u64 = 5;

/// The server on `listener` (HTTPS with `tls`), not started: await it (or
/// spawn it) to serve.
pub fn server(
    agent: Arc<Agent>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<Server> {
    // Browsers may post to any address, this one included: the same guard
    // as the admin API's keeps web pages from dispatching (a `cronmesh dev`
    // executor listens on loopback, unsigned). Schedulers post MessagePack.
    let policy = web::Data::new(
        HostPolicy::new(listener.local_addr()?, &agent.info().endpoint)
            .accepting_msgpack_under("/v1/"),
    );
    let verifier = web::Data::new(Signatures(agent.config().secret.as_deref().map(|secret| {
        Verifier::new(
            secret,
            &agent.info().endpoint,
            agent.config().v1,
            agent.config().replay_window_secs,
            ReplayCache::default(),
        )
    })));
    let data = web::Data::from(agent);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(verifier.clone())
            .app_data(policy.clone())
            .wrap(actix_web::middleware::from_fn(refuse_cross_site))
            .route("/healthz", web::get().to(healthz))
            .route("/v1/info", web::get().to(info))
            .route("/v1/dispatch", web::post().to(dispatch))
            .route("/v1/dispatch/batch", web::post().to(dispatch_batch))
            .route("/v1/runs/{id}", web::get().to(get_run))
            .route("/v1/runs/{id}/output", web::get().to(get_output))
            .route("/v1/runs/{id}/kill", web::post().to(kill))
            .default_service(web::to(no_route))
    })
    .workers(WORKERS)
    // The embedding process decides when to stop, not SIGINT/SIGTERM here.
    .disable_signals()
    .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS);
    let server = match tls {
        Some(tls) => server.listen_rustls_0_23(listener, (*tls).clone())?,
        None => server.listen(listener)?,
    };
    Ok(server.run())
}

/// The status of [`STALE_TERM_CODE`] refusals
/// (`protocol::dispatch::STALE_TERM_STATUS`).
const STALE_TERM: StatusCode = StatusCode::CONFLICT;

/// An error answered as `{"error": {"code", "message", "field"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    /// Sent as [`TERM_HEADER`]: the executor's fence, on a stale-term refusal.
    term: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            term: None,
        }
    }

    /// The sender was deposed: 409 with the newest term seen in a header,
    /// which a scheduler takes as "step down", not as a reason to fail the
    /// run over.
    fn stale_term(stale: StaleTerm) -> Self {
        Self {
            term: Some(stale.fence),
            ..Self::new(STALE_TERM, STALE_TERM_CODE, stale.to_string())
        }
    }

    fn not_found(run_id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no run {run_id} on this executor"),
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(term) = self.term {
            response.insert_header((TERM_HEADER, term.to_string()));
        }
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
                field: self.field.clone(),
            },
        })
    }
}

async fn read_body(payload: web::Payload) -> Result<Bytes, ApiError> {
    read_body_up_to(payload, MAX_BODY).await
}

async fn read_body_up_to(payload: web::Payload, limit: usize) -> Result<Bytes, ApiError> {
    match payload.to_bytes_limited(limit).await {
        Err(_) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body exceeds {limit} bytes"),
        )),
        Ok(Err(e)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("cannot read the request body: {e}"),
        )),
        Ok(Ok(body)) => Ok(body),
    }
}

/// The checker of request signatures, shared by the workers; `None`
/// without a secret (an `--unsigned` executor checks nothing).
struct Signatures(Option<Verifier>);

/// Whether version 1 may pass on a route (with `--accept-v1-signatures`):
/// only where it signed a body worth something. A v1 kill or read has
/// an empty body, so one observed signature would open them all.
#[derive(Clone, Copy, PartialEq, Eq)]
enum V1Route {
    Allowed,
    Refused,
}

/// With a secret configured, the request must carry a valid, fresh, unused
/// protocol v2 signature for this executor.
fn check_signature(
    signatures: &Signatures,
    req: &HttpRequest,
    body: &[u8],
    v1: V1Route,
) -> Result<(), ApiError> {
    let Some(verifier) = &signatures.0 else {
        return Ok(());
    };
    // A header that is not text cannot be a valid signature: treat it as malformed.
    let header = req
        .headers()
        .get(SIGNATURE_HEADER)
        .map(|value| value.to_str().unwrap_or(""));
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or(req.path(), |p| p.as_str());
    let now = chrono::Utc::now().timestamp();
    let checked = verifier.check(
        header,
        req.method().as_str(),
        path_and_query,
        body,
        v1 == V1Route::Allowed,
        now,
    );
    match checked {
        Ok(Accepted::V2) => Ok(()),
        Ok(Accepted::V1) => {
            tracing::debug!(path = req.path(), "accepted a version 1 signature");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(path = req.path(), "refused a request: {e}");
            let (status, code) = match e {
                V2Error::Replayed => (StatusCode::UNAUTHORIZED, "replayed"),
                V2Error::CacheFull => (StatusCode::SERVICE_UNAVAILABLE, "replay_cache_full"),
                _ => (StatusCode::UNAUTHORIZED, "bad_signature"),
            };
            Err(ApiError::new(status, code, e.to_string()))
        }
    }
}

async fn healthz(agent: web::Data<Agent>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok", "group": agent.config().group}))
}

async fn info(
    agent: web::Data<Agent>,
    signatures: web::Data<Signatures>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    check_signature(&signatures, &req, b"", V1Route::Refused)?;
    Ok(HttpResponse::Ok().json(agent.info()))
}

async fn dispatch(
    agent: web::Data<Agent>,
    signatures: web::Data<Signatures>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload).await?;
    check_signature(&signatures, &req, &body, V1Route::Allowed)?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let request: DispatchRequest = protocol::wire::decode_body(content_type, &body)
        .map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", message))?;
    match agent.dispatch(request) {
        Ok(ack) => Ok(HttpResponse::Accepted().json(ack)),
        Err(DispatchError::Invalid { field, message }) => Err(ApiError {
            field: Some(field.to_string()),
            ..ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_field",
                format!("{field} {message}"),
            )
        }),
        Err(DispatchError::ShuttingDown) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "this executor is shutting down and starts no new runs",
        )),
        Err(DispatchError::StaleTerm(stale)) => Err(ApiError::stale_term(stale)),
        Err(e @ DispatchError::Busy { .. }) => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            e.to_string(),
        )),
        // A 4xx other than the 409 of stale terms: the scheduler takes it
        // as a refusal of this run (it fails it over), not as "step down".
        Err(DispatchError::Expired {
            expires_at,
            late_ms,
        }) => Err(ApiError::new(
            StatusCode::GONE,
            "expired",
            DispatchError::expired_reason(expires_at, late_ms),
        )),
    }
}

/// `POST /v1/dispatch/batch`: each entry is admitted like a single
/// dispatch; the answer, in the request's encoding, has one result per
/// entry. A frame with a stale term is refused whole (409).
async fn dispatch_batch(
    agent: web::Data<Agent>,
    signatures: web::Data<Signatures>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body_up_to(payload, MAX_BATCH_BODY).await?;
    check_signature(&signatures, &req, &body, V1Route::Allowed)?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let batch: DispatchBatch = protocol::wire::decode_body(content_type, &body)
        .map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", message))?;
    let results = agent
        .clone()
        .into_inner()
        .dispatch_batch(batch.runs)
        .map_err(ApiError::stale_term)?;
    let ack = DispatchBatchAck { results };
    let is_json = content_type.is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        return Ok(HttpResponse::Ok().json(ack));
    }
    let encoded = protocol::wire::encode(&ack).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "encode_failed",
            e.to_string(),
        )
    })?;
    Ok(HttpResponse::Ok().content_type(MSGPACK).body(encoded))
}

/// `POST /v1/runs/{id}/kill`, with an optional [`KillRequest`] body
/// (MessagePack or JSON) carrying the sender's term; an empty body is term 0.
async fn kill(
    agent: web::Data<Agent>,
    signatures: web::Data<Signatures>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload).await?;
    check_signature(&signatures, &req, &body, V1Route::Refused)?;
    let request: KillRequest = if body.is_empty() {
        KillRequest::default()
    } else {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());
        protocol::wire::decode_body(content_type, &body)
            .map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", message))?
    };
    let run_id = path.into_inner();
    let killed = agent
        .kill(&run_id, request.term, KILL_WAIT)
        .await
        .map_err(ApiError::stale_term)?;
    match killed {
        KillResult::Unknown => Err(ApiError::not_found(&run_id)),
        KillResult::Finished(report) => Ok(HttpResponse::Ok().json(report)),
        KillResult::Stopping(report) => Ok(HttpResponse::Accepted().json(report)),
    }
}

async fn get_run(
    agent: web::Data<Agent>,
    signatures: web::Data<Signatures>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    check_signature(&signatures, &req, b"", V1Route::Refused)?;
    let run_id = path.into_inner();
    let report = agent
        .report(&run_id)
        .ok_or_else(|| ApiError::not_found(&run_id))?;
    Ok(HttpResponse::Ok().json(report))
}

async fn get_output(
    agent: web::Data<Agent>,
    signatures: web::Data<Signatures>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    check_signature(&signatures, &req, b"", V1Route::Refused)?;
    let run_id = path.into_inner();
    let output = agent
        .output(&run_id)
        .ok_or_else(|| ApiError::not_found(&run_id))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(output))
}

async fn no_route(req: HttpRequest) -> HttpResponse {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {} {}", req.method(), req.path()),
    )
    .error_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_term_is_the_protocol_s_409_with_the_fence_in_a_header() {
        assert_eq!(STALE_TERM.as_u16(), protocol::dispatch::STALE_TERM_STATUS);
        let response = ApiError::stale_term(StaleTerm { term: 4, fence: 5 }).error_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(
            response
                .headers()
                .get(TERM_HEADER)
                .and_then(|v| v.to_str().ok()),
            Some("5")
        );
    }
}
