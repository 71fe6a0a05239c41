//! Batched report delivery: reports bound for the same scheduler share
//! `POST /v1/internal/reports` frames. Each scheduler URL has one queue
//! and one task that takes whatever has queued up while the previous frame
//! was in flight, so one report goes out at once and a burst goes out in
//! a few frames. Schedulers without the batch route get single reports.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
};

use protocol::dispatch::{ReportBatch, ReportBatchAck, ReportResult, RunReport};
use reqwest::StatusCode;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::reporter::{Attempt, Reporter};

/// Most reports in one frame.
const MAX_FRAME_REPORTS: usize = 1024;
/// Most encoded output bytes in one frame, well under a scheduler's body limit.
const MAX_FRAME_OUTPUT_BYTES: usize = 256 * 1024;
/// Most frames in flight to one scheduler.
const MAX_FRAMES_IN_FLIGHT: usize = 4;

struct Queued {
    report: RunReport,
    reply: oneshot::Sender<Attempt>,
}

/// The report queues, one per scheduler URL; cheap to clone.
#[derive(Clone, Default)]
pub struct ReportFrames {
    queues: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Queued>>>>,
}

impl ReportFrames {
    /// Sends `report` to `base` in the next frame and says how it went.
    pub async fn send(&self, reporter: &Reporter, base: &str, report: RunReport) -> Attempt {
        let (reply, answer) = oneshot::channel();
        let queued = Queued { report, reply };
        if let Err(mpsc::error::SendError(queued)) = self.queue(reporter, base).send(queued) {
            return reporter.send_single(base, &queued.report).await;
        }
        answer
            .await
            .unwrap_or_else(|_| Attempt::Retry("the report queue stopped".into()))
    }

    fn queue(&self, reporter: &Reporter, base: &str) -> mpsc::UnboundedSender<Queued> {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(queue) = queues.get(base).filter(|q| !q.is_closed()) {
            return queue.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(drain(reporter.clone(), base.to_string(), rx));
        queues.insert(base.to_string(), tx.clone());
        tx
    }
}

/// Sends frames to `base` until every sender is gone.
async fn drain(reporter: Reporter, base: String, mut rx: mpsc::UnboundedReceiver<Queued>) {
    let slots = Arc::new(Semaphore::new(MAX_FRAMES_IN_FLIGHT));
    let batch_route = Arc::new(AtomicBool::new(true));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut frame = vec![first];
        let mut bytes = frame[0].report.output.len();
        while frame.len() < MAX_FRAME_REPORTS && bytes < MAX_FRAME_OUTPUT_BYTES {
            match rx.try_recv() {
                Ok(next) => {
                    bytes += next.report.output.len();
                    frame.push(next);
                }
                Err(_) => break,
            }
        }
        let reporter = reporter.clone();
        let base = base.clone();
        let batch_route = batch_route.clone();
        tokio::spawn(async move {
            if batch_route.load(Ordering::Relaxed) {
                let unsupported = send_frame(&reporter, &base, frame).await;
                if unsupported.is_empty() {
                    return;
                }
                if batch_route.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        scheduler = %base,
                        "scheduler has no batch report route; sending reports one by one"
                    );
                }
                frame = unsupported;
            }
            for queued in frame {
                let attempt = reporter.send_single(&base, &queued.report).await;
                let _ = queued.reply.send(attempt);
            }
            drop(permit);
        });
    }
}

/// The scheduler's batch report route.
const REPORTS_PATH: &str = "/v1/internal/reports";

/// Sends one frame; answers every report's sender, except when the
/// scheduler lacks the batch route: those reports are handed back.
async fn send_frame(reporter: &Reporter, base: &str, frame: Vec<Queued>) -> Vec<Queued> {
    let (reports, replies): (Vec<RunReport>, Vec<oneshot::Sender<Attempt>>) = frame
        .into_iter()
        .map(|queued| (queued.report, queued.reply))
        .unzip();
    let batch = ReportBatch { reports };
    let url = format!("{}{REPORTS_PATH}", base.trim_end_matches('/'));
    let attempts = match post(reporter, base, &batch).await {
        Posted::Answered(results) if results.len() == replies.len() => results
            .into_iter()
            .map(|result| match result {
                ReportResult::Recorded => Attempt::Delivered,
                ReportResult::Refused => {
                    Attempt::Refused(format!("{url} refused the report for good"))
                }
            })
            .collect(),
        Posted::Answered(results) => {
            let reason = format!(
                "{url} answered {} results for {} reports",
                results.len(),
                replies.len()
            );
            vec![Attempt::Retry(reason); replies.len()]
        }
        Posted::Retry(reason) => vec![Attempt::Retry(reason); replies.len()],
        Posted::Refused(reason) => vec![Attempt::Refused(reason); replies.len()],
        Posted::Unsupported => {
            let queued = batch
                .reports
                .into_iter()
                .zip(replies)
                .map(|(report, reply)| Queued { report, reply })
                .collect();
            return queued;
        }
    };
    for (reply, attempt) in replies.into_iter().zip(attempts) {
        let _ = reply.send(attempt);
    }
    Vec::new()
}

enum Posted {
    Answered(Vec<ReportResult>),
    Retry(String),
    Refused(String),
    Unsupported,
}

async fn post(reporter: &Reporter, base: &str, batch: &ReportBatch) -> Posted {
    let body = match protocol::wire::encode(batch) {
        Ok(body) => body,
        Err(e) => return Posted::Refused(format!("cannot encode the reports: {e}")),
    };
    let url = format!("{}{REPORTS_PATH}", base.trim_end_matches('/'));
    let response = match reporter.signed_post(base, REPORTS_PATH, body).send().await {
        Ok(response) => response,
        Err(e) => return Posted::Retry(format!("{url}: {e}")),
    };
    let status = response.status();
    if matches!(
        status,
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
    ) {
        return Posted::Unsupported;
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = match response.bytes().await {
        Ok(bytes) => bytes,
        Err(e) => return Posted::Retry(format!("{url}: {e}")),
    };
    if !status.is_success() {
        let reason = format!(
            "{url} answered {status}: {}",
            String::from_utf8_lossy(&bytes).trim()
        );
        return if Reporter::is_transient(status) {
            Posted::Retry(reason)
        } else {
            Posted::Refused(reason)
        };
    }
    match protocol::wire::decode_body::<ReportBatchAck>(content_type.as_deref(), &bytes) {
        Ok(ack) => Posted::Answered(ack.results),
        Err(e) => Posted::Retry(format!("{url}: unreadable answer: {e}")),
    }
}
