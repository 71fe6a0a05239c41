//! libFuzzer entry of the `raft_frame` target: the body is
//! [`cronmesh_fuzz::raft_frame::run`], timed against the budget.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cronmesh_fuzz::budget::timed("raft_frame", data, cronmesh_fuzz::raft_frame::run);
});
