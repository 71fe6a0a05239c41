use chrono::{DateTime, Duration, Utc};
use protocol::{Job, JobKey, MetaCommand, PutMode, Run, RunStatus, RunUpdate};

use super::{
    fixtures::{job, open_store, slot_run_of},
    *,
};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn slot_run(job: &Job, at: DateTime<Utc>) -> Run {
    slot_run_of(&job.key(), at)
}

fn all_runs(sm: &StateMachine) -> Vec<Run> {
    sm.runs(&RunFilter::default(), None, 100).unwrap().0
}

struct Log {
    sm: StateMachine,
    index: u64,
}

impl Log {
    fn apply(&mut self, cmd: MetaCommand) -> Outcome {
        self.index += 1;
        self.sm.apply(self.index, &cmd).unwrap()
    }
}

/// Stores `job` as new through the log.
fn create_job(log: &mut Log, job: &Job, at: DateTime<Utc>) {
    log.apply(MetaCommand::PutJob {
        job: Box::new(job.clone()),
        mode: PutMode::Create,
        at,
    });
}

fn open(dir: &std::path::Path, limit: usize) -> Log {
    let sm = open_store(dir, retention::HistoryPolicy::keeping(limit));
    let index = sm.applied_index().unwrap();
    Log { sm, index }
}

#[test]
fn create_rejects_existing_and_replace_rejects_missing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), 10);
    let at = t("2026-01-01T00:00:00Z");
    assert!(matches!(
        log.apply(MetaCommand::PutJob {
            job: Box::new(job("a")),
            mode: PutMode::Create,
            at
        }),
        Outcome::JobPut { created: true, .. }
    ));
    assert_eq!(
        log.apply(MetaCommand::PutJob {
            job: Box::new(job("a")),
            mode: PutMode::Create,
            at
        }),
        Outcome::Rejected(Rejection::JobExists(JobKey::new("default", "a")))
    );
    assert_eq!(
        log.apply(MetaCommand::PutJob {
            job: Box::new(job("b")),
            mode: PutMode::Replace,
            at
        }),
        Outcome::Rejected(Rejection::JobNotFound(JobKey::new("default", "b")))
    );
    assert_eq!(log.sm.applied_index().unwrap(), 3);
}

#[test]
fn creating_many_jobs_stores_all_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), 10);
    let at = t("2026-01-01T00:00:00Z");
    log.apply(MetaCommand::PutJob {
        job: Box::new(job("taken")),
        mode: PutMode::Create,
        at,
    });
    let refused = log.apply(MetaCommand::CreateJobs {
        jobs: vec![job("new-1"), job("taken"), job("new-2")],
        at,
    });
    assert_eq!(
        refused,
        Outcome::Rejected(Rejection::JobExists(JobKey::new("default", "taken")))
    );
    assert_eq!(
        log.apply(MetaCommand::CreateJobs {
            jobs: vec![job("twice"), job("twice")],
            at,
        }),
        Outcome::Rejected(Rejection::JobExists(JobKey::new("default", "twice")))
    );
    for id in ["new-1", "new-2", "twice"] {
        assert_eq!(
            log.sm.job(&JobKey::new("default", id)).unwrap(),
            None,
            "{id} stored half-way"
        );
    }
    let created = log.apply(MetaCommand::CreateJobs {
        jobs: vec![job("new-1"), job("new-2")],
        at,
    });
    assert!(matches!(&created, Outcome::JobsCreated(jobs) if jobs.len() == 2));
    assert!(log
        .sm
        .job(&JobKey::new("default", "new-2"))
        .unwrap()
        .is_some());
    assert_eq!(log.sm.all_jobs().unwrap().len(), 3);
}

#[test]
fn a_slot_is_created_once_and_advances_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), 10);
    let j = job("a");
    let at = t("2026-01-01T00:00:00Z");
    create_job(&mut log, &j, at);
    let slot = at + Duration::seconds(1);
    let first = log.apply(MetaCommand::CreateRuns {
        runs: vec![slot_run(&j, slot)],
    });
    let second = log.apply(MetaCommand::CreateRuns {
        runs: vec![slot_run(&j, slot)],
    });
    assert!(matches!(first, Outcome::RunsCreated(ref r) if r.len() == 1));
    assert_eq!(second, Outcome::RunsCreated(vec![]));
    assert_eq!(log.sm.job_state(&j.key()).unwrap().unwrap().cursor, slot);
    assert_eq!(all_runs(&log.sm).len(), 1);
}

