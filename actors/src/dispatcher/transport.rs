//! The dispatcher's HTTP: delivering runs to executors (MessagePack,
//! signed when a secret is set), asking them to kill, calling HTTP targets
//! and alert webhooks. Every request confirms the leader lease immediately
//! before it leaves, and an executor's stale-term refusal revokes it.
//! No answer is read into memory whole: an HTTP target's body is streamed
//! and only its tail (the run's output limit) kept; an executor's or a
//! webhook's answer is read up to `MAX_ANSWER` bytes.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures::future::join_all;
use protocol::{
    dispatch::{
        DispatchBatchAck, DispatchRequest, DispatchResult, KillRequest, MSGPACK, SIGNATURE_HEADER,
        STALE_TERM_STATUS, TERM_HEADER,
    },
    keys::{self, KeyUse},
    run::{tail, OutputTail, OUTPUT_LIMIT},
    signature,
    signature_v2::audience_of,
    signing::{Signer, V1Compat},
};
use reqwest::StatusCode;
use tokio::{sync::Semaphore, time::Instant};

use super::{
    core::{HttpCall, HttpResult},
    phase::SendOutcome,
};
use crate::{http_client::describe, lease::Lease};

/// How long an executor has to accept a dispatch.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// How much earlier than wanted the runtime's timer is set, so that its
/// rounding up to the next millisecond never makes a send late.
const TIMER_SLACK: Duration = Duration::from_millis(2);
/// Most yields while waiting out the slack (far more than 2 ms takes).
const MAX_YIELDS: u32 = 1_000_000;
/// Most runs in one batch frame.
const MAX_FRAME_RUNS: usize = 256;
/// Most frames in flight to one executor; more wait for a free slot, so a
/// slow executor sees bounded load and a burst queues in the scheduler.
const MAX_FRAMES_IN_FLIGHT: usize = 4;

/// Largest answer read from an executor or an alert webhook: a batch
/// acknowledgement of `MAX_FRAME_RUNS` runs is far smaller, and a webhook
/// is any URL a job names, which may answer without end.
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// The result of delivering one run.
pub type Delivered = (String, SendOutcome);

/// Why a request did not get a 2xx answer.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PostError {
    /// Nothing left this node: the lease did not hold.
    NotLeading,
    /// The executor refused a stale term: this node was deposed.
    StaleTerm(u64),
    /// The connection was never made; the peer got nothing.
    NotSent(String),
    /// The peer answered with this status and text.
    Answered(StatusCode, String),
    /// The request may have arrived; the answer did not.
    Unknown(String),
}

impl PostError {
    fn into_outcome(self) -> SendOutcome {
        match self {
            PostError::NotLeading | PostError::StaleTerm(_) => SendOutcome::NotLeading,
            PostError::NotSent(e) => SendOutcome::Refused(e),
            answered @ PostError::Answered(..) => SendOutcome::Refused(answered.to_string()),
            PostError::Unknown(e) => SendOutcome::Unknown(e),
        }
    }
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostError::NotLeading => f.write_str("this node's leader lease does not hold"),
            PostError::StaleTerm(term) => write!(f, "the peer has seen a newer leader term {term}"),
            PostError::NotSent(e) | PostError::Unknown(e) => f.write_str(e),
            PostError::Answered(status, text) => write!(f, "HTTP {status}: {}", tail(text, 512)),
        }
    }
}

/// Sorts a failed request: a connection never made sent nothing; any
/// other failure may have delivered it.
fn classify(e: &reqwest::Error) -> PostError {
    if e.is_connect() {
        PostError::NotSent(describe(e))
    } else {
        PostError::Unknown(describe(e))
    }
}

