//! libFuzzer entry of the `schedule` target: the body is
//! [`cronmesh_fuzz::schedule::run`], timed against the budget.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cronmesh_fuzz::budget::timed("schedule", data, cronmesh_fuzz::schedule::run);
});
