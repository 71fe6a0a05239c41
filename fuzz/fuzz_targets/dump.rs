//! libFuzzer entry of the `dump` target: the body is
//! [`cronmesh_fuzz::dump::run`], one input, timed against the budget.

#![no_main]

use cronmesh_fuzz::budget;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    budget::timed("dump", data, cronmesh_fuzz::dump::run, budget::BUDGET);
});
