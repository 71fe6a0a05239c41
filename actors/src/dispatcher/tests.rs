//! The dispatcher core without actix or HTTP: what it decides, in order.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use protocol::{Job, Run, RunStatus, RunUpdate, TriggerKind};

use super::{
    core::{Action, DispatcherCore},
    phase::SendOutcome,
};
use crate::{
    clock::Clock,
    fire::Fire,
    router::{assign, ExecutorEntry, RouterCore},
};

/// A clock the test moves by hand.
pub(super) struct FixedClock(pub(super) Mutex<DateTime<Utc>>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

struct Harness {
    clock: Arc<FixedClock>,
    core: DispatcherCore,
    router: RouterCore,
    /// The log: every run ever created, by id.
    created: Vec<Run>,
}

impl Harness {
    fn new(executors: &[&str]) -> Self {
        let clock = Arc::new(FixedClock(Mutex::new(
            DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
                .unwrap()
                .to_utc(),
        )));
        let mut router = RouterCore::new(1);
        router.set_executors(executors.iter().map(|e| entry(e, 0)).collect());
        let core = DispatcherCore::new(
            clock.clone(),
            vec!["http://scheduler".into()],
            std::time::Duration::from_secs(1),
        );
        Self {
            clock,
            core,
            router,
            created: Vec::new(),
        }
    }

    fn advance(&self, ms: i64) {
        *self.clock.0.lock().unwrap() += Duration::milliseconds(ms);
    }

    /// Plans the run of slot number `slot`, a slot already due.
    fn plan(&mut self, job: &Job, slot: i64) -> Vec<Action> {
        let at = DateTime::parse_from_rfc3339("2025-12-31T00:00:00Z")
            .unwrap()
            .to_utc()
            + Duration::seconds(slot);
        self.plan_at(job, at)
    }

    fn plan_at(&mut self, job: &Job, at: DateTime<Utc>) -> Vec<Action> {
        let fire = Fire::new(job.key(), at, TriggerKind::Schedule);
        let assignments = assign(
            &mut self.router,
            &fire,
            &Arc::new(job.clone()),
            self.clock.now(),
        );
        self.core.plan(assignments)
    }

    /// Commits what `Create` asked for, as the log would (existing ids are
    /// left out), and returns what the core does next.
    fn commit(&mut self, actions: Vec<Action>) -> Vec<Action> {
        let mut next = Vec::new();
        for action in actions {
            match action {
                Action::Create(plans) => {
                    let fresh: Vec<Run> = plans
                        .iter()
                        .map(|p| p.assignment.run.clone())
                        .filter(|r| !self.created.iter().any(|c| c.id == r.id))
                        .collect();
                    self.created.extend(fresh.clone());
                    next.extend(self.core.on_created(plans, Ok(fresh)));
                }
                other => next.push(other),
            }
        }
        next
    }
}

/// An executor of group `default` whose id and endpoint are `endpoint`.
pub(super) fn entry(endpoint: &str, max_concurrent: u32) -> ExecutorEntry {
    ExecutorEntry {
        id: endpoint.to_string(),
        group: "default".into(),
        endpoint: endpoint.to_string(),
        weight: 1,
        labels: Default::default(),
        handlers: vec![],
        max_concurrent,
    }
}

fn job(extra: &str) -> Job {
    protocol::validate::from_json(
        format!(r#"{{"id":"j","schedule":"@every 1s","timeout":"2s","target":{{"type":"shell","command":"true"}}{extra}}}"#).as_bytes(),
    )
    .unwrap()
}

fn sends(actions: &[Action]) -> Vec<(String, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { endpoint, request } => Some((request.run_id.clone(), endpoint.clone())),
            _ => None,
        })
        .collect()
}

fn records(actions: &[Action]) -> Vec<RunUpdate> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Record(u) => Some(u.clone()),
            _ => None,
        })
        .collect()
}

fn statuses(actions: &[Action]) -> Vec<RunStatus> {
    records(actions)
        .into_iter()
        .filter_map(|u| u.status)
        .collect()
}

#[test]
fn nothing_is_sent_before_the_runs_are_committed() {
    let mut h = Harness::new(&["http://a"]);
    let planned = h.plan(&job(""), 1);
    assert!(sends(&planned).is_empty(), "plan must only propose");
    assert!(matches!(planned.as_slice(), [Action::Create(p)] if p.len() == 1));
    let after = h.commit(planned);
    assert_eq!(sends(&after).len(), 1);
}

