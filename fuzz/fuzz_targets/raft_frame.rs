//! libFuzzer entry of the `raft_frame` target: the body is
//! [`cronmesh_fuzz::raft_frame::run`], one request, timed against the budget.

#![no_main]

use cronmesh_fuzz::budget;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    budget::timed(
        "raft_frame",
        data,
        cronmesh_fuzz::raft_frame::run,
        budget::BUDGET,
    );
});
