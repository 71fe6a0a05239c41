//! Executors with `max_concurrent`: the dispatcher core and the router
//! core together, the log and the executors simulated, no actix. Every
//! action is carried out as the actors would: loads and placements go to
//! the router, creations and placements are committed, sends land on the
//! executor they name.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Duration, Utc};
use protocol::{Job, Run, RunStatus, RunUpdate, TriggerKind};

use super::{
    core::{Action, DispatcherCore},
    phase::SendOutcome,
    tests::{entry, FixedClock},
};
use crate::{
    clock::Clock,
    fire::Fire,
    router::{assign, place, RouterCore},
};

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc()
}

/// A leader's dispatcher and router, the log and the executors.
struct Cluster {
    clock: Arc<FixedClock>,
    core: DispatcherCore,
    router: RouterCore,
    /// The log's runs by id.
    log: BTreeMap<String, Run>,
    /// Runs each executor holds now.
    holding: BTreeMap<String, BTreeSet<String>>,
    /// The most each executor ever held at once.
    peak: BTreeMap<String, usize>,
    /// Every run sent, in order, with its executor.
    sent: Vec<(String, String)>,
    /// Whether `PlaceRun` commits (`false`: the proposal fails).
    commit_placements: bool,
    records: Vec<RunUpdate>,
    /// Executors that answer every send `busy`.
    busy: BTreeSet<String>,
}

impl Cluster {
    fn new(executors: &[(&str, u32)]) -> Self {
        let clock = Arc::new(FixedClock(Mutex::new(start())));
        let mut router = RouterCore::new(1);
        router.set_executors(executors.iter().map(|(e, max)| entry(e, *max)).collect());
        let mut core = DispatcherCore::new(
            clock.clone(),
            vec!["http://scheduler".into()],
            std::time::Duration::from_secs(1),
        );
        core.lead(1);
        Self {
            clock,
            core,
            router,
            log: BTreeMap::new(),
            holding: BTreeMap::new(),
            peak: BTreeMap::new(),
            sent: Vec::new(),
            commit_placements: true,
            records: Vec::new(),
            busy: BTreeSet::new(),
        }
    }

    fn advance(&mut self, ms: i64) {
        *self.clock.0.lock().unwrap() += Duration::milliseconds(ms);
        let actions = self.core.on_tick();
        self.run(actions);
    }

    /// Fires `job` for a slot that is due now.
    fn fire(&mut self, job: &Job) {
        let fire = Fire::new(job.key(), self.clock.now(), TriggerKind::Schedule);
        let assignments = assign(
            &mut self.router,
            &fire,
            &Arc::new(job.clone()),
            self.clock.now(),
        );
        let actions = self.core.plan(assignments);
        self.run(actions);
    }

    /// Carries out actions, and what they lead to, until none is left.
    fn run(&mut self, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            let next = match action {
                Action::Create(plans) => {
                    let fresh: Vec<Run> = plans
                        .iter()
                        .map(|p| p.assignment.run.clone())
                        .filter(|r| !self.log.contains_key(&r.id))
                        .collect();
                    for run in &fresh {
                        self.log.insert(run.id.clone(), run.clone());
                    }
                    self.core.on_created(plans, Ok(fresh))
                }
                Action::Acquire(e) => {
                    self.router.acquire(&e);
                    vec![]
                }
                Action::Release(e) => {
                    self.router.release(&e);
                    vec![]
                }
                Action::Place(requests) => {
                    let placed = requests
                        .iter()
                        .map(|r| (r.run_id.clone(), place(&mut self.router, r)))
                        .collect();
                    self.core.on_placed(placed)
                }
                Action::PlaceRun { run_id, to } => {
                    let result = if self.commit_placements {
                        let run = self.log.get_mut(&run_id).unwrap();
                        let waiting =
                            run.status == RunStatus::Pending && run.pending_reason.is_some();
                        if waiting {
                            run.executor = Some(to.clone());
                            run.pending_reason = None;
                        }
                        Ok(waiting)
                    } else {
                        Err("not the leader".to_string())
                    };
                    self.core.on_place_committed(&run_id, &to, result)
                }
                Action::Send { endpoint, request } if self.busy.contains(&endpoint) => {
                    self.sent.push((request.run_id.clone(), endpoint.clone()));
                    self.core
                        .on_sent(&request.run_id, &endpoint, SendOutcome::Busy("full".into()))
                }
                Action::Send { endpoint, request } => {
                    let held = self.holding.entry(endpoint.clone()).or_default();
                    held.insert(request.run_id.clone());
                    let peak = self.peak.entry(endpoint.clone()).or_default();
                    *peak = (*peak).max(held.len());
                    self.sent.push((request.run_id.clone(), endpoint.clone()));
                    self.core
                        .on_sent(&request.run_id, &endpoint, SendOutcome::Accepted)
                }
                Action::Record(update) => {
                    self.records.push(update);
                    vec![]
                }
                _ => vec![],
            };
            queue.extend(next);
        }
    }

    /// The executor `endpoint` finishes the oldest run it holds.
    fn finish_one(&mut self, endpoint: &str) -> String {
        let id = self.holding.get_mut(endpoint).unwrap().pop_first().unwrap();
        let actions = self.core.on_report(&RunUpdate {
            run_id: id.clone(),
            status: Some(RunStatus::Succeeded),
            finished_at: Some(self.clock.now()),
            ..Default::default()
        });
        self.run(actions);
        id
    }

    fn holding(&self, endpoint: &str) -> usize {
        self.holding.get(endpoint).map_or(0, BTreeSet::len)
    }

    fn ended(&self, status: RunStatus) -> Vec<RunUpdate> {
        self.records
            .iter()
            .filter(|u| u.status == Some(status))
            .cloned()
            .collect()
    }
}

