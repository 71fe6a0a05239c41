//! Tests of the history policy (`retention`) and its bookkeeping
//! (`run_book`): each rule keeps exactly what it should, the totals match
//! the runs, stores of earlier versions are read and counted, and two
//! stores applying the same commands end the same.

use std::{collections::BTreeMap, time::Duration as StdDuration};

use chrono::{DateTime, Duration, Utc};
use protocol::{JobKey, MetaCommand, Run, RunStatus, RunUpdate};
use serde::Serialize;

use super::{
    fixtures::{job, open_store, slot_run_of},
    keys,
    records::{JobHistory, StoredRun},
    retention::HistoryPolicy,
    JobState, RunFilter, StateMachine,
};

pub(super) fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A run of `job` for the slot `t0 + secs`, created then, with `status`;
/// a finished one ended a second later.
pub(super) fn run(job: &str, secs: i64, status: RunStatus) -> Run {
    let at = t0() + Duration::seconds(secs);
    Run {
        status,
        executor: Some("http://10.0.0.1:7080".into()),
        finished_at: status.is_terminal().then(|| at + Duration::seconds(1)),
        output: format!("output of {job} at {secs}"),
        ..slot_run_of(&JobKey::new("default", job), at)
    }
}

struct Log {
    sm: StateMachine,
    index: u64,
    _dir: tempfile::TempDir,
}

impl Log {
    fn new(policy: HistoryPolicy) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sm = StateMachine::open(dir.path(), policy).unwrap();
        Self {
            sm,
            index: 0,
            _dir: dir,
        }
    }

    fn apply(&mut self, cmd: MetaCommand) {
        self.index += 1;
        self.sm.apply(self.index, &cmd).unwrap();
    }

    fn jobs(&mut self, ids: &[&str]) {
        self.apply(MetaCommand::CreateJobs {
            jobs: ids.iter().map(|id| job(id)).collect(),
            at: t0(),
        });
    }

    fn create(&mut self, runs: Vec<Run>) {
        self.apply(MetaCommand::CreateRuns { runs });
    }

    /// The stored runs of `job` (all jobs: `None`), oldest first, as
    /// (slot second, status).
    fn kept(&self, job: Option<&str>) -> Vec<(i64, RunStatus)> {
        let filter = RunFilter {
            job: job.map(|j| JobKey::new("default", j)),
            ..Default::default()
        };
        let (runs, _) = self.sm.runs(&filter, None, 100_000).unwrap();
        runs.iter()
            .rev()
            .map(|r| ((r.scheduled_at - t0()).num_seconds(), r.status))
            .collect()
    }

    fn history(&self, job: &str) -> JobHistory {
        let state = self.sm.job_state(&JobKey::new("default", job)).unwrap();
        state.unwrap().history.unwrap()
    }

    /// Every key and value of the state.
    fn contents(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.sm
            .tree()
            .iter()
            .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
            .collect()
    }

    fn byte_total(&self) -> u64 {
        let raw = self.sm.tree().get(keys::HISTORY_BYTES).unwrap().unwrap();
        u64::from_be_bytes(raw.as_ref().try_into().unwrap())
    }

    /// The kept totals equal what the runs add up to.
    fn assert_books_balance(&self) {
        let mut bytes = 0;
        let mut counts: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
        for entry in self.sm.tree().scan_prefix(keys::run("")) {
            let (key, value) = entry.unwrap();
            let stored = StoredRun::decode(&key, &value).unwrap();
            let run = &stored.run;
            // What a run takes is its record, key and value: nothing else
            // is written for it.
            bytes += (key.len() + value.len()) as u64;
            let c = counts.entry(run.job_id.clone()).or_default();
            c.0 += 1;
            c.1 += u64::from(run.status == RunStatus::Succeeded);
            c.2 += u64::from(run.status.is_terminal() && run.status != RunStatus::Succeeded);
        }
        assert_eq!(self.byte_total(), bytes, "byte total");
        for (job, (runs, succeeded, failed)) in counts {
            let state = self
                .sm
                .job_state(&JobKey::new("default", &job))
                .unwrap()
                .unwrap();
            let history = state.history.clone().unwrap();
            assert_eq!(
                (state.run_count, history.succeeded, history.failed),
                (runs, succeeded, failed),
                "counts of {job}"
            );
        }
    }
}

