//! libFuzzer entry of the `schedule` target: the body is
//! [`cronmesh_fuzz::schedule::run`], which holds each preview (one request)
//! to the budget itself; the whole input gets the larger whole-input one.

#![no_main]

use cronmesh_fuzz::budget;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    budget::timed(
        "schedule",
        data,
        cronmesh_fuzz::schedule::run,
        budget::WHOLE_INPUT,
    );
});
