//! Report delivery: `POST {scheduler}/v1/internal/runs/{id}/report` with a
//! MessagePack `RunReport`, signed when a secret is configured. The final
//! report of a run is retried until a scheduler acknowledges it.

use std::time::Duration;

use protocol::dispatch::{RunReport, MSGPACK, SIGNATURE_HEADER};
use protocol::{signature_v2::audience_of, signing::Signer};
use reqwest::StatusCode;
use tokio::sync::Notify;

use super::report_frames::ReportFrames;

/// First pause between delivery attempts; it doubles up to the maximum.
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Longest a single report request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Exponential backoff: 100 ms, 200 ms, ... up to `max`.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(max: Duration) -> Self {
        Self {
            next: INITIAL_BACKOFF.min(max),
            max,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }

    pub fn reset(&mut self) {
        self.next = INITIAL_BACKOFF.min(self.max);
    }
}

/// How one attempt went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// Worth trying again (unreachable, 5xx, 408, 429).
    Retry(String),
    /// The scheduler refused the report for good (another 4xx).
    Refused(String),
}

/// How a delivery loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Delivered {
        attempts: u32,
    },
    Refused(String),
    /// Nothing to deliver any more (the run was forgotten, or has nowhere to report to).
    Abandoned(String),
}

/// Sends reports; cheap to clone.
#[derive(Clone)]
pub struct Reporter {
    client: reqwest::Client,
    /// Signs reports (protocol v2, for the scheduler posted to) and
    /// handler calls; `None` without a secret.
    signer: Option<Signer>,
    max_backoff: Duration,
    /// Reports share frames per scheduler.
    frames: ReportFrames,
}

impl Reporter {
    pub fn new(client: reqwest::Client, signer: Option<Signer>, max_backoff: Duration) -> Self {
        Self {
            client,
            signer,
            max_backoff,
            frames: ReportFrames::default(),
        }
    }

    /// The signer of this executor's outgoing requests, if it signs.
    pub fn signer(&self) -> Option<&Signer> {
        self.signer.as_ref()
    }

    /// A MessagePack POST of `body` to `path` of the scheduler at `base`,
    /// signed for that scheduler (its base URL is the audience).
    pub fn signed_post(&self, base: &str, path: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
        let audience = audience_of(base);
        let mut request = self
            .client
            .post(format!("{audience}{path}"))
            .timeout(REQUEST_TIMEOUT)
            .header(reqwest::header::CONTENT_TYPE, MSGPACK);
        if let Some(signer) = &self.signer {
            // Signed afresh on every attempt (a new nonce and time), so
            // retries stay inside the receiver's replay window and are not
            // taken for replays.
            request = request.header(
                SIGNATURE_HEADER,
                signer.header("POST", audience, path, &body),
            );
        }
        request.body(body)
    }

    /// Whether an error status is worth another attempt (5xx, 408, 429).
    pub fn is_transient(status: StatusCode) -> bool {
        status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
            || !status.is_client_error()
    }

    /// One attempt to one scheduler, in the next batch frame for it.
    pub async fn send(&self, base: &str, report: &RunReport) -> Attempt {
        self.frames.send(self, base, report.clone()).await
    }

    /// One attempt to one scheduler with the single-report route.
    pub async fn send_single(&self, base: &str, report: &RunReport) -> Attempt {
        let body = match protocol::wire::encode(report) {
            Ok(body) => body,
            Err(e) => return Attempt::Refused(format!("cannot encode the report: {e}")),
        };
        let path = format!("/v1/internal/runs/{}/report", report.run_id);
        let url = format!("{}{path}", audience_of(base));
        match self.signed_post(base, &path, body).send().await {
            Err(e) => Attempt::Retry(format!("{url}: {e}")),
            Ok(response) => {
                let status = response.status();
                if status.is_success() {
                    return Attempt::Delivered;
                }
                let text = response.text().await.unwrap_or_default();
                let reason = format!("{url} answered {status}: {}", text.trim());
                if Self::is_transient(status) {
                    Attempt::Retry(reason)
                } else {
                    Attempt::Refused(reason)
                }
            }
        }
    }

    /// One pass over `targets`, stopping at the first that accepts. For the
    /// `running` report, which a later final report supersedes anyway.
    pub async fn send_best_effort(&self, targets: &[String], report: &RunReport) -> bool {
        for base in targets {
            match self.send(base, report).await {
                Attempt::Delivered => return true,
                Attempt::Retry(reason) | Attempt::Refused(reason) => {
                    tracing::debug!(run_id = %report.run_id, "report not delivered: {reason}");
                }
            }
        }
        false
    }

    /// Delivers a final report, cycling through the targets with backoff
    /// until one accepts. `current` gives the targets and report to send on
    /// each pass (a repeated dispatch can change the targets); `wake` makes
    /// the loop retry at once.
    pub async fn deliver(
        &self,
        mut current: impl FnMut() -> Option<(Vec<String>, RunReport)>,
        wake: &Notify,
    ) -> Delivery {
        let mut backoff = Backoff::new(self.max_backoff);
        let mut attempts: u32 = 0;
        loop {
            let Some((targets, report)) = current() else {
                return Delivery::Abandoned("the run is no longer known".into());
            };
            if targets.is_empty() {
                return Delivery::Abandoned("the dispatch named no scheduler to report to".into());
            }
            for base in &targets {
                attempts = attempts.saturating_add(1);
                match self.send(base, &report).await {
                    Attempt::Delivered => return Delivery::Delivered { attempts },
                    Attempt::Refused(reason) => return Delivery::Refused(reason),
                    Attempt::Retry(reason) => {
                        // Loud on the first failure, then ever less often.
                        if attempts.is_power_of_two() {
                            tracing::warn!(
                                run_id = %report.run_id,
                                attempts,
                                "final report not delivered yet, will retry: {reason}"
                            );
                        } else {
                            tracing::debug!(run_id = %report.run_id, attempts, "report attempt failed: {reason}");
                        }
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff.next_delay()) => {}
                () = wake.notified() => backoff.reset(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(500));
        let delays: Vec<u128> = (0..5).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }
}