pub(super) fn update(run: &Run, status: RunStatus, finished: DateTime<Utc>) -> RunUpdate {
    RunUpdate {
        run_id: run.id.clone(),
        status: Some(status),
        finished_at: Some(finished),
        exit_code: Some(i32::from(status != RunStatus::Succeeded)),
        ..Default::default()
    }
}

#[test]
fn succeeded_and_other_runs_are_kept_to_their_own_limits() {
    let mut log = Log::new(HistoryPolicy {
        succeeded_limit: 3,
        failed_limit: 2,
        ..HistoryPolicy::keeping(0)
    });
    log.jobs(&["a", "b"]);
    let endings = [
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::TimedOut,
        RunStatus::Killed,
        RunStatus::Skipped,
    ];
    for i in 0..20 {
        log.create(vec![run("a", i, endings[i as usize % 5])]);
    }
    // Another job's runs count apart.
    log.create(vec![run("b", 100, RunStatus::Succeeded)]);
    use RunStatus::*;
    assert_eq!(
        log.kept(Some("a")),
        vec![
            (5, Succeeded),
            (10, Succeeded),
            (15, Succeeded),
            (18, Killed),
            (19, Skipped)
        ]
    );
    assert_eq!(log.kept(Some("b")), vec![(100, Succeeded)]);
    let history = log.history("a");
    assert_eq!((history.succeeded, history.failed), (3, 2));
    log.assert_books_balance();
}

#[test]
fn runs_are_counted_when_they_end_and_trimmed_by_the_update() {
    let mut log = Log::new(HistoryPolicy {
        succeeded_limit: 2,
        failed_limit: 1,
        ..HistoryPolicy::keeping(0)
    });
    log.jobs(&["a"]);
    let runs: Vec<Run> = (0..6).map(|i| run("a", i, RunStatus::Pending)).collect();
    log.create(runs.clone());
    assert_eq!(log.kept(Some("a")).len(), 6, "active runs are all kept");
    let end = t0() + Duration::seconds(10);
    let statuses = [
        RunStatus::Failed,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Succeeded,
        RunStatus::Succeeded,
    ];
    log.apply(MetaCommand::RecordRuns {
        updates: runs
            .iter()
            .zip(statuses)
            .map(|(r, s)| update(r, s, end))
            .collect(),
    });
    use RunStatus::*;
    assert_eq!(
        log.kept(Some("a")),
        vec![(2, Failed), (3, Succeeded), (4, Succeeded), (5, Pending)]
    );
    log.assert_books_balance();
}

#[test]
fn active_runs_are_never_dropped_by_any_rule() {
    let mut log = Log::new(HistoryPolicy {
        succeeded_limit: 1,
        failed_limit: 1,
        max_age: Some(StdDuration::from_secs(10)),
        max_bytes: Some(1),
    });
    log.jobs(&["a"]);
    log.create(vec![
        run("a", 0, RunStatus::Running),
        run("a", 1, RunStatus::Pending),
    ]);
    for i in 2..8 {
        log.create(vec![run("a", i, RunStatus::Succeeded)]);
    }
    log.create(vec![run("a", 1000, RunStatus::Dispatched)]);
    use RunStatus::*;
    assert_eq!(
        log.kept(Some("a")),
        vec![(0, Running), (1, Pending), (1000, Dispatched)]
    );
    log.assert_books_balance();
}

