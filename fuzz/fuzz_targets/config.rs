//! libFuzzer entry of the `config` target: the body is
//! [`cronmesh_fuzz::config::run`], one request, timed against the budget.

#![no_main]

use cronmesh_fuzz::budget;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    budget::timed("config", data, cronmesh_fuzz::config::run, budget::BUDGET);
});
