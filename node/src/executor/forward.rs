//! Handler tasks: forwarded as JSON to a local service (`--forward URL`),
//! so a service in any language can do the work.

use protocol::{
    dispatch::{DispatchRequest, SIGNATURE_HEADER},
    run::{tail, OUTPUT_LIMIT},
    signing::Signer,
};

use super::runs::Outcome;

/// What a handler call produced: how it ended and the output to keep.
pub struct HandlerResult {
    pub outcome: Outcome,
    pub output: String,
}

/// `POST {forward}/{handler}` with the request as JSON; a 2xx answer is
/// success and its body the output. The caller bounds the time taken.
pub async fn call_handler(
    client: &reqwest::Client,
    forward: Option<&str>,
    signer: Option<&Signer>,
    handler: &str,
    req: &DispatchRequest,
) -> HandlerResult {
    let failed = |error: String| HandlerResult {
        outcome: Outcome::failed(None, error),
        output: String::new(),
    };
    let Some(forward) = forward else {
        return failed(format!("no handler named {handler} on this executor"));
    };
    let url = match handler_url(forward, handler) {
        Ok(url) => url,
        Err(e) => return failed(e),
    };
    let body = match serde_json::to_vec(req) {
        Ok(body) => body,
        Err(e) => return failed(format!("cannot encode the request for the handler: {e}")),
    };
    let mut request = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    if let Some(signer) = signer {
        // Protocol v2 with the `--forward` URL as the audience: a handler
        // service holds signatures that hold for itself, never for an
        // executor.
        let path_and_query = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        let audience = url.origin().ascii_serialization();
        request = request.header(
            SIGNATURE_HEADER,
            signer.header("POST", &audience, &path_and_query, &body),
        );
    }
    let response = match request.body(body).send().await {
        Ok(response) => response,
        Err(e) => return failed(format!("cannot reach handler {handler} at {url}: {e}")),
    };
    let status = response.status();
    let output = match response.bytes().await {
        Ok(bytes) => tail(&String::from_utf8_lossy(&bytes), OUTPUT_LIMIT).to_string(),
        Err(e) => {
            return failed(format!(
                "handler {handler} answered {status} but its body could not be read: {e}"
            ))
        }
    };
    let outcome = if status.is_success() {
        Outcome::succeeded(None)
    } else {
        Outcome::failed(None, format!("handler {handler} answered HTTP {status}"))
    };
    HandlerResult { outcome, output }
}

/// `{forward}/{handler}`, the handler name escaped as one path segment.
pub fn handler_url(forward: &str, handler: &str) -> Result<url::Url, String> {
    let mut url = url::Url::parse(forward)
        .map_err(|e| format!("the forward URL {forward:?} is invalid: {e}"))?;
    url.path_segments_mut()
        .map_err(|()| format!("the forward URL {forward:?} cannot take a path"))?
        .pop_if_empty()
        .push(handler);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_url_appends_one_segment() {
        let url = |f: &str, h: &str| handler_url(f, h).map(|u| u.to_string());
        assert_eq!(
            url("http://127.0.0.1:9000", "resize"),
            Ok("http://127.0.0.1:9000/resize".to_string())
        );
        assert_eq!(
            url("http://127.0.0.1:9000/hooks/", "a/b"),
            Ok("http://127.0.0.1:9000/hooks/a%2Fb".to_string())
        );
    }
}
