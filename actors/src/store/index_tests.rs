//! Tests of the one-record layout and its in-memory index (`run_index`):
//! what a run costs sled, that the index built again (reopened, installed
//! elsewhere) answers as the one kept up to date, that an apply that does
//! not write leaves the index as it was, and that the cursor never goes
//! back when the run of a job's newest slot is dropped.

use std::{collections::BTreeMap, time::Duration as StdDuration};

use chrono::Duration;
use protocol::{Job, JobKey, MetaCommand, PutMode, Run, RunStatus, RunUpdate, TriggerKind};

use super::{
    fixtures::{job, open_store, slot_run_of},
    retention::HistoryPolicy,
    retention_tests::{run, t0, update, workload},
    run_book::Book,
    run_index::RunIndex,
    txn::Txn,
    JobState, Outcome, RunFilter, StateMachine,
};

/// A policy under which the workload trims by every rule.
fn trimming() -> HistoryPolicy {
    HistoryPolicy {
        succeeded_limit: 12,
        failed_limit: 7,
        max_age: Some(StdDuration::from_secs(3 * 3600)),
        max_bytes: Some(20_000),
    }
}

/// Applies `cmds` from log index `from` + 1 on.
fn apply_all(sm: &StateMachine, from: u64, cmds: &[MetaCommand]) -> u64 {
    let mut index = from;
    for cmd in cmds {
        index += 1;
        sm.apply(index, cmd).unwrap();
    }
    index
}

/// A store in `dir` holding `n` jobs `job-NNNN` firing every second, made
/// by one command; their keys and the log index applied.
fn store_with_jobs(
    dir: &std::path::Path,
    policy: HistoryPolicy,
    n: usize,
) -> (StateMachine, Vec<JobKey>, u64) {
    let sm = StateMachine::open(dir, policy).unwrap();
    let keys: Vec<JobKey> = (0..n)
        .map(|i| JobKey::new("default", format!("job-{i:04}")))
        .collect();
    let index = apply_all(
        &sm,
        0,
        &[MetaCommand::CreateJobs {
            jobs: keys.iter().map(|k| job(&k.id)).collect(),
            at: t0(),
        }],
    );
    (sm, keys, index)
}

/// Every key and value of the state.
fn contents(sm: &StateMachine) -> BTreeMap<Vec<u8>, Vec<u8>> {
    sm.tree()
        .iter()
        .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect()
}

/// Every page of `filter`'s runs, `size` at a time, as the pages' ids.
fn pages(sm: &StateMachine, filter: &RunFilter, size: usize) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let (runs, next) = sm.runs(filter, cursor, size).unwrap();
        out.push(runs.iter().map(|r| r.id.clone()).collect());
        match next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
}

/// What the queries about one job answer: its id, the pages of its runs,
/// its last run and its state.
type JobAnswers = (String, Vec<Vec<String>>, Option<Run>, Option<JobState>);

/// What every query of the runs answers.
#[derive(Debug, PartialEq)]
struct Answers {
    by_job: Vec<JobAnswers>,
    by_status: Vec<(RunStatus, Vec<Vec<String>>)>,
    all: Vec<Vec<String>>,
    in_time: Vec<Run>,
    recent: Vec<Run>,
    active: Vec<Run>,
    jobs: Vec<(Job, JobState)>,
}

fn answers(sm: &StateMachine) -> Answers {
    let by_job = ["a", "b", "c", "d"]
        .iter()
        .map(|id| {
            let key = JobKey::new("default", *id);
            let filter = RunFilter {
                job: Some(key.clone()),
                ..Default::default()
            };
            (
                id.to_string(),
                pages(sm, &filter, 5),
                sm.last_run(&key).unwrap(),
                sm.job_state(&key).unwrap(),
            )
        })
        .collect();
    let by_status = RunStatus::ALL
        .iter()
        .map(|status| {
            let filter = RunFilter {
                status: Some(*status),
                ..Default::default()
            };
            (*status, pages(sm, &filter, 4))
        })
        .collect();
    let window = RunFilter {
        since: Some(t0() + Duration::hours(3)),
        until: Some(t0() + Duration::hours(4)),
        ..Default::default()
    };
    let mut jobs = sm.all_jobs().unwrap();
    jobs.sort_by_key(|(job, _)| job.key());
    let index = RunIndex::build(&sm.tree()).unwrap();
    assert!(
        *sm.index() == index,
        "the index kept up to date is the one built from the tree"
    );
    Answers {
        by_job,
        by_status,
        all: pages(sm, &RunFilter::default(), 9),
        in_time: sm.runs(&window, None, 1000).unwrap().0,
        recent: sm.recent_runs(t0() + Duration::hours(4), 1000).unwrap(),
        active: sm.active_runs().unwrap(),
        jobs,
    }
}

