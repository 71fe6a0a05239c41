//! libFuzzer entry of the `tokens` target: the body is
//! [`cronmesh_fuzz::tokens::run`], timed against the budget.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cronmesh_fuzz::budget::timed("tokens", data, cronmesh_fuzz::tokens::run);
});
