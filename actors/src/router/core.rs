//! Choosing executors: the routing policies over the executors this node
//! knows, and the in-flight counts `least_busy` needs.

use std::{
    collections::{BTreeMap, HashMap},
    hash::{DefaultHasher, Hash, Hasher},
};

use protocol::{job::Routing, Job, JobKey};
use rand::{rngs::StdRng, Rng, SeedableRng};

use super::selector::eligible;

/// An executor the router may send runs to.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutorEntry {
    /// Stable identity; the endpoint for executors given by URL.
    pub id: String,
    pub group: String,
    /// Base URL of its executor-protocol API.
    pub endpoint: String,
    /// Share of runs under the weighted policies.
    pub weight: u32,
    pub labels: BTreeMap<String, String>,
    pub handlers: Vec<String>,
    /// Most runs it takes at once (`--max-concurrent`); 0: no limit. The
    /// router never places more runs on it than that, counting the runs
    /// this leader has on it (`inflight`).
    pub max_concurrent: u32,
}

impl ExecutorEntry {
    /// Runs it can take on top of `inflight`; `u32::MAX - inflight` when
    /// unlimited, so the executors with a limit rank as busier.
    fn room(&self, inflight: u32) -> u32 {
        match self.max_concurrent {
            0 => u32::MAX - inflight.min(u32::MAX - 1),
            max => max.saturating_sub(inflight),
        }
    }
}

/// Where a run goes first, and where it fails over to, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub primary: String,
    pub fallbacks: Vec<String>,
}

pub struct RouterCore {
    /// Sorted by id so `first` and the fallback order are stable.
    executors: Vec<ExecutorEntry>,
    round_robin: HashMap<JobKey, usize>,
    /// Smooth weighted round robin: current weight per job and executor.
    smooth: HashMap<JobKey, HashMap<String, i64>>,
    /// Runs this node has in flight per endpoint.
    inflight: HashMap<String, u32>,
    rng: StdRng,
}