#[test]
fn a_run_costs_at_most_two_writes_in_its_life() {
    let dir = tempfile::tempdir().unwrap();
    let (sm, keys, mut index) = store_with_jobs(dir.path(), HistoryPolicy::default(), 2048);
    let slot = t0() + Duration::minutes(1);
    let runs: Vec<Run> = keys.iter().map(|k| slot_run_of(k, slot)).collect();
    let ends: Vec<RunUpdate> = runs
        .iter()
        .map(|r| RunUpdate {
            output: Some("done\n".into()),
            ..update(r, RunStatus::Succeeded, slot + Duration::seconds(2))
        })
        .collect();
    let before = sm.writes();
    index = apply_all(
        &sm,
        index,
        &[
            MetaCommand::CreateRuns { runs },
            MetaCommand::RecordRuns { updates: ends },
        ],
    );
    let writes = sm.writes() - before;
    // The record at its creation and at its end; per command, the applied
    // index and the byte total.
    assert!(writes <= 2 * 2048 + 2 * 2, "{writes} writes for 2048 runs");
    assert!(writes >= 2 * 2048, "{writes}: every run is written twice");
    assert_eq!(
        sm.runs(&RunFilter::default(), None, 5000).unwrap().0.len(),
        2048
    );
    assert!(sm.active_runs().unwrap().is_empty());
    assert_eq!(sm.applied_index().unwrap(), index);
}

#[test]
fn the_index_built_again_answers_as_the_one_kept_up_to_date() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cmds = workload();
    let created = cmds
        .iter()
        .filter(|c| matches!(c, MetaCommand::CreateRuns { .. }))
        .count();
    let expected = {
        let sm = StateMachine::open(a.path(), trimming()).unwrap();
        apply_all(&sm, 0, &cmds);
        sm.flush().unwrap();
        let expected = answers(&sm);
        let kept = expected.all.iter().map(Vec::len).sum::<usize>();
        assert!(kept > 20 && kept < created, "{kept} of {created} runs kept");
        assert!(!expected.active.is_empty() && !expected.recent.is_empty());
        assert!(!expected.in_time.is_empty());
        expected
    };
    let reopened = open_store(a.path(), trimming());
    assert_eq!(answers(&reopened), expected, "after reopening");

    let mut dump = Vec::new();
    reopened
        .view()
        .unwrap()
        .write_dump(&mut dump, |_, _| true)
        .unwrap();
    let other = StateMachine::open(b.path(), trimming()).unwrap();
    apply_all(
        &other,
        0,
        &[MetaCommand::CreateJobs {
            jobs: vec![job("a"), job("stale")],
            at: t0(),
        }],
    );
    other.install_dump(dump.as_slice(), |_, _| true).unwrap();
    assert_eq!(answers(&other), expected, "after an install");
}

#[test]
fn two_stores_end_the_same_when_one_is_reopened_half_way() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cmds = workload();
    let half = cmds.len() / 2;
    let one = StateMachine::open(a.path(), trimming()).unwrap();
    apply_all(&one, 0, &cmds);
    {
        let two = StateMachine::open(b.path(), trimming()).unwrap();
        apply_all(&two, 0, &cmds[..half]);
        two.flush().unwrap();
    }
    let two = open_store(b.path(), trimming());
    apply_all(&two, half as u64, &cmds[half..]);
    assert_eq!(contents(&one), contents(&two));
    assert_eq!(answers(&one), answers(&two));
}

