//! Requests to one node's admin API: the reads of a refresh and the
//! actions keys ask for, with failures sorted into "unreachable" (try
//! another node) and "answered with an error" (show it).

use std::{fmt, time::Duration};

use reqwest::{
    header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE},
    Method,
};
use serde::de::DeserializeOwned;
use url::Url;

use crate::model::{Cluster, Executor, Job, Page, Run, Snapshot};

/// Longest a single request may take: a refresh is due every second, and a
/// node that does not answer within this is given up for another.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);
/// Longest wait for a TCP connection: a dead node should be noticed fast.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Jobs read per refresh (the API's largest page).
pub const JOB_LIMIT: usize = 1000;
/// Runs shown in the live stream.
pub const RUN_LIMIT: usize = 50;

#[derive(Clone, Debug, PartialEq)]
pub enum ApiError {
    /// No answer at all: the node is down, unreachable or too slow.
    Unreachable(String),
    /// The node answered with an error status; `message` is its own words.
    Status { status: u16, message: String },
    /// The answer was not the JSON expected.
    Decode(String),
}

impl ApiError {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ApiError::Unreachable(_))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unreachable(e) => write!(f, "unreachable: {e}"),
            ApiError::Status { status, message } => write!(f, "{status}: {message}"),
            ApiError::Decode(e) => write!(f, "unexpected answer: {e}"),
        }
    }
}

/// A client of one node. Cheap to clone: the HTTP client is shared.
#[derive(Clone, Debug)]
pub struct Api {
    client: reqwest::Client,
    /// Base URL of the node, e.g. `http://127.0.0.1:7070/`.
    base: Url,
    /// `Bearer TOKEN`, marked sensitive so it never shows in debug output.
    auth: Option<HeaderValue>,
}

/// Builds the HTTP client all nodes share, trusting the system's CAs and
/// `trusted`.
pub fn http_client(trusted: &[reqwest::Certificate]) -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a default crypto provider: install ring once
    // (an error only means one is installed already).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT);
    if !trusted.is_empty() {
        builder = builder.tls_certs_merge(trusted.iter().cloned());
    }
    Ok(builder.build()?)
}

/// `Bearer TOKEN` as a header value, refusing what cannot go in a header.
pub fn auth_header(token: Option<&str>) -> anyhow::Result<Option<HeaderValue>> {
    match token.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(token) => {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                anyhow::anyhow!("the token holds characters that cannot go in an HTTP header")
            })?;
            value.set_sensitive(true);
            Ok(Some(value))
        }
    }
}

/// Checks that `url` is an http(s) URL usable as a base.
pub fn parse_base(url: &str) -> anyhow::Result<Url> {
    let mut base = Url::parse(url.trim()).map_err(|e| {
        anyhow::anyhow!("{url:?} is not a URL ({e}); expected e.g. http://127.0.0.1:7070")
    })?;
    if !matches!(base.scheme(), "http" | "https") || !base.has_host() {
        anyhow::bail!("{url:?} is not an http:// or https:// URL");
    }
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    Ok(base)
}

impl Api {
    pub fn new(client: reqwest::Client, base: Url, auth: Option<HeaderValue>) -> Self {
        Self { client, base, auth }
    }

    /// The node's URL as the user wrote it (no trailing slash).
    pub fn url(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }

    /// The same client and token against another node.
    pub fn with_base(&self, base: Url) -> Self {
        Self {
            base,
            ..self.clone()
        }
    }

    pub async fn cluster(&self) -> Result<Cluster, ApiError> {
        self.get_json(&["v1", "cluster"], &[]).await
    }

    /// Cluster, executors, jobs and recent runs, all from this node.
    pub async fn snapshot(&self) -> Result<Snapshot, ApiError> {
        let cluster = self.cluster().await?;
        self.rest_of_snapshot(cluster).await
    }

    /// The reads of a refresh after `/v1/cluster` answered.
    pub async fn rest_of_snapshot(&self, cluster: Cluster) -> Result<Snapshot, ApiError> {
        let executors: Vec<Executor> = self.get_json(&["v1", "executors"], &[]).await?;
        let jobs: Page<Job> = self
            .get_json(&["v1", "jobs"], &[("limit", JOB_LIMIT.to_string())])
            .await?;
        let runs: Page<Run> = self
            .get_json(&["v1", "runs"], &[("limit", RUN_LIMIT.to_string())])
            .await?;
        Ok(Snapshot {
            cluster,
            executors,
            jobs: jobs.items,
            runs: runs.items,
        })
    }

