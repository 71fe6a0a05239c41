//! Seeded fault injection into a [`NetCluster`].
//!
//! Faults are injected by lanes: one for the scheduler nodes, one for the
//! executors. A lane injects one fault at a time: it waits a random gap
//! of 0.5 to 2 s (so faults start at random offsets within a second,
//! across slot boundaries), injects the next fault of a shuffled deck
//! (every kind comes up before any repeats), holds it 1 to 5 s and undoes
//! it: SIGCONT, restart on the same address and data directory, or heal.
//!
//! Every random draw comes from the lane's own [`Rng`], in the same order
//! whatever happens, so a seed gives the same plan: kinds, gaps, hold
//! times and which follower or executor. Which node leads when a fault
//! starts depends on the run, and is printed.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use super::{cluster::NetCluster, rng::Rng};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// SIGSTOP the leader, SIGCONT it later.
    StopLeader,
    StopFollower,
    /// kill -9 the leader, restart it later.
    KillLeader,
    KillFollower,
    /// The leader loses every packet (peers, executors, the test).
    IsolateLeader,
    /// The leader loses its peers but still reaches the executors.
    CutLeaderFromPeers,
    /// A follower loses its peers but still reaches the executors.
    CutFollowerFromPeers,
    StopExecutor,
    KillExecutor,
    /// An executor loses every packet.
    IsolateExecutor,
}

pub const SCHEDULER_FAULTS: &[Fault] = &[
    Fault::StopLeader,
    Fault::StopFollower,
    Fault::KillLeader,
    Fault::KillFollower,
    Fault::IsolateLeader,
    Fault::CutLeaderFromPeers,
    Fault::CutFollowerFromPeers,
];

pub const EXECUTOR_FAULTS: &[Fault] = &[
    Fault::StopExecutor,
    Fault::KillExecutor,
    Fault::IsolateExecutor,
];

impl Fault {
    /// `kinds`, narrowed to the ones named in `CRONMESH_FAULT_KINDS`
    /// (comma-separated, e.g. `StopLeader,IsolateExecutor`) when it is set:
    /// to find which kind of fault breaks an invariant.
    pub fn selected(kinds: &[Fault]) -> Vec<Fault> {
        match std::env::var("CRONMESH_FAULT_KINDS") {
            Ok(names) => {
                let names: Vec<&str> = names.split(',').map(str::trim).collect();
                let known: Vec<String> = SCHEDULER_FAULTS
                    .iter()
                    .chain(EXECUTOR_FAULTS)
                    .map(|k| format!("{k:?}"))
                    .collect();
                for name in &names {
                    assert!(
                        known.iter().any(|k| k == name),
                        "CRONMESH_FAULT_KINDS: unknown kind {name:?}; the kinds are {known:?}"
                    );
                }
                kinds
                    .iter()
                    .copied()
                    .filter(|k| names.contains(&format!("{k:?}").as_str()))
                    .collect()
            }
            Err(_) => kinds.to_vec(),
        }
    }

    fn targets_leader(self) -> bool {
        matches!(
            self,
            Fault::StopLeader
                | Fault::KillLeader
                | Fault::IsolateLeader
                | Fault::CutLeaderFromPeers
        )
    }
}

/// One injected fault, for the report.
#[derive(Clone, Debug)]
pub struct Injected {
    pub fault: Fault,
    pub target: String,
    /// When it started, after the scenario's start.
    pub at: Duration,
    /// When it started, as the nodes' logs show time.
    pub wall: chrono::DateTime<chrono::Utc>,
    pub held: Duration,
    /// From injecting it to having undone it (a restart included).
    pub lasted: Duration,
    /// The leader as seen at the end of the hold, before undoing it.
    pub leader_after: Option<String>,
    /// What the fault was seen to do at the end of the hold.
    pub effect: String,
}

impl std::fmt::Display for Injected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "t+{:.1}s ({}) {:?} {} for {:.1}s (undone after {:.1}s): {} (leader then: {})",
            self.at.as_secs_f64(),
            self.wall.format("%H:%M:%S%.3fZ"),
            self.fault,
            self.target,
            self.held.as_secs_f64(),
            self.lasted.as_secs_f64(),
            self.effect,
            self.leader_after.as_deref().unwrap_or("none")
        )
    }
}

/// When lanes inject: for `length`, and on (up to twice as long) until
/// the lanes together injected `min_faults`.
#[derive(Clone, Debug)]
pub struct Window {
    pub start: Instant,
    pub length: Duration,
    pub min_faults: usize,
    injected: Arc<AtomicUsize>,
}

