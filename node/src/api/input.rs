//! Reading request bodies and query strings into typed values, with errors
//! that name the field.

use std::time::Duration;

use actix_web::{http::StatusCode, web, HttpRequest};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::error::{ApiError, ApiResult};

/// Largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

pub async fn read_body(payload: web::Payload) -> ApiResult<Bytes> {
    read_body_up_to(payload, MAX_BODY).await
}

/// How long a client has to send a whole body. The server times out a
/// request's head, not its body: without this, a client trickling a byte a
/// second holds its connection (and a file descriptor) for as long as it
/// likes.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads a body of at most `limit` bytes, within [`BODY_TIMEOUT`].
pub async fn read_body_up_to(payload: web::Payload, limit: usize) -> ApiResult<Bytes> {
    let Ok(read) = tokio::time::timeout(BODY_TIMEOUT, payload.to_bytes_limited(limit)).await else {
        return Err(ApiError {
            field: Some("body".into()),
            ..ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the body did not arrive within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            )
        });
    };
    match read {
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

/// Parses a JSON object body; an empty body reads as `{}` when `empty_ok`.
/// Any other JSON value is refused: serde would read a struct from an
/// array (`["@daily"]` as a preview request), which the API does not take.
pub fn json_body<T: DeserializeOwned>(
    req: &HttpRequest,
    body: &[u8],
    empty_ok: bool,
) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) && empty_ok {
        return Ok(protocol::validate::from_json(b"{}")?);
    }
    require_json(req)?;
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid("", "the body must be a JSON object"));
    }
    Ok(protocol::validate::from_json(body)?)
}

/// Parses a JSON array body.
pub fn json_array_body<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> ApiResult<Vec<T>> {
    require_json(req)?;
    Ok(protocol::validate::from_json(body)?)
}

/// A body must be typed JSON (or not typed at all).
fn require_json(req: &HttpRequest) -> ApiResult<()> {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if !content_type.starts_with("application/json") {
        return Err(ApiError {
            field: Some("content-type".into()),
            ..ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("send JSON with content-type: application/json, not {content_type}"),
            )
        });
    }
    Ok(())
}

/// A body that must say nothing: empty, or `{}`.
pub fn empty_body(req: &HttpRequest, body: &[u8]) -> ApiResult<()> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Nothing {}
    json_body::<Nothing>(req, body, true).map(|_| ())
}

/// Parses the query string. `consistent=true` is left out: it is handled
/// before the handler (see `forward`); `consistent` takes `true` or `false`.
pub fn query<T: DeserializeOwned>(req: &HttpRequest) -> ApiResult<T> {
    let mut pairs = Vec::new();
    for pair in req.query_string().split('&') {
        match pair.strip_prefix("consistent=") {
            Some("true" | "false") => {}
            Some(_) => return Err(ApiError::invalid("consistent", "must be true or false")),
            None => pairs.push(pair),
        }
    }
    let joined = pairs.join("&");
    let pairs = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(joined.as_bytes()));
    serde_path_to_error::deserialize(pairs).map_err(|e| {
        let message = e.inner().to_string();
        // The path names a parameter whose value did not parse; a missing
        // or unknown one is named only in serde's message, in backticks.
        let field = match e.path().to_string() {
            path if path != "." => path,
            _ => message.split('`').nth(1).unwrap_or_default().to_string(),
        };
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
