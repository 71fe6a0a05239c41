//! Sends cluster alerts (see `watch`) to the node's own destinations
//! (`--alert-webhook`, `--alert-email`), retried like run alerts. They
//! need no leader (one of them says there is none), so they confirm no
//! lease and are recorded only in the node's log.

use std::sync::Arc;

use protocol::alert::{redact_url, Webhook, WebhookFormat};
use serde_json::Value;

use super::{
    format,
    mail::Mailer,
    retry::{wait_before, Attempt},
    watch::ClusterAlert,
};

/// Most cluster alert deliveries on their way at once; past it an alert
/// is dropped with a warning.
const MAX_PENDING: usize = 64;
/// How long one webhook call may take.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Most of an answer kept in an error.
const MAX_ANSWER_SHOWN: usize = 200;

/// The node's alert destinations.
#[derive(Clone)]
pub struct ClusterAlertSink {
    client: reqwest::Client,
    mailer: Option<Arc<Mailer>>,
    webhooks: Vec<Webhook>,
    emails: Vec<String>,
    pending: Arc<tokio::sync::Semaphore>,
}

impl ClusterAlertSink {
    pub fn new(
        client: reqwest::Client,
        mailer: Option<Arc<Mailer>>,
        webhooks: Vec<Webhook>,
        emails: Vec<String>,
    ) -> Self {
        Self {
            client,
            mailer,
            webhooks,
            emails,
            pending: Arc::new(tokio::sync::Semaphore::new(MAX_PENDING)),
        }
    }

    /// Whether any destination is set.
    pub fn is_empty(&self) -> bool {
        self.webhooks.is_empty() && self.emails.is_empty()
    }

    /// Starts delivering `alert` to every destination; returns at once.
    pub fn send(&self, alert: &ClusterAlert) {
        tracing::warn!(
            event = alert.condition.event(),
            state = alert.state.as_str(),
            detail = %alert.detail,
            "cluster alert"
        );
        for hook in &self.webhooks {
            let body = match hook.format() {
                WebhookFormat::Json => alert.json(),
                WebhookFormat::Slack => format::slack(&alert.message()),
                WebhookFormat::Teams => format::teams(&alert.message()),
            };
            let client = self.client.clone();
            let url = hook.url().to_string();
            self.spawn(redact_url(&url), move || {
                let client = client.clone();
                let url = url.clone();
                let body = body.clone();
                async move { post_json(&client, &url, &body).await }
            });
        }
        if self.emails.is_empty() {
            return;
        }
        let Some(mailer) = self.mailer.clone() else {
            tracing::warn!(
                "cluster alert e-mail is not sent: no SMTP server is configured (--smtp-url)"
            );
            return;
        };
        let (subject, body) = format::mail(&alert.message());
        for to in &self.emails {
            let mailer = mailer.clone();
            let to = to.clone();
            let subject = subject.clone();
            let body = body.clone();
            self.spawn(to.clone(), move || {
                let mailer = mailer.clone();
                let to = to.clone();
                let subject = subject.clone();
                let body = body.clone();
                async move { mailer.send(&to, &subject, body).await }
            });
        }
    }

    fn spawn<F, Fut>(&self, target: String, attempt: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Attempt> + Send + 'static,
    {
        let Ok(permit) = self.pending.clone().try_acquire_owned() else {
            tracing::warn!(
                target,
                "too many cluster alerts on their way; this one is dropped"
            );
            return;
        };
        tokio::spawn(async move {
            let mut number = 1;
            loop {
                let outcome = attempt().await;
                match outcome.error() {
                    None => tracing::info!(target, attempt = number, "cluster alert delivered"),
                    Some(error) => {
                        tracing::warn!(target, attempt = number, %error, "cluster alert not delivered")
                    }
                }
                match wait_before(number + 1, &outcome) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => break,
                }
                number += 1;
            }
            drop(permit);
        });
    }
}

async fn post_json(client: &reqwest::Client, url: &str, body: &Value) -> Attempt {
    let body = match serde_json::to_vec(body) {
        Ok(body) => body,
        Err(e) => return Attempt::Permanent(e.to_string()),
    };
    let sent = client
        .post(url)
        .timeout(CALL_TIMEOUT)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(mut response) => {
            let status = response.status().as_u16();
            // Only the start of the answer is read.
            let mut answer = Vec::new();
            while answer.len() < MAX_ANSWER_SHOWN {
                match response.chunk().await {
                    Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            answer.truncate(MAX_ANSWER_SHOWN);
            Attempt::of_status(status, String::from_utf8_lossy(&answer).trim())
        }
        Err(e) => Attempt::Transient(protocol::alert::scrub_url(
            &crate::http_client::causes(&e).join(": "),
            url,
        )),
    }
}