#[test]
fn a_failed_commit_dispatches_nothing() {
    let mut h = Harness::new(&["http://a"]);
    let Some(Action::Create(plans)) = h.plan(&job(""), 1).into_iter().next() else {
        panic!("no create")
    };
    let actions = h.core.on_created(plans, Err("not the leader".into()));
    assert!(sends(&actions).is_empty());
    assert!(matches!(actions.as_slice(), [Action::Release(e)] if e == "http://a"));
    assert_eq!(h.core.active_count(), 0);
}

#[test]
fn a_run_created_by_an_unanswered_proposal_is_adopted_and_sent_once() {
    let mut h = Harness::new(&["http://a"]);
    let job = job("");
    let Some(Action::Create(plans)) = h.plan(&job, 1).into_iter().next() else {
        panic!("no create")
    };
    // The log created the run, but its answer never came back; the
    // proposal of the same chunk again creates nothing.
    let run = plans[0].assignment.run.clone();
    let retried = h.core.on_created(plans, Ok(vec![]));
    assert!(sends(&retried).is_empty());
    assert_eq!(h.core.active_count(), 0);
    let adopted = h.core.adopt(vec![(run.clone(), Arc::new(job.clone()))]);
    assert_eq!(sends(&adopted), [(run.id.clone(), "http://a".to_string())]);
    // Adopting it again (or a finished run) does nothing.
    assert!(sends(&h.core.adopt(vec![(run.clone(), Arc::new(job.clone()))])).is_empty());
    let finished = Run {
        id: "other".into(),
        status: RunStatus::Succeeded,
        ..run
    };
    assert!(h.core.adopt(vec![(finished, Arc::new(job))]).is_empty());
    assert_eq!(h.core.active_count(), 1);
}

#[test]
fn a_slot_that_has_its_run_is_not_sent_again() {
    let mut h = Harness::new(&["http://a"]);
    let first = h.plan(&job(""), 1);
    assert_eq!(sends(&h.commit(first)).len(), 1);
    let again = h.plan(&job(""), 1);
    assert!(
        sends(&h.commit(again)).is_empty(),
        "the log created nothing new, so nothing is sent"
    );
}