impl RouterCore {
    pub fn new(seed: u64) -> Self {
        Self {
            executors: Vec::new(),
            round_robin: HashMap::new(),
            smooth: HashMap::new(),
            inflight: HashMap::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub fn set_executors(&mut self, mut executors: Vec<ExecutorEntry>) {
        executors.sort_by(|a, b| a.id.cmp(&b.id));
        executors.dedup_by(|a, b| a.id == b.id);
        self.executors = executors;
    }

    pub fn executors(&self) -> &[ExecutorEntry] {
        &self.executors
    }

    pub fn inflight(&self, endpoint: &str) -> u32 {
        self.inflight.get(endpoint).copied().unwrap_or(0)
    }

    pub fn acquire(&mut self, endpoint: &str) {
        *self.inflight.entry(endpoint.to_string()).or_default() += 1;
    }

    /// Forgets every in-flight count (a change of leadership: the runs a
    /// leader counts are the active runs it takes over).
    pub fn forget_load(&mut self) {
        self.inflight.clear();
    }

    pub fn release(&mut self, endpoint: &str) {
        if let Some(n) = self.inflight.get_mut(endpoint) {
            *n = n.saturating_sub(1);
        }
    }

    /// Runs `entry` can take now.
    fn room_of(&self, entry: &ExecutorEntry) -> u32 {
        entry.room(self.inflight(&entry.endpoint))
    }

    /// Whether the executor at `endpoint` can take one more run now (an
    /// executor this node does not know has no room).
    pub fn has_room_at(&self, endpoint: &str) -> bool {
        self.executors
            .iter()
            .find(|e| e.endpoint == endpoint)
            .is_some_and(|e| self.room_of(e) > 0)
    }

    /// Why a run of `job` that found no route waits instead of failing:
    /// executors may take it, so none of them had room (routing skips only
    /// executors without room). `None` when no executor may take it.
    pub fn waiting_reason(&self, job: &Job) -> Option<String> {
        let candidates = self.candidates(job);
        if candidates.is_empty() {
            return None;
        }
        let limit: u64 = candidates.iter().map(|e| u64::from(e.max_concurrent)).sum();
        Some(format!(
            "waiting for room: the {} executor(s) of group {:?} that may take it are running their max_concurrent ({limit} runs in all)",
            candidates.len(),
            job.group().unwrap_or_default(),
        ))
    }

    /// Executors of the job's group that may take its runs (labels meeting
    /// its selector, its handler announced), in id order.
    pub fn candidates(&self, job: &Job) -> Vec<&ExecutorEntry> {
        matching(&self.executors, job)
    }

    /// Endpoints of every executor of the group (`broadcast`).
    pub fn broadcast(&self, job: &Job) -> Vec<String> {
        self.candidates(job)
            .into_iter()
            .map(|e| e.endpoint.clone())
            .collect()
    }

    /// Picks the executor for one shard of a job by its routing policy,
    /// avoiding `avoid` (a previous attempt's executor) when another exists.
    pub fn route(&mut self, job: &Job, shard: u32, avoid: Option<&str>) -> Option<Route> {
        // Borrowed, not cloned: routing runs once per run, thousands a second.
        let all = matching(&self.executors, job);
        // Only executors with room take the run; failover goes through all
        // that match (an executor that is full then answers busy).
        let open: Vec<&ExecutorEntry> = all
            .iter()
            .copied()
            .filter(|e| self.room_of(e) > 0)
            .collect();
        let preferred: Vec<&ExecutorEntry> = match avoid {
            Some(avoid) if open.len() > 1 => open
                .iter()
                .copied()
                .filter(|e| e.endpoint != avoid)
                .collect(),
            _ => open,
        };
        if preferred.is_empty() {
            return None;
        }
        let key = job.key();
        let pick = match job.routing {
            Routing::RoundRobin | Routing::Broadcast => {
                // Each job starts at its own place in the rotation, so many
                // jobs firing together spread over the group, not move in step.
                let cursor = self
                    .round_robin
                    .entry(key)
                    .or_insert_with_key(|key| rank(key, 0, "") as usize);
                let pick = *cursor % preferred.len();
                *cursor = cursor.wrapping_add(1);
                pick
            }
            Routing::Random => self.rng.random_range(0..preferred.len()),
            Routing::WeightedRoundRobin => smooth_weighted(&mut self.smooth, &key, &preferred),
            Routing::WeightedRandom => {
                let total: u64 = preferred.iter().map(|e| u64::from(e.weight.max(1))).sum();
                let mut ticket = self.rng.random_range(0..total);
                preferred
                    .iter()
                    .position(|e| {
                        let w = u64::from(e.weight.max(1));
                        if ticket < w {
                            true
                        } else {
                            ticket -= w;
                            false
                        }
                    })
                    .unwrap_or(0)
            }
            Routing::ConsistentHash => rendezvous(&key, shard, &preferred),
            // The most free room wins; ties go to the first in id order.
            Routing::LeastBusy => preferred
                .iter()
                .enumerate()
                .max_by_key(|(i, e)| (self.room_of(e), std::cmp::Reverse(*i)))
                .map(|(i, _)| i)
                .unwrap_or(0),
            Routing::First => 0,
        };
        let primary = preferred[pick].endpoint.clone();
        // Fail over through the rest of the group, starting after the pick.
        let start = all.iter().position(|e| e.endpoint == primary).unwrap_or(0);
        let fallbacks = (1..all.len())
            .map(|i| all[(start + i) % all.len()].endpoint.clone())
            .collect();
        Some(Route { primary, fallbacks })
    }

    /// Places every shard of a job at once, balanced and stable: the
    /// (shard, executor) pairs are taken in rendezvous-hash order, each
    /// executor filling up to an even share (the remainder going to those
    /// that rank it highest). The same executors keep the same shards while
    /// the group is unchanged, a change moves few, and a new executor gets
    /// its share from the next fire.
    ///
    /// Executors with a `max_concurrent` get no more shards than they have
    /// room for; shards nobody has room for are `None` (they wait).
    pub fn assign_shards(&mut self, job: &Job) -> Vec<Option<Route>> {
        let all: Vec<ExecutorEntry> = self
            .candidates(job)
            .into_iter()
            .filter(|e| self.room_of(e) > 0)
            .cloned()
            .collect();
        let shards = job.shards as usize;
        if all.is_empty() {
            return vec![None; shards];
        }
        let room: Vec<usize> = all
            .iter()
            .map(|e| usize::try_from(self.room_of(e)).unwrap_or(usize::MAX))
            .collect();
        let key = job.key();
        let ranks: Vec<Vec<u64>> = (0..job.shards)
            .map(|s| all.iter().map(|e| rank(&key, s, &e.id)).collect())
            .collect();
        let mut pairs: Vec<(usize, usize)> = (0..shards)
            .flat_map(|s| (0..all.len()).map(move |e| (s, e)))
            .collect();
        pairs.sort_by_key(|&(s, e)| std::cmp::Reverse(ranks[s][e]));
        let (base, extra) = (shards / all.len(), shards % all.len());
        let mut owner: Vec<Option<usize>> = vec![None; shards];
        let mut load = vec![0usize; all.len()];
        for &(s, e) in &pairs {
            if owner[s].is_none() && load[e] < base.min(room[e]) {
                owner[s] = Some(e);
                load[e] += 1;
            }
        }
        let mut over = 0;
        for &(s, e) in &pairs {
            if owner[s].is_none() && load[e] == base && load[e] < room[e] && over < extra {
                owner[s] = Some(e);
                load[e] += 1;
                over += 1;
            }
        }
        // What executors without room left over goes to those with room.
        for &(s, e) in &pairs {
            if owner[s].is_none() && load[e] < room[e] {
                owner[s] = Some(e);
                load[e] += 1;
            }
        }
        owner
            .into_iter()
            .enumerate()
            .map(|(s, pick)| {
                let pick = pick?;
                let mut others: Vec<usize> = (0..all.len()).filter(|&e| e != pick).collect();
                others.sort_by_key(|&e| std::cmp::Reverse(ranks[s][e]));
                let fallbacks = others
                    .into_iter()
                    .map(|e| all[e].endpoint.clone())
                    .collect();
                Some(Route {
                    primary: all[pick].endpoint.clone(),
                    fallbacks,
                })
            })
            .collect()
    }
}

/// The executors that may take the job's runs, in id order: every policy,
/// sharding and failover choose among these only. Takes the list, not the
/// core, so the policies' state stays free to change while it is held.
fn matching<'a>(executors: &'a [ExecutorEntry], job: &Job) -> Vec<&'a ExecutorEntry> {
    executors.iter().filter(|e| eligible(e, job)).collect()
}

