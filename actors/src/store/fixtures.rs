//! What the store's tests build again and again: a job from its id, a
//! pending run of one slot, a store opened again.

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
        pending_reason: None,
        parent_run_ids: Vec::new(),
        parent_scheduled_at: None,
        parent_job_id: None,
        alerts: Vec::new(),
    }
}

/// The store in `dir`, opened again right after it was dropped: sled's
/// flusher thread may hold the directory's lock a moment longer.
pub fn open_store(
    dir: &std::path::Path,
    policy: super::retention::HistoryPolicy,
) -> super::StateMachine {
    let mut tries = 0;
    loop {
        match super::StateMachine::open(dir, policy.clone()) {
            Ok(store) => return store,
            Err(e) if tries < 100 => {
                tries += 1;
                tracing::debug!(error = %e, "the store is still locked");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("the store does not open: {e}"),
        }
    }
}

/// A sled database in `dir` opened as a node opens its own (high
/// throughput, 128 MiB of cache), for measurements that must see what a
/// node sees.
pub fn node_like_db(dir: &std::path::Path) -> sled::Db {
    sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        .cache_capacity(128 * 1024 * 1024)
        .open()
        .expect("sled opens")
}
