//! Requests to the admin API: URLs, the bearer token, and the mapping of
//! statuses, error bodies and transport failures to [`CliError`].

use std::{collections::HashSet, time::Duration};

use bytes::Bytes;
use protocol::api::ErrorBody;
use reqwest::{
    header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE},
    Method, StatusCode,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use url::Url;

use super::error::CliError;

/// How long one request may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Most items asked for in one page; longer lists follow `next_cursor`.
pub const PAGE_SIZE: usize = 100;

pub struct Api {
    client: reqwest::Client,
    base: Url,
    auth: Option<HeaderValue>,
}

impl Api {
    /// Checks the base URL and the token; connects nowhere yet. `trusted`
    /// CAs are trusted besides the system's.
    pub fn new(
        base: &str,
        token: Option<&str>,
        trusted: &[reqwest::Certificate],
    ) -> Result<Self, CliError> {
        let base = parse_base(base)?;
        let auth = match token.map(str::trim).filter(|t| !t.is_empty()) {
            None => None,
            Some(token) => {
                let mut value =
                    HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                        CliError::usage(
                            "the token (--token / CRONMESH_TOKEN) holds characters that cannot \
                         go in an HTTP header",
                        )
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(Self {
            client: actors::http_client::build_client(trusted).map_err(CliError::usage)?,
            base,
            auth,
        })
    }

    /// `base/seg/seg?k=v`, each segment percent-encoded (ids may hold `/`).
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        endpoint(&self.base, segments, query)
    }

    pub async fn get(&self, url: Url) -> Result<Bytes, CliError> {
        self.send(Method::GET, url, None).await
    }

    /// GETs a body that may be larger than memory into `out`, chunk by
    /// chunk; answers the bytes written. There is no limit on the whole
    /// transfer (a backup of GiBs takes minutes), but each chunk must come
    /// within [`REQUEST_TIMEOUT`].
    pub async fn download(&self, url: Url, out: &mut impl std::io::Write) -> Result<u64, CliError> {
        let request = self.request(Method::GET, url.clone());
        let mut response = tokio::time::timeout(REQUEST_TIMEOUT, request.send())
            .await
            .map_err(|_| CliError::BadResponse {
                url: url.to_string(),
                message: format!("no answer within {REQUEST_TIMEOUT:?}"),
            })?
            .map_err(|e| transport_error(&self.base, &e))?;
        if !response.status().is_success() {
            return Err(self.refusal(response).await);
        }
        let mut written = 0u64;
        loop {
            let chunk = tokio::time::timeout(REQUEST_TIMEOUT, response.chunk())
                .await
                .map_err(|_| CliError::BadResponse {
                    url: url.to_string(),
                    message: format!("the answer stalled for {REQUEST_TIMEOUT:?}"),
                })?
                .map_err(|e| transport_error(&self.base, &e))?;
            let Some(chunk) = chunk else {
                return Ok(written);
            };
            out.write_all(&chunk)
                .map_err(|e| CliError::Output(e.to_string()))?;
            written += chunk.len() as u64;
        }
    }

    /// Sends one request; `Ok` is the body of a 2xx answer.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        json: Option<Vec<u8>>,
    ) -> Result<Bytes, CliError> {
        let typed = json.is_some() || method == Method::POST;
        let mut request = self.request(method, url).timeout(REQUEST_TIMEOUT);
        // A POST says it is JSON even when empty: the node refuses POSTs
        // typed as a web page could type them (docs/API.md, browsers).
        if typed {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        if let Some(body) = json {
            request = request.body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(&self.base, &e))?;
        if !response.status().is_success() {
            return Err(self.refusal(response).await);
        }
        response
            .bytes()
            .await
            .map_err(|e| transport_error(&self.base, &e))
    }

    /// A request to `url` carrying the token, if there is one.
    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let request = self.client.request(method, url);
        match &self.auth {
            Some(auth) => request.header(AUTHORIZATION, auth.clone()),
            None => request,
        }
    }

    /// The error an answer other than 2xx stands for, from its body.
    async fn refusal(&self, response: reqwest::Response) -> CliError {
        let status = response.status();
        match response.bytes().await {
            Ok(body) => api_error(status, &body),
            Err(e) => transport_error(&self.base, &e),
        }
    }

