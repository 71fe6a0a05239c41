//! libFuzzer entry of the `raft_handshake` target: the body is
//! [`cronmesh_fuzz::raft_handshake::run`], one hello, timed against the
//! budget.

#![no_main]

use cronmesh_fuzz::budget;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    budget::timed(
        "raft_handshake",
        data,
        cronmesh_fuzz::raft_handshake::run,
        budget::BUDGET,
    );
});
