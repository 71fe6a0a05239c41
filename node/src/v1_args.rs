//! The flags of the upgrade from executor protocol version 1, shared by
//! `cronmesh server` and `cronmesh executor` (docs/OPERATIONS.md,
//! "Upgrading to protocol v2"). Both are for one release only.

use protocol::signing::V1Compat;

/// `--accept-v1-signatures`, `--send-v1-signatures`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct V1Args {
    /// During the upgrade to protocol v2 only: also accept version 1
    /// signatures of dispatches (on an executor) and reports (on a
    /// scheduler) from members not upgraded yet. Kills and an executor's
    /// reads always need version 2.
    #[arg(long)]
    pub accept_v1_signatures: bool,

    /// During the upgrade to protocol v2 only: append a version 1
    /// signature to every request signed, so members not upgraded yet
    /// accept it (dispatches and kills to old executors, reports to old
    /// schedulers).
    #[arg(long)]
    pub send_v1_signatures: bool,
}

impl V1Args {
    pub fn compat(&self) -> V1Compat {
        V1Compat {
            accept_v1: self.accept_v1_signatures,
            send_v1: self.send_v1_signatures,
        }
    }
}
