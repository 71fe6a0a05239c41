//! Reading request bodies and query strings into typed values, with errors
//! that name the field.

use actix_web::{http::StatusCode, web, HttpRequest};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::error::{ApiError, ApiResult};

/// Largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

pub async fn read_body(payload: web::Payload) -> ApiResult<Bytes> {
    read_body_up_to(payload, MAX_BODY).await
}

/// Reads a body of at most `limit` bytes.
pub async fn read_body_up_to(payload: web::Payload, limit: usize) -> ApiResult<Bytes> {
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("cannot read the body: {e}"),
        )),
        Err(_) => Err(ApiError {
            field: Some("body".into()),
            ..ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is larger than {limit} bytes"),
            )
        }),
    }
}

/// Parses a JSON body; an empty body reads as `{}` when `empty_ok`.
pub fn json_body<T: DeserializeOwned>(
    req: &HttpRequest,
    body: &[u8],
    empty_ok: bool,
) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) && empty_ok {
        return Ok(protocol::validate::from_json(b"{}")?);
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if !content_type.starts_with("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("send JSON with content-type: application/json, not {content_type}"),
        ));
    }
    Ok(protocol::validate::from_json(body)?)
}

/// Parses the query string. `consistent=true` is left out: it is handled
/// before the handler (see `forward`).
pub fn query<T: DeserializeOwned>(req: &HttpRequest) -> ApiResult<T> {
    let pairs: Vec<&str> = req
        .query_string()
        .split('&')
        .filter(|pair| !pair.starts_with("consistent="))
        .collect();
    web::Query::<T>::from_query(&pairs.join("&"))
        .map(web::Query::into_inner)
        .map_err(|e| {
            let message = e.to_string();
            let field = message.split('`').nth(1).unwrap_or_default().to_string();
            ApiError::invalid(field, format!("invalid query string: {message}"))
        })
}

/// `limit` for lists: default 100, at most 1000.
pub fn page_limit(limit: Option<usize>) -> ApiResult<usize> {
    match limit.unwrap_or(100) {
        0 => Err(ApiError::invalid("limit", "must be at least 1")),
        n if n > 1000 => Err(ApiError::invalid("limit", "must be at most 1000")),
        n => Ok(n),
    }
}
