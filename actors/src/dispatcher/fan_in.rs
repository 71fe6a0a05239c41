//! Fan-in of child jobs: a parent's children fire once per parent *fire*
//! (every shard, or every broadcast run, of one slot), once each of its
//! runs is final (no retry or failover follows), judged on the whole.
//!
//! The dispatcher keeps a tally per fire of a job with children, keyed by
//! (job, slot): the latest attempt of each shard, active or ended. Runs
//! enter it when they are created (a retry or failover replaces its
//! shard's earlier attempt) or taken over by a new leader (`resume`); a
//! shard ends in it only once no retry follows. A fire whose shards all
//! ended is judged and forgotten.
//!
//! A tally may lack shards: they were created by an earlier leader and
//! ended before this one took over, or by a chunk of this leader's not yet
//! committed. When every shard the tally knows has ended but some are
//! missing, the dispatcher reads the fire's runs from the store
//! ([`Step::Load`]) and fills in the missing shards with their latest
//! attempt there ([`FanIn::loaded`]); what the tally knows wins, being
//! newer than the store.
//!
//! Child runs are named by (child, parent job, parent slot, parent
//! trigger, child shard) (`protocol::run::child_run_id`), so judging a
//! fire twice (a new leader that re-checks it) creates nothing the second
//! time.
//!
//! The window: a leader that stops after the last parent run ended but
//! before its child's runs were committed loses the child, unless the new
//! leader re-checks the fire ([`FanIn::recheck`] with the recently ended
//! runs, bounded).
//!
//! Two fires of one job at the same millisecond with different triggers
//! (a manual trigger at a scheduled slot) share a tally.
//!
//! A fire some of whose runs never come to exist (their creation failed)
//! waits until its job is deleted or this node stops leading: it is not
//! judged on part of its shards, which may only be on their way.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use protocol::{
    job::{ChildCondition, ChildParams},
    Job, JobKey, Run, RunStatus, TriggerKind,
};

use crate::fire::{Fire, ParentFire};

/// How many judged fires are remembered, so a late report or store read
/// does not judge one again (the child's ids make that harmless anyway).
const JUDGED_MEMORY: usize = 4096;
/// Most fires a new leader re-checks on taking over.
pub const MAX_RECHECK: usize = 256;

/// One fire of a job: its job and slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FireKey {
    pub job: JobKey,
    pub slot: DateTime<Utc>,
}

