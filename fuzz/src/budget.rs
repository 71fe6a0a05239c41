//! The time budget of one request, held in the libFuzzer builds only.
//!
//! Every parser here faces the network or an operator's file, so no input
//! may cost a node more than a few milliseconds: a slow input is as good
//! as a hang to an attacker who can send it a thousand times. The
//! libFuzzer binaries time each input with [`timed`] and panic above its
//! budget, which makes libFuzzer save the input as a crash. `cargo test`
//! never measures: it asserts no durations, since machines differ.
//!
//! Most targets' input is one request (one body, one header, one file), so
//! the whole body is held to [`BUDGET`]. The `schedule` target's input
//! stands for one request per zone it previews in: it holds each of those
//! to [`BUDGET`] with [`request`], and the whole input to
//! [`WHOLE_INPUT`], which only its invariant checks add to.
//!
//! The clock is the thread's CPU time, not the wall clock: the fuzzers run
//! niced on a machine shared with builds, and a wall clock would count the
//! time another process held the CPU. The libFuzzer build is optimized
//! but instrumented for coverage (every comparison is traced), which makes
//! it 2 to 10 times slower than a release build: the job body of
//! `fuzz/regressions/job/idn-host-1800-bytes-slow` takes 1.0 ms in release
//! and 7 to 10 ms there.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::Duration,
};

use nix::time::{clock_gettime, ClockId};

/// Most CPU time one request may take in the libFuzzer build (optimized,
/// coverage-instrumented, debug assertions on): 2 to 8 ms of a release
/// build.
pub const BUDGET: Duration = Duration::from_millis(20);
/// Most CPU time a `schedule` input may take as a whole: its previews in
/// five zones, each held to [`BUDGET`], and the checks of their results.
pub const WHOLE_INPUT: Duration = Duration::from_millis(100);

/// The slowest input so far in this process, in microseconds.
static SLOWEST_US: AtomicU64 = AtomicU64::new(0);
/// The slowest [`request`] so far in this process, in microseconds.
static SLOWEST_REQUEST_US: AtomicU64 = AtomicU64::new(0);
/// Set once the first input has run: it pays for lazy initialisation
/// (time zone tables, the command line's definition) and is run twice.
static WARM: AtomicBool = AtomicBool::new(false);
/// Set while [`timed`] measures an input, so [`request`] measures too.
static MEASURING: AtomicBool = AtomicBool::new(false);

fn thread_cpu_time() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// Runs `body` on `data`, prints each new slowest input of the process on
/// stderr (`#slowest TARGET US µs LEN bytes`), and panics when the input
/// took more than `budget`.
pub fn timed(target: &str, data: &[u8], body: crate::Body, budget: Duration) {
    if !WARM.swap(true, Ordering::Relaxed) {
        body(data);
    }
    MEASURING.store(true, Ordering::Relaxed);
    let start = thread_cpu_time();
    body(data);
    let took = thread_cpu_time().saturating_sub(start);
    MEASURING.store(false, Ordering::Relaxed);
    let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    if us > SLOWEST_US.fetch_max(us, Ordering::Relaxed) {
        eprintln!("#slowest {target} {us} µs {} bytes", data.len());
    }
    assert!(
        took <= budget,
        "{target}: one input took {took:?} of CPU time, over the {budget:?} budget"
    );
}

/// Runs `work`, what a node does for one request; inside [`timed`], prints
/// each new slowest one (`#slowest-request TARGET US µs`) and panics when it
/// took more than [`BUDGET`]. Elsewhere (`cargo test`) it only runs it.
pub fn request<T>(target: &str, work: impl FnOnce() -> T) -> T {
    if !MEASURING.load(Ordering::Relaxed) {
        return work();
    }
    let start = thread_cpu_time();
    let out = work();
    let took = thread_cpu_time().saturating_sub(start);
    let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    if us > SLOWEST_REQUEST_US.fetch_max(us, Ordering::Relaxed) {
        eprintln!("#slowest-request {target} {us} µs");
    }
    assert!(
        took <= BUDGET,
        "{target}: one request took {took:?} of CPU time, over the {BUDGET:?} budget"
    );
    out
}
