//! The dispatcher's HTTP: delivering runs to executors (MessagePack,
//! signed when a secret is set), asking them to kill, calling HTTP targets.

use std::{sync::Arc, time::Duration};

use protocol::{
    dispatch::{DispatchRequest, MSGPACK, SIGNATURE_HEADER},
    run::{tail, OUTPUT_LIMIT},
    signature, Run,
};

use super::core::{HttpCall, HttpResult};

/// How long an executor has to accept a dispatch.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Transport {
    pub client: reqwest::Client,
    /// Shared secret for the executor protocol's signatures.
    pub secret: Option<Arc<Vec<u8>>>,
}

impl Transport {
    fn signed(&self, builder: reqwest::RequestBuilder, body: &[u8]) -> reqwest::RequestBuilder {
        match &self.secret {
            Some(secret) => {
                let now = chrono::Utc::now().timestamp();
                builder.header(SIGNATURE_HEADER, signature::sign(secret, now, body))
            }
            None => builder,
        }
    }

    /// POSTs a signed body; anything but a 2xx is an error naming the status.
    async fn post(
        &self,
        url: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(), String> {
        let mut builder = self.client.post(url).timeout(DELIVERY_TIMEOUT);
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        let response = self
            .signed(builder, &body)
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(format!("HTTP {status}: {}", tail(&text, 512)))
    }

    pub async fn deliver(&self, endpoint: &str, request: &DispatchRequest) -> Result<(), String> {
        let body = protocol::wire::encode(request).map_err(|e| e.to_string())?;
        let url = format!("{}/v1/dispatch", endpoint.trim_end_matches('/'));
        self.post(&url, Some(MSGPACK), body).await
    }

    pub async fn kill(&self, endpoint: &str, run_id: &str) -> Result<(), String> {
        let url = format!("{}/v1/runs/{run_id}/kill", endpoint.trim_end_matches('/'));
        self.post(&url, None, Vec::new()).await
    }

    /// Posts `{"event": "run.<status>", "run": RUN}` to an alert webhook,
    /// signed like the executor protocol when a secret is set.
    pub async fn alert(&self, webhook: &str, run: &Run) -> Result<(), String> {
        let event = serde_json::json!({"event": format!("run.{}", run.status), "run": run});
        let body = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
        self.post(webhook, Some("application/json"), body).await
    }

    pub async fn call(&self, call: HttpCall) -> HttpResult {
        let method = match reqwest::Method::from_bytes(call.method.as_bytes()) {
            Ok(m) => m,
            Err(e) => return HttpResult::Failed(e.to_string()),
        };
        let mut builder = self.client.request(method, &call.url).timeout(call.timeout);
        for (name, value) in &call.headers {
            builder = builder.header(name, value);
        }
        if !call.body.is_empty() {
            builder = builder.body(call.body);
        }
        match builder.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.text().await {
                    Ok(body) => HttpResult::Answered {
                        status,
                        body: tail(&body, OUTPUT_LIMIT).to_string(),
                    },
                    Err(e) if e.is_timeout() => HttpResult::TimedOut,
                    Err(e) => HttpResult::Failed(e.to_string()),
                }
            }
            Err(e) if e.is_timeout() => HttpResult::TimedOut,
            Err(e) => HttpResult::Failed(e.to_string()),
        }
    }
}