impl FireKey {
    pub fn of(run: &Run) -> Self {
        Self {
            job: JobKey::new(run.namespace.clone(), run.job_id.clone()),
            slot: run.scheduled_at,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Shard {
    /// The shard's latest attempt has not ended, or a retry follows it.
    Active,
    /// The shard's latest attempt ended and nothing follows it.
    Ended {
        run_id: String,
        status: RunStatus,
        params: String,
    },
}

#[derive(Debug)]
struct Tally {
    job: Arc<Job>,
    /// Runs the fire has (the shard count, or the broadcast's runs).
    count: u32,
    /// The trigger of the fire's first attempts, once known.
    trigger: Option<TriggerKind>,
    shards: BTreeMap<u32, Shard>,
    /// A store read of the fire is on its way.
    loading: bool,
}

/// What the dispatcher does next for a fire.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Nothing yet: shards are still running.
    Wait,
    /// Read the fire's runs from the store and call [`FanIn::loaded`].
    Load(FireKey, Arc<Job>),
    /// The fire was judged: these children fire (maybe none).
    Fire(Vec<Fire>),
}

#[derive(Default)]
pub struct FanIn {
    tallies: HashMap<FireKey, Tally>,
    judged: HashSet<FireKey>,
    judged_order: VecDeque<FireKey>,
}

impl FanIn {
    /// Forgets every tally (leadership lost).
    pub fn clear(&mut self) {
        self.tallies.clear();
        self.judged.clear();
        self.judged_order.clear();
    }

    /// Forgets the fires of a deleted job.
    pub fn forget_job(&mut self, key: &JobKey) {
        self.tallies.retain(|fire, _| fire.job != *key);
    }

    /// A run of `job` exists and is not final: created, retried, failed
    /// over or taken over.
    pub fn started(&mut self, job: &Arc<Job>, run: &Run) {
        if job.children.is_empty() {
            return;
        }
        let key = FireKey::of(run);
        if self.judged.contains(&key) {
            return;
        }
        let tally = self.tally(key, job, run);
        tally.shards.insert(run.shard.index, Shard::Active);
    }

    /// A run of `job` ended and no retry follows.
    pub fn ended(&mut self, job: &Arc<Job>, run: &Run, now: DateTime<Utc>) -> Step {
        if job.children.is_empty() {
            return Step::Wait;
        }
        let key = FireKey::of(run);
        if self.judged.contains(&key) {
            return Step::Wait;
        }
        let tally = self.tally(key.clone(), job, run);
        tally.job = job.clone();
        tally.shards.insert(
            run.shard.index,
            Shard::Ended {
                run_id: run.id.clone(),
                status: run.status,
                params: run.params.clone(),
            },
        );
        self.step(key, now, true)
    }

    /// The fire's runs as the store has them (`Err`: it could not be
    /// read; the fire waits for its next end).
    pub fn loaded(
        &mut self,
        key: FireKey,
        runs: Result<Vec<Run>, String>,
        now: DateTime<Utc>,
    ) -> Step {
        let Some(tally) = self.tallies.get_mut(&key) else {
            return Step::Wait;
        };
        tally.loading = false;
        let runs = match runs {
            Ok(runs) => runs,
            Err(e) => {
                tracing::warn!(job = %key.job, slot = %key.slot, error = %e, "cannot read the runs of a parent's fire; its children wait");
                return Step::Wait;
            }
        };
        // The latest attempt of each shard the tally lacks.
        let mut latest: BTreeMap<u32, &Run> = BTreeMap::new();
        for run in &runs {
            if FireKey::of(run) != key || run.shard.index >= tally.count {
                continue;
            }
            if tally.trigger.is_none() && run.attempt == 1 {
                tally.trigger = Some(run.trigger);
            }
            let newer = latest
                .get(&run.shard.index)
                .is_none_or(|seen| run.attempt > seen.attempt);
            if newer {
                latest.insert(run.shard.index, run);
            }
        }
        for (index, run) in latest {
            tally.shards.entry(index).or_insert_with(|| {
                if run.status.is_terminal() {
                    Shard::Ended {
                        run_id: run.id.clone(),
                        status: run.status,
                        params: run.params.clone(),
                    }
                } else {
                    Shard::Active
                }
            });
        }
        self.step(key, now, false)
    }

    /// Fires a new leader checks again: those of the recently ended runs
    /// `runs` of jobs with children, none of whose runs is active here.
    /// Each is read from the store and judged (children already created
    /// are not created again). At most [`MAX_RECHECK`].
    pub fn recheck(&mut self, runs: &[(Run, Arc<Job>)]) -> Vec<(FireKey, Arc<Job>)> {
        let mut out = Vec::new();
        for (run, job) in runs {
            if out.len() >= MAX_RECHECK {
                break;
            }
            if job.children.is_empty() || !run.status.is_terminal() {
                continue;
            }
            let key = FireKey::of(run);
            if self.judged.contains(&key) || self.tallies.contains_key(&key) {
                continue;
            }
            let tally = self.tally(key.clone(), job, run);
            tally.loading = true;
            out.push((key, job.clone()));
        }
        out
    }

    fn tally(&mut self, key: FireKey, job: &Arc<Job>, run: &Run) -> &mut Tally {
        let tally = self.tallies.entry(key).or_insert_with(|| Tally {
            job: job.clone(),
            count: run.shard.count.max(1),
            trigger: None,
            shards: BTreeMap::new(),
            loading: false,
        });
        if tally.trigger.is_none()
            && !matches!(run.trigger, TriggerKind::Retry | TriggerKind::Failover)
        {
            tally.trigger = Some(run.trigger);
        }
        tally
    }

    /// Judges the fire if every shard ended; asks for the store's view if
    /// every known shard ended but some are unknown (`may_load`).
    fn step(&mut self, key: FireKey, now: DateTime<Utc>, may_load: bool) -> Step {
        let Some(tally) = self.tallies.get_mut(&key) else {
            return Step::Wait;
        };
        let any_active = tally.shards.values().any(|s| *s == Shard::Active);
        if any_active {
            return Step::Wait;
        }
        if (tally.shards.len() as u32) < tally.count {
            if may_load && !tally.loading {
                tally.loading = true;
                return Step::Load(key, tally.job.clone());
            }
            return Step::Wait;
        }
        let Some(tally) = self.tallies.remove(&key) else {
            return Step::Wait;
        };
        self.remember(key.clone());
        Step::Fire(judge(&key, &tally, now))
    }

    fn remember(&mut self, key: FireKey) {
        if self.judged.insert(key.clone()) {
            self.judged_order.push_back(key);
        }
        while self.judged_order.len() > JUDGED_MEMORY {
            if let Some(old) = self.judged_order.pop_front() {
                self.judged.remove(&old);
            }
        }
    }
}

/// The children of a fire whose shards all ended. Skipped runs did not
/// run: a fire whose runs were all skipped fires no child; otherwise
/// `success` fires when every run that ran succeeded, `failure` when one
/// failed, timed out or was killed, `always` in either case.
fn judge(key: &FireKey, tally: &Tally, now: DateTime<Utc>) -> Vec<Fire> {
    let ended: Vec<(&String, RunStatus, &String)> = tally
        .shards
        .values()
        .filter_map(|shard| match shard {
            Shard::Ended {
                run_id,
                status,
                params,
            } => Some((run_id, *status, params)),
            Shard::Active => None,
        })
        .collect();
    let ran: Vec<RunStatus> = ended
        .iter()
        .map(|(_, status, _)| *status)
        .filter(|status| *status != RunStatus::Skipped)
        .collect();
    if ran.is_empty() {
        return Vec::new();
    }
    let succeeded = ran.iter().all(|s| *s == RunStatus::Succeeded);
    let failed = ran.iter().any(|s| {
        matches!(
            s,
            RunStatus::Failed | RunStatus::TimedOut | RunStatus::Killed
        )
    });
    let parent = ParentFire {
        job_id: key.job.id.clone(),
        scheduled_at: key.slot,
        trigger: tally.trigger.unwrap_or(TriggerKind::Schedule),
        run_ids: ended.iter().map(|(id, _, _)| (*id).clone()).collect(),
    };
    let parent_params = ended.first().map(|(_, _, params)| (*params).clone());
    tally
        .job
        .children
        .iter()
        .filter(|link| match link.on {
            ChildCondition::Success => succeeded,
            ChildCondition::Failure => failed,
            ChildCondition::Always => true,
        })
        .map(|link| Fire {
            params: match link.params {
                ChildParams::Own => None,
                ChildParams::Parent => parent_params.clone(),
            },
            parent: Some(parent.clone()),
            ..Fire::new(
                JobKey::new(key.job.namespace.clone(), link.job.clone()),
                now,
                TriggerKind::Child,
            )
        })
        .collect()
}

#[cfg(test)]
#[path = "fan_in_tests.rs"]
mod tests;