    /// GETs a list, following `next_cursor` until `limit` items are in
    /// (all of them without a limit; then no `?limit=` is sent). Answers
    /// that are a bare JSON array are taken whole.
    pub async fn list(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        limit: Option<usize>,
    ) -> Result<Listing, CliError> {
        let mut listing = Listing::default();
        let mut cursor: Option<String> = None;
        let mut seen = HashSet::new();
        let sent_limit = limit.is_some();
        let limit = limit.unwrap_or(usize::MAX);
        loop {
            let mut query = query.to_vec();
            if sent_limit {
                let remaining = limit - listing.items.len();
                query.push(("limit", remaining.min(PAGE_SIZE).to_string()));
            }
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor.clone()));
            }
            let url = self.url(segments, &query);
            let body = self.get(url.clone()).await?;
            let page = parse_page(&body).map_err(|message| CliError::BadResponse {
                url: url.to_string(),
                message,
            })?;
            let got = page.items.len();
            listing.items.extend(page.items);
            listing.next_cursor = page.next_cursor;
            if page.is_array {
                listing.is_array = true;
                break;
            }
            if listing.items.len() >= limit {
                break;
            }
            match &listing.next_cursor {
                // An empty page or a cursor seen before would loop forever.
                Some(next) if got > 0 && seen.insert(next.clone()) => cursor = Some(next.clone()),
                _ => break,
            }
        }
        listing.more = listing.items.len() > limit
            || (listing.items.len() == limit && listing.next_cursor.is_some());
        listing.items.truncate(limit);
        Ok(listing)
    }
}

/// The items of a list, kept as the server wrote them.
#[derive(Debug, Default)]
pub struct Listing {
    pub items: Vec<Box<RawValue>>,
    pub next_cursor: Option<String>,
    /// The server answered a bare array rather than a page.
    pub is_array: bool,
    /// More items exist than were kept.
    pub more: bool,
}

impl Listing {
    /// The list as one JSON document in the server's shape.
    pub fn to_json(&self) -> String {
        let items: Vec<&str> = self.items.iter().map(|raw| raw.get()).collect();
        let items = format!("[{}]", items.join(","));
        if self.is_array {
            return items;
        }
        let cursor = match &self.next_cursor {
            Some(c) => serde_json::Value::String(c.clone()).to_string(),
            None => "null".to_string(),
        };
        format!("{{\"items\":{items},\"next_cursor\":{cursor}}}")
    }

    pub fn values(&self) -> Result<Vec<serde_json::Value>, String> {
        self.items
            .iter()
            .map(|raw| serde_json::from_str(raw.get()).map_err(|e| e.to_string()))
            .collect()
    }
}

struct RawPageParts {
    items: Vec<Box<RawValue>>,
    next_cursor: Option<String>,
    is_array: bool,
}

fn parse_page(body: &[u8]) -> Result<RawPageParts, String> {
    #[derive(Deserialize)]
    struct RawPage {
        items: Vec<Box<RawValue>>,
        #[serde(default)]
        next_cursor: Option<String>,
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let items: Vec<Box<RawValue>> =
            serde_json::from_slice(body).map_err(|e| format!("not a JSON list: {e}"))?;
        return Ok(RawPageParts {
            items,
            next_cursor: None,
            is_array: true,
        });
    }
    let page: RawPage = serde_json::from_slice(body).map_err(|e| {
        format!(
            "not a page {{\"items\": [...], \"next_cursor\": ...}}: {e}; body starts {:?}",
            snippet(body)
        )
    })?;
    Ok(RawPageParts {
        items: page.items,
        next_cursor: page.next_cursor.filter(|c| !c.is_empty()),
        is_array: false,
    })
}

/// Parses `--api`, with advice for the usual slips.
pub fn parse_base(base: &str) -> Result<Url, CliError> {
    let hint = || {
        if base.contains("://") {
            String::new()
        } else {
            format!("; did you mean --api http://{base} ?")
        }
    };
    let url = Url::parse(base)
        .map_err(|e| CliError::usage(format!("--api {base:?} is not a URL ({e}){}", hint())))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() || url.cannot_be_a_base() {
        return Err(CliError::usage(format!(
            "--api {base:?} must be an http:// or https:// URL{}",
            hint()
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(CliError::usage(format!(
            "--api {base:?} must not carry a query or fragment"
        )));
    }
    Ok(url)
}

pub fn endpoint(base: &Url, segments: &[&str], query: &[(&str, String)]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    if !query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (key, value) in query {
            pairs.append_pair(key, value);
        }
    }
    url
}

/// Maps an error status and its body to a [`CliError::Api`].
pub fn api_error(status: StatusCode, body: &[u8]) -> CliError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => CliError::Api {
            status: status.as_u16(),
            code: Some(error.code).filter(|c| !c.is_empty()),
            message: error.message,
            field: error.field.filter(|f| !f.is_empty()),
            hint: None,
        },
        Err(_) => {
            let text = snippet(body);
            let message = if text.is_empty() {
                format!(
                    "the server answered {}",
                    status.canonical_reason().unwrap_or("an error")
                )
            } else {
                text
            };
            CliError::Api {
                status: status.as_u16(),
                code: None,
                message,
                field: None,
                hint: None,
            }
        }
    }
}

