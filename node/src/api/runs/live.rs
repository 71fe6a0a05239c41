//! A running run's output, asked of the executor that runs it. The
//! executor's answer is read a chunk at a time within [`LIVE_TIMEOUT`]
//! (which covers the body), and only its last [`OUTPUT_LIMIT`] bytes are
//! kept: what an executor answers is no reason for this node to hold more.

use std::time::Duration;

use protocol::run::{OutputTail, OUTPUT_LIMIT};

/// How long the executor has to answer in full.
pub const LIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The run's output from its executor at `endpoint`, or None when the
/// executor does not answer it in time.
pub async fn output(http: &reqwest::Client, endpoint: &str, run_id: &str) -> Option<String> {
    let url = format!("{}/v1/runs/{run_id}/output", endpoint.trim_end_matches('/'));
    let mut response = http.get(url).timeout(LIVE_TIMEOUT).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let mut kept = OutputTail::with_limit(OUTPUT_LIMIT);
    while let Some(chunk) = response.chunk().await.ok()? {
        kept.push(&chunk);
    }
    Some(kept.text())
}
