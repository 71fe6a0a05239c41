//! What the hostile-input tests share: running a call under a deadline, so
//! a regression that loops fails the test instead of hanging the suite.

pub mod generate;

use std::{sync::mpsc, thread, time::Duration};

/// Far longer than any call here takes (milliseconds in a debug build);
/// it only separates "returns" from "never returns".
pub const DEADLINE: Duration = Duration::from_secs(10);

#[allow(dead_code)] // not every test file runs single calls
/// Runs `f` on its own thread and returns its result, or panics naming
/// `what` if it has not returned within [`DEADLINE`]. A call that never
/// returns leaves its thread behind; the test fails all the same.
pub fn within_deadline<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} did not return within {DEADLINE:?}")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}
