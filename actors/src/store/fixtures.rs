//! What the store's tests build again and again: a job from its id and a
//! pending run of one slot.

use chrono::{DateTime, Utc};
use protocol::{
    run::{slot_run_id, ShardInfo},
    Job, JobKey, Run, RunStatus, TriggerKind,
};

/// A valid job `id` in the default namespace running `command` on
/// `schedule`.
pub fn job_running(id: &str, schedule: &str, command: &str) -> Job {
    protocol::validate::from_json(
        format!(
            r#"{{"id":"{id}","schedule":"{schedule}","target":{{"type":"shell","command":"{command}"}}}}"#
        )
        .as_bytes(),
    )
    .expect("a valid job")
}

/// A job `id` firing every second.
pub fn job(id: &str) -> Job {
    job_running(id, "@every 1s", "true")
}

/// The pending run of `key`'s slot at `at`, created then, on no executor.
pub fn slot_run_of(key: &JobKey, at: DateTime<Utc>) -> Run {
    Run {
        id: slot_run_id(&key.namespace, &key.id, at, 0),
        job_id: key.id.clone(),
        namespace: key.namespace.clone(),
        scheduled_at: at,
        trigger: TriggerKind::Schedule,
        shard: ShardInfo {
            index: 0,
            count: 1,
            param: String::new(),
        },
        attempt: 1,
        status: RunStatus::Pending,
        executor: None,
        created_at: at,
        started_at: None,
        finished_at: None,
        exit_code: None,
        output: String::new(),
        error: None,
        params: String::new(),
        retry_of: None,
    }
}