impl Window {
    pub fn new(length: Duration, min_faults: usize) -> Self {
        Self {
            start: Instant::now(),
            length,
            min_faults,
            injected: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn open(&self) -> bool {
        let elapsed = self.start.elapsed();
        elapsed < self.length
            || (self.injected.load(Ordering::SeqCst) < self.min_faults && elapsed < 2 * self.length)
    }
}

/// The leader, waiting up to `limit` for one (an election may be going on).
async fn leader_within(cluster: &NetCluster, limit: Duration) -> Option<String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(leader) = cluster.leader_now().await {
            return Some(leader);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How long before the end of a hold its effect is looked at.
const OBSERVE: Duration = Duration::from_millis(1500);

/// The leader, and what `fault` on `target` is seen to have done.
async fn observe(cluster: &NetCluster, fault: Fault, target: &str) -> (Option<String>, String) {
    // A node that answers at all answers in far less than this.
    let quick = Duration::from_millis(400);
    let leader = cluster.leader_now().await;
    let effect = match fault {
        _ if fault.targets_leader() => match &leader {
            Some(l) if l != target => format!("leadership moved to {l}"),
            Some(_) => "still the leader".to_string(),
            None => "no leader".to_string(),
        },
        Fault::StopExecutor | Fault::KillExecutor | Fault::IsolateExecutor => {
            let endpoint = cluster.executor_url(target);
            match &leader {
                Some(l) => match cluster.executors_alive(l).await {
                    Some(alive) if alive.contains(&endpoint) => format!("{l} sees it alive"),
                    Some(_) => format!("{l} declared it dead"),
                    None => format!("{l} did not answer"),
                },
                None => "no leader to ask".to_string(),
            }
        }
        Fault::CutFollowerFromPeers => format!(
            "its leader: {}",
            match cluster.get_within(target, "/v1/cluster", quick).await {
                Some((_, status)) => status["leader_id"].to_string(),
                None => "no answer".to_string(),
            }
        ),
        _ => match cluster.get_within(target, "/v1/cluster", quick).await {
            Some(_) => "answers".to_string(),
            None => "does not answer".to_string(),
        },
    };
    (leader, effect)
}

/// Injects faults drawn from `kinds` while `window` is open; the fault in
/// progress when it closes is held and undone as planned.
pub async fn lane(
    cluster: Arc<NetCluster>,
    kinds: Vec<Fault>,
    mut rng: Rng,
    window: Window,
) -> Vec<Injected> {
    let start = window.start;
    let mut injected = Vec::new();
    let mut deck: Vec<Fault> = Vec::new();
    loop {
        // Drawn first, whatever happens next, so the plan follows the seed.
        let gap = rng.millis(500, 2000);
        let held = rng.millis(1000, 5000);
        if deck.is_empty() {
            deck = kinds.clone();
            rng.shuffle(&mut deck);
        }
        let fault = deck.pop().expect("a non-empty deck");
        let pick = rng.below(1 << 16) as usize;

        tokio::time::sleep(gap).await;
        if !window.open() {
            return injected;
        }
        let schedulers = cluster.schedulers();
        let target = if fault.targets_leader() {
            leader_within(&cluster, Duration::from_secs(5)).await
        } else if matches!(
            fault,
            Fault::StopFollower | Fault::KillFollower | Fault::CutFollowerFromPeers
        ) {
            let leader = leader_within(&cluster, Duration::from_secs(5)).await;
            let followers: Vec<&String> = schedulers
                .iter()
                .filter(|s| Some(*s) != leader.as_ref())
                .collect();
            leader.map(|_| followers[pick % followers.len()].clone())
        } else {
            let executors = cluster.executors();
            Some(executors[pick % executors.len()].clone())
        };
        let Some(target) = target else {
            eprintln!(
                "faults: t+{:.1}s no leader for 5 s: {fault:?} not injected",
                start.elapsed().as_secs_f64()
            );
            continue;
        };
        let (at, wall) = (start.elapsed(), chrono::Utc::now());
        window.injected.fetch_add(1, Ordering::SeqCst);
        let peers: Vec<String> = schedulers.into_iter().filter(|s| *s != target).collect();
        eprintln!(
            "faults: t+{:.1}s ({}) {fault:?} {target} (pid {:?}) for {:.1}s",
            at.as_secs_f64(),
            wall.format("%H:%M:%S%.3fZ"),
            cluster.pid(&target),
            held.as_secs_f64()
        );
        let mut partitions = Vec::new();
        match fault {
            Fault::StopLeader | Fault::StopFollower | Fault::StopExecutor => cluster.stop(&target),
            Fault::KillLeader | Fault::KillFollower | Fault::KillExecutor => cluster.kill9(&target),
            Fault::IsolateLeader | Fault::IsolateExecutor => {
                partitions.push(cluster.net.isolate(&target))
            }
            Fault::CutLeaderFromPeers | Fault::CutFollowerFromPeers => {
                for peer in &peers {
                    partitions.push(cluster.net.cut(&target, peer));
                }
            }
        }
        // The effect is observed within the hold, in its last moments,
        // so that observing never prolongs the fault.
        let observed = async {
            tokio::time::sleep(held.saturating_sub(OBSERVE)).await;
            tokio::time::timeout(OBSERVE, observe(&cluster, fault, &target))
                .await
                .unwrap_or((None, "not observed in time".to_string()))
        };
        let ((leader_after, effect), ()) = tokio::join!(observed, tokio::time::sleep(held));
        match fault {
            Fault::StopLeader | Fault::StopFollower | Fault::StopExecutor => cluster.cont(&target),
            Fault::KillLeader | Fault::KillFollower | Fault::KillExecutor => {
                cluster.clone().restart(&target).await
            }
            _ => {
                for partition in partitions {
                    cluster.net.heal(partition);
                }
            }
        }
        let done = Injected {
            fault,
            target,
            at,
            wall,
            held,
            lasted: start.elapsed() - at,
            leader_after,
            effect,
        };
        eprintln!(
            "faults: t+{:.1}s undone: {done}",
            start.elapsed().as_secs_f64()
        );
        injected.push(done);
    }
}
