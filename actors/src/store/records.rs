//! What the state machine stores beside the public Job and Run.

use chrono::{DateTime, Utc};
use protocol::Run;
use serde::{Deserialize, Serialize};

/// Per-job bookkeeping the trigger needs after a restart or leader change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every slot at or before this instant is accounted for (fired, skipped
    /// or not owed because the job did not exist or was paused). Slots after
    /// it and before now were missed and go through the misfire policy.
    pub cursor: DateTime<Utc>,
    /// Runs stored for the job, to bound its history.
    pub run_count: u64,
}

/// A run with its position in creation order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredRun {
    pub seq: u64,
    pub run: Run,
}
