//! The catch-up scenario's state: jobs `state-{i}` with large `params`
//! that never fire during the bench, created in JSON arrays through the
//! admin API (all or none per request, one log entry each), and how fast
//! that went.

use std::time::{Duration, Instant};

use anyhow::bail;
use futures::StreamExt;
use rand::Rng;
use reqwest::StatusCode;
use serde_json::json;

use super::{api::Admin, flags::GROUP, load::IDLE_SCHEDULE};

/// Attempts per request before the bench gives up (elections answer 503).
const ATTEMPTS: u32 = 20;

/// How creating the state went.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StateCreation {
    pub jobs: u64,
    /// `POST /v1/jobs` requests, each an array of jobs.
    pub requests: u64,
    /// Bytes of `params` in all: the state the bench asked for.
    pub params_bytes: u64,
    /// Bytes of JSON posted (the jobs' other fields and the quoting).
    pub body_bytes: u64,
    /// From the first request to the last answer.
    pub seconds: f64,
    pub jobs_per_second: f64,
    /// MiB of `params` per second.
    pub mib_per_second: f64,
    /// Requests answered 503 or not at all and sent again.
    pub retries: u64,
}

/// What to create: `jobs` jobs of `params_bytes` bytes of params each,
/// `batch` per request, `concurrency` requests in flight.
#[derive(Clone, Copy, Debug)]
pub struct StatePlan {
    pub jobs: u32,
    pub params_bytes: u32,
    pub batch: u32,
    pub concurrency: u32,
}

impl StatePlan {
    /// Enough jobs of `params_bytes` to hold `state_mib` MiB of params.
    pub fn for_state(state_mib: u64, params_bytes: u32, batch: u32, concurrency: u32) -> Self {
        let params_bytes = params_bytes.max(1);
        let wanted = state_mib.saturating_mul(1024 * 1024);
        let jobs = wanted.div_ceil(u64::from(params_bytes));
        Self {
            jobs: u32::try_from(jobs).unwrap_or(u32::MAX),
            params_bytes,
            batch: batch.max(1),
            concurrency: concurrency.max(1),
        }
    }

    /// The job indices of each request, in order.
    fn requests(&self) -> impl Iterator<Item = std::ops::Range<u32>> + '_ {
        (0..self.jobs)
            .step_by(self.batch as usize)
            .map(|first| first..self.jobs.min(first.saturating_add(self.batch)))
    }
}

/// The id of state job `i`.
pub fn state_job_id(i: u32) -> String {
    format!("state-{i}")
}

/// Random letters and digits, twice as long as one job's params: job `i`
/// takes a window of it starting at a place of its own, so no two jobs
/// hold the same bytes and nothing compresses them.
struct ParamsPool {
    text: String,
    len: usize,
}

impl ParamsPool {
    fn new(len: usize) -> Self {
        let text: String = rand::rng()
            .sample_iter(&rand::distr::Alphanumeric)
            .take(len * 2)
            .map(char::from)
            .collect();
        Self { text, len }
    }

    /// Job `i`'s params: `len` ASCII bytes.
    fn params(&self, i: u32) -> &str {
        let start = (i as usize).wrapping_mul(7919) % self.len.max(1);
        self.text.get(start..start + self.len).unwrap_or_default()
    }
}

/// Creates the state through `api_url`; returns once every request is
/// acknowledged. Progress goes to stderr every tenth of the way.
pub async fn create_state(
    admin: &Admin,
    api_url: &str,
    plan: StatePlan,
) -> anyhow::Result<StateCreation> {
    let url = format!("{api_url}/v1/jobs");
    let pool = ParamsPool::new(plan.params_bytes as usize);
    let started = Instant::now();
    let requests: Vec<_> = plan.requests().collect();
    let total = requests.len();
    let mut results = futures::stream::iter(requests)
        .map(|range| {
            let body = serde_json::Value::Array(
                range
                    .map(|i| {
                        json!({
                            "id": state_job_id(i),
                            "schedule": IDLE_SCHEDULE,
                            "target": {"type": "executor", "group": GROUP, "handler": "noop"},
                            "timeout": "30s",
                            "params": pool.params(i),
                        })
                    })
                    .collect(),
            );
            post_batch(admin, &url, body)
        })
        .buffer_unordered(plan.concurrency as usize);
    let (mut done, mut retries, mut body_bytes) = (0, 0, 0);
    let mut reported = 0;
    while let Some(result) = results.next().await {
        let (request_retries, bytes) = result?;
        retries += request_retries;
        body_bytes += bytes;
        done += 1;
        if done * 10 / total.max(1) > reported {
            reported = done * 10 / total.max(1);
            super::progress(&format!(
                "{done} of {total} requests ({:.0} s)",
                started.elapsed().as_secs_f64()
            ));
        }
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let params_bytes = u64::from(plan.jobs) * u64::from(plan.params_bytes);
    Ok(StateCreation {
        jobs: u64::from(plan.jobs),
        requests: total as u64,
        params_bytes,
        body_bytes,
        seconds,
        jobs_per_second: f64::from(plan.jobs) / seconds,
        mib_per_second: params_bytes as f64 / (1024.0 * 1024.0) / seconds,
        retries,
    })
}

/// Posts one array, again while the cluster is busy electing; a 409 after
/// a retry means an earlier attempt got through. Returns the retries and
/// the body's length.
async fn post_batch(
    admin: &Admin,
    url: &str,
    body: serde_json::Value,
) -> anyhow::Result<(u64, u64)> {
    let first = body
        .get(0)
        .and_then(|job| job.get("id"))
        .and_then(|id| id.as_str())
        .unwrap_or_default()
        .to_string();
    let length = body.to_string().len() as u64;
    let mut pause = Duration::from_millis(100);
    for attempt in 0..ATTEMPTS {
        match admin.post_json(url, &body).await {
            Ok((StatusCode::CREATED, _)) => return Ok((u64::from(attempt), length)),
            Ok((StatusCode::CONFLICT, _)) if attempt > 0 => {
                return Ok((u64::from(attempt), length))
            }
            Ok((status, text))
                if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS =>
            {
                bail!("creating the jobs from {first} was refused: {status}: {text}")
            }
            Ok(_) | Err(_) => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
    bail!("the jobs from {first} were not created after {ATTEMPTS} attempts")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_enough_jobs_in_batches() {
        let plan = StatePlan::for_state(200, 64_000, 16, 4);
        assert_eq!(plan.jobs, 3_277);
        assert!(u64::from(plan.jobs) * 64_000 >= 200 * 1024 * 1024);
        let requests: Vec<_> = plan.requests().collect();
        assert_eq!(requests.len(), 205);
        assert_eq!(requests.first(), Some(&(0..16)));
        assert_eq!(requests.last(), Some(&(3_264..3_277)));
        assert_eq!(
            requests.iter().map(|r| r.len()).sum::<usize>(),
            plan.jobs as usize
        );
        assert_eq!(StatePlan::for_state(1, 1_048_576, 0, 0).jobs, 1);
        assert_eq!(StatePlan::for_state(1, 1_048_576, 0, 0).batch, 1);
    }

    #[test]
    fn params_are_whole_and_differ() {
        let pool = ParamsPool::new(1000);
        let (a, b) = (pool.params(0), pool.params(1));
        assert_eq!((a.len(), b.len()), (1000, 1000));
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(pool.params(u32::MAX).len(), 1000);
    }
}
