//! `Fire`: a request to run a job for one slot, passed from the Trigger (or
//! the API, or the Dispatcher for retries and children) to the Router.

use chrono::{DateTime, Utc};
use protocol::{run::ShardInfo, JobKey, Run, TriggerKind};
use tokio::sync::oneshot;

#[derive(Clone, Debug, PartialEq)]
pub struct Fire {
    pub job: JobKey,
    /// The slot; for manual and child fires, the time of the request.
    pub scheduled_at: DateTime<Utc>,
    pub trigger: TriggerKind,
    /// Record the slot as `skipped` with this reason instead of running it.
    pub skip_reason: Option<String>,
    /// Replaces the job's `params` for this fire.
    pub params: Option<String>,
    /// Set for retries: the single run this fire repeats.
    pub retry: Option<RetryOf>,
    /// Set for child fires (and retries of child runs): the parent's fire
    /// the runs carry, and for a child fire the source of their ids.
    pub parent: Option<ParentFire>,
}

impl Fire {
    pub fn new(job: JobKey, scheduled_at: DateTime<Utc>, trigger: TriggerKind) -> Self {
        Self {
            job,
            scheduled_at,
            trigger,
            skip_reason: None,
            params: None,
            retry: None,
            parent: None,
        }
    }

    pub fn skipped(
        job: JobKey,
        scheduled_at: DateTime<Utc>,
        trigger: TriggerKind,
        reason: String,
    ) -> Self {
        Self {
            skip_reason: Some(reason),
            ..Self::new(job, scheduled_at, trigger)
        }
    }
}

/// The parent fire a child run was started by.
#[derive(Clone, Debug, PartialEq)]
pub struct ParentFire {
    pub job_id: String,
    /// The parent's slot.
    pub scheduled_at: DateTime<Utc>,
    /// The trigger that started the parent's fire (not a retry's).
    pub trigger: TriggerKind,
    /// The final runs of the parent's fire, in shard order.
    pub run_ids: Vec<String>,
}

impl ParentFire {
    /// The parent a child run carries, for its retries; `None` for a run
    /// that is not a child's. Its trigger is the run's own: retries take
    /// their ids from the run they repeat, not from the parent.
    pub fn of_run(run: &Run) -> Option<Self> {
        let (Some(job_id), Some(scheduled_at)) = (&run.parent_job_id, run.parent_scheduled_at)
        else {
            return None;
        };
        Some(Self {
            job_id: job_id.clone(),
            scheduled_at,
            trigger: run.trigger,
            run_ids: run.parent_run_ids.clone(),
        })
    }
}

/// What a retry repeats.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryOf {
    /// The run that failed; the retry's id derives from it and the attempt.
    pub previous_run_id: String,
    pub attempt: u32,
    pub shard: ShardInfo,
    pub params: String,
    /// The executor that failed it, avoided when another is available.
    pub previous_executor: Option<String>,
}

/// Where the runs created for a batch of fires are reported, for callers
/// that wait (a manual trigger answers with its runs).
pub type FireReply = oneshot::Sender<Result<Vec<Run>, String>>;