#[derive(Clone)]
pub struct Transport {
    pub client: reqwest::Client,
    /// Signs executor-protocol requests (version 2, with version 1
    /// appended while `--send-v1-signatures`); unsigned when `None`.
    pub signer: Option<Arc<Signer>>,
    /// The webhook key of the cluster secret: alert webhooks of the `json`
    /// format are signed with it, never with the secret or the executor
    /// protocol's key, so a receiver cannot forge executor traffic.
    pub webhook_key: Option<[u8; 32]>,
    /// Per-executor state of batch delivery.
    pub peers: Arc<Peers>,
    /// Confirmed immediately before anything leaves.
    pub lease: Arc<Lease>,
    /// Kill requests and alert webhooks on their way at once. They go one
    /// request per run: a burst of runs timed out or replaced must not
    /// open a connection each and run the process out of descriptors,
    /// which the log's own files need.
    pub side_requests: Arc<tokio::sync::Semaphore>,
    /// Alert destinations being delivered or waiting to retry: past this
    /// many, further alerts are dropped, so a storm of failures cannot
    /// pile up tasks without end.
    pub alert_backlog: Arc<tokio::sync::Semaphore>,
    /// Sends alert e-mail; `None` without `--smtp-url`.
    pub mailer: Option<Arc<crate::alerts::Mailer>>,
    /// Alert attempts on their way into the log.
    pub alert_records: crate::alerts::record::Recorder,
}

/// Most alert destinations on their way (retries included) at once.
const MAX_ALERTS_PENDING: usize = 1024;
/// Most of a webhook's answer kept in a failed attempt's error.
const MAX_ALERT_ANSWER_SHOWN: usize = 200;

/// Most kill requests and alert webhooks in flight at once.
const MAX_SIDE_REQUESTS: usize = 32;

/// What the transport learned about each executor endpoint.
#[derive(Default)]
pub struct Peers {
    /// Bounds the frames in flight per endpoint.
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Endpoints that answered 404 or 405 to a batch: executors that speak
    /// only the single-run dispatch, sent one request per run.
    single_only: Mutex<HashSet<String>>,
}

impl Peers {
    fn slots(&self, endpoint: &str) -> Arc<Semaphore> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(endpoint.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(MAX_FRAMES_IN_FLIGHT)))
            .clone()
    }

    fn is_single_only(&self, endpoint: &str) -> bool {
        let single = self.single_only.lock().unwrap_or_else(|p| p.into_inner());
        single.contains(endpoint)
    }

    fn mark_single_only(&self, endpoint: &str) {
        let mut single = self.single_only.lock().unwrap_or_else(|p| p.into_inner());
        if single.insert(endpoint.to_string()) {
            tracing::info!(
                endpoint,
                "executor has no batch dispatch; sending it one run per request"
            );
        }
    }
}

/// A [`protocol::dispatch::DispatchBatch`] of borrowed runs: the same bytes on the wire,
/// without copying every run to encode it.
#[derive(serde::Serialize)]
struct FrameRef<'a> {
    runs: &'a [DispatchRequest],
}

/// How a batch frame went as a whole.
enum FrameOutcome {
    Answered(Vec<Delivered>),
    /// The executor does not know the batch route.
    Unsupported,
    Failed(PostError),
}

impl Transport {
    pub fn new(
        client: reqwest::Client,
        secret: Option<Vec<u8>>,
        compat: V1Compat,
        lease: Arc<Lease>,
    ) -> Self {
        Self {
            client,
            signer: secret
                .as_deref()
                .map(|secret| Arc::new(Signer::new(secret, compat))),
            webhook_key: secret
                .as_deref()
                .map(|secret| keys::derive(secret, KeyUse::Webhook)),
            peers: Arc::default(),
            lease,
            side_requests: Arc::new(tokio::sync::Semaphore::new(MAX_SIDE_REQUESTS)),
            alert_backlog: Arc::new(tokio::sync::Semaphore::new(MAX_ALERTS_PENDING)),
            mailer: None,
            alert_records: Default::default(),
        }
    }

    /// Alert e-mail goes through `mailer`.
    pub fn with_mailer(mut self, mailer: Option<crate::alerts::Mailer>) -> Self {
        self.mailer = mailer.map(Arc::new);
        self
    }

    /// A place for one more alert destination, if the backlog has room.
    pub fn alert_place(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.alert_backlog.clone().try_acquire_owned().ok()
    }

