//! A fault harness beyond kill -9, for seeded fault scenarios
//! (tests/tests/faults.rs): real `cronmesh server` and `cronmesh executor`
//! processes, each in a network namespace of its own.
//!
//! - [`net`]: the namespaces, a bridge, and partitions as iptables DROP
//!   rules (`cut`, `isolate`, `heal_all`). This kernel has no `netem`
//!   qdisc, so there are no delays, only drops.
//! - [`proc`]: processes started with `ip netns exec`, whose pid is
//!   `cronmesh` itself, for SIGSTOP, SIGCONT and SIGKILL.
//! - [`cluster`]: schedulers and executors on that network, restarted on
//!   the same addresses and data directories, and a client of their API
//!   that gives up quickly on a node that does not answer.
//! - [`inject`]: seeded lanes of faults.
//! - [`ledger`]: what really ran, written by the jobs themselves.
//! - [`checks`]: the invariants, comparing the ledger with the run records.
//! - [`rng`]: the seeded generator, and the seed (`CRONMESH_FAULT_SEED`).
//!
//! It needs root, `ip` and `iptables`, and says so when they are missing.

pub mod checks;
pub mod cluster;
pub mod inject;
pub mod ledger;
pub mod net;
pub mod proc;
pub mod rng;
