//! libFuzzer entry of the `wire` target: the body is
//! [`cronmesh_fuzz::wire::run`], one request, timed against the budget.

#![no_main]

use cronmesh_fuzz::budget;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    budget::timed("wire", data, cronmesh_fuzz::wire::run, budget::BUDGET);
});
