//! Real gossip on loopback UDP: several `Membership` nodes in one process.
//! Every wait polls with a deadline; detection times are printed, not
//! asserted.

use std::time::{Duration, Instant};

use membership::testsuite::{eventually, executor, next_change, scheduler};
use membership::{Member, MemberState, Membership, MembershipChange, MembershipConfig};

/// Generous: the machine may be busy building other crates.
const DEADLINE: Duration = Duration::from_secs(20);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "membership=info".into()),
        )
        .with_test_writer()
        .try_init();
}

async fn start(name: &str, me: Member, seeds: &[&Membership]) -> Membership {
    let config =
        MembershipConfig::fast_for_tests(name).with_seeds(seeds.iter().map(|m| m.advertise_addr()));
    Membership::start(config, me).await.expect("start")
}

fn find<'a>(members: &'a [MemberState], id: &str) -> Option<&'a MemberState> {
    members.iter().find(|m| m.member.id() == id)
}

/// Whether `node` sees every one of `ids` alive.
async fn sees_alive(node: &Membership, ids: &[&str]) -> bool {
    let members = node.members().await;
    ids.iter()
        .all(|id| find(&members, id).is_some_and(|m| m.alive))
}

const E1: &str = "http://127.0.0.1:7081";
const E2: &str = "http://127.0.0.1:7082";
const E3: &str = "http://127.0.0.1:7083";

