//! A small JSON client of the admin API.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

#[derive(Clone)]
pub struct Api {
    pub base: String,
    client: reqwest::Client,
    /// Sent as `Authorization: Bearer` when the node requires a token.
    token: Option<String>,
}

/// Status and JSON body (or the text as a JSON string) of an answer.
pub type Answer = (StatusCode, Value);

impl Api {
    pub fn new(base: impl Into<String>) -> Self {
        Self::with_client(base, reqwest::Client::builder())
    }

    /// A client that trusts the CA of `ca_pem` too, for an https:// node.
    pub fn trusting(base: impl Into<String>, ca_pem: &[u8]) -> Self {
        let ca = reqwest::Certificate::from_pem(ca_pem).expect("a PEM CA certificate");
        Self::with_client(base, reqwest::Client::builder().tls_certs_merge([ca]))
    }

    fn with_client(base: impl Into<String>, builder: reqwest::ClientBuilder) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = builder
            .timeout(Duration::from_secs(20))
            .build()
            .expect("static client config");
        Self {
            base: base.into(),
            client,
            token: None,
        }
    }

    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", content_type);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.raw(
            Method::POST,
            path,
            "application/json",
            body.to_string().into_bytes(),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.raw(
            Method::PUT,
            path,
            "application/json",
            body.to_string().into_bytes(),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.raw(Method::GET, path, "application/json", Vec::new())
            .await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.raw(Method::DELETE, path, "application/json", Vec::new())
            .await
    }

    /// Creates a job, panicking unless the API answers 201.
    pub async fn create_job(&self, job: Value) -> Value {
        let (status, body) = self.post("/v1/jobs", job).await;
        assert_eq!(status, StatusCode::CREATED, "create job: {body}");
        body
    }

    /// Every run of a job (up to 1000), newest first.
    pub async fn runs_of(&self, job: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/v1/runs?job={job}&limit=1000")).await;
        assert_eq!(status, StatusCode::OK, "list runs: {body}");
        body["items"].as_array().cloned().unwrap_or_default()
    }
}

/// Runs with the given status.
pub fn with_status<'a>(runs: &'a [Value], status: &str) -> Vec<&'a Value> {
    runs.iter().filter(|r| r["status"] == status).collect()
}

/// Asserts `answer` is the API's JSON error with `status`: a code and a
/// message, and returns its `error` object for further checks.
pub fn assert_error_answer(answer: &(StatusCode, Value), status: StatusCode) -> &Value {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert!(body["error"]["code"].is_string(), "{body}");
    assert!(
        !body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{body}"
    );
    &body["error"]
}
