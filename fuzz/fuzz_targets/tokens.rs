//! libFuzzer entry of the `tokens` target: the body is
//! [`cronmesh_fuzz::tokens::run`], one request, timed against the budget.

#![no_main]

use cronmesh_fuzz::budget;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    budget::timed("tokens", data, cronmesh_fuzz::tokens::run, budget::BUDGET);
});
