//! The time budget of one input, held in the libFuzzer builds only.
//!
//! Every parser here faces the network or an operator's file, so no input
//! may cost more than a few milliseconds: a slow input is as good as a
//! hang to an attacker who can send it a thousand times. The libFuzzer
//! binaries time each input with [`timed`] and panic above [`BUDGET`],
//! which makes libFuzzer save the input as a crash. `cargo test` never
//! calls this: it asserts no durations, since machines differ.
//!
//! The clock is the thread's CPU time, not the wall clock: the fuzzers run
//! niced on a machine shared with builds, and a wall clock would count the
//! time another process held the CPU.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::Duration,
};

use nix::time::{clock_gettime, ClockId};

/// Most CPU time one input may take in the optimized fuzz build (debug
/// assertions on). The slowest inputs of every target found so far take
/// well under it (docs/FUZZING.md lists them).
pub const BUDGET: Duration = Duration::from_millis(10);

/// The slowest input so far in this process, in microseconds.
static SLOWEST_US: AtomicU64 = AtomicU64::new(0);
/// Set once the first input has run: it pays for lazy initialisation
/// (time zone tables, the command line's definition) and is run twice.
static WARM: AtomicBool = AtomicBool::new(false);

fn thread_cpu_time() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// Runs `body` on `data`, prints each new slowest input of the process on
/// stderr (`#slowest TARGET US µs LEN bytes`), and panics when the input
/// took more than [`BUDGET`].
pub fn timed(target: &str, data: &[u8], body: fn(&[u8])) {
    if !WARM.swap(true, Ordering::Relaxed) {
        body(data);
    }
    let start = thread_cpu_time();
    body(data);
    let took = thread_cpu_time().saturating_sub(start);
    let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    if us > SLOWEST_US.fetch_max(us, Ordering::Relaxed) {
        eprintln!("#slowest {target} {us} µs {} bytes", data.len());
    }
    assert!(
        took <= BUDGET,
        "{target}: one input took {took:?} of CPU time, over the {BUDGET:?} budget"
    );
}
