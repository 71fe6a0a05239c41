//! libFuzzer entry of the `signature` target: the body is
//! [`cronmesh_fuzz::signature::run`], one request, timed against the budget.

#![no_main]

use cronmesh_fuzz::budget;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    budget::timed(
        "signature",
        data,
        cronmesh_fuzz::signature::run,
        budget::BUDGET,
    );
});