#[test]
fn finished_runs_older_than_the_max_age_are_dropped() {
    let mut log = Log::new(HistoryPolicy {
        max_age: Some(StdDuration::from_secs(3600)),
        ..HistoryPolicy::keeping(100)
    });
    log.jobs(&["a", "b"]);
    // Runs every 10 minutes from 0:00 to 0:50, each ending a second in;
    // the one of 0:20 still runs, the one of 0:40 ends at 1:30.
    for m in 0..6 {
        let status = match m {
            2 | 4 => RunStatus::Running,
            _ => RunStatus::Succeeded,
        };
        log.create(vec![run("a", m * 600, status)]);
    }
    let late = run("a", 2400, RunStatus::Running);
    log.apply(MetaCommand::RecordRuns {
        updates: vec![update(
            &late,
            RunStatus::Succeeded,
            t0() + Duration::minutes(90),
        )],
    });
    // At 1:30, what ended before 0:30 went.
    use RunStatus::*;
    assert_eq!(
        log.kept(Some("a")),
        vec![
            (1200, Running),
            (1800, Succeeded),
            (2400, Succeeded),
            (3000, Succeeded)
        ]
    );
    // A command about `b` at 1:35 leaves `a` alone.
    log.create(vec![run("b", 5700, Succeeded)]);
    assert_eq!(log.kept(Some("a")).len(), 4);
    // A command about `a` at 1:45: what ended before 0:45 goes, but not
    // what runs, nor what began before and ended after.
    log.create(vec![run("a", 6300, Succeeded)]);
    assert_eq!(
        log.kept(Some("a")),
        vec![
            (1200, Running),
            (2400, Succeeded),
            (3000, Succeeded),
            (6300, Succeeded)
        ]
    );
    log.assert_books_balance();
}

#[test]
fn the_byte_budget_drops_the_oldest_finished_runs_of_all_jobs() {
    let mut unbounded = Log::new(HistoryPolicy::keeping(1000));
    unbounded.jobs(&["a", "b", "c"]);
    unbounded.create(vec![run("a", 0, RunStatus::Succeeded)]);
    let one_run = unbounded.byte_total();
    // Room for about ten runs of these jobs (names of the same length).
    let budget = one_run * 10 + one_run / 2;
    let mut log = Log::new(HistoryPolicy {
        max_bytes: Some(budget),
        ..HistoryPolicy::keeping(1000)
    });
    log.jobs(&["a", "b", "c"]);
    log.create(vec![run("c", 1, RunStatus::Running)]);
    for i in 2..40 {
        let job = ["a", "b", "c"][i as usize % 3];
        let status = [RunStatus::Succeeded, RunStatus::Failed][i as usize % 2];
        log.create(vec![run(job, i, status)]);
    }
    assert!(
        log.byte_total() <= budget,
        "{} > {budget}",
        log.byte_total()
    );
    let kept = log.kept(None);
    let secs: Vec<i64> = kept.iter().map(|(s, _)| *s).collect();
    // The running one, and the newest finished ones of every job.
    assert_eq!(secs[0], 1);
    assert_eq!(
        secs[1..],
        (40 - (secs.len() as i64 - 1)..40).collect::<Vec<_>>()[..]
    );
    assert!(kept.len() >= 9, "{kept:?}");
    log.assert_books_balance();
}

#[test]
fn trimming_one_outcome_leaves_the_runs_of_the_other() {
    let mut log = Log::new(HistoryPolicy {
        succeeded_limit: 2,
        failed_limit: 5,
        ..HistoryPolicy::keeping(0)
    });
    log.jobs(&["a"]);
    for i in 0..5 {
        log.create(vec![run("a", i, RunStatus::Failed)]);
    }
    for i in 5..10 {
        log.create(vec![run("a", i, RunStatus::Succeeded)]);
    }
    use RunStatus::*;
    assert_eq!(
        log.kept(Some("a")),
        vec![
            (0, Failed),
            (1, Failed),
            (2, Failed),
            (3, Failed),
            (4, Failed),
            (8, Succeeded),
            (9, Succeeded)
        ]
    );
    let history = log.history("a");
    assert_eq!((history.succeeded, history.failed), (2, 5));
    log.assert_books_balance();
}

/// A `JobState` as versions before retention by outcome wrote it.
#[derive(Serialize)]
struct OldJobState {
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    cursor: DateTime<Utc>,
    run_count: u64,
}