#[test]
fn replaying_an_applied_index_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sm = StateMachine::open(dir.path(), retention::HistoryPolicy::keeping(10)).unwrap();
    let cmd = MetaCommand::PutJob {
        job: Box::new(job("a")),
        mode: PutMode::Create,
        at: t("2026-01-01T00:00:00Z"),
    };
    assert!(matches!(sm.apply(1, &cmd).unwrap(), Outcome::JobPut { .. }));
    assert_eq!(sm.apply(1, &cmd).unwrap(), Outcome::AlreadyApplied);
}

#[test]
fn terminal_status_is_final_and_status_index_follows() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), 10);
    let j = job("a");
    let at = t("2026-01-01T00:00:00Z");
    create_job(&mut log, &j, at);
    let run = slot_run(&j, at + Duration::seconds(1));
    log.apply(MetaCommand::CreateRuns {
        runs: vec![run.clone()],
    });
    let update = |status, output: &str| RunUpdate {
        run_id: run.id.clone(),
        status: Some(status),
        output: (!output.is_empty()).then(|| output.to_string()),
        ..Default::default()
    };
    log.apply(MetaCommand::RecordRuns {
        updates: vec![update(RunStatus::TimedOut, "")],
    });
    let changed = log.apply(MetaCommand::RecordRuns {
        updates: vec![update(RunStatus::Succeeded, "late")],
    });
    assert_eq!(changed, Outcome::RunsChanged(vec![]));
    let stored = log.sm.run(&run.id).unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::TimedOut);
    assert_eq!(
        stored.output, "late",
        "a late report may still fill in the output"
    );
    let by_status = |s| RunFilter {
        status: Some(s),
        ..Default::default()
    };
    assert_eq!(
        log.sm
            .runs(&by_status(RunStatus::TimedOut), None, 10)
            .unwrap()
            .0
            .len(),
        1
    );
    assert!(log
        .sm
        .runs(&by_status(RunStatus::Pending), None, 10)
        .unwrap()
        .0
        .is_empty());
    assert!(log.sm.active_runs().unwrap().is_empty());
}

#[test]
fn history_is_bounded_per_job_keeping_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), 3);
    let j = job("a");
    let at = t("2026-01-01T00:00:00Z");
    create_job(&mut log, &j, at);
    for i in 1..=5 {
        let mut run = slot_run(&j, at + Duration::seconds(i));
        run.status = RunStatus::Succeeded;
        log.apply(MetaCommand::CreateRuns { runs: vec![run] });
    }
    let (runs, _) = log
        .sm
        .runs(
            &RunFilter {
                job: Some(j.key()),
                ..Default::default()
            },
            None,
            100,
        )
        .unwrap();
    let slots: Vec<i64> = runs
        .iter()
        .map(|r| (r.scheduled_at - at).num_seconds())
        .collect();
    assert_eq!(slots, vec![5, 4, 3]);
    assert_eq!(all_runs(&log.sm).len(), 3);
}

#[test]
fn pages_of_runs_follow_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), 100);
    let j = job("a");
    let at = t("2026-01-01T00:00:00Z");
    create_job(&mut log, &j, at);
    for i in 1..=5 {
        log.apply(MetaCommand::CreateRuns {
            runs: vec![slot_run(&j, at + Duration::seconds(i))],
        });
    }
    let (page1, cursor) = log.sm.runs(&RunFilter::default(), None, 2).unwrap();
    let (page2, cursor2) = log.sm.runs(&RunFilter::default(), cursor, 2).unwrap();
    let (page3, cursor3) = log.sm.runs(&RunFilter::default(), cursor2, 2).unwrap();
    let secs = |p: &[Run]| {
        p.iter()
            .map(|r| (r.scheduled_at - at).num_seconds())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        (secs(&page1), secs(&page2), secs(&page3)),
        (vec![5, 4], vec![3, 2], vec![1])
    );
    assert!(cursor3.is_none());
}

