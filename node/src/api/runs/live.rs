//! A running run's output, asked of the executor that runs it. The
//! executor's answer is read a chunk at a time within [`LIVE_TIMEOUT`]
//! (which covers the body), and only its last [`OUTPUT_LIMIT`] bytes are
//! kept: what an executor answers is no reason for this node to hold more.

use std::time::Duration;

use protocol::{
    dispatch::SIGNATURE_HEADER,
    run::{OutputTail, OUTPUT_LIMIT},
    signature_v2::audience_of,
    signing::Signer,
};

/// How long the executor has to answer in full.
pub const LIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The run's output from its executor at `endpoint`, asked with a request
/// signed by `signer` (executors with a secret answer no other), or None
/// when the executor does not answer it in time.
pub async fn output(
    http: &reqwest::Client,
    signer: Option<&Signer>,
    endpoint: &str,
    run_id: &str,
) -> Option<String> {
    let audience = audience_of(endpoint);
    let path = format!("/v1/runs/{run_id}/output");
    let mut request = http.get(format!("{audience}{path}")).timeout(LIVE_TIMEOUT);
    if let Some(signer) = signer {
        request = request.header(SIGNATURE_HEADER, signer.header("GET", audience, &path, b""));
    }
    let mut response = request.send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let mut kept = OutputTail::with_limit(OUTPUT_LIMIT);
    while let Some(chunk) = response.chunk().await.ok()? {
        kept.push(&chunk);
    }
    Some(kept.text())
}