#[test]
fn an_apply_that_writes_nothing_leaves_the_index_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let sm = StateMachine::open(dir.path(), HistoryPolicy::keeping(2)).unwrap();
    let key = JobKey::new("default", "a");
    let runs: Vec<Run> = (0..4).map(|i| run("a", i, RunStatus::Succeeded)).collect();
    apply_all(
        &sm,
        0,
        &[
            MetaCommand::CreateJobs {
                jobs: vec![job("a")],
                at: t0(),
            },
            MetaCommand::CreateRuns {
                runs: runs[..2].to_vec(),
            },
        ],
    );
    let tree = sm.tree();
    {
        let mut index = sm.index_mut();
        let mut book = Book::new(&mut index);
        let mut txn = Txn::new(&tree);
        // A new run, a changed one, a removed one and a deleted job, in
        // a command whose batch is never written.
        let job = book.index.existing_job("default", "a").unwrap();
        let seq = book.index.newest_seq().unwrap();
        book.insert(&mut txn, job, seq + 1, &runs[2]).unwrap();
        let first = book.index.job(job).seqs[0];
        let found = super::run_book::find(&txn, &runs[1].id).unwrap().unwrap();
        let failed = Run {
            status: RunStatus::Failed,
            ..runs[1].clone()
        };
        book.rewrite(&mut txn, &found, &failed).unwrap();
        book.remove(&mut txn, first).unwrap();
        book.index.set_job(&key, false, &mut book.undo);
        assert_eq!(book.index.job(job).seqs.len(), 2);
    }
    assert!(*sm.index() == RunIndex::build(&tree).unwrap());
    assert_eq!(sm.job_state(&key).unwrap().unwrap().run_count, 2);
    // And the next command applies on the index as it was.
    apply_all(
        &sm,
        2,
        &[MetaCommand::CreateRuns {
            runs: runs[2..].to_vec(),
        }],
    );
    assert!(*sm.index() == RunIndex::build(&tree).unwrap());
    assert_eq!(sm.job_state(&key).unwrap().unwrap().run_count, 2);
}

/// The stored job state of `key`, as written (not as read).
fn stored_state(sm: &StateMachine, key: &JobKey) -> JobState {
    let raw = sm.tree().get(super::keys::job_state(key)).unwrap().unwrap();
    protocol::wire::decode(&raw).unwrap()
}

#[test]
fn the_cursor_stays_when_the_run_of_the_newest_slot_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let policy = HistoryPolicy {
        max_age: Some(StdDuration::from_secs(3600)),
        ..HistoryPolicy::keeping(100)
    };
    let key = JobKey::new("default", "a");
    let slot = t0() + Duration::minutes(1);
    let slot_run = Run {
        status: RunStatus::Succeeded,
        finished_at: Some(slot + Duration::seconds(1)),
        ..slot_run_of(&key, slot)
    };
    // A manual run three hours later: the age rule drops the slot's run.
    let manual = Run {
        id: "manual-1".into(),
        trigger: TriggerKind::Manual,
        scheduled_at: t0() + Duration::hours(3),
        created_at: t0() + Duration::hours(3),
        ..slot_run_of(&key, t0())
    };
    {
        let sm = StateMachine::open(dir.path(), policy.clone()).unwrap();
        apply_all(
            &sm,
            0,
            &[MetaCommand::PutJob {
                job: Box::new(job("a")),
                mode: PutMode::Create,
                at: t0(),
            }],
        );
        apply_all(
            &sm,
            1,
            &[MetaCommand::CreateRuns {
                runs: vec![slot_run],
            }],
        );
        assert_eq!(sm.job_state(&key).unwrap().unwrap().cursor, slot);
        assert_eq!(
            stored_state(&sm, &key).cursor,
            t0(),
            "a run does not rewrite its job's state"
        );
        let created = apply_all(
            &sm,
            2,
            &[MetaCommand::CreateRuns {
                runs: vec![manual.clone()],
            }],
        );
        assert_eq!(created, 3);
        let kept = sm.runs(&RunFilter::default(), None, 10).unwrap().0;
        assert_eq!(kept, vec![manual], "the slot's run was dropped");
        assert_eq!(stored_state(&sm, &key).cursor, slot, "stored when dropped");
        assert_eq!(sm.job_state(&key).unwrap().unwrap().cursor, slot);
        sm.flush().unwrap();
    }
    let sm = open_store(dir.path(), policy);
    assert_eq!(sm.job_state(&key).unwrap().unwrap().cursor, slot);
    assert_eq!(sm.all_jobs().unwrap()[0].1.cursor, slot);
}