/// Smooth weighted round robin (nginx's): each executor's current weight
/// grows by its weight, the highest is picked and loses the total.
fn smooth_weighted(
    smooth: &mut HashMap<JobKey, HashMap<String, i64>>,
    key: &JobKey,
    candidates: &[&ExecutorEntry],
) -> usize {
    let current = smooth.entry(key.clone()).or_default();
    let total: i64 = candidates.iter().map(|e| i64::from(e.weight.max(1))).sum();
    for e in candidates {
        *current.entry(e.id.clone()).or_default() += i64::from(e.weight.max(1));
    }
    let weight_of = |i: usize| current.get(&candidates[i].id).copied().unwrap_or(0);
    // Highest current weight wins; ties go to the first in id order.
    let best = (0..candidates.len())
        .max_by_key(|&i| (weight_of(i), std::cmp::Reverse(i)))
        .unwrap_or(0);
    if let Some(w) = current.get_mut(&candidates[best].id) {
        *w -= total;
    }
    best
}

/// Highest-random-weight hashing: the same (job, shard) keeps its executor
/// while it lives, and losing an executor moves only its own shards.
fn rendezvous(key: &JobKey, shard: u32, candidates: &[&ExecutorEntry]) -> usize {
    candidates
        .iter()
        .enumerate()
        .max_by_key(|(_, e)| rank(key, shard, &e.id))
        .map(|(i, _)| i)
        .unwrap_or(0)
}