#[test]
fn state_survives_reopening_and_delete_removes_runs() {
    let dir = tempfile::tempdir().unwrap();
    let j = job("a");
    let at = t("2026-01-01T00:00:00Z");
    {
        let mut log = open(dir.path(), 10);
        create_job(&mut log, &j, at);
        log.apply(MetaCommand::CreateRuns {
            runs: vec![slot_run(&j, at + Duration::seconds(1))],
        });
        log.sm.flush().unwrap();
    }
    let mut log = open(dir.path(), 10);
    assert_eq!(log.index, 2);
    assert_eq!(log.sm.job(&j.key()).unwrap(), Some(j.clone()));
    assert_eq!(log.sm.active_runs().unwrap().len(), 1);
    assert_eq!(
        log.apply(MetaCommand::DeleteJob {
            key: j.key(),
            force: false
        }),
        Outcome::JobDeleted {
            key: j.key(),
            existed: true,
            unlinked: Vec::new(),
        }
    );
    assert!(log.sm.active_runs().unwrap().is_empty());
    assert!(all_runs(&log.sm).is_empty());
}

fn dump_of(sm: &StateMachine) -> (u64, Vec<u8>) {
    let view = sm.view().unwrap();
    let index = view.index();
    let mut out = Vec::new();
    view.write_dump(&mut out, |_, _| true).unwrap();
    (index, out)
}

#[test]
fn a_dump_installs_the_same_state_elsewhere() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut source = open(a.path(), 10);
    let j = job("a");
    let at = t("2026-01-01T00:00:00Z");
    source.apply(MetaCommand::PutJob {
        job: Box::new(j.clone()),
        mode: PutMode::Create,
        at,
    });
    source.apply(MetaCommand::CreateRuns {
        runs: vec![slot_run(&j, at + Duration::seconds(1))],
    });
    let (index, data) = dump_of(&source.sm);
    assert_eq!(index, 2);

    let mut target = open(b.path(), 10);
    target.apply(MetaCommand::PutJob {
        job: Box::new(job("stale")),
        mode: PutMode::Create,
        at,
    });
    let installed = target
        .sm
        .install_dump(data.as_slice(), |_, _| true)
        .unwrap();
    assert_eq!(installed.index, 2);
    assert_eq!(target.sm.applied_index().unwrap(), 2);
    assert_eq!(target.sm.job(&j.key()).unwrap(), Some(j.clone()));
    assert_eq!(
        target.sm.job(&JobKey::new("default", "stale")).unwrap(),
        None
    );
    assert_eq!(all_runs(&target.sm), all_runs(&source.sm));
    assert!(
        target
            .sm
            .install_dump(&data[..data.len() - 1], |_, _| true)
            .is_err(),
        "a truncated dump is refused"
    );
    assert_eq!(
        target.sm.job(&j.key()).unwrap(),
        Some(j.clone()),
        "a refused dump leaves the state as it was"
    );
    // The installed state is what a restart opens.
    drop(target);
    let reopened = open_store(b.path(), retention::HistoryPolicy::keeping(10));
    assert_eq!(reopened.applied_index().unwrap(), 2);
    assert_eq!(reopened.job(&j.key()).unwrap(), Some(j));
    assert_eq!(all_runs(&reopened), all_runs(&source.sm));
}

#[test]
fn a_view_shows_the_state_as_it_began_while_applies_go_on() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut log = open(a.path(), 10);
    let at = t("2026-01-01T00:00:00Z");
    for id in ["a", "b", "c", "d"] {
        log.apply(MetaCommand::PutJob {
            job: Box::new(job(id)),
            mode: PutMode::Create,
            at,
        });
    }
    let expected = all_jobs_sorted(&log.sm);
    let view = log.sm.view().unwrap();
    assert_eq!(view.index(), 4);
    // After the view began: one job deleted before the walk reaches it,
    // one changed, one added.
    log.apply(MetaCommand::DeleteJob {
        key: JobKey::new("default", "c"),
        force: false,
    });
    log.apply(MetaCommand::SetJobEnabled {
        key: JobKey::new("default", "a"),
        enabled: false,
        at,
    });
    log.apply(MetaCommand::PutJob {
        job: Box::new(job("e")),
        mode: PutMode::Create,
        at,
    });
    let mut out = Vec::new();
    let written = view.write_dump(&mut out, |_, _| true).unwrap();
    assert_eq!(written.index, 4);
    assert_eq!(written.bytes, out.len() as u64);

    let target = open(b.path(), 10);
    target.sm.install_dump(out.as_slice(), |_, _| true).unwrap();
    assert_eq!(target.sm.applied_index().unwrap(), 4);
    assert_eq!(all_jobs_sorted(&target.sm), expected);
    // Writes after the view ended are not kept for it any more.
    assert_eq!(log.sm.views_open(), 0);
}

