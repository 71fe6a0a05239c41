//! The fan-in of child jobs without the dispatcher: tallies, retries,
//! store reads, judgments.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use protocol::{
    run::{retry_run_id, slot_run_id, ShardInfo},
    Job, Run, RunStatus, TriggerKind,
};

use super::{FanIn, FireKey, Step};

fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc()
        + Duration::seconds(seconds)
}

fn parent(extra: &str) -> Arc<Job> {
    Arc::new(
        serde_json::from_str(&format!(
            r#"{{"id":"p","schedule":"@every 1m","target":{{"type":"shell","command":"true"}}{extra}}}"#
        ))
        .unwrap(),
    )
}

/// Attempt 1 of `shard` (of `count`) of the slot at `t(0)`.
fn run(shard: u32, count: u32) -> Run {
    Run {
        id: slot_run_id("default", "p", t(0), shard),
        job_id: "p".into(),
        namespace: "default".into(),
        scheduled_at: t(0),
        trigger: TriggerKind::Schedule,
        shard: ShardInfo {
            index: shard,
            count,
            param: String::new(),
        },
        attempt: 1,
        status: RunStatus::Pending,
        executor: None,
        created_at: t(0),
        started_at: None,
        finished_at: None,
        exit_code: None,
        output: String::new(),
        error: None,
        params: format!("params-{shard}"),
        retry_of: None,
        parent_run_ids: Vec::new(),
        parent_scheduled_at: None,
        parent_job_id: None,
        pending_reason: None,
        alerts: Vec::new(),
    }
}

fn ended(mut run: Run, status: RunStatus) -> Run {
    run.status = status;
    run
}

fn retry_of(previous: &Run) -> Run {
    Run {
        id: retry_run_id(&previous.id, previous.attempt + 1),
        attempt: previous.attempt + 1,
        trigger: TriggerKind::Retry,
        retry_of: Some(previous.id.clone()),
        status: RunStatus::Pending,
        ..previous.clone()
    }
}

fn fired(step: Step) -> Vec<(String, Option<String>, Vec<String>)> {
    match step {
        Step::Fire(fires) => fires
            .into_iter()
            .map(|f| {
                let parent = f.parent.expect("a child fire names its parent");
                assert_eq!(f.trigger, TriggerKind::Child);
                assert_eq!(parent.scheduled_at, t(0));
                assert_eq!(parent.job_id, "p");
                assert_eq!(parent.trigger, TriggerKind::Schedule);
                (f.job.id, f.params, parent.run_ids)
            })
            .collect(),
        other => panic!("expected a judgment, got {other:?}"),
    }
}

const CHILDREN: &str =
    r#","children":[{"job":"ok"},{"job":"bad","on":"failure"},{"job":"end","on":"end"}]"#;

#[test]
fn children_fire_once_after_every_shard_ended() {
    let job = parent(CHILDREN);
    let mut fan = FanIn::default();
    let runs: Vec<Run> = (0..10).map(|i| run(i, 10)).collect();
    for r in &runs {
        fan.started(&job, r);
    }
    for r in &runs[..9] {
        assert_eq!(
            fan.ended(&job, &ended(r.clone(), RunStatus::Succeeded), t(5)),
            Step::Wait
        );
    }
    let children = fired(fan.ended(&job, &ended(runs[9].clone(), RunStatus::Succeeded), t(5)));
    let ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
    assert_eq!(
        children,
        [
            ("ok".to_string(), None, ids.clone()),
            ("end".to_string(), None, ids.clone()),
        ]
    );
    // The same fire judged again (a late report) fires nothing.
    assert_eq!(
        fan.ended(&job, &ended(runs[3].clone(), RunStatus::Succeeded), t(6)),
        Step::Wait
    );
}

#[test]
fn one_failed_shard_fires_the_failure_children_only() {
    let job = parent(CHILDREN);
    let mut fan = FanIn::default();
    let runs: Vec<Run> = (0..3).map(|i| run(i, 3)).collect();
    for r in &runs {
        fan.started(&job, r);
    }
    fan.ended(&job, &ended(runs[0].clone(), RunStatus::Succeeded), t(1));
    fan.ended(&job, &ended(runs[1].clone(), RunStatus::TimedOut), t(1));
    let children: Vec<String> =
        fired(fan.ended(&job, &ended(runs[2].clone(), RunStatus::Succeeded), t(1)))
            .into_iter()
            .map(|c| c.0)
            .collect();
    assert_eq!(children, ["bad", "end"]);
}

