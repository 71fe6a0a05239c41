//! A running run's output, asked of the executor that runs it. The
//! executor's answer is read a chunk at a time within [`LIVE_TIMEOUT`]
//! (which covers the body), and only its last [`OUTPUT_LIMIT`] bytes are
//! kept: what an executor answers is no reason for this node to hold more.

use std::time::Duration;

use protocol::run::{tail, OUTPUT_LIMIT};

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
    let mut kept = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        keep_tail(&mut kept, &chunk, OUTPUT_LIMIT);
    }
    Some(text_of_tail(&kept, OUTPUT_LIMIT))
}

/// Appends `chunk` to `kept`, dropping the oldest bytes in bulk once more
/// than twice `limit` are held.
fn keep_tail(kept: &mut Vec<u8>, chunk: &[u8], limit: usize) {
    kept.extend_from_slice(chunk);
    if kept.len() > 2 * limit {
        let excess = kept.len() - limit;
        kept.drain(..excess);
    }
}

/// The last `limit` bytes as text, from a whole character on.
fn text_of_tail(bytes: &[u8], limit: usize) -> String {
    let start = bytes.len().saturating_sub(limit);
    let mut last = &bytes[start..];
    if start > 0 {
        let cut = last
            .iter()
            .take(3)
            .take_while(|b| (**b & 0b1100_0000) == 0b1000_0000)
            .count();
        last = &last[cut..];
    }
    tail(&String::from_utf8_lossy(last), limit).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_tail_is_kept_in_at_most_twice_the_limit() {
        let mut kept = Vec::new();
        for i in 0..500u32 {
            keep_tail(&mut kept, format!("{i:04}|").as_bytes(), 10);
            assert!(kept.len() <= 20 + 5, "{} bytes kept", kept.len());
        }
        assert_eq!(text_of_tail(&kept, 10), "0498|0499|");
        assert_eq!(text_of_tail("aé".as_bytes(), 2), "é");
        assert_eq!(
            text_of_tail("éa".as_bytes(), 2),
            "a",
            "half a character is left out"
        );
    }
}