    /// A place among the side requests; `None` once shut down.
    pub async fn side_place(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.side_request_slot().await.ok()
    }

    /// Whether this node still leads in `term`, right before an e-mail leaves.
    pub async fn confirms(&self, term: u64) -> bool {
        self.confirm(term).await.is_ok()
    }

    /// A place among the side requests in flight (see `side_requests`).
    async fn side_request_slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, String> {
        self.side_requests
            .acquire()
            .await
            .map_err(|_| "the transport is shut down".to_string())
    }

    /// Confirms the lease of `term` right before a request leaves.
    async fn confirm(&self, term: u64) -> Result<(), PostError> {
        self.lease
            .confirm(term)
            .await
            .map_err(|_| PostError::NotLeading)
    }

    /// Sends a built request and sorts its answer. A stale-term refusal
    /// revokes this node's lease on the spot.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(Option<String>, bytes::Bytes), PostError> {
        let response = request.send().await.map_err(|e| classify(&e))?;
        let status = response.status();
        if status.as_u16() == STALE_TERM_STATUS {
            let seen = response
                .headers()
                .get(TERM_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(seen) = seen {
                tracing::warn!(seen, "an executor has seen a newer leader term");
                self.lease.superseded(seen);
                return Err(PostError::StaleTerm(seen));
            }
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = read_capped(response, MAX_ANSWER).await?;
        if !status.is_success() {
            return Err(PostError::Answered(
                status,
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
        Ok((content_type, bytes))
    }

    /// Delivers `requests` to one executor in batch frames (at most
    /// `MAX_FRAMES_IN_FLIGHT` at a time), one result per run.
    /// With `not_before`, every frame is built and encoded at once but
    /// sent only from that instant (a slot's runs are prepared just ahead
    /// of it, so only the sending is left when it comes).
    pub async fn deliver_batch(
        &self,
        endpoint: &str,
        requests: Vec<DispatchRequest>,
        not_before: Option<Instant>,
    ) -> Vec<Delivered> {
        let mut frames = Vec::new();
        let mut requests = requests.into_iter().peekable();
        while requests.peek().is_some() {
            let frame: Vec<DispatchRequest> = requests.by_ref().take(MAX_FRAME_RUNS).collect();
            frames.push(self.deliver_frame(endpoint, frame, not_before));
        }
        join_all(frames).await.into_iter().flatten().collect()
    }

    async fn deliver_frame(
        &self,
        endpoint: &str,
        frame: Vec<DispatchRequest>,
        not_before: Option<Instant>,
    ) -> Vec<Delivered> {
        if !self.peers.is_single_only(endpoint) {
            let outcome = self.post_frame(endpoint, &frame, not_before).await;
            match outcome {
                FrameOutcome::Answered(results) => return results,
                FrameOutcome::Failed(e) => {
                    let outcome = e.into_outcome();
                    return frame
                        .into_iter()
                        .map(|r| (r.run_id, outcome.clone()))
                        .collect();
                }
                FrameOutcome::Unsupported => self.peers.mark_single_only(endpoint),
            }
        }
        if let Some(at) = not_before {
            wait_until(at).await;
        }
        let singles = frame.into_iter().map(|request| async move {
            let outcome = match self.deliver(endpoint, &request).await {
                Ok(()) => SendOutcome::Accepted,
                Err(e) => e.into_outcome(),
            };
            (request.run_id, outcome)
        });
        join_all(singles).await
    }

    /// Encodes and signs a frame, waits for `not_before` and a free slot
    /// towards the executor, then sends it.
    async fn post_frame(
        &self,
        endpoint: &str,
        frame: &[DispatchRequest],
        not_before: Option<Instant>,
    ) -> FrameOutcome {
        let body = match protocol::wire::encode(&FrameRef { runs: frame }) {
            Ok(body) => body,
            Err(e) => return FrameOutcome::Failed(PostError::NotSent(e.to_string())),
        };
        let path = "/v1/dispatch/batch";
        let url = format!("{}{path}", audience_of(endpoint));
        let builder = self
            .client
            .post(&url)
            .timeout(DELIVERY_TIMEOUT)
            .header("content-type", MSGPACK);
        let request = self.signed(builder, endpoint, path, &body).body(body);
        if let Some(at) = not_before {
            wait_until(at).await;
        }
        let term = frame.first().map_or(0, |r| r.term);
        let slots = self.peers.slots(endpoint);
        let permit = slots.acquire().await;
        // Checked after every wait, as late as it can be.
        if let Err(e) = self.confirm(term).await {
            return FrameOutcome::Failed(e);
        }
        let answered = self.exchange(request).await;
        drop(permit);
        let (content_type, bytes) = match answered {
            Ok(answer) => answer,
            Err(PostError::Answered(StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED, _)) => {
                return FrameOutcome::Unsupported
            }
            Err(e) => return FrameOutcome::Failed(e),
        };
        let ack: DispatchBatchAck =
            match protocol::wire::decode_body(content_type.as_deref(), &bytes) {
                Ok(ack) => ack,
                Err(e) => {
                    return FrameOutcome::Failed(PostError::Unknown(format!(
                        "unreadable batch answer: {e}"
                    )))
                }
            };
        FrameOutcome::Answered(match_results(frame, ack.results))
    }

    /// `builder`, a POST to `endpoint` at `path`, signed for that executor.
    fn signed(
        &self,
        builder: reqwest::RequestBuilder,
        endpoint: &str,
        path: &str,
        body: &[u8],
    ) -> reqwest::RequestBuilder {
        match &self.signer {
            Some(signer) => builder.header(
                SIGNATURE_HEADER,
                signer.header("POST", audience_of(endpoint), path, body),
            ),
            None => builder,
        }
    }

    /// POSTs a signed body once the lease of `term` holds; anything but a
    /// 2xx is an error.
    async fn post(
        &self,
        endpoint: &str,
        path: &str,
        body: Vec<u8>,
        term: u64,
    ) -> Result<(), PostError> {
        let url = format!("{}{path}", audience_of(endpoint));
        let builder = self
            .client
            .post(url)
            .timeout(DELIVERY_TIMEOUT)
            .header("content-type", MSGPACK);
        let request = self.signed(builder, endpoint, path, &body).body(body);
        self.confirm(term).await?;
        self.exchange(request).await.map(|_| ())
    }

    /// Delivers one run with the single-run dispatch.
    async fn deliver(&self, endpoint: &str, request: &DispatchRequest) -> Result<(), PostError> {
        let body =
            protocol::wire::encode(request).map_err(|e| PostError::NotSent(e.to_string()))?;
        self.post(endpoint, "/v1/dispatch", body, request.term)
            .await
    }

    /// Asks an executor to kill a run, as the leader of `term`.
    pub async fn kill(&self, endpoint: &str, run_id: &str, term: u64) -> Result<(), String> {
        let path = format!("/v1/runs/{run_id}/kill");
        let body = protocol::wire::encode(&KillRequest { term }).map_err(|e| e.to_string())?;
        let _slot = self.side_request_slot().await?;
        self.post(endpoint, &path, body, term)
            .await
            .map_err(|e| e.to_string())
    }

    /// One attempt to post an alert `body` to a webhook, as the leader of
    /// `term`. The `json` format is signed with the webhook key when a
    /// secret is set (docs/API.md); Slack and Teams take their bodies
    /// unsigned.
    pub async fn alert_attempt(
        &self,
        webhook: &str,
        format: protocol::alert::WebhookFormat,
        body: &serde_json::Value,
        term: u64,
    ) -> crate::alerts::retry::Attempt {
        use crate::alerts::retry::Attempt;
        let body = match serde_json::to_vec(body) {
            Ok(body) => body,
            Err(e) => return Attempt::Permanent(e.to_string()),
        };
        let Ok(_slot) = self.side_request_slot().await else {
            return Attempt::NotLeading;
        };
        let builder = self
            .client
            .post(webhook)
            .timeout(DELIVERY_TIMEOUT)
            .header("content-type", "application/json");
        let builder = match format {
            protocol::alert::WebhookFormat::Json => match &self.webhook_key {
                Some(key) => builder.header(
                    SIGNATURE_HEADER,
                    signature::sign(key, chrono::Utc::now().timestamp(), &body),
                ),
                None => builder,
            },
            _ => builder,
        };
        if self.confirm(term).await.is_err() {
            return Attempt::NotLeading;
        }
        match self.exchange(builder.body(body)).await {
            Ok(_) => Attempt::Delivered,
            Err(PostError::NotLeading | PostError::StaleTerm(_)) => Attempt::NotLeading,
            Err(PostError::NotSent(e) | PostError::Unknown(e)) => {
                Attempt::Transient(protocol::alert::scrub_url(&e, webhook))
            }
            Err(PostError::Answered(status, text)) => Attempt::of_status(
                status.as_u16(),
                protocol::run::tail(&text, MAX_ALERT_ANSWER_SHOWN).trim(),
            ),
        }
    }

    /// Calls a slot's HTTP targets together at the slot, never before, as
    /// the leader of `term`: each request is built first, the lease is
    /// confirmed once the slot has come, then every call leaves at once.
    /// `None` when the lease did not hold, so nothing was called.
    pub async fn call_at(
        &self,
        calls: Vec<(String, HttpCall)>,
        not_before: DateTime<Utc>,
        term: u64,
    ) -> Option<Vec<(String, HttpResult)>> {
        let built: Vec<(String, Result<reqwest::Request, HttpResult>)> = calls
            .into_iter()
            .map(|(run_id, call)| (run_id, self.build_call(call)))
            .collect();
        hold_until(not_before).await;
        if self.confirm(term).await.is_err() {
            return None;
        }
        let sent = built.into_iter().map(|(run_id, request)| async move {
            let result = match request {
                Ok(request) => self.execute_call(request).await,
                Err(failed) => failed,
            };
            (run_id, result)
        });
        Some(join_all(sent).await)
    }

    fn build_call(&self, call: HttpCall) -> Result<reqwest::Request, HttpResult> {
        let method = reqwest::Method::from_bytes(call.method.as_bytes())
            .map_err(|e| HttpResult::Failed(e.to_string()))?;
        let mut builder = self.client.request(method, &call.url).timeout(call.timeout);
        for (name, value) in &call.headers {
            builder = builder.header(name, value);
        }
        if !call.body.is_empty() {
            builder = builder.body(call.body);
        }
        builder
            .build()
            .map_err(|e| HttpResult::Failed(describe(&e)))
    }

    async fn execute_call(&self, request: reqwest::Request) -> HttpResult {
        match self.client.execute(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                match read_tail(response, OUTPUT_LIMIT).await {
                    Ok(body) => HttpResult::Answered { status, body },
                    Err(e) if e.is_timeout() => HttpResult::TimedOut,
                    Err(e) => HttpResult::Failed(describe(&e)),
                }
            }
            Err(e) if e.is_timeout() => HttpResult::TimedOut,
            Err(e) => HttpResult::Failed(describe(&e)),
        }
    }
}

/// An answer's whole body, up to `cap` bytes; a longer one is an error
/// (the request arrived; its answer is unusable) and is not read further.
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<bytes::Bytes, PostError> {
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| PostError::Unknown(describe(&e)))?
    {
        if body.len() + chunk.len() > cap {
            return Err(PostError::Unknown(format!(
                "the answer is longer than {cap} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The last `limit` bytes of an answer's body, as text. The body is read
/// a chunk at a time and only its tail kept: a target may answer
/// gigabytes, for as long as the call's timeout (which covers the body)
/// allows, and the run keeps no more than its output limit anyway.
async fn read_tail(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<String, reqwest::Error> {
    let mut kept = OutputTail::with_limit(limit);
    while let Some(chunk) = response.chunk().await? {
        kept.push(&chunk);
    }
    Ok(kept.text())
}

/// Resolves once the system clock reads `at` or later: a slot's call never
/// leaves before its slot on this node's clock, whatever the runtime's
/// timer rounding. Sleeps to just short of it, then waits out the rest as
/// `wait_until` does.
async fn hold_until(at: DateTime<Utc>) {
    loop {
        let ahead = at - Utc::now();
        let Ok(ahead) = ahead.to_std() else { return };
        if ahead.is_zero() {
            return;
        }
        wait_until(Instant::now() + ahead).await;
    }
}

/// Resolves at `at`, to well under a millisecond: the
/// runtime's timer only counts whole milliseconds, so it sleeps to just
/// short of `at` and yields until then.
async fn wait_until(at: Instant) {
    if at.saturating_duration_since(Instant::now()) > TIMER_SLACK {
        tokio::time::sleep_until(at - TIMER_SLACK).await;
    }
    // Bounded: under a paused test clock time does not pass while this
    // task keeps yielding, so it ends in an ordinary sleep.
    for _ in 0..MAX_YIELDS {
        if Instant::now() >= at {
            return;
        }
        tokio::task::yield_now().await;
    }
    tokio::time::sleep_until(at).await;
}

/// One result per run of `frame`: the executor's answer where it gave one,
/// an error where it left a run out.
fn match_results(frame: &[DispatchRequest], results: Vec<DispatchResult>) -> Vec<Delivered> {
    let mut answered: HashMap<String, SendOutcome> = results
        .into_iter()
        .map(|result| match result {
            DispatchResult::Accepted { run_id, .. } => (run_id, SendOutcome::Accepted),
            DispatchResult::Refused { run_id, reason } => (run_id, SendOutcome::Refused(reason)),
            DispatchResult::Busy { run_id, reason } => (run_id, SendOutcome::Busy(reason)),
        })
        .collect();
    frame
        .iter()
        .map(|request| {
            let result = answered.remove(&request.run_id).unwrap_or_else(|| {
                SendOutcome::Refused("the executor's batch answer left this run out".to_string())
            });
            (request.run_id.clone(), result)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use protocol::dispatch::{DispatchBatch, Task};

    use super::*;

    #[test]
    fn a_borrowed_frame_encodes_as_a_batch() {
        let run = DispatchRequest {
            run_id: "r".into(),
            job_id: "j".into(),
            namespace: "default".into(),
            scheduled_at: chrono::Utc::now(),
            attempt: 1,
            shard: Default::default(),
            params: String::new(),
            task: Task::Handler {
                handler: "noop".into(),
            },
            timeout_ms: 1000,
            report_to: vec!["http://127.0.0.1:7070".into()],
            term: 0,
            expires_at: None,
            parent_run_ids: Vec::new(),
            parent_scheduled_at: None,
        };
        let runs = vec![run.clone(), run];
        let borrowed = protocol::wire::encode(&FrameRef { runs: &runs }).unwrap();
        let owned = protocol::wire::encode(&DispatchBatch { runs }).unwrap();
        assert_eq!(borrowed, owned);
    }

    /// An executor that answers every request after `hold`, noting how
    /// many it had open at once.
    async fn slow_executor(
        hold: std::time::Duration,
    ) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (open, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let seen = most.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (open, most) = (open.clone(), most.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 {
                            return;
                        }
                        let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(hold).await;
                        open.fetch_sub(1, Ordering::SeqCst);
                        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, seen)
    }

    #[tokio::test]
    async fn a_burst_of_kills_keeps_a_bounded_number_of_requests_open() {
        let (url, most) = slow_executor(std::time::Duration::from_millis(20)).await;
        let client = crate::http_client::build_client(&[]).expect("a client");
        let transport = Transport::new(
            client,
            None,
            V1Compat::default(),
            Arc::new(Lease::unbounded(1)),
        );
        let kills = (0..200).map(|i| {
            let (transport, url) = (transport.clone(), url.clone());
            tokio::spawn(async move { transport.kill(&url, &format!("run-{i}"), 1).await })
        });
        for kill in futures::future::join_all(kills).await {
            kill.expect("joined")
                .expect("every kill is answered in the end");
        }
        let most = most.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            (1..=MAX_SIDE_REQUESTS).contains(&most),
            "{most} kill requests were open at once"
        );
    }
}
