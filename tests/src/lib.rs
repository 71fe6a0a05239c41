//! Helpers for the integration tests: real `cronmesh` processes on
//! loopback and a small client of the admin API.
//!
//! - [`process`]: scheduler and executor child processes, killed on drop.
//! - [`api`]: JSON requests against the admin API.
//! - [`browser`]: headless Chromium over WebDriver, for the web console.
//! - [`cluster`]: Raft clusters of server processes that can be killed and restarted.
//! - [`fleet`]: one scheduler with executors it knows by URL.
//! - [`mesh`]: a scheduler and executors that join it by gossip.
//! - [`ports`]: ports for child processes that no outgoing connection takes.
//! - [`slots`]: checks that every slot ran once and no executor ran one twice.
//! - [`wait`]: polling with a deadline instead of fixed sleeps.
//! - [`tls`]: a private CA and a server certificate for loopback.
//! - [`tmpfs`]: a small file system of its own, to fill a node's disk.

pub mod api;
pub mod browser;
pub mod cluster;
pub mod faults;
pub mod fleet;
pub mod mesh;
pub mod ports;
pub mod process;
pub mod slots;
pub mod tls;
pub mod tmpfs;
pub mod wait;