#[test]
fn a_second_create_of_a_stored_run_is_refused_and_its_job_still_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let sm = StateMachine::open(dir.path(), HistoryPolicy::keeping(1)).unwrap();
    let first = run("a", 1, RunStatus::Succeeded);
    apply_all(
        &sm,
        0,
        &[
            MetaCommand::CreateJobs {
                jobs: vec![job("a")],
                at: t0(),
            },
            MetaCommand::CreateRuns {
                runs: vec![first.clone(), first.clone()],
            },
        ],
    );
    let again = sm
        .apply(
            3,
            &MetaCommand::CreateRuns {
                runs: vec![first.clone()],
            },
        )
        .unwrap();
    assert_eq!(again, Outcome::RunsCreated(vec![]));
    assert_eq!(
        sm.runs(&RunFilter::default(), None, 10).unwrap().0,
        vec![first]
    );
}

#[test]
fn a_missing_byte_total_is_counted_before_the_command_changes_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let sm = StateMachine::open(dir.path(), HistoryPolicy::keeping(10)).unwrap();
    apply_all(
        &sm,
        0,
        &[
            MetaCommand::CreateJobs {
                jobs: vec![job("a"), job("b")],
                at: t0(),
            },
            MetaCommand::CreateRuns {
                runs: vec![
                    run("a", 1, RunStatus::Succeeded),
                    run("b", 2, RunStatus::Failed),
                ],
            },
        ],
    );
    sm.tree().remove(super::keys::HISTORY_BYTES).unwrap();
    apply_all(
        &sm,
        2,
        &[MetaCommand::DeleteJob {
            key: JobKey::new("default", "a"),
            force: false,
        }],
    );
    let records: u64 = sm
        .tree()
        .scan_prefix(super::keys::run(""))
        .map(|e| e.map(|(k, v)| (k.len() + v.len()) as u64).unwrap())
        .sum();
    let total = sm.tree().get(super::keys::HISTORY_BYTES).unwrap().unwrap();
    assert!(records > 0);
    assert_eq!(
        u64::from_be_bytes(total.as_ref().try_into().unwrap()),
        records
    );
}

#[test]
fn the_index_keeps_no_places_of_trimmed_runs_once_retention_is_reached() {
    let dir = tempfile::tempdir().unwrap();
    let policy = HistoryPolicy {
        succeeded_limit: 4,
        failed_limit: 4,
        max_age: None,
        max_bytes: None,
    };
    let (sm, keys, mut index) = store_with_jobs(dir.path(), policy, 300);
    // Every job runs once a round and keeps 4 runs: from round 5 on each
    // round trims as many runs as it adds (the oldest).
    let mut round = |n: i64| {
        let slot = t0() + Duration::minutes(n);
        let runs: Vec<Run> = keys.iter().map(|k| slot_run_of(k, slot)).collect();
        let ends = runs
            .iter()
            .map(|r| update(r, RunStatus::Succeeded, slot + Duration::seconds(1)))
            .collect();
        index = apply_all(
            &sm,
            index,
            &[
                MetaCommand::CreateRuns { runs },
                MetaCommand::RecordRuns { updates: ends },
            ],
        );
    };
    for n in 1..=60 {
        round(n);
        let places = sm.index().places();
        let kept = 4 * keys.len();
        // Once retention is reached (round 5), each round adds and trims
        // 300 runs: a place kept per trimmed run, until some compaction,
        // would have the index (and the memory it touches) grow by a
        // place per run created, not stay at the runs kept.
        assert!(
            n < 5 || places <= kept + keys.len(),
            "round {n}: {places} places for {kept} runs kept"
        );
    }
    assert_eq!(
        sm.runs(&RunFilter::default(), None, 5000).unwrap().0.len(),
        4 * keys.len()
    );
}