    /// The run and its output (live from the executor while it runs).
    pub async fn run_with_output(&self, id: &str) -> Result<(Run, String), ApiError> {
        let run: Run = self.get_json(&["v1", "runs", id], &[]).await?;
        let output = match self
            .send(Method::GET, &["v1", "runs", id, "output"], &[], None)
            .await
        {
            Ok(body) => String::from_utf8_lossy(&body).into_owned(),
            Err(_) => run.output.clone(),
        };
        Ok((run, output))
    }

    /// Runs the job now; answers the ids of the runs created.
    pub async fn trigger(&self, namespace: &str, job: &str) -> Result<Vec<String>, ApiError> {
        let body = self
            .send(
                Method::POST,
                &["v1", "jobs", job, "trigger"],
                &ns_query(namespace),
                Some(b"{}".to_vec()),
            )
            .await?;
        let answer: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| ApiError::Decode(e.to_string()))?;
        let id_of = |run: &serde_json::Value| run.get("id")?.as_str().map(str::to_string);
        Ok(match answer.get("runs").and_then(|r| r.as_array()) {
            Some(runs) => runs.iter().filter_map(id_of).collect(),
            None => id_of(&answer).into_iter().collect(),
        })
    }

    /// Pauses (`enabled == false`) or resumes the job's schedule.
    pub async fn set_enabled(
        &self,
        namespace: &str,
        job: &str,
        enabled: bool,
    ) -> Result<(), ApiError> {
        let verb = if enabled { "resume" } else { "pause" };
        self.send(
            Method::POST,
            &["v1", "jobs", job, verb],
            &ns_query(namespace),
            None,
        )
        .await
        .map(drop)
    }

    /// Asks the scheduler to kill an active run; answers the run as it is then.
    pub async fn kill(&self, run_id: &str) -> Result<Run, ApiError> {
        let body = self
            .send(Method::POST, &["v1", "runs", run_id, "kill"], &[], None)
            .await?;
        serde_json::from_slice(&body).map_err(|e| ApiError::Decode(e.to_string()))
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        let body = self.send(Method::GET, segments, query, None).await?;
        serde_json::from_slice(&body).map_err(|e| ApiError::Decode(e.to_string()))
    }

    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        json: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, ApiError> {
        // A POST says it is JSON even when empty: the node refuses POSTs
        // typed as a web page could type them.
        let typed = json.is_some() || method == Method::POST;
        let mut request = self.client.request(method, self.endpoint(segments, query));
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        if typed {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        if let Some(body) = json {
            request = request.body(body);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport)?;
        if status.is_success() {
            Ok(body.to_vec())
        } else {
            Err(ApiError::Status {
                status: status.as_u16(),
                message: error_message(&body),
            })
        }
    }

    /// `base/seg/seg?k=v`, each segment percent-encoded (ids may hold `/`).
    fn endpoint(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }
}

fn ns_query(namespace: &str) -> Vec<(&'static str, String)> {
    vec![("namespace", namespace.to_string())]
}

fn transport(e: reqwest::Error) -> ApiError {
    let what = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection refused or failed".to_string()
    } else {
        e.to_string()
    };
    ApiError::Unreachable(what)
}

/// The `message` of an `{"error": {...}}` body, else the body's text.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| {
            String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(200)
                .collect()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(base: &str) -> Api {
        let base = parse_base(base).expect("base");
        Api::new(http_client(&[]).expect("client"), base, None)
    }

    #[test]
    fn endpoints_encode_ids_and_keep_a_base_path() {
        let a = api("http://h:7070");
        assert_eq!(
            a.endpoint(
                &["v1", "jobs", "a/b", "trigger"],
                &[("namespace", "ops".into())]
            )
            .as_str(),
            "http://h:7070/v1/jobs/a%2Fb/trigger?namespace=ops"
        );
        let behind_proxy = api("https://h/cronmesh");
        assert_eq!(
            behind_proxy.endpoint(&["v1", "cluster"], &[]).as_str(),
            "https://h/cronmesh/v1/cluster"
        );
        assert_eq!(behind_proxy.url(), "https://h/cronmesh");
    }

    #[test]
    fn refuses_what_is_not_an_http_url() {
        assert!(parse_base("localhost:7070").is_err());
        assert!(parse_base("ftp://h").is_err());
        assert!(auth_header(Some("bad\ntoken")).is_err());
        assert!(auth_header(Some("  ")).expect("blank").is_none());
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_message(br#"{"error":{"code":"not_found","message":"no run x","field":null}}"#),
            "no run x"
        );
        assert_eq!(error_message(b"Bad Gateway"), "Bad Gateway");
    }
}