/// A scheduler and two executors seeded from it.
async fn three() -> (Membership, Membership, Membership) {
    let s = start("scheduler-1", scheduler(1), &[]).await;
    let e1 = start("executor-1", executor(E1), &[&s]).await;
    let e2 = start("executor-2", executor(E2), &[&s]).await;
    let all = ["1", E1, E2];
    for node in [&s, &e1, &e2] {
        assert!(
            eventually(DEADLINE, || sees_alive(node, &all)).await,
            "{:?} does not see everyone alive: {:#?}",
            node.gossip_addr(),
            node.members().await
        );
    }
    (s, e1, e2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_port_zero_and_reports_the_bound_address() {
    init_tracing();
    let node = start("scheduler-9", scheduler(9), &[]).await;
    assert_ne!(node.gossip_addr().port(), 0);
    assert_eq!(node.gossip_addr(), node.advertise_addr());
    // Alone, it knows itself.
    let members = node.members().await;
    assert_eq!(members.len(), 1);
    assert!(members[0].alive);
    assert_eq!(members[0].member, scheduler(9));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_see_each_other_typed() {
    init_tracing();
    let started = Instant::now();
    let (s, e1, e2) = three().await;
    println!("three nodes converged in {:?}", started.elapsed());

    for node in [&s, &e1, &e2] {
        let members = node.members().await;
        assert_eq!(members.len(), 3, "{members:#?}");
        assert!(members.iter().all(|m| m.alive && m.last_seen.is_some()));
        assert_eq!(find(&members, "1").unwrap().member, scheduler(1));
        assert_eq!(find(&members, E1).unwrap().member, executor(E1));
        assert_eq!(find(&members, E2).unwrap().member, executor(E2));
        assert!(find(&members, E1)
            .unwrap()
            .gossip_id
            .starts_with("executor-1:"));
    }
    for node in [s, e1, e2] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_self_propagates_as_updated() {
    init_tracing();
    let (s, e1, e2) = three().await;
    let mut changes = s.subscribe();
    // The stream opens with the alive members.
    for _ in 0..3 {
        let first = next_change(&mut changes, DEADLINE, |_| true).await.unwrap();
        assert!(matches!(first, MembershipChange::Added(_)), "{first:?}");
    }

    let Member::Executor(mut busy) = executor(E1) else {
        unreachable!()
    };
    busy.running = 3;
    let sent = Instant::now();
    e1.update_self(Member::Executor(busy.clone())).await;
    let change = next_change(&mut changes, DEADLINE, |c| c.state().member.id() == E1)
        .await
        .expect("an update of executor-1");
    println!("running=3 reached the scheduler in {:?}", sent.elapsed());
    match change {
        MembershipChange::Updated(state) => {
            assert_eq!(state.member, Member::Executor(busy.clone()));
            assert!(state.alive);
        }
        other => panic!("expected Updated, got {other:?}"),
    }
    // The other executor sees it too, and the scheduler's view agrees.
    assert!(
        eventually(DEADLINE, || async {
            let m = e2.members().await;
            find(&m, E1).is_some_and(|m| m.member == Member::Executor(busy.clone()))
        })
        .await
    );
    let members = s.members().await;
    assert_eq!(find(&members, E1).unwrap().member, Member::Executor(busy));

    // Flipping the leader flag is an update of the scheduler, and its term
    // travels with it.
    let mut e2_changes = e2.subscribe();
    let Member::Scheduler(mut leader) = scheduler(1) else {
        unreachable!()
    };
    leader.leader = true;
    leader.term = 5;
    s.update_self(Member::Scheduler(leader.clone())).await;
    let change = next_change(&mut e2_changes, DEADLINE, |c| {
        matches!(c, MembershipChange::Updated(_)) && c.state().member.id() == "1"
    })
    .await
    .expect("the leader flag reaches executor-2");
    assert_eq!(change.state().member, Member::Scheduler(leader.clone()));

    // A new term alone is an update too: an executor learns it.
    leader.term = 6;
    s.update_self(Member::Scheduler(leader.clone())).await;
    let change = next_change(&mut e2_changes, DEADLINE, |c| {
        matches!(c, MembershipChange::Updated(_)) && c.state().member.id() == "1"
    })
    .await
    .expect("the new term reaches executor-2");
    assert_eq!(change.state().member, Member::Scheduler(leader));

    for node in [s, e1, e2] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_executor_is_declared_dead() {
    init_tracing();
    let (s, e1, e2) = three().await;
    let mut s_changes = s.subscribe();
    let mut e2_changes = e2.subscribe();

    let stopped = Instant::now();
    e1.shutdown().await;
    for (name, changes) in [
        ("scheduler-1", &mut s_changes),
        ("executor-2", &mut e2_changes),
    ] {
        let change = next_change(changes, DEADLINE, |c| {
            matches!(c, MembershipChange::Removed(_)) && c.state().member.id() == E1
        })
        .await
        .unwrap_or_else(|| panic!("{name} never declared executor-1 dead"));
        println!(
            "{name} declared executor-1 dead {:?} after it stopped",
            stopped.elapsed()
        );
        assert!(!change.state().alive);
        assert!(change.state().last_seen.is_some());
    }
    // Still listed, as dead; the others are unaffected.
    let members = s.members().await;
    assert!(!find(&members, E1).unwrap().alive);
    assert!(find(&members, E2).unwrap().alive);
    assert!(find(&members, "1").unwrap().alive);

    s.shutdown().await;
    e2.shutdown().await;
    // Streams end at shutdown.
    assert!(next_change(&mut s_changes, DEADLINE, |_| true)
        .await
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_is_added() {
    init_tracing();
    let (s, e1, e2) = three().await;
    let mut changes = e1.subscribe();

    // Seeded from an executor, not the scheduler: any node will do.
    let joined = Instant::now();
    let e3 = start("executor-3", executor(E3), &[&e2]).await;
    let change = next_change(&mut changes, DEADLINE, |c| c.state().member.id() == E3)
        .await
        .expect("executor-3 is seen");
    println!(
        "executor-3 was added on executor-1 after {:?}",
        joined.elapsed()
    );
    match change {
        MembershipChange::Added(state) => {
            assert!(state.alive);
            assert_eq!(state.member, executor(E3));
        }
        other => panic!("expected Added, got {other:?}"),
    }
    assert!(eventually(DEADLINE, || sees_alive(&e3, &["1", E1, E2, E3])).await);

    for node in [s, e1, e2, e3] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_under_the_same_name_is_an_update() {
    init_tracing();
    let (s, e1, e2) = three().await;
    let mut changes = s.subscribe();
    let before = find(&s.members().await, E2).unwrap().gossip_id.clone();
    e2.shutdown().await;
    // Back before it was declared dead, with a new generation.
    let e2 = start("executor-2", executor(E2), &[&s]).await;
    let change = next_change(&mut changes, DEADLINE, |c| {
        c.state().member.id() == E2 && c.state().gossip_id != before
    })
    .await
    .expect("the new generation is seen");
    assert!(matches!(change, MembershipChange::Updated(_)), "{change:?}");
    // The old generation's death is not reported.
    let removed = next_change(&mut changes, Duration::from_secs(4), |c| {
        matches!(c, MembershipChange::Removed(_)) && c.state().member.id() == E2
    })
    .await;
    assert!(removed.is_none(), "{removed:?}");
    assert!(find(&s.members().await, E2).unwrap().alive);

    for node in [s, e1, e2] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_clusters_are_ignored() {
    init_tracing();
    let s = start("scheduler-1", scheduler(1), &[]).await;
    let mut config =
        MembershipConfig::fast_for_tests("executor-x").with_seeds([s.advertise_addr()]);
    config.cluster_id = "someone-else".into();
    let stranger = Membership::start(config, executor(E1)).await.unwrap();
    let e2 = start("executor-2", executor(E2), &[&s]).await;
    // By the time a node of the cluster is seen, the stranger has had rounds.
    assert!(eventually(DEADLINE, || sees_alive(&s, &[E2])).await);
    assert!(find(&s.members().await, E1).is_none());
    assert_eq!(stranger.members().await.len(), 1);
    for node in [s, stranger, e2] {
        node.shutdown().await;
    }
}