/// The rendezvous weight of an executor for one shard of a job.
fn rank(key: &JobKey, shard: u32, executor: &str) -> u64 {
    let mut h = DefaultHasher::new();
    (key, shard, executor).hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn executor(id: &str, weight: u32) -> ExecutorEntry {
        ExecutorEntry {
            id: id.into(),
            group: "default".into(),
            endpoint: format!("http://{id}"),
            weight,
            labels: BTreeMap::new(),
            handlers: vec![],
            max_concurrent: 0,
        }
    }

    fn job(routing: &str) -> Job {
        protocol::validate::from_json(
            format!(r#"{{"id":"j","schedule":"@daily","routing":"{routing}","target":{{"type":"shell","command":"true"}}}}"#)
                .as_bytes(),
        )
        .unwrap()
    }

    fn picks(core: &mut RouterCore, routing: &str, n: usize) -> Vec<String> {
        let job = job(routing);
        (0..n)
            .map(|i| {
                core.route(&job, i as u32 % 3, None)
                    .unwrap()
                    .primary
                    .replace("http://", "")
            })
            .collect()
    }

    fn router(weights: &[(&str, u32)]) -> RouterCore {
        let mut core = RouterCore::new(7);
        core.set_executors(weights.iter().map(|(id, w)| executor(id, *w)).collect());
        core
    }

    #[test]
    fn round_robin_cycles_and_first_sticks() {
        let mut core = router(&[("b", 1), ("a", 1), ("c", 1)]);
        let got = picks(&mut core, "round_robin", 7);
        let order = ["a", "b", "c"];
        let start = order.iter().position(|id| *id == got[0]).unwrap();
        let expected: Vec<&str> = (0..7).map(|i| order[(start + i) % 3]).collect();
        assert_eq!(got, expected, "cycles in id order from its own start");
        assert_eq!(picks(&mut core, "first", 2), ["a", "a"]);
    }

    #[test]
    fn round_robin_jobs_firing_together_spread_over_the_group() {
        let mut core = router(&[("a", 1), ("b", 1)]);
        let mut on_a = 0;
        for i in 0..1000 {
            let mut job = job("round_robin");
            job.id = format!("job-{i}");
            if core.route(&job, 0, None).unwrap().primary == "http://a" {
                on_a += 1;
            }
        }
        assert!(
            (400..=600).contains(&on_a),
            "{on_a} of 1000 first runs on a"
        );
    }

    #[test]
    fn weighted_round_robin_follows_weights_smoothly() {
        let mut core = router(&[("a", 3), ("b", 1)]);
        let got = picks(&mut core, "weighted_round_robin", 8);
        assert_eq!(got.iter().filter(|p| *p == "a").count(), 6);
        assert_ne!(
            got[..3],
            ["a", "a", "a"],
            "smooth: b is not starved for a whole round"
        );
    }

    #[test]
    fn weighted_random_roughly_follows_weights() {
        let mut core = router(&[("a", 9), ("b", 1)]);
        let got = picks(&mut core, "weighted_random", 1000);
        let a = got.iter().filter(|p| *p == "a").count();
        assert!((800..=980).contains(&a), "a picked {a} of 1000");
    }

    #[test]
    fn consistent_hash_is_stable_and_moves_only_lost_shards() {
        let mut core = router(&[("a", 1), ("b", 1), ("c", 1)]);
        let job = job("consistent_hash");
        let before: Vec<String> = (0..30)
            .map(|s| core.route(&job, s, None).unwrap().primary)
            .collect();
        let again: Vec<String> = (0..30)
            .map(|s| core.route(&job, s, None).unwrap().primary)
            .collect();
        assert_eq!(before, again);
        core.set_executors(vec![executor("a", 1), executor("b", 1)]);
        for (s, prev) in before.iter().enumerate() {
            let now = core.route(&job, s as u32, None).unwrap().primary;
            if prev != "http://c" {
                assert_eq!(&now, prev, "shard {s} moved although its executor stayed");
            }
        }
    }

    #[test]
    fn shards_spread_evenly_and_stay_put() {
        let mut sharded = job("round_robin");
        sharded.shards = 6;
        let mut core = router(&[("a", 1), ("b", 1), ("c", 1)]);
        let place = |core: &mut RouterCore| -> Vec<String> {
            core.assign_shards(&sharded)
                .into_iter()
                .map(|r| r.unwrap().primary)
                .collect()
        };
        let first = place(&mut core);
        for e in ["http://a", "http://b", "http://c"] {
            assert_eq!(first.iter().filter(|p| *p == e).count(), 2, "{first:?}");
        }
        assert_eq!(
            place(&mut core),
            first,
            "stable while the group is unchanged"
        );
        core.set_executors(vec![
            executor("a", 1),
            executor("b", 1),
            executor("c", 1),
            executor("d", 1),
        ]);
        let grown = place(&mut core);
        let moved = first.iter().zip(&grown).filter(|(a, b)| a != b).count();
        assert!(
            moved <= 3,
            "a fourth executor moves few shards: {first:?} -> {grown:?}"
        );
        assert!(
            grown.iter().any(|p| p == "http://d"),
            "the new executor gets shards: {grown:?}"
        );
    }

    #[test]
    fn least_busy_prefers_idle_and_fallbacks_cover_the_group() {
        let mut core = router(&[("a", 1), ("b", 1), ("c", 1)]);
        core.acquire("http://a");
        core.acquire("http://b");
        let route = core.route(&job("least_busy"), 0, None).unwrap();
        assert_eq!(route.primary, "http://c");
        assert_eq!(route.fallbacks, ["http://a", "http://b"]);
    }

    /// a and b are in zone eu-1, c in us-1; only c has the handler.
    fn zoned() -> RouterCore {
        let mut core = RouterCore::new(7);
        let mut entries: Vec<ExecutorEntry> = ["a", "b", "c"]
            .iter()
            .map(|id| executor(id, 1 + u32::from(*id == "b")))
            .collect();
        for e in &mut entries[..2] {
            e.labels.insert("zone".into(), "eu-1".into());
        }
        entries[2].labels.insert("zone".into(), "us-1".into());
        entries[2].handlers = vec!["report".into()];
        core.set_executors(entries);
        core
    }

    fn selected(routing: &str, selector: &str) -> Job {
        protocol::validate::from_json(
            format!(r#"{{"id":"j","schedule":"@daily","routing":"{routing}","shards":4,"target":{{"type":"shell","command":"true"}},"selector":{selector}}}"#)
                .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn every_policy_routes_among_matching_executors_only() {
        let matching = ["http://a", "http://b"];
        for routing in Routing::ALL.map(Routing::as_str) {
            for selector in [r#"{"zone":"eu-1"}"#, r#"{"zone":{"in":["eu-1","ap-1"]}}"#] {
                let mut core = zoned();
                let job = selected(routing, selector);
                let mut seen = std::collections::BTreeSet::new();
                for i in 0..50 {
                    let route = core.route(&job, i % 4, None).unwrap();
                    core.acquire(&route.primary);
                    assert!(matching.contains(&route.primary.as_str()), "{routing}");
                    let mut fallbacks = route.fallbacks.clone();
                    fallbacks.sort();
                    let other: Vec<&str> = matching
                        .iter()
                        .copied()
                        .filter(|e| *e != route.primary)
                        .collect();
                    assert_eq!(fallbacks, other, "{routing}: fails over among matching");
                    seen.insert(route.primary);
                }
                let retry = core.route(&job, 0, Some("http://a")).unwrap();
                assert_eq!(
                    retry.primary, "http://b",
                    "{routing}: avoids among matching"
                );
                if !matches!(routing, "first" | "consistent_hash" | "broadcast") {
                    assert_eq!(seen.len(), 2, "{routing} uses both matching executors");
                }
                for route in core.assign_shards(&job) {
                    let route = route.unwrap();
                    assert!(matching.contains(&route.primary.as_str()), "{routing}");
                    assert!(route
                        .fallbacks
                        .iter()
                        .all(|e| matching.contains(&e.as_str())));
                }
                assert_eq!(core.broadcast(&job), matching, "{routing}");
            }
        }
    }

    #[test]
    fn nothing_matching_routes_nowhere() {
        let mut core = zoned();
        let job = selected("round_robin", r#"{"zone":"ap-1"}"#);
        assert!(core.route(&job, 0, None).is_none());
        assert!(core.assign_shards(&job).iter().all(Option::is_none));
        assert!(core.broadcast(&job).is_empty());
    }

    #[test]
    fn a_handler_job_goes_only_where_the_handler_is() {
        let mut core = zoned();
        let job: Job = protocol::validate::from_json(
            br#"{"id":"h","schedule":"@daily","target":{"type":"executor","handler":"report"}}"#,
        )
        .unwrap();
        for _ in 0..10 {
            let route = core.route(&job, 0, Some("http://c")).unwrap();
            assert_eq!(route.primary, "http://c");
            assert!(route.fallbacks.is_empty());
        }
    }

    #[test]
    fn avoid_skips_the_failed_executor_when_possible() {
        let mut core = router(&[("a", 1), ("b", 1)]);
        assert_eq!(
            core.route(&job("first"), 0, Some("http://a"))
                .unwrap()
                .primary,
            "http://b"
        );
        let mut single = router(&[("a", 1)]);
        assert_eq!(
            single
                .route(&job("first"), 0, Some("http://a"))
                .unwrap()
                .primary,
            "http://a"
        );
        assert!(router(&[]).route(&job("first"), 0, None).is_none());
    }

    fn limited(limits: &[(&str, u32)]) -> RouterCore {
        let mut core = RouterCore::new(7);
        core.set_executors(
            limits
                .iter()
                .map(|(id, max)| ExecutorEntry {
                    max_concurrent: *max,
                    ..executor(id, 1)
                })
                .collect(),
        );
        core
    }

    #[test]
    fn no_policy_picks_an_executor_without_room() {
        let unicast = Routing::ALL
            .into_iter()
            .filter(|r| *r != Routing::Broadcast);
        for routing in unicast.map(Routing::as_str) {
            let mut core = limited(&[("a", 1), ("b", 2), ("c", 0)]);
            core.acquire("http://a");
            core.acquire("http://b");
            core.acquire("http://b");
            let job = job(routing);
            for shard in 0..20 {
                let route = core.route(&job, shard, None).unwrap();
                assert_eq!(
                    route.primary, "http://c",
                    "{routing} picked a full executor"
                );
            }
            core.acquire("http://c");
            let mut full = limited(&[("a", 1), ("b", 1)]);
            full.acquire("http://a");
            full.acquire("http://b");
            assert!(full.route(&job, 0, None).is_none(), "{routing}");
            assert!(full
                .waiting_reason(&job)
                .unwrap()
                .contains("max_concurrent"));
        }
    }

    #[test]
    fn least_busy_goes_where_the_most_room_is() {
        let mut core = limited(&[("a", 4), ("b", 10), ("c", 3)]);
        core.acquire("http://b");
        core.acquire("http://b");
        // Room: a 4, b 8, c 3.
        assert_eq!(picks(&mut core, "least_busy", 1), ["b"]);
        for _ in 0..5 {
            core.acquire("http://b");
        }
        // Room: a 4, b 3, c 3.
        assert_eq!(picks(&mut core, "least_busy", 1), ["a"]);
    }

    #[test]
    fn shards_go_only_where_there_is_room() {
        let mut sharded = job("round_robin");
        sharded.shards = 10;
        let mut core = limited(&[("a", 2), ("b", 3), ("c", 0)]);
        core.acquire("http://c");
        let routes = core.assign_shards(&sharded);
        let count = |id: &str| {
            routes
                .iter()
                .flatten()
                .filter(|r| r.primary == format!("http://{id}"))
                .count()
        };
        assert_eq!((count("a"), count("b"), count("c")), (2, 3, 5));
        let mut tight = limited(&[("a", 2), ("b", 1)]);
        tight.acquire("http://b");
        let routes = tight.assign_shards(&sharded);
        assert_eq!(routes.iter().flatten().count(), 2, "room for two only");
        assert!(routes.iter().flatten().all(|r| r.primary == "http://a"));
    }
}