#[test]
fn writes_after_a_switch_do_not_reach_a_view_of_the_old_tree() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut source = open(a.path(), 10);
    let at = t("2026-01-01T00:00:00Z");
    source.apply(MetaCommand::PutJob {
        job: Box::new(job("new")),
        mode: PutMode::Create,
        at,
    });
    let (_, data) = dump_of(&source.sm);
    let mut target = open(b.path(), 10);
    target.apply(MetaCommand::PutJob {
        job: Box::new(job("old")),
        mode: PutMode::Create,
        at,
    });
    let expected = all_jobs_sorted(&target.sm);
    let view = target.sm.view().unwrap();
    target
        .sm
        .install_dump(data.as_slice(), |_, _| true)
        .unwrap();
    target.index = 1;
    target.apply(MetaCommand::PutJob {
        job: Box::new(job("later")),
        mode: PutMode::Create,
        at,
    });
    let mut out = Vec::new();
    view.write_dump(&mut out, |_, _| true).unwrap();
    let c = tempfile::tempdir().unwrap();
    let copy = open(c.path(), 10);
    copy.sm.install_dump(out.as_slice(), |_, _| true).unwrap();
    assert_eq!(all_jobs_sorted(&copy.sm), expected);
}

fn all_jobs_sorted(sm: &StateMachine) -> Vec<(Job, JobState)> {
    let mut jobs = sm.all_jobs().unwrap();
    jobs.sort_by_key(|(j, _)| j.id.clone());
    jobs
}

#[test]
fn registered_nodes_are_listed_and_replaced_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), 10);
    let info = |id: u64, port: u16| protocol::meta::NodeInfo {
        node_id: id,
        api_url: format!("http://127.0.0.1:{port}"),
        raft_addr: format!("127.0.0.1:{}", port + 1),
    };
    log.apply(MetaCommand::RegisterNode {
        node: info(2, 8000),
    });
    log.apply(MetaCommand::RegisterNode {
        node: info(1, 7000),
    });
    log.apply(MetaCommand::RegisterNode {
        node: info(2, 9000),
    });
    assert_eq!(log.sm.nodes().unwrap(), vec![info(1, 7000), info(2, 9000)]);
}

#[test]
fn a_backup_restores_the_jobs_into_a_new_store_that_applies_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir.path().join("old"), 10);
    let at = t("2026-01-01T00:00:00Z");
    for id in ["a", "b"] {
        log.apply(MetaCommand::PutJob {
            job: Box::new(job(id)),
            mode: PutMode::Create,
            at,
        });
    }
    log.apply(MetaCommand::RegisterNode {
        node: protocol::meta::NodeInfo {
            node_id: 1,
            api_url: "http://old:7070".into(),
            raft_addr: "old:7071".into(),
        },
    });
    let backup = log.sm.backup().unwrap();

    let mut fresh = open(&dir.path().join("new"), 10);
    let restored = fresh.sm.restore_backup(backup.as_slice()).unwrap();
    assert_eq!(restored.jobs, 2);
    assert_eq!(restored.source_index, 3);
    assert!(fresh
        .sm
        .job(&JobKey::new("default", "b"))
        .unwrap()
        .is_some());
    assert!(
        fresh.sm.nodes().unwrap().is_empty(),
        "the old cluster's nodes are gone"
    );
    assert_eq!(fresh.sm.applied_index().unwrap(), 0);
    // The new node's log starts at 1 and applies on top of the restored state.
    fresh.index = 0;
    assert!(matches!(
        fresh.apply(MetaCommand::PutJob {
            job: Box::new(job("c")),
            mode: PutMode::Create,
            at,
        }),
        Outcome::JobPut { created: true, .. }
    ));
    assert_eq!(fresh.sm.all_jobs().unwrap().len(), 3);

    assert!(fresh.sm.restore_backup(b"not a backup".as_slice()).is_err());
}

#[test]
fn a_view_that_would_keep_too_much_fails_and_the_next_one_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), 10);
    let at = t("2026-01-01T00:00:00Z");
    log.apply(MetaCommand::PutJob {
        job: Box::new(job("a")),
        mode: PutMode::Create,
        at,
    });
    let view = log.sm.view_keeping_at_most(64).unwrap();
    for id in ["b", "c", "d"] {
        log.apply(MetaCommand::PutJob {
            job: Box::new(job(id)),
            mode: PutMode::Create,
            at,
        });
    }
    let mut out = Vec::new();
    assert!(matches!(
        view.write_dump(&mut out, |_, _| true),
        Err(StoreError::ViewOverflow { limit: 64 })
    ));
    assert_eq!(log.sm.views_open(), 0);
    let (index, _) = dump_of(&log.sm);
    assert_eq!(index, 4, "a view begun afterwards is written whole");
}

