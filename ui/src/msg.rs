//! The messages between the screen and the worker that talks to the API:
//! what a key asks for ([`Action`]) and what comes back ([`Update`]).

use crate::{
    conn::Link,
    model::{Run, Snapshot},
};

/// A request for the API that a key (or an open details view) asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `POST /v1/jobs/{job}/trigger`.
    Trigger { namespace: String, job: String },
    /// `POST /v1/jobs/{job}/pause` (false) or `/resume` (true).
    SetEnabled {
        namespace: String,
        job: String,
        enabled: bool,
    },
    /// `POST /v1/runs/{run_id}/kill`, after the user confirmed.
    Kill { run_id: String },
    /// `GET /v1/runs/{run_id}` and its output, for the details view.
    LoadRun { run_id: String },
}

/// What the worker reports back. Errors are already worded for the screen.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// A refresh: where it was read from and what it read.
    Refreshed {
        link: Link,
        snapshot: Result<Snapshot, String>,
    },
    /// The ids of the runs a trigger created.
    Triggered {
        job: String,
        runs: Result<Vec<String>, String>,
    },
    EnabledSet {
        job: String,
        enabled: bool,
        result: Result<(), String>,
    },
    /// The run's status once the kill was recorded (or the deadline passed).
    Killed {
        run_id: String,
        status: Result<String, String>,
    },
    /// A run and its output, for the details view.
    RunLoaded {
        run_id: String,
        run: Result<(Run, String), String>,
    },
}
