//! Polling with a deadline: a test waits for what it needs, never for a
//! duration sized to pass on a fast machine.

use std::{future::Future, time::Duration};

/// Calls `probe` every 50 ms until it returns `Some`, or panics with
/// `what` after `limit`.
pub async fn until<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