/// The keys of the run indexes of earlier versions, each holding the id.
fn old_index_keys(key: &JobKey, status: RunStatus, seq: u64) -> [Vec<u8>; 3] {
    let seq = seq.to_be_bytes();
    let of_job = [
        b"rj\0".as_slice(),
        key.namespace.as_bytes(),
        b"\0",
        key.id.as_bytes(),
        b"\0",
        &seq,
    ]
    .concat();
    let by_status = [b"rs\0".as_slice(), status.as_str().as_bytes(), b"\0", &seq].concat();
    let all = [b"ra\0".as_slice(), &seq].concat();
    [of_job, by_status, all]
}

#[test]
fn a_store_of_an_earlier_version_is_read_counted_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new().path(dir.path()).open().unwrap();
    let key = JobKey::new("default", "a");
    let job = job("a");
    // Written as an earlier version did: records by name, the run id in
    // every index entry, counts in the job state and a byte total that
    // counted the index entries.
    let tree = db.open_tree("state").unwrap();
    let old_state = protocol::wire::encode(&OldJobState {
        created_at: t0(),
        updated_at: t0(),
        cursor: t0(),
        run_count: 5,
    })
    .unwrap();
    let state: JobState = protocol::wire::decode(&old_state).unwrap();
    assert_eq!(state.history, None, "an old state decodes, without counts");
    tree.insert(keys::job(&key), protocol::wire::encode(&job).unwrap())
        .unwrap();
    tree.insert(keys::job_state(&key), old_state).unwrap();
    for i in 0..5u64 {
        let run = run("a", i as i64, RunStatus::Succeeded);
        let seq = keys::seq(i + 1, 0);
        let stored = StoredRun { seq, run };
        let id = stored.run.id.clone().into_bytes();
        tree.insert(
            keys::run(&stored.run.id),
            protocol::wire::encode(&stored).unwrap(),
        )
        .unwrap();
        for index_key in old_index_keys(&key, RunStatus::Succeeded, seq) {
            tree.insert(index_key, id.clone()).unwrap();
        }
    }
    tree.insert(keys::APPLIED, 5u64.to_be_bytes().to_vec())
        .unwrap();
    tree.insert(keys::HISTORY_BYTES, 999_999u64.to_be_bytes().to_vec())
        .unwrap();
    let mut log = Log {
        sm: StateMachine::with_db(
            db,
            HistoryPolicy {
                succeeded_limit: 3,
                failed_limit: 3,
                ..HistoryPolicy::keeping(0)
            },
        )
        .unwrap(),
        index: 5,
        _dir: dir,
    };
    for prefix in keys::OLD_INDEX_PREFIXES {
        assert_eq!(
            log.sm.tree().scan_prefix(prefix).count(),
            0,
            "old index entries are dropped when the store opens"
        );
    }
    use RunStatus::*;
    assert_eq!(log.kept(Some("a")).len(), 5, "the records are indexed");
    assert_eq!(
        log.sm.job_state(&key).unwrap().unwrap().run_count,
        5,
        "the count comes from the runs"
    );

    log.create(vec![run("a", 5, Succeeded), run("a", 6, Failed)]);
    assert_eq!(
        log.kept(Some("a")),
        vec![(3, Succeeded), (4, Succeeded), (5, Succeeded), (6, Failed)]
    );
    let history = log.history("a");
    assert_eq!((history.succeeded, history.failed), (3, 1));
    log.assert_books_balance();
    assert_eq!(log.sm.active_runs().unwrap(), Vec::new());
}

