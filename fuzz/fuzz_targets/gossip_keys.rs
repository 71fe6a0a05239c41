//! libFuzzer entry of the `gossip_keys` target: the body is
//! [`cronmesh_fuzz::gossip_keys::run`], timed against the budget.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cronmesh_fuzz::budget::timed("gossip_keys", data, cronmesh_fuzz::gossip_keys::run);
});
