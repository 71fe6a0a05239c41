//! libFuzzer entry of the `config` target: the body is
//! [`cronmesh_fuzz::config::run`], timed against the budget.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cronmesh_fuzz::budget::timed("config", data, cronmesh_fuzz::config::run);
});
