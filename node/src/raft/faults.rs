//! Network faults injected on the sending side of the real Raft transport.
//!
//! Tests of the Raft layer need partitions, lossy links and slow links over
//! real TCP, without a simulated network. A [`Faults`] value is shared (it
//! is a cheap `Clone`) by every transport of a test cluster; each transport
//! asks it, per message and just before writing, whether the message may
//! go from its own node to the peer. Because it acts on the sending side,
//! a dropped message looks to Raft exactly like a lost packet: nothing is
//! delivered and the sender's transport counts the drop.
//!
//! All randomness comes from one seeded [`StdRng`], so a failing run can be
//! repeated with the same seed (the interleaving of threads still varies,
//! so the same seed gives the same decisions for the same sequence of
//! calls, not a replay of the whole run).
//!
//! In production the node uses `Faults::default()`, which never drops or
//! delays anything and never touches the random generator.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use rand::{rngs::StdRng, Rng, SeedableRng};

/// Seed of `Faults::default()`: fixed, so even the default is reproducible.
const DEFAULT_SEED: u64 = 0;

/// A shared, mutable description of the faults of a test network.
///
/// Cloning shares the same state (an `Arc<Mutex<..>>` inside), so a test
/// keeps one clone to steer the faults while the transports hold others.
#[derive(Clone, Default)]
pub struct Faults {
    /// The state behind a mutex: the transports' per-peer tasks read it from
    /// tokio tasks while the test changes it from its own thread. The lock
    /// is held only for a few field reads, never across an await.
    inner: Arc<Mutex<FaultState>>,
}

/// What [`Faults`] currently injects.
struct FaultState {
    /// Node id to group index, from the last [`Faults::partition`]; a
    /// message between two named nodes in different groups is dropped.
    groups: HashMap<u64, usize>,
    /// Nodes cut off from everyone by [`Faults::isolate`].
    isolated: HashSet<u64>,
    /// Probability in `[0, 1]` that any one message is dropped.
    drop_rate: f64,
    /// Delay the sending task waits before writing each batch.
    delay: Duration,
    /// The only source of randomness, seeded so decisions are repeatable.
    rng: StdRng,
}

impl Default for FaultState {
    fn default() -> Self {
        FaultState::with_seed(DEFAULT_SEED)
    }
}

