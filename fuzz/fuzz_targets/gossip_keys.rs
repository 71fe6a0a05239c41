//! libFuzzer entry of the `gossip_keys` target: the body is
//! [`cronmesh_fuzz::gossip_keys::run`], one request, timed against the budget.

#![no_main]

use cronmesh_fuzz::budget;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    budget::timed(
        "gossip_keys",
        data,
        cronmesh_fuzz::gossip_keys::run,
        budget::BUDGET,
    );
});
