//! The per-node actors of cronmesh and the plain cores behind them. Each
//! actor is a thin shell over a `*Core` that holds its logic and is tested
//! without actix.
//!
//! - [`store`]: the JobStore state machine over sled and the single-node log.
//! - [`job_store`]: the JobStore actor: proposes writes, publishes applied commands.
//! - [`trigger`]: fires due slots from one timer; the misfire policy.
//! - [`backlog`]: backpressure: the trigger hands over no more fires than the log keeps up with.
//! - [`router`]: turns fires into runs placed on executors by routing policy,
//!   among the executors whose labels and handlers the job asks for.
//! - [`dispatcher`]: creates runs through the log, delivers them, tracks them to the end;
//!   fires child jobs once per parent fire (`dispatcher/fan_in.rs`).
//! - [`log_sink`]: batches run transitions into the log.
//! - [`alerts`]: run alerts by webhook (json, Slack, Teams) and e-mail, retried, each attempt recorded on the run.
//! - [`proposer`]: the interface through which every metadata change goes.
//! - [`fire`], [`messages`]: what the actors pass each other.
//! - [`clock`]: injected wall-clock time.
//! - [`lease`]: the leader lease every action with side effects confirms before it leaves.
//! - [`http_client`]: the pooled HTTP client every component shares.
//! - [`kill_point`], [`fault_point`]: where a test may have the process killed, or a fault injected.

pub mod alerts;
pub mod backlog;
pub mod clock;
pub mod dispatcher;
pub mod fire;
pub mod http_client;
pub mod job_store;
pub mod lease;
pub mod log_sink;
pub mod messages;
pub mod proposer;
pub mod router;
pub mod store;
pub mod trigger;

/// A place where a test may have this process killed with SIGKILL, to
/// prove that a crash there is survived. Built with the `failpoints`
/// feature and armed by [`arm_kill_points`], `FAILPOINTS=NAME=return` (see
/// the `fail` crate) kills the process when it passes `name`; otherwise it
/// does nothing.
pub fn kill_point(name: &str) {
    #[cfg(feature = "failpoints")]
    if fail::eval(name, |_| ()).is_some() {
        eprintln!("kill point {name}: killing this process");
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        std::process::abort();
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

/// A place where a test may inject a fault other than a crash: true when
/// the `failpoints` build has `name` armed (`FAILPOINTS=NAME=return`, or
/// `NAME=10%return` for one time in ten), false otherwise.
pub fn fault_point(name: &str) -> bool {
    #[cfg(feature = "failpoints")]
    return fail::eval(name, |_| ()).is_some();
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = name;
        false
    }
}

/// Reads `FAILPOINTS` once at start, when built with the `failpoints`
/// feature (a test build); says whether kill points can be armed.
pub fn arm_kill_points() -> bool {
    #[cfg(feature = "failpoints")]
    {
        std::mem::forget(fail::FailScenario::setup());
        true
    }
    #[cfg(not(feature = "failpoints"))]
    false
}