#[test]
fn undeliverable_runs_fail_over_then_fail() {
    let mut h = Harness::new(&["http://a", "http://b"]);
    let planned = h.plan(&job(r#","routing":"first""#), 1);
    let sent = sends(&h.commit(planned));
    let (run_id, first) = sent[0].clone();
    assert_eq!(first, "http://a");
    let next = h.core.on_sent(
        &run_id,
        "http://a",
        SendOutcome::Refused("connection refused".into()),
    );
    assert!(
        sends(&next).is_empty(),
        "nothing moves before the log says so"
    );
    assert!(
        matches!(next.as_slice(), [Action::Move { from, to, .. }] if from == "http://a" && to == "http://b"),
        "{next:?}"
    );
    let moved = h.core.on_moved(&run_id, "http://b", Ok(true));
    assert_eq!(
        sends(&moved),
        vec![(run_id.clone(), "http://b".to_string())]
    );
    let last = h.core.on_sent(
        &run_id,
        "http://b",
        SendOutcome::Refused("connection refused".into()),
    );
    assert_eq!(statuses(&last), vec![RunStatus::Failed]);
    assert!(records(&last)[0]
        .error
        .as_deref()
        .unwrap()
        .contains("could not deliver"));
    assert_eq!(h.core.active_count(), 0);
}

#[test]
fn a_silent_run_times_out_and_is_retried_after_backoff() {
    let mut h = Harness::new(&["http://a"]);
    let job = job(r#","retry":{"max_retries":1,"backoff":"10s"}"#);
    let planned = h.plan(&job, 1);
    let (run_id, endpoint) = sends(&h.commit(planned))[0].clone();
    h.core.on_sent(&run_id, &endpoint, SendOutcome::Accepted);
    h.advance(2_500); // timeout 2s + grace 1s not reached yet
    assert_eq!(
        statuses(&h.core.on_tick()),
        [RunStatus::Dispatched],
        "a silent run is recorded as dispatched, not ended"
    );
    h.advance(1_000);
    let timed_out = h.core.on_tick();
    assert!(timed_out
        .iter()
        .any(|a| matches!(a, Action::Kill { run_id: r, .. } if *r == run_id)));
    assert_eq!(statuses(&timed_out), vec![RunStatus::TimedOut]);
    h.advance(9_000);
    assert!(
        h.core
            .on_tick()
            .iter()
            .all(|a| !matches!(a, Action::Fire(_))),
        "backoff not over"
    );
    h.advance(1_000);
    let retry = h.core.on_tick();
    let Some(Action::Fire(fires)) = retry.first() else {
        panic!("expected the retry fire, got {retry:?}")
    };
    let retry_of = fires[0].retry.as_ref().unwrap();
    assert_eq!(
        (retry_of.attempt, retry_of.previous_run_id.as_str()),
        (2, run_id.as_str())
    );
}

#[test]
fn forbid_skips_and_queue_holds_one() {
    let mut h = Harness::new(&["http://a"]);
    let forbid = job(r#","concurrency":"forbid""#);
    let first = h.plan(&forbid, 1);
    h.commit(first);
    let Some(Action::Create(plans)) = h
        .plan(&forbid, 2)
        .into_iter()
        .find(|a| matches!(a, Action::Create(_)))
    else {
        panic!()
    };
    assert_eq!(plans[0].assignment.run.status, RunStatus::Skipped);
    assert!(plans[0]
        .assignment
        .run
        .error
        .as_deref()
        .unwrap()
        .contains("forbid"));

    let mut h = Harness::new(&["http://a"]);
    let queue = job(r#","concurrency":"queue""#);
    let first = h.plan(&queue, 1);
    let (running, endpoint) = sends(&h.commit(first))[0].clone();
    let second = h.plan(&queue, 2);
    assert!(sends(&h.commit(second)).is_empty(), "the second fire waits");
    let Some(Action::Create(third)) = h
        .plan(&queue, 3)
        .into_iter()
        .find(|a| matches!(a, Action::Create(_)))
    else {
        panic!()
    };
    assert_eq!(
        third[0].assignment.run.status,
        RunStatus::Skipped,
        "only one waits"
    );
    let done = RunUpdate {
        run_id: running,
        status: Some(RunStatus::Succeeded),
        executor: Some(endpoint),
        ..Default::default()
    };
    let next = h.core.on_report(&done);
    assert_eq!(
        sends(&next).len(),
        1,
        "the waiting run starts when the active one ends"
    );
}

#[test]
fn replace_kills_the_active_run_first() {
    let mut h = Harness::new(&["http://a"]);
    let replace = job(r#","concurrency":"replace""#);
    let first = h.plan(&replace, 1);
    let (old, endpoint) = sends(&h.commit(first))[0].clone();
    h.core.on_sent(&old, &endpoint, SendOutcome::Accepted);
    let second = h.plan(&replace, 2);
    assert!(second
        .iter()
        .any(|a| matches!(a, Action::Kill { run_id, .. } if *run_id == old)));
    assert_eq!(statuses(&second), vec![RunStatus::Killed]);
    assert_eq!(sends(&h.commit(second)).len(), 1);
}

#[test]
fn failures_and_skips_alert_the_webhooks_and_successes_do_not() {
    let mut h = Harness::new(&["http://a"]);
    let alerting = job(
        r#","concurrency":"forbid","alerts":{"webhooks":["http://hooks/cron"],"emails":["ops@example.com"]}"#,
    );
    let first = h.plan(&alerting, 1);
    let (run_id, endpoint) = sends(&h.commit(first))[0].clone();
    let skipped = h.plan(&alerting, 2);
    let alerts = |actions: &[Action]| -> Vec<RunStatus> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Alert { run, .. } => Some(run.status),
                _ => None,
            })
            .collect()
    };
    assert_eq!(alerts(&h.commit(skipped)), vec![RunStatus::Skipped]);
    let failed = RunUpdate {
        run_id,
        status: Some(RunStatus::Failed),
        executor: Some(endpoint),
        exit_code: Some(2),
        error: Some("exited with code 2".into()),
        output: Some(format!("{}the end", "x".repeat(10_000))),
        ..Default::default()
    };
    let actions = h.core.on_report(&failed);
    let Some(Action::Alert {
        webhooks,
        emails,
        run,
    }) = actions.iter().find(|a| matches!(a, Action::Alert { .. }))
    else {
        panic!("no alert in {actions:?}")
    };
    assert_eq!(
        webhooks,
        &vec![protocol::alert::Webhook::from("http://hooks/cron")]
    );
    assert_eq!(emails, &vec!["ops@example.com".to_string()]);
    assert_eq!(
        (run.exit_code, run.error.as_deref()),
        (Some(2), Some("exited with code 2"))
    );
    // The alert shows the output's tail, bounded.
    assert!(run.output.ends_with("the end") && run.output.len() <= 4096);

    let third = h.plan(&alerting, 3);
    let (ok_id, endpoint) = sends(&h.commit(third))[0].clone();
    let ok = RunUpdate {
        run_id: ok_id,
        status: Some(RunStatus::Succeeded),
        executor: Some(endpoint),
        ..Default::default()
    };
    assert!(alerts(&h.core.on_report(&ok)).is_empty());
}

#[test]
fn children_fire_on_the_condition_they_name() {
    let mut h = Harness::new(&["http://a"]);
    let parent = job(
        r#","children":[{"job":"on-ok"},{"job":"on-fail","on":"failure"},{"job":"always","on":"always"}]"#,
    );
    let children_after = |h: &mut Harness, slot: i64, status: RunStatus| -> Vec<String> {
        let planned = h.plan(&parent, slot);
        let (run_id, endpoint) = sends(&h.commit(planned))[0].clone();
        let update = RunUpdate {
            run_id,
            status: Some(status),
            executor: Some(endpoint),
            ..Default::default()
        };
        h.core
            .on_report(&update)
            .into_iter()
            .filter_map(|a| match a {
                Action::Fire(fires) => Some(fires),
                _ => None,
            })
            .flatten()
            .inspect(|f| assert_eq!(f.trigger, TriggerKind::Child))
            .map(|f| f.job.id)
            .collect()
    };
    assert_eq!(
        children_after(&mut h, 1, RunStatus::Succeeded),
        ["on-ok", "always"]
    );
    assert_eq!(
        children_after(&mut h, 2, RunStatus::Failed),
        ["on-fail", "always"]
    );
}

/// The child fires of `actions`.
fn child_fires(actions: &[Action]) -> Vec<Fire> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Fire(fires) => Some(fires.clone()),
            _ => None,
        })
        .flatten()
        .filter(|f| f.trigger == TriggerKind::Child)
        .collect()
}

