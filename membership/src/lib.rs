//! Gossip membership of cronmesh: who is in the cluster, what each node is,
//! and how that changes, over [chitchat](https://docs.rs/chitchat) (UDP,
//! Scuttlebutt reconciliation, phi-accrual failure detection).
//!
//! Gossip carries strings; they become typed members at the edge (`keys`)
//! and the rest of cronmesh sees a [`Member`] per node and a stream of
//! [`MembershipChange`]s, as Quickwit's quickwit-cluster does.
//!
//! - [`member`]: [`Member`] (scheduler or executor), [`MemberState`] (a
//!   member as this node sees it) and [`MembershipChange`].
//! - [`keys`]: the gossip key encoding of a member, and its total decoding.
//! - [`config`]: [`MembershipConfig`], the gossip and failure detector
//!   settings.
//! - [`membership`]: [`Membership`], the running node: start, update self,
//!   list members, subscribe to changes, shut down.
//! - `view`: the pure rules turning chitchat observations into the view and
//!   its changes.
//! - `hub`: the view shared by every handle and the fan-out to subscribers.
//! - `transport`: chitchat's UDP transport on a socket bound beforehand, so
//!   `127.0.0.1:0` works.
//! - `testsuite` (feature `testsuite`): fast timings and polling helpers
//!   for tests.
//!
//! # Failure detection
//!
//! chitchat's phi is the silence since a peer's last heartbeat divided by
//! the mean interval between its heartbeats as observed here; the peer is
//! dead once phi exceeds [`MembershipConfig::phi_threshold`]. Heartbeats
//! reach a peer directly and through third parties several times per gossip
//! round, so the detection time is about `phi_threshold` x (a fraction of
//! `gossip_interval`), plus up to one round for the verdict. Measured on
//! loopback (2 cores, see `tests/cluster.rs`), with 200 ms rounds and phi 8
//! a stopped node is declared dead in about 1 s.

pub mod config;
mod hub;
pub mod keys;
pub mod member;
pub mod membership;
#[cfg(feature = "testsuite")]
pub mod testsuite;
mod transport;
mod view;

pub use config::MembershipConfig;
pub use keys::KeyError;
pub use member::{ExecutorInfo, Member, MemberState, MembershipChange, SchedulerInfo};
pub use membership::Membership;
