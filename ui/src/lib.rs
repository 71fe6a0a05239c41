//! The `cronmesh tui` status viewer (ratatui), built on the admin HTTP API
//! only: the cluster (leader, term, members), the executors, the jobs with
//! their next fire and last status, and a live stream of recent runs.
//!
//! Modules:
//! - [`model`]: the API's JSON as small tolerant structs, and a [`model::Snapshot`] of one refresh.
//! - [`api`]: requests to one node (reads, trigger, pause/resume, kill) and their errors.
//! - [`conn`]: which node is read, and fail-over to another member when it stops answering.
//! - [`msg`]: the [`msg::Action`]s keys ask for and the [`msg::Update`]s that come back.
//! - [`app`]: the viewer's state (selection, filter, overlays, notices); no terminal needed.
//! - `keys`: what each key does in each mode (methods of [`app::App`]).
//! - [`view`]: drawing the header, the four panes, the bottom line and the overlays.
//! - [`worker`]: the tokio side that performs refreshes and actions.
//! - [`terminal`]: terminal set-up and the event loop; [`run`] is the entry point.
//! - `fixtures` (tests only): a sample snapshot at a fixed time and a fake node over HTTP.

pub mod api;
pub mod app;
pub mod conn;
#[cfg(test)]
mod fixtures;
mod keys;
pub mod model;
pub mod msg;
pub mod terminal;
pub mod view;
pub mod worker;

pub use terminal::run;