#[test]
fn a_shard_that_succeeds_on_retry_counts_as_succeeded() {
    let job = parent(CHILDREN);
    let mut fan = FanIn::default();
    let (a, b) = (run(0, 2), run(1, 2));
    fan.started(&job, &a);
    fan.started(&job, &b);
    // `a` failed and is retried: the dispatcher does not end it in the
    // tally, and the retry takes its shard's place.
    let again = retry_of(&a);
    fan.started(&job, &again);
    assert_eq!(
        fan.ended(&job, &ended(b.clone(), RunStatus::Succeeded), t(1)),
        Step::Wait
    );
    let children = fired(fan.ended(&job, &ended(again.clone(), RunStatus::Succeeded), t(2)));
    assert_eq!(children[0].0, "ok");
    assert_eq!(children[0].2, [again.id.clone(), b.id.clone()]);
}

#[test]
fn every_broadcast_run_counts() {
    let job = parent(r#","routing":"broadcast","children":[{"job":"ok"}]"#);
    let mut fan = FanIn::default();
    let runs: Vec<Run> = (0..3).map(|i| run(i, 3)).collect();
    for r in &runs {
        fan.started(&job, r);
    }
    assert_eq!(
        fan.ended(&job, &ended(runs[2].clone(), RunStatus::Succeeded), t(1)),
        Step::Wait
    );
    assert_eq!(
        fan.ended(&job, &ended(runs[0].clone(), RunStatus::Succeeded), t(1)),
        Step::Wait
    );
    assert_eq!(
        fired(fan.ended(&job, &ended(runs[1].clone(), RunStatus::Succeeded), t(1))).len(),
        1
    );
}

#[test]
fn a_fire_whose_runs_were_all_skipped_fires_no_child() {
    let job = parent(CHILDREN);
    let mut fan = FanIn::default();
    let r = run(0, 1);
    fan.started(&job, &r);
    assert_eq!(
        fan.ended(&job, &ended(r, RunStatus::Skipped), t(1)),
        Step::Fire(vec![])
    );
}

#[test]
fn shards_ended_under_an_earlier_leader_are_read_from_the_store() {
    let job = parent(r#","children":[{"job":"ok","params":"parent"}]"#);
    let mut fan = FanIn::default();
    let runs: Vec<Run> = (0..3).map(|i| run(i, 3)).collect();
    // This leader took over shard 2 only; 0 and 1 ended before.
    fan.started(&job, &runs[2]);
    let step = fan.ended(&job, &ended(runs[2].clone(), RunStatus::Succeeded), t(1));
    let key = FireKey::of(&runs[2]);
    assert_eq!(step, Step::Load(key.clone(), job.clone()));
    // Shard 0 failed once and succeeded on retry; the store still says
    // shard 2 is running (its end is newer than the store's view).
    let first = ended(runs[0].clone(), RunStatus::Failed);
    let second = ended(retry_of(&first), RunStatus::Succeeded);
    let stored = vec![
        first,
        second.clone(),
        ended(runs[1].clone(), RunStatus::Succeeded),
        runs[2].clone(),
    ];
    let children = fired(fan.loaded(key.clone(), Ok(stored), t(2)));
    assert_eq!(
        children,
        [(
            "ok".to_string(),
            Some(second.params.clone()),
            vec![second.id.clone(), runs[1].id.clone(), runs[2].id.clone()]
        )]
    );
    // A second read of the same fire judges nothing again.
    assert_eq!(fan.loaded(key, Ok(vec![]), t(3)), Step::Wait);
}

#[test]
fn a_new_leader_rechecks_recently_ended_fires_once() {
    let job = parent(CHILDREN);
    let mut fan = FanIn::default();
    let runs: Vec<(Run, Arc<Job>)> = (0..2)
        .map(|i| (ended(run(i, 2), RunStatus::Succeeded), job.clone()))
        .collect();
    let checks = fan.recheck(&runs);
    assert_eq!(checks.len(), 1, "one fire, checked once");
    let key = checks[0].0.clone();
    let stored = runs.iter().map(|(r, _)| r.clone()).collect();
    let children = fired(fan.loaded(key, Ok(stored), t(1)));
    assert_eq!(children.len(), 2);
    assert!(
        fan.recheck(&runs).is_empty(),
        "a judged fire is not checked again"
    );
}

#[test]
fn jobs_without_children_are_not_tallied() {
    let job = parent("");
    let mut fan = FanIn::default();
    let r = run(0, 2);
    fan.started(&job, &r);
    assert_eq!(
        fan.ended(&job, &ended(r, RunStatus::Succeeded), t(1)),
        Step::Wait
    );
    assert!(fan.tallies.is_empty());
}

#[test]
fn a_deleted_job_leaves_no_tally() {
    let job = parent(CHILDREN);
    let mut fan = FanIn::default();
    let r = run(0, 2);
    fan.started(&job, &r);
    fan.forget_job(&job.key());
    assert!(fan.tallies.is_empty());
}
