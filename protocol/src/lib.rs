//! The shared vocabulary of cronmesh, used by every other crate.
//!
//! - [`job`]: the Job definition users write, with its defaults.
//! - [`selector`]: a job's `selector` of executor labels, and whether
//!   labels meet it.
//! - [`alert`]: alert webhooks and their formats, and the record of each
//!   attempt to deliver an alert.
//! - [`schedule`]: schedule expressions and their fire times in a time zone.
//! - [`run`]: run records, statuses, the derivation of run ids, and the
//!   tail kept of a run's output.
//! - [`meta`]: `MetaCommand`, the closed set of replicated metadata changes.
//! - [`dispatch`]: the executor protocol (dispatch requests, run reports).
//! - [`api`]: admin API bodies other than jobs and runs.
//! - `vixie`: rewrites crontab lines so croner reads them as Vixie cron does.
//! - [`validate`]: field-level validation of request bodies.
//! - [`signature`]: HMAC signing of executor-protocol requests, version 1
//!   (kept for one release) and scheduler-to-scheduler forwarding.
//! - [`signature_v2`]: the executor protocol's version 2 signatures, bound
//!   to method, path, receiver, nonce and body.
//! - [`replay`]: the bounded memory of nonces a receiver has seen.
//! - [`signing`]: the signer and verifier of requests, with the settings
//!   of the upgrade from version 1.
//! - [`keys`]: keys derived from the cluster secret, one per use (HKDF).
//! - [`wire`]: the one place that encodes and decodes MessagePack.
//! - [`duration`]: human-readable durations.

pub mod alert;
pub mod api;
pub mod dispatch;
pub mod duration;
pub mod job;
pub mod keys;
pub mod meta;
pub mod replay;
pub mod run;
pub mod schedule;
pub mod selector;
pub mod signature;
pub mod signature_v2;
pub mod signing;
pub mod validate;
mod vixie;
pub mod wire;

pub use duration::HumanDuration;
pub use job::{Job, JobKey, Target};
pub use meta::{MetaCommand, PutMode};
pub use run::{Run, RunStatus, RunUpdate, TriggerKind};
pub use schedule::Schedule;