impl FaultState {
    fn with_seed(seed: u64) -> Self {
        FaultState {
            groups: HashMap::new(),
            isolated: HashSet::new(),
            drop_rate: 0.0,
            delay: Duration::ZERO,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Whether the partition or isolation separates `from` and `to`.
    fn separated(&self, from: u64, to: u64) -> bool {
        if self.isolated.contains(&from) || self.isolated.contains(&to) {
            return true;
        }
        match (self.groups.get(&from), self.groups.get(&to)) {
            (Some(a), Some(b)) => a != b,
            // A node named in no group is not part of the partition.
            _ => false,
        }
    }
}

impl Faults {
    /// No faults, with the random generator seeded by `seed`, so a test
    /// that sets a drop rate gets the same drop decisions on every run.
    pub fn seeded(seed: u64) -> Self {
        Faults {
            inner: Arc::new(Mutex::new(FaultState::with_seed(seed))),
        }
    }

    /// Splits the network: a message between two nodes named in different
    /// groups is dropped, in both directions. Nodes named in no group keep
    /// reaching everyone. Replaces any earlier partition (isolation set by
    /// [`Faults::isolate`] stays). A node named in several groups belongs
    /// to the last one.
    pub fn partition(&self, groups: &[&[u64]]) {
        let mut state = self.lock();
        state.groups.clear();
        for (index, group) in groups.iter().enumerate() {
            for id in group.iter() {
                state.groups.insert(*id, index);
            }
        }
    }

    /// Cuts node `id` off from every other node, in both directions, until
    /// [`Faults::heal`].
    pub fn isolate(&self, id: u64) {
        self.lock().isolated.insert(id);
    }

    /// Restores a healthy network: removes the partition and all isolation,
    /// and sets the drop rate and the delay back to zero. The random
    /// generator is not reseeded: it continues its sequence.
    pub fn heal(&self) {
        let mut state = self.lock();
        state.groups.clear();
        state.isolated.clear();
        state.drop_rate = 0.0;
        state.delay = Duration::ZERO;
    }

    /// Drops each message with probability `rate`, clamped to `[0, 1]`
    /// (NaN counts as 0). `1.0` drops everything.
    pub fn set_drop_rate(&self, rate: f64) {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        self.lock().drop_rate = rate;
    }

    /// Makes every link slow: the sending task waits `delay` before writing
    /// each batch (messages queued meanwhile join the next batch).
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// The delay the sending task applies before writing a batch.
    pub fn delay(&self) -> Duration {
        self.lock().delay
    }

    /// Whether one message from `from` to `to` may be sent now: false if a
    /// partition or isolation separates the two nodes, or if the random
    /// draw against the drop rate says drop. Each call with a drop rate
    /// strictly between 0 and 1 consumes one random number.
    pub fn allows(&self, from: u64, to: u64) -> bool {
        let mut state = self.lock();
        if state.separated(from, to) {
            return false;
        }
        let rate = state.drop_rate;
        if rate <= 0.0 {
            true
        } else if rate >= 1.0 {
            false
        } else {
            state.rng.random::<f64>() >= rate
        }
    }

    /// Locks the state, ignoring poisoning: the state is a few plain values
    /// that a panicking holder cannot leave half-updated in a harmful way,
    /// and a panicked test thread must not take the transports down too.
    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Faults")
            .field("groups", &state.groups)
            .field("isolated", &state.isolated)
            .field("drop_rate", &state.drop_rate)
            .field("delay", &state.delay)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_allows_everything() {
        let faults = Faults::default();
        for from in 1..=5 {
            for to in 1..=5 {
                assert!(faults.allows(from, to));
            }
        }
        assert_eq!(faults.delay(), Duration::ZERO);
    }

    #[test]
    fn partition_separates_groups_both_ways() {
        let faults = Faults::default();
        faults.partition(&[&[1], &[2, 3]]);
        assert!(!faults.allows(1, 2));
        assert!(!faults.allows(2, 1));
        assert!(!faults.allows(1, 3));
        assert!(faults.allows(2, 3));
        assert!(faults.allows(3, 2));
        // Node 4 is in no group: untouched by the partition.
        assert!(faults.allows(4, 1));
        assert!(faults.allows(2, 4));

        // A new partition replaces the old one.
        faults.partition(&[&[1, 2], &[3]]);
        assert!(faults.allows(1, 2));
        assert!(!faults.allows(2, 3));

        faults.heal();
        assert!(faults.allows(1, 3));
        assert!(faults.allows(2, 3));
    }

    #[test]
    fn isolate_cuts_one_node_until_heal() {
        let faults = Faults::default();
        faults.isolate(2);
        assert!(!faults.allows(1, 2));
        assert!(!faults.allows(2, 3));
        assert!(faults.allows(1, 3));
        faults.heal();
        assert!(faults.allows(1, 2));
    }

    #[test]
    fn clones_share_state() {
        let faults = Faults::default();
        let other = faults.clone();
        other.isolate(1);
        assert!(!faults.allows(1, 2));
        other.set_delay(Duration::from_millis(5));
        assert_eq!(faults.delay(), Duration::from_millis(5));
    }

    #[test]
    fn drop_rate_is_clamped_and_extremes_are_exact() {
        let faults = Faults::seeded(7);
        faults.set_drop_rate(1.0);
        assert!((0..1000).all(|_| !faults.allows(1, 2)));
        faults.set_drop_rate(5.0);
        assert!((0..100).all(|_| !faults.allows(1, 2)));
        faults.set_drop_rate(f64::NAN);
        assert!((0..100).all(|_| faults.allows(1, 2)));
        faults.set_drop_rate(-1.0);
        assert!((0..100).all(|_| faults.allows(1, 2)));
    }

    #[test]
    fn same_seed_same_decisions() {
        let decisions = |seed: u64| {
            let faults = Faults::seeded(seed);
            faults.set_drop_rate(0.5);
            (0..256).map(|_| faults.allows(1, 2)).collect::<Vec<_>>()
        };
        let a = decisions(42);
        assert_eq!(a, decisions(42));
        let dropped = a.iter().filter(|allowed| !**allowed).count();
        // Half of 256, give or take a lot: only checks it is really random.
        assert!((64..=192).contains(&dropped), "dropped {dropped} of 256");
    }
}
