//! Ports for child processes that no outgoing connection takes: the
//! bench's own choice (`node::bench::ports`), which explains why.

/// A loopback port, free for TCP and UDP, below the ephemeral range and
/// handed out once per test process.
pub fn free_port() -> u16 {
    node::bench::ports::free_port().expect("a free loopback port")
}
