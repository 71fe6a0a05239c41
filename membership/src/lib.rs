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
//! - [`signing`]: the `sig` key: an HMAC of the announcement under the
//!   gossip key derived from the cluster secret, and its check. Members
//!   whose announcement does not verify are [`MemberState::verified`]
//!   `false`.
//! - [`config`]: [`MembershipConfig`], the gossip and failure detector
//!   settings, and the gossip key.
//! - [`membership`]: [`Membership`], the running node: start, update self,
//!   list members, subscribe to changes, shut down.
//! - `view`: the pure rules turning chitchat observations into the view and
//!   its changes (an unverified version never replaces a verified member).
//! - `hub`: the view shared by every handle and the fan-out to subscribers.
//! - `pause`: holds deaths back right after this node itself was paused, so
//!   a stall of this process is not taken for the death of every peer.
//! - `transport`: chitchat's UDP transport on a socket bound beforehand, so
//!   `127.0.0.1:0` works.
//! - `testsuite` (feature `testsuite`): fast timings and polling helpers
//!   for tests.
//!
//! # Signed announcements
//!
//! Anyone who can send UDP to a gossip port joins chitchat, and may gossip
//! values for any node. With [`MembershipConfig::gossip_key`] set (derived
//! from the cluster secret), a node signs its own keys and checks everyone
//! else's as they are read (`membership`, with [`signing`]); each
//! [`MemberState`] says whether its announcement verified, and the view
//! never lets an unverified announcement replace a verified member. What the
//! rest of cronmesh does with unverified members (no runs, no fencing
//! credit) is its own rule. Without a key every member is verified.
//!
//! # Failure detection
//!
//! chitchat's phi is the silence since a peer's last heartbeat divided by
//! the mean interval between its heartbeats as observed here; the peer is
//! dead once phi exceeds [`MembershipConfig::phi_threshold`]. Heartbeats
//! reach a peer directly and through third parties several times per gossip
//! round, so the detection time is about `phi_threshold` x (a fraction of
//! `gossip_interval`), plus up to a round for the verdict. There is no leave
//! message: a node that shuts down is detected like one that crashed.
//!
//! Measured on loopback on a 2-core machine, debug build (`tests/detection.rs`,
//! run by hand): time from a node stopping to every other node reporting it
//! `Removed` (median), and the longest freeze of one node's runtime that its
//! peers ride out without declaring it dead.
//!
//! | rounds | phi | 2 nodes | 3 nodes | 5 nodes | 8 nodes | freeze ridden out |
//! | --- | --- | --- | --- | --- | --- | --- |
//! | 200 ms | 8 | 1.0 s | 1.0 s | 1.2 s | 1.4 s | 0.5 s (0.8 s: flagged) |
//! | **200 ms** | **10** (default) | 1.2 s | 1.2 s | 1.4 s | 1.6 s | 0.8 s (1.0 s: 3 of 32 flagged) |
//! | 200 ms | 12 | 1.4 s | 1.4 s | 1.6 s | 2.0 s | 1.2 s |
//! | 100 ms | 20 (`fast_for_tests`) | | 1.0 s | | | 0.8 s |
//!
//! Four busy loops on the 2 cores (load 5) caused no false alarm at phi 8
//! over 45 s with 5 nodes, nor did detection slow down. A freeze of this
//! node itself (the whole process stopped) is handled by the `pause` guard:
//! with it, 1.2 s and 2 s SIGSTOPs of a process hosting 5 nodes cause no
//! false alarm (1.2 s ones caused 73 in 30 s without it).

pub mod config;
mod hub;
pub mod keys;
pub mod member;
pub mod membership;
mod pause;
pub mod signing;
#[cfg(feature = "testsuite")]
pub mod testsuite;
mod transport;
mod view;

pub use config::MembershipConfig;
pub use keys::KeyError;
pub use member::{ExecutorInfo, Member, MemberState, MembershipChange, SchedulerInfo};
pub use membership::Membership;
pub use signing::GossipKey;