/// The first line of a body, short enough for an error message.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.trim().lines().next().unwrap_or("").trim();
    let mut short: String = line.chars().take(200).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    short
}

/// A failure to get an answer, named by the API base (what --api fixes).
fn transport_error(api: &Url, err: &reqwest::Error) -> CliError {
    let mut reason = if err.is_timeout() {
        format!("no answer within {}s", REQUEST_TIMEOUT.as_secs())
    } else {
        let parts = actors::http_client::causes(err);
        if parts.is_empty() {
            err.to_string()
        } else {
            parts.join(": ")
        }
    };
    if err.is_body() || err.is_decode() {
        reason = format!("the answer was cut off: {reason}");
    }
    CliError::Unreachable {
        url: api.as_str().trim_end_matches('/').to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> Url {
        match parse_base(s) {
            Ok(u) => u,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn urls_are_built_under_the_base_with_encoded_segments() {
        let url = endpoint(
            &base("http://127.0.0.1:7070"),
            &["v1", "jobs", "a/b c"],
            &[("namespace", "ops team".into()), ("label", "k=v".into())],
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:7070/v1/jobs/a%2Fb%20c?namespace=ops+team&label=k%3Dv"
        );
        let prefixed = endpoint(&base("https://h/cronmesh/"), &["v1", "cluster"], &[]);
        assert_eq!(prefixed.as_str(), "https://h/cronmesh/v1/cluster");
    }

    #[test]
    fn bad_api_urls_are_usage_errors() {
        for bad in [
            "127.0.0.1:7070",
            "localhost:7070",
            "ftp://h",
            "http://h/?x=1",
            "",
        ] {
            let err = parse_base(bad).expect_err(bad);
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        let err = parse_base("localhost:7070").expect_err("no scheme");
        assert!(err.to_string().contains("http://localhost:7070"), "{err}");
    }

    #[test]
    fn error_bodies_map_to_api_errors() {
        let body = br#"{"error":{"code":"invalid_field","message":"bad cron","field":"schedule"}}"#;
        let err = api_error(StatusCode::BAD_REQUEST, body);
        assert_eq!(
            err,
            CliError::Api {
                status: 400,
                code: Some("invalid_field".into()),
                message: "bad cron".into(),
                field: Some("schedule".into()),
                hint: None,
            }
        );
        assert_eq!(err.exit_code(), 1);

        let missing = api_error(
            StatusCode::NOT_FOUND,
            br#"{"error":{"code":"not_found","message":"no job x","field":null}}"#,
        );
        assert_eq!(missing.exit_code(), 3);

        let proxy = api_error(StatusCode::BAD_GATEWAY, b"<html>\nBad gateway</html>");
        assert_eq!(proxy.exit_code(), 1);
        assert!(proxy.to_string().contains("<html>"), "{proxy}");
        let empty = api_error(StatusCode::SERVICE_UNAVAILABLE, b"");
        assert!(empty.to_string().contains("Service Unavailable"), "{empty}");
    }

    #[test]
    fn pages_and_arrays_parse_keeping_items_verbatim() {
        let page = parse_page(br#"{"items":[{"b":1,"a":2},{"id":"x"}],"next_cursor":"c2"}"#)
            .expect("page");
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.items[0].get(), r#"{"b":1,"a":2}"#);
        assert_eq!(page.next_cursor.as_deref(), Some("c2"));
        assert!(!page.is_array);

        let array = parse_page(b" [1, 2]").expect("array");
        assert!(array.is_array);
        assert_eq!(array.items.len(), 2);

        assert!(parse_page(b"{\"error\":{}}").is_err());
        assert!(parse_page(b"<html>").is_err());
    }

    #[test]
    fn listing_serializes_in_the_servers_shape() {
        let page = parse_page(br#"{"items":[{"b":1,"a":2}],"next_cursor":null}"#).expect("page");
        let listing = Listing {
            items: page.items,
            next_cursor: Some("n\"1".into()),
            is_array: false,
            more: true,
        };
        assert_eq!(
            listing.to_json(),
            r#"{"items":[{"b":1,"a":2}],"next_cursor":"n\"1"}"#
        );
        let values = listing.values().expect("values");
        assert_eq!(values[0]["a"], 2);
    }

    #[tokio::test]
    async fn unreachable_server_is_exit_code_4() {
        // A port nothing listens on: bind one, then free it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let api = Api::new(&format!("http://127.0.0.1:{port}"), Some("t"), &[]).expect("api");
        let err = api
            .get(api.url(&["v1", "cluster"], &[]))
            .await
            .expect_err("nothing listens");
        assert_eq!(err.exit_code(), 4, "{err}");
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }
}
