//! libFuzzer entry of the `job` target: the body is
//! [`cronmesh_fuzz::job::run`], one request, timed against the budget.

#![no_main]

use cronmesh_fuzz::budget;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    budget::timed("job", data, cronmesh_fuzz::job::run, budget::BUDGET);
});
