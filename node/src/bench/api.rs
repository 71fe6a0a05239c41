//! The few admin-API requests the bench makes, over one pooled keep-alive
//! client, with errors that say which request failed.

use std::time::Duration;

use anyhow::Context;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

/// How long one status or list request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client of the admin APIs of the bench's nodes.
#[derive(Clone)]
pub struct Admin {
    client: reqwest::Client,
}

impl Default for Admin {
    fn default() -> Self {
        Self::new()
    }
}

impl Admin {
    pub fn new() -> Self {
        Self {
            // Without extra CAs there is nothing that can fail.
            client: actors::http_client::build_client(&[])
                .expect("a client trusting only the system's CAs"),
        }
    }

    /// `GET url`, decoded from JSON; any status but 2xx is an error.
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> anyhow::Result<T> {
        let body = self.get_ok(url, REQUEST_TIMEOUT).await?;
        serde_json::from_slice(&body).with_context(|| format!("GET {url}: unexpected answer"))
    }

    /// `GET url` as text, within `timeout`; any status but 2xx is an error.
    pub async fn get_text(&self, url: &str, timeout: Duration) -> anyhow::Result<String> {
        let body = self.get_ok(url, timeout).await?;
        String::from_utf8(body.to_vec()).with_context(|| format!("GET {url}: not UTF-8"))
    }

    /// The body of `GET url` within `timeout`; any status but 2xx is an
    /// error that quotes the body.
    async fn get_ok(&self, url: &str, timeout: Duration) -> anyhow::Result<bytes::Bytes> {
        let response = self
            .client
            .get(url)
            .timeout(timeout)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .with_context(|| format!("GET {url}: reading the answer"))?;
        if !status.is_success() {
            anyhow::bail!("GET {url}: {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body)
    }

    /// `GET url`: its status, or `None` when the node does not answer.
    pub async fn status(&self, url: &str) -> Option<StatusCode> {
        let response = self
            .client
            .get(url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        Some(response.status())
    }

    /// `POST url` with a JSON body: the status and the body's text.
    pub async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<(StatusCode, String), reqwest::Error> {
        let response = self
            .client
            .post(url)
            .timeout(REQUEST_TIMEOUT)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let status = response.status();
        Ok((status, response.text().await.unwrap_or_default()))
    }
}