/// A deterministic mix of commands touching every rule.
pub(super) fn workload() -> Vec<MetaCommand> {
    let jobs = ["a", "b", "c", "d"];
    let mut cmds = vec![MetaCommand::CreateJobs {
        jobs: jobs.iter().map(|id| job(id)).collect(),
        at: t0(),
    }];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut open: Vec<Run> = Vec::new();
    for step in 0..300i64 {
        let job = jobs[(next() % 4) as usize];
        let fresh = run(job, step * 60, RunStatus::Pending);
        open.push(fresh.clone());
        cmds.push(MetaCommand::CreateRuns { runs: vec![fresh] });
        if next() % 6 != 0 && !open.is_empty() {
            let ended = open.remove((next() % open.len() as u64) as usize);
            let status = [RunStatus::Succeeded, RunStatus::Failed, RunStatus::TimedOut]
                [(next() % 3) as usize];
            cmds.push(MetaCommand::RecordRuns {
                updates: vec![update(
                    &ended,
                    status,
                    t0() + Duration::seconds(step * 60 + 30),
                )],
            });
        }
        if step == 200 {
            cmds.push(MetaCommand::DeleteJob {
                key: JobKey::new("default", "d"),
                force: false,
            });
        }
    }
    cmds
}

#[test]
fn two_stores_applying_the_same_commands_keep_the_same_runs() {
    let policy = HistoryPolicy {
        succeeded_limit: 12,
        failed_limit: 7,
        max_age: Some(StdDuration::from_secs(3 * 3600)),
        max_bytes: Some(20_000),
    };
    let (mut one, mut two) = (Log::new(policy.clone()), Log::new(policy));
    for cmd in workload() {
        one.apply(cmd.clone());
        two.apply(cmd);
    }
    assert_eq!(one.contents(), two.contents());
    // The byte budget binds at the end.
    assert!(one.byte_total() <= 20_000, "{}", one.byte_total());
    assert!(one.kept(None).len() > 20, "{:?}", one.kept(None));
    one.assert_books_balance();
}

#[test]
fn a_lowered_limit_takes_effect_over_the_following_commands() {
    use super::retention::TRIM_BUDGET;
    let dir = tempfile::tempdir().unwrap();
    let many = TRIM_BUDGET as i64 + 50;
    {
        let sm = open_store(dir.path(), HistoryPolicy::keeping(2 * TRIM_BUDGET));
        sm.apply(
            1,
            &MetaCommand::CreateJobs {
                jobs: vec![job("a")],
                at: t0(),
            },
        )
        .unwrap();
        let runs = (0..many)
            .map(|i| run("a", i, RunStatus::Succeeded))
            .collect();
        sm.apply(2, &MetaCommand::CreateRuns { runs }).unwrap();
    }
    let mut log = Log {
        sm: open_store(dir.path(), HistoryPolicy::keeping(10)),
        index: 2,
        _dir: dir,
    };
    log.create(vec![run("a", many, RunStatus::Succeeded)]);
    assert_eq!(
        log.history("a").succeeded,
        51,
        "one command removes at most the budget"
    );
    log.create(vec![run("a", many + 1, RunStatus::Succeeded)]);
    let kept = log.kept(Some("a"));
    assert_eq!(kept.first(), Some(&(many - 8, RunStatus::Succeeded)));
    assert_eq!(kept.len(), 10);
    log.assert_books_balance();
}

#[test]
fn runs_created_after_a_restore_sort_after_the_restored_ones() {
    use RunStatus::*;
    let mut source = Log::new(HistoryPolicy::keeping(3));
    source.jobs(&["a"]);
    for i in 0..3 {
        source.create(vec![run("a", i, Succeeded)]);
    }
    source.index = 1000;
    source.jobs(&["b"]);
    let backup = source.sm.backup().unwrap();
    // The restored store's log starts again at 1, below the seqs of the
    // restored runs (log indexes 2 to 4 of the source).
    let mut fresh = Log::new(HistoryPolicy::keeping(3));
    fresh.sm.restore_backup(backup.as_slice()).unwrap();
    fresh.create(vec![run("a", 10, Succeeded)]);
    fresh.create(vec![run("a", 11, Succeeded)]);
    assert_eq!(
        fresh.kept(Some("a")),
        vec![(2, Succeeded), (10, Succeeded), (11, Succeeded)]
    );
    assert_eq!(fresh.kept(None).len(), 3);
    fresh.assert_books_balance();
}
