//! Target `raft_handshake`: the first bytes anything that connects to the
//! `--raft` port of a node with a cluster secret sends, through the hello
//! decoder of node/src/raft/transport/handshake.rs (the only part of the
//! handshake that parses: the rest are fixed-size nonces and proofs).
//!
//! Invariants:
//! - only exactly `HELLO_LEN` bytes with the magic and the version decode;
//! - a decoded hello re-encodes to the same bytes.

use node::raft::transport::handshake::{Hello, HELLO_LEN, HELLO_MAGIC, VERSION};

pub fn run(data: &[u8]) {
    let Ok(hello) = Hello::decode(data) else {
        return;
    };
    assert_eq!(data.len(), HELLO_LEN, "a hello of another length decoded");
    assert_eq!(
        data[..4],
        HELLO_MAGIC.to_be_bytes(),
        "a hello without the magic"
    );
    assert_eq!(data[4], VERSION, "a hello of another version");
    assert_eq!(
        hello.encode().as_slice(),
        data,
        "a hello re-encodes differently"
    );
}
