//! Fuzz targets for every parser that reads input from outside a node, as
//! plain functions: `cargo +nightly fuzz` drives them through libFuzzer
//! (`fuzz_targets/`), and `cargo test` replays the checked-in corpus and
//! every crash found through the same bodies (`tests/replay.rs`). See
//! docs/FUZZING.md for how to run them and what they found.
//!
//! Each module is one target with `pub fn run(data: &[u8])`. A body never
//! panics on input the node would refuse; it panics when the code under
//! test panics or when one of the target's own invariants breaks:
//!
//! - [`schedule`]: `Schedule::parse` and the next fire times in UTC and
//!   around DST changes in three zones; fire times are strictly increasing,
//!   after the start, and none is skipped.
//! - [`job`]: a `POST /v1/jobs` body (one job or an array), decoded and
//!   validated as the API does; a valid job round-trips through JSON and
//!   has fire times to preview.
//! - [`wire`]: the executor protocol bodies (dispatch, batch, kill, run
//!   report, report batch, the acks) in MessagePack and JSON; whatever
//!   decodes re-encodes to the same value.
//! - [`signature`]: the `x-cronmesh-signature` header; only the right
//!   secret, time and body verify.
//! - [`raft_frame`]: the Raft transport's frame reader and batch decoder;
//!   a decoded batch re-encodes into frames that decode to the same
//!   messages.
//! - [`raft_handshake`]: the hello that opens every connection to the
//!   `--raft` port of a node with a secret; only a whole, well-formed hello
//!   decodes, and it re-encodes to the same bytes.
//! - [`dump`]: a state dump (a Raft snapshot from the network, a backup
//!   to restore) read record by record; one read whole writes back to the
//!   same bytes.
//! - [`gossip_keys`]: gossip key-values into a member; a decoded member
//!   validates and round-trips.
//! - [`tokens`]: the admin token file; every token parsed has a scope and
//!   a header-safe value, and the file re-renders to the same tokens.
//! - [`config`]: the `--config` TOML file of `server`, `dev` and
//!   `executor`, through the flags' own parsers to a node configuration
//!   (without reading the files it names).
//! - [`budget`]: the per-input CPU-time budget the libFuzzer builds hold
//!   each input to.
//! - [`TARGETS`]: every target by name, for the replay test.

pub mod budget;
pub mod config;
pub mod dump;
pub mod gossip_keys;
pub mod job;
pub mod raft_frame;
pub mod raft_handshake;
pub mod schedule;
pub mod signature;
pub mod tokens;
pub mod wire;

/// A target's body: panics on a bug, returns on anything else.
pub type Body = fn(&[u8]);

/// Every target: its name (the folder under `fuzz/corpus/` and
/// `fuzz/regressions/`, and the `cargo fuzz` target) and its body.
pub const TARGETS: [(&str, Body); 10] = [
    ("schedule", schedule::run),
    ("job", job::run),
    ("wire", wire::run),
    ("signature", signature::run),
    ("raft_frame", raft_frame::run),
    ("raft_handshake", raft_handshake::run),
    ("gossip_keys", gossip_keys::run),
    ("tokens", tokens::run),
    ("config", config::run),
    ("dump", dump::run),
];
