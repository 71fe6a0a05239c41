//! libFuzzer entry of the `signature` target: the body is
//! [`cronmesh_fuzz::signature::run`], timed against the budget.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cronmesh_fuzz::budget::timed("signature", data, cronmesh_fuzz::signature::run);
});
