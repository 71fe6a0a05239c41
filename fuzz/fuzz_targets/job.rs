//! libFuzzer entry of the `job` target: the body is
//! [`cronmesh_fuzz::job::run`], timed against the budget.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cronmesh_fuzz::budget::timed("job", data, cronmesh_fuzz::job::run);
});