#[test]
fn a_sharded_fire_starts_its_child_once_after_every_shard_and_retry_ended() {
    let mut h = Harness::new(&["http://a", "http://b"]);
    let parent =
        job(r#","shards":3,"retry":{"max_retries":1,"backoff":"1s"},"children":[{"job":"c"}]"#);
    let planned = h.plan(&parent, 1);
    let sent = sends(&h.commit(planned));
    assert_eq!(sent.len(), 3);
    let report = |h: &mut Harness, (run_id, endpoint): &(String, String), status| {
        h.core.on_report(&RunUpdate {
            run_id: run_id.clone(),
            status: Some(status),
            executor: Some(endpoint.clone()),
            ..Default::default()
        })
    };
    // Shard 0 fails and will be retried; the others succeed meanwhile.
    assert!(child_fires(&report(&mut h, &sent[0], RunStatus::Failed)).is_empty());
    assert!(child_fires(&report(&mut h, &sent[1], RunStatus::Succeeded)).is_empty());
    let before_retry = report(&mut h, &sent[2], RunStatus::Succeeded);
    assert!(
        before_retry
            .iter()
            .all(|a| !matches!(a, Action::Fire(_) | Action::LoadFire { .. })),
        "the retry of shard 0 is still to come: {before_retry:?}"
    );
    h.advance(1_500);
    let retry_fires: Vec<Fire> = h
        .core
        .on_tick()
        .into_iter()
        .filter_map(|a| match a {
            Action::Fire(f) => Some(f),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(retry_fires.len(), 1);
    let assignments = assign(
        &mut h.router,
        &retry_fires[0],
        &Arc::new(parent.clone()),
        h.clock.now(),
    );
    let planned = h.core.plan(assignments);
    let retried = sends(&h.commit(planned));
    let children = child_fires(&report(&mut h, &retried[0], RunStatus::Succeeded));
    assert_eq!(children.len(), 1, "one child for the whole fire");
    let parent_fire = children[0].parent.clone().unwrap();
    assert_eq!(
        parent_fire.run_ids,
        [retried[0].0.clone(), sent[1].0.clone(), sent[2].0.clone()]
    );
    // The child's run is named by the parent's fire and carries it to its
    // executor.
    let child = job(r#""#);
    let child = Job {
        id: "c".into(),
        ..child
    };
    let runs = assign(
        &mut h.router,
        &children[0],
        &Arc::new(child.clone()),
        h.clock.now(),
    );
    let run = &runs[0].run;
    assert_eq!(
        run.id,
        protocol::run::child_run_id(
            "default",
            "c",
            "j",
            parent_fire.scheduled_at,
            TriggerKind::Schedule,
            0
        )
    );
    assert_eq!(run.parent_run_ids, parent_fire.run_ids);
    let planned = h.core.plan(runs);
    let request = first_request(&h.commit(planned));
    assert_eq!(request.parent_run_ids, parent_fire.run_ids);
    assert_eq!(request.parent_scheduled_at, Some(parent_fire.scheduled_at));
}

#[test]
fn a_failure_that_will_be_retried_neither_alerts_nor_fires_children() {
    let mut h = Harness::new(&["http://a"]);
    let retried = job(
        r#","retry":{"max_retries":1},"children":[{"job":"c","on":"failure"}],"alerts":{"webhooks":["http://hooks"]}"#,
    );
    let planned = h.plan(&retried, 1);
    let (run_id, endpoint) = sends(&h.commit(planned))[0].clone();
    let failed = RunUpdate {
        run_id,
        status: Some(RunStatus::Failed),
        executor: Some(endpoint),
        ..Default::default()
    };
    let actions = h.core.on_report(&failed);
    assert!(
        actions
            .iter()
            .all(|a| !matches!(a, Action::Fire(_) | Action::Alert { .. })),
        "{actions:?}"
    );
}

#[test]
fn runs_of_a_dead_executor_fail_over_or_fail() {
    let mut h = Harness::new(&["http://a", "http://b"]);
    let movable = job(r#","routing":"first""#);
    let planned = h.plan(&movable, 1);
    let (run_id, endpoint) = sends(&h.commit(planned))[0].clone();
    h.core.on_sent(&run_id, &endpoint, SendOutcome::Accepted);
    report_running(&mut h, &run_id);
    let actions = h.core.on_executor_lost(&endpoint);
    assert_eq!(statuses(&actions), vec![RunStatus::Failed]);
    let Some(Action::Fire(fires)) = actions.iter().find(|a| matches!(a, Action::Fire(_))) else {
        panic!("no failover fire in {actions:?}")
    };
    assert_eq!(fires[0].trigger, TriggerKind::Failover);
    let retry = fires[0].retry.as_ref().unwrap();
    assert_eq!(
        (
            retry.previous_run_id.as_str(),
            retry.previous_executor.as_deref()
        ),
        (run_id.as_str(), Some("http://a"))
    );
    assert_eq!(h.core.active_count(), 0);

    let pinned = job(r#","routing":"first","failover":false"#);
    let planned = h.plan(&pinned, 2);
    let (run_id, endpoint) = sends(&h.commit(planned))[0].clone();
    h.core.on_sent(&run_id, &endpoint, SendOutcome::Accepted);
    report_running(&mut h, &run_id);
    let actions = h.core.on_executor_lost(&endpoint);
    assert!(!any_fire(&actions), "{actions:?}");
    assert!(records(&actions)[0]
        .error
        .as_deref()
        .unwrap()
        .contains("declared dead"));
}

#[test]
fn a_run_created_ahead_is_sent_when_its_slot_comes() {
    let mut h = Harness::new(&["http://a"]);
    let slot = h.clock.now() + Duration::milliseconds(500);
    let planned = h.plan_at(&job(""), slot);
    let created = h.commit(planned);
    assert!(sends(&created).is_empty(), "sent before its slot");
    assert_eq!(h.core.next_release(), Some(slot));
    h.advance(499);
    assert!(sends(&h.core.release_due()).is_empty());
    assert!(sends(&h.core.on_tick()).is_empty());
    h.advance(1);
    assert_eq!(sends(&h.core.release_due()).len(), 1);
    assert_eq!(h.core.next_release(), None);
    // Waiting did not count against its timeout (2 s from the send).
    h.advance(2500);
    assert!(statuses(&h.core.on_tick()).is_empty());
}

#[test]
fn pausing_or_deleting_a_job_skips_its_waiting_runs() {
    let mut h = Harness::new(&["http://a"]);
    let slot = h.clock.now() + Duration::milliseconds(500);
    let paused_job = job("");
    let planned = h.plan_at(&paused_job, slot);
    h.commit(planned);
    let mut paused = paused_job.clone();
    paused.enabled = false;
    let skipped = h.core.on_job_changed(&paused);
    assert_eq!(statuses(&skipped), [RunStatus::Skipped]);
    let reason = records(&skipped)[0].error.clone().unwrap_or_default();
    assert!(reason.contains("paused"), "{reason}");

    let mut other = job("");
    other.id = "other".into();
    let planned = h.plan_at(&other, slot);
    h.commit(planned);
    assert_eq!(
        statuses(&h.core.on_job_deleted(&other.key())),
        [RunStatus::Skipped]
    );
    h.advance(600);
    assert!(
        sends(&h.core.release_due()).is_empty(),
        "a skipped run was sent"
    );
    assert_eq!(h.core.active_count(), 0);
}

#[test]
fn an_updated_job_sends_its_waiting_run_as_it_now_is_unless_the_slot_left_the_schedule() {
    let mut h = Harness::new(&["http://a"]);
    let slot = h.clock.now() + Duration::seconds(1);
    let original = job("");
    let planned = h.plan_at(&original, slot);
    h.commit(planned);
    let mut edited = original.clone();
    edited.target = protocol::Target::Shell {
        group: "default".into(),
        command: "echo edited".into(),
    };
    assert!(h.core.on_job_changed(&edited).is_empty());
    h.advance(1000);
    let sent = h.core.release_due();
    match sent.as_slice() {
        [Action::Send { request, .. }] => assert_eq!(
            request.task,
            protocol::dispatch::Task::Shell {
                command: "echo edited".into()
            }
        ),
        other => panic!("expected one send, got {other:?}"),
    }

    let mut moved = original.clone();
    moved.id = "moved".into();
    let next = h.clock.now() + Duration::seconds(1);
    let planned = h.plan_at(&moved, next);
    h.commit(planned);
    moved.schedule = "@every 7s".into();
    let skipped = h.core.on_job_changed(&moved);
    assert_eq!(statuses(&skipped), [RunStatus::Skipped]);
}

#[test]
fn a_new_leader_holds_runs_created_ahead_until_their_slot() {
    let mut h = Harness::new(&["http://a"]);
    let slot = h.clock.now() + Duration::milliseconds(300);
    let planned = h.plan_at(&job(""), slot);
    h.commit(planned);
    let runs = h.created.clone();
    let mut successor = Harness::new(&["http://a"]);
    let resumed = successor
        .core
        .resume(runs.into_iter().map(|r| (r, Arc::new(job("")))).collect());
    assert!(sends(&resumed).is_empty(), "sent before its slot");
    successor.advance(300);
    assert_eq!(sends(&successor.core.release_due()).len(), 1);
}

#[test]
fn a_run_that_reports_at_once_is_not_recorded_dispatched_separately() {
    let mut h = Harness::new(&["http://a"]);
    let planned = h.plan(&job(""), 1);
    let (run_id, endpoint) = sends(&h.commit(planned))[0].clone();
    assert!(h
        .core
        .on_sent(&run_id, &endpoint, SendOutcome::Accepted)
        .is_empty());
    h.advance(100);
    h.core.on_report(&RunUpdate {
        run_id: run_id.clone(),
        status: Some(RunStatus::Running),
        ..Default::default()
    });
    h.advance(1_000);
    assert!(
        statuses(&h.core.on_tick()).is_empty(),
        "the running report already said where the run is"
    );
}

/// Whether `actions` fail a run over (a new run, trigger `failover`).
fn fails_over(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Fire(f) if f[0].trigger == TriggerKind::Failover))
}

/// Whether `actions` hand any fire to the Router.
fn any_fire(actions: &[Action]) -> bool {
    actions.iter().any(|a| matches!(a, Action::Fire(_)))
}

/// A harness with executors a and b, and a run of a `first`-routed job
/// sent to a.
fn sent_to_the_first_of_two() -> (Harness, String) {
    let mut h = Harness::new(&["http://a", "http://b"]);
    let planned = h.plan(&job(r#","routing":"first""#), 1);
    let (run_id, endpoint) = only_send(&h.commit(planned));
    assert_eq!(endpoint, "http://a");
    (h, run_id)
}

/// The executor reports the run started.
fn report_running(h: &mut Harness, run_id: &str) {
    h.core.on_report(&RunUpdate {
        run_id: run_id.to_string(),
        status: Some(RunStatus::Running),
        ..Default::default()
    });
}

/// The request of the first send in `actions`.
fn first_request(actions: &[Action]) -> protocol::dispatch::DispatchRequest {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Send { request, .. } => Some(request.clone()),
            _ => None,
        })
        .expect("a send")
}

/// The one send in `actions`, with the run's id and endpoint.
fn only_send(actions: &[Action]) -> (String, String) {
    match sends(actions).as_slice() {
        [one] => one.clone(),
        other => panic!("expected one send, got {other:?} in {actions:?}"),
    }
}

#[test]
fn a_move_that_the_log_does_not_commit_sends_nothing_to_the_other_executor() {
    let (mut h, run_id) = sent_to_the_first_of_two();
    h.core.on_sent(
        &run_id,
        "http://a",
        SendOutcome::Refused("connection refused".into()),
    );
    // A deposed leader's proposal fails: nothing goes to b.
    let after = h
        .core
        .on_moved(&run_id, "http://b", Err("not the leader".into()));
    assert!(sends(&after).is_empty(), "{after:?}");
    h.advance(1_000);
    let again = h.core.on_tick();
    assert_eq!(
        only_send(&again),
        (run_id.clone(), "http://a".to_string()),
        "only the executor the log names is asked again"
    );
    // If it refuses again, the move is proposed again.
    let next = h.core.on_sent(
        &run_id,
        "http://a",
        SendOutcome::Refused("connection refused".into()),
    );
    assert!(matches!(next.as_slice(), [Action::Move { to, .. }] if to == "http://b"));
}

#[test]
fn a_move_the_log_finds_stale_leaves_the_run_where_the_log_has_it() {
    let (mut h, run_id) = sent_to_the_first_of_two();
    h.core
        .on_sent(&run_id, "http://a", SendOutcome::Refused("busy".into()));
    assert!(h.core.on_moved(&run_id, "http://b", Ok(false)).is_empty());
    h.advance(1_500);
    assert!(
        sends(&h.core.on_tick()).is_empty(),
        "no send after a stale move"
    );
    // Its deadline still ends it.
    h.advance(2_000);
    assert_eq!(statuses(&h.core.on_tick()), [RunStatus::TimedOut]);
}

#[test]
fn an_unanswered_send_goes_again_to_the_same_executor_and_never_fails_over() {
    let (mut h, run_id) = sent_to_the_first_of_two();
    let unknown = h.core.on_sent(
        &run_id,
        "http://a",
        SendOutcome::Unknown("connection closed before message completed".into()),
    );
    assert!(unknown.is_empty(), "{unknown:?}");
    h.advance(999);
    assert!(
        sends(&h.core.on_tick()).is_empty(),
        "not before the resend time"
    );
    h.advance(1);
    assert_eq!(
        only_send(&h.core.on_tick()),
        (run_id.clone(), "http://a".to_string())
    );
    assert!(h
        .core
        .on_sent(&run_id, "http://a", SendOutcome::Accepted)
        .is_empty());
    assert!(h.core.is_active(&run_id));
}

#[test]
fn without_the_lease_nothing_is_decided_and_a_new_term_starts_afresh() {
    let mut h = Harness::new(&["http://a", "http://b"]);
    h.core.lead(3);
    let planned = h.plan(&job(r#","routing":"first""#), 1);
    let request = first_request(&h.commit(planned));
    assert_eq!(request.term, 3, "every send carries the leader's term");
    let lapsed = h
        .core
        .on_sent(&request.run_id, "http://a", SendOutcome::NotLeading);
    assert!(lapsed.is_empty(), "no failover, no failure: {lapsed:?}");
    assert!(h.core.is_active(&request.run_id));
    h.core.clear();
    assert_eq!(h.core.term(), None);
    assert_eq!(h.core.active_count(), 0);
}

#[test]
fn killing_a_run_whose_send_is_unanswered_asks_its_executor_to_kill_it() {
    let mut h = Harness::new(&["http://a"]);
    let planned = h.plan(&job(""), 1);
    let (run_id, _) = only_send(&h.commit(planned));
    // The frame may be on the executor already.
    let killed = h.core.kill(&run_id).expect("active");
    assert!(
        killed
            .iter()
            .any(|a| matches!(a, Action::Kill { endpoint, .. } if endpoint == "http://a")),
        "{killed:?}"
    );
    assert_eq!(statuses(&killed), [RunStatus::Killed]);
}

#[test]
fn an_http_target_released_ahead_of_its_slot_is_called_at_its_slot() {
    let mut h = Harness::new(&["http://a"]);
    let http = protocol::validate::from_json(
        br#"{"id":"h","schedule":"@every 1s","timeout":"2s","target":{"type":"http","url":"http://target/hit"}}"#,
    )
    .unwrap();
    let slot = h.clock.now() + Duration::milliseconds(500);
    let planned = h.plan_at(&http, slot);
    assert!(h.commit(planned).is_empty(), "nothing before the slot");
    // The release timer wakes 40 ms early to prepare executor frames.
    let released = h.core.release_until(slot);
    let call = released
        .iter()
        .find_map(|a| match a {
            Action::CallHttp { call, .. } => Some(call.clone()),
            _ => None,
        })
        .expect("a call");
    assert_eq!(call.not_before, slot, "the call is held to its slot");
    let started = records(&released)[0].started_at.expect("started_at");
    assert!(
        started >= slot,
        "recorded as started before its slot: {started}"
    );
}

#[test]
fn an_unanswered_run_of_a_dead_executor_fails_over_only_once_its_dispatch_expired() {
    let mut h = Harness::new(&["http://a", "http://b"]);
    let planned = h.plan(&job(r#","routing":"first""#), 1);
    let request = first_request(&h.commit(planned));
    let expires_at = request.expires_at.expect("every dispatch expires");
    assert_eq!(expires_at, h.clock.now() + Duration::seconds(2));
    h.advance(100);
    let lost = h.core.on_executor_lost("http://a");
    assert!(
        !any_fire(&lost),
        "failed over while the dispatch could still start there: {lost:?}"
    );
    assert!(statuses(&lost).is_empty());
    h.advance(2_399); // expiry + 500 ms clock margin, less 1 ms
    let early = h.core.on_tick();
    assert!(!any_fire(&early), "{early:?}");
    h.advance(1);
    let decided = h.core.on_tick();
    assert!(fails_over(&decided), "{decided:?}");
    assert_eq!(statuses(&decided), [RunStatus::Failed]);
}

#[test]
fn a_report_during_the_wait_means_the_lost_executor_has_the_run() {
    let (mut h, run_id) = sent_to_the_first_of_two();
    h.core.on_executor_lost("http://a");
    h.core.on_report(&RunUpdate {
        run_id: run_id.clone(),
        status: Some(RunStatus::Running),
        ..Default::default()
    });
    h.advance(2_600); // past the failover decision, before the deadline
    let later = h.core.on_tick();
    assert!(!any_fire(&later), "{later:?}");
    assert!(h.core.is_active(&run_id));
}

#[test]
fn a_run_whose_earlier_send_may_have_arrived_never_moves_to_another_executor() {
    let (mut h, run_id) = sent_to_the_first_of_two();
    h.core.on_sent(
        &run_id,
        "http://a",
        SendOutcome::Unknown("connection reset".into()),
    );
    h.advance(1_000);
    only_send(&h.core.on_tick());
    // The executor died after it may have started the run: now it refuses
    // connections, which says nothing about the first send.
    let refused = h.core.on_sent(
        &run_id,
        "http://a",
        SendOutcome::Refused("connection refused".into()),
    );
    assert!(
        refused.iter().all(|a| !matches!(a, Action::Move { .. })),
        "{refused:?}"
    );
    assert!(
        statuses(&refused).is_empty(),
        "not failed either: {refused:?}"
    );
    // Its death fails it over as a new run once the dispatch expired.
    h.core.on_executor_lost("http://a");
    h.advance(2_500);
    let decided = h.core.on_tick();
    assert!(fails_over(&decided), "{decided:?}");
}

#[test]
fn an_accepted_run_not_yet_reported_started_fails_over_only_once_its_dispatch_expired() {
    let (mut h, run_id) = sent_to_the_first_of_two();
    // Accepted, then the executor stopped before it started the process.
    h.core.on_sent(&run_id, "http://a", SendOutcome::Accepted);
    let lost = h.core.on_executor_lost("http://a");
    assert!(!any_fire(&lost), "{lost:?}");
    h.advance(2_500);
    let decided = h.core.on_tick();
    assert!(fails_over(&decided), "{decided:?}");
}
