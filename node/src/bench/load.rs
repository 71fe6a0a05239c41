//! The load: `--jobs N` jobs `bench-{i}` created through the admin API
//! with `--create-concurrency` requests in flight, and how fast that went.

use std::time::{Duration, Instant};

use anyhow::bail;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::json;

use super::{api::Admin, flags::GROUP, receiver::Receiver};

/// Attempts per job before the bench gives up (elections answer 503).
const ATTEMPTS: u32 = 20;

/// How job creation went.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Creation {
    pub jobs: u64,
    /// From the first request to the last answer.
    pub seconds: f64,
    /// `jobs / seconds`: what the API and the log sustain for writes.
    pub jobs_per_second: f64,
    /// Requests answered 503 or not at all and sent again.
    pub retries: u64,
}

/// The id of job `i`; the analysis reads `i` back from it.
pub fn job_id(i: u32) -> String {
    format!("bench-{i}")
}

/// The index of a job id made by [`job_id`].
pub fn job_index(id: &str) -> Option<u32> {
    id.strip_prefix("bench-")?.parse().ok()
}

/// A job that never fires while the bench runs: `--idle-jobs` are held,
/// not fired.
pub const IDLE_SCHEDULE: &str = "@at 2099-01-01T00:00:00Z";

/// The id of idle job `i`.
pub fn idle_job_id(i: u32) -> String {
    format!("idle-{i}")
}

/// What a job runs.
#[derive(Clone, Copy)]
pub enum JobTarget<'a> {
    /// The executors' built-in `noop` handler.
    Noop,
    /// A GET of the bench's receiver, which notes the call.
    Http(&'a Receiver),
}

impl JobTarget<'_> {
    /// The job's `target` field.
    fn json(&self, id: &str) -> serde_json::Value {
        self.of_id()(id)
    }

    /// The `target` field of any job id, apart from the receiver: what
    /// the API probe gives its own jobs from its own task.
    pub fn of_id(&self) -> impl Fn(&str) -> serde_json::Value + Send + 'static {
        let call_base = match self {
            JobTarget::Noop => None,
            JobTarget::Http(receiver) => Some(receiver.call_url("")),
        };
        move |id| match &call_base {
            None => json!({"type": "executor", "group": GROUP, "handler": "noop"}),
            Some(base) => json!({"type": "http", "method": "GET", "url": format!("{base}{id}")}),
        }
    }
}

/// Creates jobs `0..jobs` (ids by `id_of`) running `target` through
/// `api_url`; returns once every one is acknowledged, and the moment the
/// last one was.
pub async fn create_jobs(
    admin: &Admin,
    api_url: &str,
    (jobs, id_of): (u32, fn(u32) -> String),
    (schedule, target): (&str, JobTarget<'_>),
    (concurrency, batch): (u32, u32),
) -> anyhow::Result<(Creation, chrono::DateTime<chrono::Utc>)> {
    let url = format!("{api_url}/v1/jobs");
    let started = Instant::now();
    let batch = batch.max(1);
    let requests: Vec<Vec<String>> = (0..jobs)
        .step_by(batch as usize)
        .map(|first| {
            (first..jobs.min(first.saturating_add(batch)))
                .map(id_of)
                .collect()
        })
        .collect();
    let mut results = futures::stream::iter(requests)
        .map(|ids| create_one(admin, &url, ids, (schedule, target)))
        .buffer_unordered(concurrency as usize);
    let mut retries = 0;
    while let Some(result) = results.next().await {
        retries += result?;
    }
    let last = chrono::Utc::now();
    let seconds = started.elapsed().as_secs_f64();
    Ok((
        Creation {
            jobs: u64::from(jobs),
            seconds,
            jobs_per_second: f64::from(jobs) / seconds.max(1e-9),
            retries,
        },
        last,
    ))
}

/// Creates the jobs `ids` (one: a job object; more: an array, which the
/// API stores all or none), again while the cluster is busy electing; a
/// 409 after a retry means an earlier attempt got through. Returns the
/// retries.
async fn create_one(
    admin: &Admin,
    url: &str,
    ids: Vec<String>,
    (schedule, target): (&str, JobTarget<'_>),
) -> anyhow::Result<u64> {
    let job = |id: &String| {
        json!({
            "id": id,
            "schedule": schedule,
            "target": target.json(id),
            "timeout": "30s",
        })
    };
    let body = match ids.as_slice() {
        [one] => job(one),
        many => serde_json::Value::Array(many.iter().map(job).collect()),
    };
    let id = ids.first().cloned().unwrap_or_default();
    let mut pause = Duration::from_millis(100);
    for attempt in 0..ATTEMPTS {
        match admin.post_json(url, &body).await {
            Ok((StatusCode::CREATED, _)) => return Ok(u64::from(attempt)),
            Ok((StatusCode::CONFLICT, _)) if attempt > 0 => return Ok(u64::from(attempt)),
            Ok((status, text))
                if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS =>
            {
                bail!("creating job {id} was refused: {status}: {text}")
            }
            Ok(_) | Err(_) => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
    bail!("job {id} was not created after {ATTEMPTS} attempts")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn targets() -> anyhow::Result<()> {
        assert_eq!(
            JobTarget::Noop.json("bench-1"),
            json!({"type": "executor", "group": "bench", "handler": "noop"})
        );
        let receiver = Receiver::start()?;
        let http = JobTarget::Http(&receiver).json("bench-7");
        assert_eq!(http["type"], "http");
        assert_eq!(http["method"], "GET");
        let url = http["url"].as_str().unwrap_or_default();
        assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/hit/bench-7"));
        receiver.stop().await;
        Ok(())
    }

    #[test]
    fn ids_round_trip() {
        assert_eq!(job_index(&job_id(42)), Some(42));
        assert_eq!(job_index("other-1"), None);
        assert_eq!(job_index("bench-x"), None);
    }
}
