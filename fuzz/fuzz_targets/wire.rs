//! libFuzzer entry of the `wire` target: the body is
//! [`cronmesh_fuzz::wire::run`], timed against the budget.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cronmesh_fuzz::budget::timed("wire", data, cronmesh_fuzz::wire::run);
});
