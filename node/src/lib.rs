//! The cronmesh binary's library.
//!
//! - [`executor`]: the executor agent that runs shell commands.
//! - [`client`]: the command-line client of the admin API.

pub mod client;
pub mod executor;