fn job(extra: &str) -> Job {
    protocol::validate::from_json(
        format!(r#"{{"id":"j","schedule":"@every 1s","timeout":"1h","target":{{"type":"shell","command":"true"}}{extra}}}"#).as_bytes(),
    )
    .unwrap()
}

#[test]
fn an_executor_never_holds_more_than_its_max_and_the_rest_run_in_order_as_room_frees() {
    let mut c = Cluster::new(&[("http://a", 2)]);
    c.fire(&job(r#","shards":20"#));
    assert_eq!(c.holding("http://a"), 2, "two runs go at once");
    let waiting: Vec<&Run> = c
        .log
        .values()
        .filter(|r| r.pending_reason.is_some())
        .collect();
    assert_eq!(waiting.len(), 18, "the others are created waiting");
    assert!(waiting
        .iter()
        .all(|r| r.status == RunStatus::Pending && r.executor.is_none()));
    assert!(
        waiting[0]
            .pending_reason
            .as_deref()
            .unwrap()
            .contains("max_concurrent"),
        "{:?}",
        waiting[0].pending_reason
    );
    for _ in 0..20 {
        c.finish_one("http://a");
        c.advance(10);
    }
    assert_eq!(c.peak["http://a"], 2);
    assert_eq!(c.sent.len(), 20, "every run went, once");
    let ids: BTreeSet<&String> = c.sent.iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 20);
    // After the first two, the shards went in order.
    let shards: Vec<u32> = c.sent[2..]
        .iter()
        .map(|(id, _)| c.log[id].shard.index)
        .collect();
    let mut sorted = shards.clone();
    sorted.sort();
    assert_eq!(shards, sorted, "waiting runs are placed oldest first");
    assert!(c.ended(RunStatus::Skipped).is_empty());
}

#[test]
fn separate_jobs_share_the_room_and_none_is_lost() {
    let mut c = Cluster::new(&[("http://a", 2), ("http://b", 1)]);
    for i in 0..20 {
        let mut j = job("");
        j.id = format!("j{i}");
        c.fire(&j);
    }
    assert_eq!(c.holding("http://a"), 2);
    assert_eq!(c.holding("http://b"), 1);
    for _ in 0..20 {
        for e in ["http://a", "http://b"] {
            if c.holding(e) > 0 {
                c.finish_one(e);
            }
        }
        c.advance(10);
    }
    assert_eq!(c.peak["http://a"], 2);
    assert_eq!(c.peak["http://b"], 1);
    assert_eq!(c.sent.len(), 20);
    assert_eq!(c.core.active_count(), 0, "every run ended");
}

#[test]
fn a_run_that_waits_past_its_start_deadline_is_skipped_with_the_reason() {
    let mut c = Cluster::new(&[("http://a", 1)]);
    c.fire(&job(r#","shards":2,"start_deadline":"5s""#));
    assert_eq!(c.holding("http://a"), 1);
    c.advance(4_000);
    assert!(c.ended(RunStatus::Skipped).is_empty(), "not yet");
    c.advance(1_500);
    let skipped = c.ended(RunStatus::Skipped);
    assert_eq!(skipped.len(), 1);
    let reason = skipped[0].error.clone().unwrap();
    assert!(
        reason.contains("start_deadline of 5s") && reason.contains("max_concurrent"),
        "{reason}"
    );
    // The room it never got goes to nobody else's loss.
    c.finish_one("http://a");
    assert_eq!(c.sent.len(), 1);
    assert_eq!(c.core.active_count(), 0);
}

#[test]
fn the_start_deadline_defaults_to_the_misfire_threshold() {
    let mut c = Cluster::new(&[("http://a", 1)]);
    c.fire(&job(r#","shards":2,"misfire":{"threshold":"3s"}"#));
    c.advance(2_900);
    assert!(c.ended(RunStatus::Skipped).is_empty());
    c.advance(200);
    assert_eq!(c.ended(RunStatus::Skipped).len(), 1);
}

#[test]
fn a_placement_the_log_does_not_commit_sends_nothing_and_gives_the_room_back() {
    let mut c = Cluster::new(&[("http://a", 1)]);
    c.fire(&job(r#","shards":2"#));
    c.commit_placements = false;
    c.finish_one("http://a");
    assert_eq!(c.sent.len(), 1, "nothing goes before the log places it");
    assert_eq!(c.router.inflight("http://a"), 0, "the room was given back");
    c.commit_placements = true;
    c.advance(100);
    assert_eq!(c.sent.len(), 2, "placed on the next try");
    assert_eq!(c.router.inflight("http://a"), 1);
}

#[test]
fn a_new_leader_places_runs_that_were_waiting_without_counting_them_on_an_executor() {
    let mut c = Cluster::new(&[("http://a", 1)]);
    let j = job(r#","shards":3"#);
    c.fire(&j);
    // Leadership moves: the new leader finds one run on `a` and two
    // waiting in the log.
    let mut next = Cluster::new(&[("http://a", 1)]);
    next.log = c.log.clone();
    let runs: Vec<(Run, Arc<Job>)> = next
        .log
        .values()
        .map(|r| (r.clone(), Arc::new(j.clone())))
        .collect();
    let actions = next.core.resume(runs);
    next.run(actions);
    assert_eq!(next.router.inflight("http://a"), 1);
    assert_eq!(next.sent.len(), 1, "only the run on `a` is sent again");
    next.finish_one("http://a");
    assert_eq!(next.sent.len(), 2);
    next.finish_one("http://a");
    assert_eq!(next.sent.len(), 3);
    assert_eq!(next.peak["http://a"], 1);
}

#[test]
fn killing_a_waiting_run_ends_it_without_touching_any_executor() {
    let mut c = Cluster::new(&[("http://a", 1)]);
    c.fire(&job(r#","shards":2"#));
    let waiting = c
        .log
        .values()
        .find(|r| r.pending_reason.is_some())
        .unwrap()
        .id
        .clone();
    let actions = c.core.kill(&waiting).unwrap();
    assert!(!actions.iter().any(|a| matches!(a, Action::Kill { .. })));
    c.run(actions);
    assert_eq!(c.router.inflight("http://a"), 1);
    c.finish_one("http://a");
    assert_eq!(c.sent.len(), 1);
    assert_eq!(c.router.inflight("http://a"), 0);
}

#[test]
fn a_busy_answer_keeps_the_run_on_its_executor_and_asks_again() {
    let mut c = Cluster::new(&[("http://a", 0), ("http://b", 0)]);
    c.busy.insert("http://a".into());
    c.busy.insert("http://b".into());
    c.fire(&job(""));
    let (_, endpoint) = c.sent[0].clone();
    assert_eq!(c.holding(&endpoint), 0);
    c.busy.clear();
    c.advance(1_100);
    assert_eq!(c.sent.len(), 2, "asked again");
    assert_eq!(c.sent[1].1, endpoint, "at the same executor, no failover");
    assert_eq!(c.holding(&endpoint), 1);
}

#[test]
fn a_new_term_on_the_same_node_counts_its_runs_afresh() {
    let mut c = Cluster::new(&[("http://a", 1)]);
    let j = job(r#","shards":2"#);
    c.fire(&j);
    assert_eq!(c.router.inflight("http://a"), 1);
    // Leadership lost and won back: the actor has the router forget its
    // counts, then the new term takes over the active runs.
    c.core.clear();
    c.router.forget_load();
    c.core.lead(2);
    let runs: Vec<(Run, Arc<Job>)> = c
        .log
        .values()
        .map(|r| (r.clone(), Arc::new(j.clone())))
        .collect();
    let actions = c.core.resume(runs);
    c.run(actions);
    assert_eq!(
        c.router.inflight("http://a"),
        1,
        "one run is on `a`, counted once"
    );
    c.finish_one("http://a");
    assert_eq!(
        c.router.inflight("http://a"),
        1,
        "the waiting run took the room"
    );
    c.finish_one("http://a");
    assert_eq!(c.router.inflight("http://a"), 0);
}
