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

/// A [`StoredRun`] to encode from a borrowed run (same bytes).
#[derive(Serialize)]
pub struct StoredRunRef<'a> {
    pub seq: u64,
    pub run: &'a Run,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrowed_run_record_encodes_as_the_owned_one() {
        let run = Run {
            id: "r1".into(),
            job_id: "j".into(),
            ..serde_json::from_value(serde_json::json!({
                "id": "r1", "job_id": "j", "namespace": "default",
                "scheduled_at": "2026-11-21T23:00:00Z", "trigger": "schedule",
                "shard": {"index": 0, "count": 1, "param": ""}, "attempt": 1,
                "status": "pending", "executor": null, "created_at": "2026-11-21T22:59:59Z",
                "started_at": null, "finished_at": null, "exit_code": null,
                "output": "", "error": null
            }))
            .unwrap()
        };
        let owned = protocol::wire::encode(&StoredRun {
            seq: 7,
            run: run.clone(),
        })
        .unwrap();
        let borrowed = protocol::wire::encode(&StoredRunRef { seq: 7, run: &run }).unwrap();
        assert_eq!(owned, borrowed);
    }
}