#[test]
fn a_run_waiting_for_room_is_placed_once_and_only_while_it_waits() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), 10);
    let at = t("2026-01-01T00:00:00Z");
    let a = job("a");
    create_job(&mut log, &a, at);
    let mut waiting = slot_run(&a, at);
    waiting.pending_reason = Some("waiting for room".into());
    let placed_elsewhere = Run {
        id: "on-b".into(),
        executor: Some("http://b".into()),
        pending_reason: None,
        ..waiting.clone()
    };
    log.apply(MetaCommand::CreateRuns {
        runs: vec![waiting.clone(), placed_elsewhere],
    });
    let place = |run_id: &str| MetaCommand::PlaceRun {
        run_id: run_id.into(),
        to: "http://a".into(),
    };
    assert_eq!(
        log.apply(place(&waiting.id)),
        Outcome::RunPlaced {
            run_id: waiting.id.clone(),
            placed: true
        }
    );
    let run = log.sm.run(&waiting.id).unwrap().unwrap();
    assert_eq!(run.executor.as_deref(), Some("http://a"));
    assert_eq!(run.pending_reason, None);
    assert_eq!(run.status, RunStatus::Pending);
    // Placed already, or never waiting: nothing changes.
    for id in [waiting.id.as_str(), "on-b", "no-such-run"] {
        assert!(matches!(
            log.apply(place(id)),
            Outcome::RunPlaced { placed: false, .. }
        ));
    }
    assert_eq!(
        log.sm.run("on-b").unwrap().unwrap().executor.as_deref(),
        Some("http://b")
    );
    // A waiting run that ended (skipped) is no longer waiting.
    let mut late = slot_run(&a, at + Duration::seconds(1));
    late.pending_reason = Some("waiting for room".into());
    log.apply(MetaCommand::CreateRuns {
        runs: vec![late.clone()],
    });
    log.apply(MetaCommand::RecordRuns {
        updates: vec![RunUpdate {
            run_id: late.id.clone(),
            status: Some(RunStatus::Skipped),
            error: Some("not started within its start_deadline".into()),
            ..Default::default()
        }],
    });
    let ended = log.sm.run(&late.id).unwrap().unwrap();
    assert_eq!(ended.pending_reason, None);
    assert!(matches!(
        log.apply(place(&late.id)),
        Outcome::RunPlaced { placed: false, .. }
    ));
}

#[test]
fn alert_deliveries_are_kept_on_their_run_newest_last_and_bounded() {
    use protocol::alert::{AlertChannel, AlertDelivery, MAX_RUN_ALERT_DELIVERIES};
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), 10);
    let j = job("a");
    let at = t("2026-01-01T00:00:00Z");
    create_job(&mut log, &j, at);
    let run = slot_run(&j, at + Duration::seconds(1));
    log.apply(MetaCommand::CreateRuns {
        runs: vec![run.clone()],
    });
    let delivery = |attempt: u32| AlertDelivery {
        channel: AlertChannel::Webhook,
        target: "http://hooks/a".into(),
        attempt,
        at,
        ok: attempt == 3,
        error: (attempt != 3).then(|| "answered 500".to_string()),
    };
    let outcome = log.apply(MetaCommand::RecordAlertDeliveries {
        deliveries: vec![
            (run.id.clone(), delivery(1)),
            (run.id.clone(), delivery(2)),
            ("no-such-run".into(), delivery(1)),
        ],
    });
    let Outcome::AlertsRecorded(changed) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(changed.len(), 1);
    log.apply(MetaCommand::RecordAlertDeliveries {
        deliveries: vec![(run.id.clone(), delivery(3))],
    });
    let stored = log.sm.run(&run.id).unwrap().unwrap();
    assert_eq!(stored.alerts, vec![delivery(1), delivery(2), delivery(3)]);

    let many = (10..10 + MAX_RUN_ALERT_DELIVERIES as u32)
        .map(|attempt| (run.id.clone(), delivery(attempt)))
        .collect();
    log.apply(MetaCommand::RecordAlertDeliveries { deliveries: many });
    let stored = log.sm.run(&run.id).unwrap().unwrap();
    assert_eq!(stored.alerts.len(), MAX_RUN_ALERT_DELIVERIES);
    assert_eq!(stored.alerts[0].attempt, 10, "the oldest are dropped");
}
