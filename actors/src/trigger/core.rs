//! Which slots are due: one ordered set of (next fire time, job) for all
//! jobs, and the misfire policy for slots missed while nobody fired.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use protocol::{
    job::{Concurrency, Misfire},
    schedule::{parse_timezone, Schedule},
    Job, JobKey, TriggerKind,
};

use crate::fire::Fire;

struct Entry {
    /// Shared by every job with the same expression (see `schedules`).
    schedule: Arc<Schedule>,
    tz: Tz,
    /// The next slot.
    next: Option<DateTime<Utc>>,
    /// The slot after it, computed once (a burst needs the gap).
    following: Option<DateTime<Utc>>,
    /// How long before its slot a fire is handed over.
    lead: Duration,
}

impl Entry {
    fn wake_at(&self) -> Option<DateTime<Utc>> {
        self.next.map(|next| next - self.lead)
    }
}

pub struct TriggerCore {
    /// The timer structure: every tracked job's next wake (its next slot
    /// less its lead), earliest first.
    queue: BTreeSet<(DateTime<Utc>, JobKey)>,
    entries: HashMap<JobKey, Entry>,
    /// Most missed slots listed one by one per job at catch-up; older ones
    /// are summed up in the oldest listed slot's reason.
    catch_up_limit: usize,
    /// How long before its slot the fire of a job with `concurrency =
    /// allow` is handed over, so its run is committed by the slot and the
    /// dispatcher sends it on time. Jobs under another concurrency policy
    /// fire at the slot: their policy must see the runs active then.
    fire_ahead: Duration,
    /// How many `concurrency = allow` jobs have their next slot at each
    /// instant: a slot too large to be created within `fire_ahead` is
    /// handed over earlier (see [`TriggerCore::with_bursts`]).
    slot_fires: BTreeMap<DateTime<Utc>, usize>,
    /// Large slots whose handing over began, and when: the rest of such a
    /// slot goes as soon as there is room, not when its smaller remainder
    /// would have been due on its own.
    bursts_begun: BTreeMap<DateTime<Utc>, DateTime<Utc>>,
    /// Parsed schedules by expression. A parsed cron expression takes
    /// about 5 KB, and most jobs of a cluster share a few expressions
    /// (`0 * * * *`), so 100,000 jobs hold a handful, not 500 MB.
    schedules: HashMap<String, Arc<Schedule>>,
    /// Runs a second the log is counted on to create: a slot of `n` fires
    /// is handed over `n / burst_rate` seconds before it, if that is more
    /// than `fire_ahead`. Zero turns this off.
    burst_rate: usize,
    /// The earliest a slot is ever handed over.
    max_lead: Duration,
}

impl TriggerCore {
    pub fn new(catch_up_limit: usize) -> Self {
        Self {
            queue: BTreeSet::new(),
            entries: HashMap::new(),
            catch_up_limit: catch_up_limit.max(1),
            fire_ahead: Duration::zero(),
            slot_fires: BTreeMap::new(),
            bursts_begun: BTreeMap::new(),
            schedules: HashMap::new(),
            burst_rate: 0,
            max_lead: Duration::zero(),
        }
    }

    /// Hands the fires of a large slot over early enough for the log to
    /// create all its runs before it: `fires / rate` seconds ahead, at
    /// most `max_lead` (the top of the minute when every job of a company
    /// fires at once). Only `concurrency = allow` jobs: others fire at the
    /// slot. Their runs wait in the dispatcher and leave at the slot.
    pub fn with_bursts(mut self, rate: usize, max_lead: std::time::Duration) -> Self {
        self.burst_rate = rate;
        self.max_lead = Duration::from_std(max_lead).unwrap_or_else(|_| Duration::zero());
        self
    }

    /// Hands fires of `concurrency = allow` jobs over `fire_ahead` before
    /// their slots.
    pub fn with_fire_ahead(mut self, fire_ahead: std::time::Duration) -> Self {
        self.fire_ahead = Duration::from_std(fire_ahead).unwrap_or_else(|_| Duration::zero());
        self
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn clear(&mut self) {
        self.queue.clear();
        self.entries.clear();
        self.slot_fires.clear();
        self.bursts_begun.clear();
        self.schedules.clear();
    }

    /// The parsed `expression`, shared with the jobs that have it.
    fn parse_schedule(&mut self, expression: &str) -> Result<Arc<Schedule>, String> {
        if let Some(schedule) = self.schedules.get(expression) {
            return Ok(schedule.clone());
        }
        let schedule = Arc::new(Schedule::parse(expression).map_err(|e| e.to_string())?);
        self.schedules
            .insert(expression.to_string(), schedule.clone());
        Ok(schedule)
    }

    /// Puts a tracked job's next fire in the queue (and its slot's count).
    fn enqueue(&mut self, key: &JobKey) {
        let Some(entry) = self.entries.get(key) else {
            return;
        };
        if let Some(wake) = entry.wake_at() {
            self.queue.insert((wake, key.clone()));
        }
        if let (Some(slot), true) = (entry.next, self.bursty(entry)) {
            *self.slot_fires.entry(slot).or_default() += 1;
        }
    }

    /// Whether the job's next fire may be handed over as part of a burst:
    /// a `concurrency = allow` job whose slots lie at least `max_lead`
    /// apart, so a fire handed early never runs into the job's next one.
    /// Jobs that fire more often are a steady load, not a burst.
    fn bursty(&self, entry: &Entry) -> bool {
        let gap_ok = match (entry.next, entry.following) {
            (Some(next), Some(following)) => following - next >= self.max_lead,
            (Some(_), None) => true,
            (None, _) => false,
        };
        self.burst_rate > 0 && entry.lead > Duration::zero() && gap_ok
    }

    /// Takes a tracked job's next fire out of the queue (and its count).
    fn dequeue(&mut self, key: &JobKey) {
        let Some(entry) = self.entries.get(key) else {
            return;
        };
        if let Some(wake) = entry.wake_at() {
            self.queue.remove(&(wake, key.clone()));
        }
        if let (Some(slot), true) = (entry.next, self.bursty(entry)) {
            if let Some(count) = self.slot_fires.get_mut(&slot) {
                *count -= 1;
                if *count == 0 {
                    self.slot_fires.remove(&slot);
                    self.bursts_begun.remove(&slot);
                }
            }
        }
    }

    /// How long before a slot of `fires` fires it is handed over.
    fn burst_lead(&self, fires: usize) -> Duration {
        if self.burst_rate == 0 {
            return self.fire_ahead;
        }
        let rate = i64::try_from(self.burst_rate).unwrap_or(i64::MAX);
        let fires = i64::try_from(fires).unwrap_or(i64::MAX);
        let needed = Duration::milliseconds(fires.saturating_mul(1000) / rate);
        needed.min(self.max_lead).max(self.fire_ahead)
    }

    /// The job's fire for its next slot; schedules the one after.
    fn take_fire(&mut self, key: JobKey) -> Option<Fire> {
        self.dequeue(&key);
        let entry = self.entries.get_mut(&key)?;
        let slot = entry.next?;
        entry.next = entry.following;
        entry.following = entry
            .next
            .and_then(|next| entry.schedule.next_after(next, entry.tz));
        self.enqueue(&key);
        Some(Fire::new(key, slot, TriggerKind::Schedule))
    }

    /// Tracks (or re-tracks after a change) a job from `now` on. A fire
    /// that was due but not yet taken is kept. Disabled jobs and schedules
    /// that never fire are not tracked.
    pub fn track(&mut self, job: &Job, now: DateTime<Utc>) {
        let key = job.key();
        let pending = self
            .entries
            .get(&key)
            .filter(|e| e.wake_at().is_some_and(|wake| wake <= now))
            .and_then(|e| e.next);
        self.untrack(&key);
        if !job.enabled {
            return;
        }
        let (schedule, tz) = match (
            self.parse_schedule(&job.schedule),
            parse_timezone(&job.timezone).map_err(|e| e.to_string()),
        ) {
            (Ok(s), Ok(tz)) => (s, tz),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(job = %key, error = %e, "stored job has an invalid schedule; not firing it");
                return;
            }
        };
        let lead = if job.concurrency == Concurrency::Allow {
            self.fire_ahead
        } else {
            Duration::zero()
        };
        let next = pending.or_else(|| schedule.next_after(now, tz));
        let following = next.and_then(|next| schedule.next_after(next, tz));
        let entry = Entry {
            schedule,
            tz,
            next,
            following,
            lead,
        };
        self.entries.insert(key.clone(), entry);
        self.enqueue(&key);
    }

    pub fn untrack(&mut self, key: &JobKey) {
        self.dequeue(key);
        if let Some(entry) = self.entries.remove(key) {
            // The last job with this expression is gone: so is its parse.
            if Arc::strong_count(&entry.schedule) == 2 {
                self.schedules
                    .retain(|_, s| !Arc::ptr_eq(s, &entry.schedule));
            }
        }
    }

    /// When the earliest fire is to be handed over.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        let first = self.queue.first().map(|(t, _)| *t)?;
        let burst = self
            .slot_fires
            .range(..=first + self.max_lead + self.fire_ahead)
            .map(|(slot, fires)| *slot - self.burst_lead(*fires))
            .chain(self.bursts_begun.values().copied())
            .min();
        Some(burst.map_or(first, |burst| burst.min(first)))
    }

    /// The slot of the earliest fire due at `now` but not taken, once that
    /// slot has passed: since when the trigger runs late. A fire handed over
    /// ahead of its slot (or a burst begun early) is not late yet.
    pub fn overdue_since(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let (wake, key) = self.queue.first()?;
        if *wake > now {
            return None;
        }
        self.entries.get(key)?.next.filter(|slot| *slot <= now)
    }

    /// Takes every fire to be handed over at `now` (each for its slot,
    /// which may lie up to the lead ahead) and schedules each job's next one.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<Fire> {
        self.due_at_most(now, usize::MAX)
    }

    /// As `due`, but takes at most `max` fires, earliest wake first. The
    /// others stay due: a job whose fire is not taken keeps its slot and
    /// fires later, late but not lost (the backlog had no room). Then, room
    /// left, the fires of large slots whose burst lead has come.
    pub fn due_at_most(&mut self, now: DateTime<Utc>, max: usize) -> Vec<Fire> {
        let mut fires = Vec::new();
        while let Some((wake, key)) = self.queue.first() {
            if *wake > now || fires.len() >= max {
                break;
            }
            let (wake, key) = (*wake, key.clone());
            match self.take_fire(key.clone()) {
                Some(fire) => fires.push(fire),
                // A queue entry of no tracked slot: nothing to take.
                None => {
                    self.queue.remove(&(wake, key));
                }
            }
        }
        if self.burst_rate == 0 || fires.len() >= max {
            return fires;
        }
        let large: Vec<DateTime<Utc>> = self
            .slot_fires
            .range(..=now + self.max_lead)
            .filter(|(slot, count)| {
                self.bursts_begun.contains_key(*slot) || **slot - self.burst_lead(**count) <= now
            })
            .map(|(slot, _)| *slot)
            .collect();
        for slot in large {
            // A slot's `allow` jobs all wake `fire_ahead` before it.
            let wake = slot - self.fire_ahead;
            let keys: Vec<JobKey> = self
                .queue
                .range((wake, JobKey::new("", ""))..)
                .take_while(|(at, _)| *at == wake)
                .map(|(_, key)| key)
                .filter(|key| {
                    self.entries
                        .get(*key)
                        .is_some_and(|e| e.next == Some(slot) && self.bursty(e))
                })
                .take(max - fires.len())
                .cloned()
                .collect();
            if !keys.is_empty() {
                self.bursts_begun.entry(slot).or_insert(now);
            }
            fires.extend(keys.into_iter().filter_map(|key| self.take_fire(key)));
            if fires.len() >= max {
                break;
            }
        }
        fires
    }

    /// Accounts for the slots of `job` in `(cursor, now]`, which passed while
    /// no scheduler fired, following the job's misfire policy; then tracks
    /// the job from `now`. Every missed slot yields a fire or a skip.
    pub fn catch_up(&mut self, job: &Job, cursor: DateTime<Utc>, now: DateTime<Utc>) -> Vec<Fire> {
        self.track(job, now);
        let key = job.key();
        let Some(entry) = self.entries.get(&key) else {
            return Vec::new();
        };
        let (slots, older) =
            entry
                .schedule
                .slots_between(cursor, now, entry.tz, self.catch_up_limit);
        let threshold = Duration::from_std(job.misfire.threshold.0).unwrap_or(Duration::MAX);
        let newest_fresh = slots.iter().rev().find(|s| now - **s <= threshold).copied();
        let mut fires: Vec<Fire> = slots
            .iter()
            .map(|&slot| {
                let skip = |reason: String| Fire::skipped(key.clone(), slot, TriggerKind::Misfire, reason);
                if now - slot > threshold {
                    return skip(format!("missed while no scheduler could fire, by more than the misfire threshold ({})", job.misfire.threshold));
                }
                match job.misfire.policy {
                    Misfire::FireAll => Fire::new(key.clone(), slot, TriggerKind::Misfire),
                    Misfire::FireOnce if Some(slot) == newest_fresh => Fire::new(key.clone(), slot, TriggerKind::Misfire),
                    Misfire::FireOnce => skip(format!(
                        "missed while no scheduler could fire; fire_once ran the slot of {} instead",
                        newest_fresh.map(|t| t.to_rfc3339()).unwrap_or_default()
                    )),
                    Misfire::Skip => skip("missed while no scheduler could fire; misfire policy is skip".into()),
                }
            })
            .collect();
        if older > 0 {
            let note = format!(
                " ({older} older missed slots since {} are not listed one by one)",
                cursor.to_rfc3339()
            );
            tracing::warn!(job = %key, older, "catch-up listed only the newest missed slots");
            if let Some(reason) = fires.first_mut().and_then(|f| f.skip_reason.as_mut()) {
                reason.push_str(&note);
            }
        }
        fires
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn job(id: &str, schedule: &str, misfire: &str) -> Job {
        protocol::validate::from_json(
            format!(
                r#"{{"id":"{id}","schedule":"{schedule}","misfire":{{"policy":"{misfire}","threshold":"1m"}},"target":{{"type":"shell","command":"true"}}}}"#
            )
            .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn allow_jobs_are_handed_over_ahead_of_their_slot_and_others_at_it() {
        let mut core = TriggerCore::new(100).with_fire_ahead(std::time::Duration::from_millis(500));
        let now = t("2026-01-01T00:00:00.100Z");
        core.track(&job("ahead", "@every 1s", "fire_once"), now);
        let mut forbid = job("at-slot", "@every 1s", "fire_once");
        forbid.concurrency = Concurrency::Forbid;
        core.track(&forbid, now);
        assert_eq!(core.next_wake(), Some(t("2026-01-01T00:00:00.500Z")));
        let slots = |fires: Vec<Fire>| -> Vec<(String, DateTime<Utc>)> {
            fires
                .into_iter()
                .map(|f| (f.job.id, f.scheduled_at))
                .collect()
        };
        assert_eq!(
            slots(core.due(t("2026-01-01T00:00:00.500Z"))),
            [("ahead".to_string(), t("2026-01-01T00:00:01Z"))]
        );
        assert_eq!(
            slots(core.due(t("2026-01-01T00:00:01Z"))),
            [("at-slot".to_string(), t("2026-01-01T00:00:01Z"))]
        );
        assert_eq!(core.next_wake(), Some(t("2026-01-01T00:00:01.500Z")));
        // A fire due but not yet taken survives re-tracking.
        core.track(
            &job("ahead", "@every 1s", "fire_once"),
            t("2026-01-01T00:00:01.600Z"),
        );
        assert_eq!(
            slots(core.due(t("2026-01-01T00:00:01.600Z"))),
            [("ahead".to_string(), t("2026-01-01T00:00:02Z"))]
        );
    }

    #[test]
    fn due_returns_each_slot_once_in_time_order() {
        let mut core = TriggerCore::new(100);
        let now = t("2026-01-01T00:00:00.200Z");
        core.track(&job("a", "@every 1s", "fire_once"), now);
        core.track(&job("b", "@every 2s", "fire_once"), now);
        assert_eq!(core.next_wake(), Some(t("2026-01-01T00:00:01Z")));
        assert!(core.due(now).is_empty());
        let fires = core.due(t("2026-01-01T00:00:02Z"));
        let got: Vec<(String, i64)> = fires
            .iter()
            .map(|f| (f.job.id.clone(), f.scheduled_at.timestamp()))
            .collect();
        let base = t("2026-01-01T00:00:00Z").timestamp();
        assert_eq!(
            got,
            vec![
                ("a".into(), base + 1),
                ("a".into(), base + 2),
                ("b".into(), base + 2)
            ]
        );
        assert!(core.due(t("2026-01-01T00:00:02Z")).is_empty());
    }

    #[test]
    fn paused_and_removed_jobs_stop_firing() {
        let mut core = TriggerCore::new(100);
        let now = t("2026-01-01T00:00:00Z");
        let mut a = job("a", "@every 1s", "fire_once");
        core.track(&a, now);
        a.enabled = false;
        core.track(&a, now);
        assert!(core.due(t("2026-01-01T00:00:05Z")).is_empty());
        core.track(&job("b", "@every 1s", "fire_once"), now);
        core.untrack(&JobKey::new("default", "b"));
        assert!(core.due(t("2026-01-01T00:00:05Z")).is_empty());
        assert!(core.is_empty());
    }

    fn outcome(fires: &[Fire]) -> Vec<(i64, bool)> {
        fires
            .iter()
            .map(|f| (f.scheduled_at.timestamp() % 100, f.skip_reason.is_none()))
            .collect()
    }

    #[test]
    fn fire_once_runs_the_newest_missed_slot_and_skips_the_rest() {
        let mut core = TriggerCore::new(100);
        let fires = core.catch_up(
            &job("a", "@every 1s", "fire_once"),
            t("2026-01-01T00:00:00Z"),
            t("2026-01-01T00:00:03.5Z"),
        );
        assert_eq!(outcome(&fires), vec![(1, false), (2, false), (3, true)]);
        assert!(fires.iter().all(|f| f.trigger == TriggerKind::Misfire));
    }

    #[test]
    fn fire_all_and_skip() {
        let mut core = TriggerCore::new(100);
        let (from, to) = (t("2026-01-01T00:00:00Z"), t("2026-01-01T00:00:03.5Z"));
        assert_eq!(
            outcome(&core.catch_up(&job("a", "@every 1s", "fire_all"), from, to)),
            vec![(1, true), (2, true), (3, true)]
        );
        assert_eq!(
            outcome(&core.catch_up(&job("b", "@every 1s", "skip"), from, to)),
            vec![(1, false), (2, false), (3, false)]
        );
    }

    #[test]
    fn slots_older_than_the_threshold_are_skipped_whatever_the_policy() {
        let mut core = TriggerCore::new(1000);
        let fires = core.catch_up(
            &job("a", "@every 30s", "fire_all"),
            t("2026-01-01T00:00:00Z"),
            t("2026-01-01T00:02:00Z"),
        );
        // threshold 1m: 00:30 is 90s old (skipped); 01:00, 01:30, 02:00 fire.
        let fired: Vec<bool> = fires.iter().map(|f| f.skip_reason.is_none()).collect();
        assert_eq!(fired, vec![false, true, true, true]);
    }

    #[test]
    fn catch_up_beyond_the_limit_mentions_the_older_slots() {
        let mut core = TriggerCore::new(2);
        let fires = core.catch_up(
            &job("a", "@every 1s", "skip"),
            t("2026-01-01T00:00:00Z"),
            t("2026-01-01T00:00:10Z"),
        );
        assert_eq!(fires.len(), 2);
        assert!(fires[0]
            .skip_reason
            .as_deref()
            .unwrap()
            .contains("8 older missed slots"));
    }

    #[test]
    fn fires_not_taken_for_want_of_room_stay_due_and_none_is_skipped() {
        let mut core = TriggerCore::new(100);
        let start = t("2026-01-01T00:00:00.200Z");
        for id in ["a", "b", "c"] {
            core.track(&job(id, "@every 1s", "fire_once"), start);
        }
        // Three seconds pass while the backlog has room for two fires at a time.
        let now = t("2026-01-01T00:00:03.500Z");
        let mut taken = Vec::new();
        loop {
            let fires = core.due_at_most(now, 2);
            assert!(fires.len() <= 2);
            if fires.is_empty() {
                break;
            }
            taken.extend(
                fires
                    .into_iter()
                    .map(|f| (f.scheduled_at.timestamp(), f.job.id)),
            );
        }
        let base = t("2026-01-01T00:00:00Z").timestamp();
        let mut expected: Vec<(i64, String)> = (1..=3)
            .flat_map(|s| ["a", "b", "c"].map(|id| (base + s, id.to_string())))
            .collect();
        let mut sorted = taken.clone();
        sorted.sort();
        expected.sort();
        assert_eq!(sorted, expected, "every slot of every job once");
        assert!(
            taken.windows(2).all(|w| w[0].0 <= w[1].0),
            "earliest slots first: {taken:?}"
        );
    }

    #[test]
    fn a_large_slot_is_handed_over_early_enough_to_be_created_before_it() {
        // The log creates 1,000 runs a second; fires go 500 ms ahead.
        let mut core = TriggerCore::new(100)
            .with_fire_ahead(std::time::Duration::from_millis(500))
            .with_bursts(1000, std::time::Duration::from_secs(30));
        let start = t("2026-01-01T00:00:00.100Z");
        for i in 0..3000 {
            core.track(&job(&format!("m{i}"), "0 * * * * *", "fire_once"), start);
        }
        let mut forbid = job("at-slot", "0 * * * * *", "fire_once");
        forbid.concurrency = Concurrency::Forbid;
        core.track(&forbid, start);
        let mut steady = job("steady", "@every 1s", "fire_once");
        steady.concurrency = Concurrency::Allow;
        core.track(&steady, start);
        let minute = t("2026-01-01T00:01:00Z");
        // 3,000 fires need 3 s: the burst is handed over from 00:00:57 on.
        let early = core.next_wake().expect("a wake");
        assert!(
            early <= t("2026-01-01T00:00:01Z"),
            "the steady job wakes first"
        );
        let mut now = t("2026-01-01T00:00:56.900Z");
        let before: Vec<Fire> = core.due(now);
        assert!(
            before.iter().all(|f| f.job.id == "steady"),
            "nothing of the burst before its lead"
        );
        now = t("2026-01-01T00:00:57Z");
        let burst = core.due_at_most(now, 2500);
        let of_minute = burst.iter().filter(|f| f.scheduled_at == minute).count();
        assert_eq!(of_minute, 2500, "as much of the burst as there is room for");
        // The rest of a burst that began goes as soon as there is room.
        assert!(core.next_wake().is_some_and(|w| w <= now));
        let rest = core.due(t("2026-01-01T00:00:57.300Z"));
        let of_minute_rest = rest
            .iter()
            .filter(|f| f.scheduled_at == minute && f.job.id.starts_with('m'))
            .count();
        assert_eq!(of_minute_rest, 500);
        assert!(
            rest.iter()
                .chain(burst.iter())
                .all(|f| f.job.id != "at-slot"),
            "a job under another concurrency policy fires at its slot"
        );
        now = t("2026-01-01T00:00:59.500Z");
        assert!(core.due(now).iter().all(|f| f.job.id == "steady"));
        // The next minute's burst is not handed over before its own lead.
        assert!(core.next_wake().is_some_and(|w| w > now));
        let at_slot = core.due(minute);
        assert!(at_slot.iter().any(|f| f.job.id == "at-slot"));
        assert!(at_slot
            .iter()
            .all(|f| f.job.id == "at-slot" || f.job.id == "steady"));
        assert_eq!(
            core.next_wake().map(|w| w >= t("2026-01-01T00:01:00.500Z")),
            Some(true)
        );
    }

    #[test]
    fn jobs_with_one_expression_share_one_parsed_schedule_while_any_is_tracked() {
        let mut core = TriggerCore::new(100);
        let now = t("2026-01-01T00:00:00.200Z");
        core.track(&job("a", "0 * * * * *", "fire_once"), now);
        core.track(&job("b", "0 * * * * *", "fire_once"), now);
        core.track(&job("c", "@every 1s", "fire_once"), now);
        assert_eq!(core.schedules.len(), 2);
        let a = &core.entries[&JobKey::new("default", "a")].schedule;
        let b = &core.entries[&JobKey::new("default", "b")].schedule;
        assert!(Arc::ptr_eq(a, b));
        core.untrack(&JobKey::new("default", "a"));
        assert_eq!(core.schedules.len(), 2, "b still has it");
        core.untrack(&JobKey::new("default", "b"));
        assert_eq!(core.schedules.len(), 1);
        // A changed job parses its new expression and lets go of the old.
        core.track(&job("c", "*/5 * * * * *", "fire_once"), now);
        assert_eq!(core.schedules.len(), 1);
        assert!(core.schedules.contains_key("*/5 * * * * *"));
    }

    #[test]
    fn a_fire_held_back_is_late_only_once_its_slot_has_passed() {
        let mut core = TriggerCore::new(100).with_fire_ahead(std::time::Duration::from_millis(500));
        core.track(
            &job("a", "@every 1s", "fire_once"),
            t("2026-01-01T00:00:00.100Z"),
        );
        // Its wake (500 ms ahead) has come, its slot not: held back, not late.
        assert_eq!(core.overdue_since(t("2026-01-01T00:00:00.700Z")), None);
        assert_eq!(core.overdue_since(t("2026-01-01T00:00:00.300Z")), None);
        // Still not taken two seconds after its slot.
        assert_eq!(
            core.overdue_since(t("2026-01-01T00:00:03Z")),
            Some(t("2026-01-01T00:00:01Z"))
        );
        core.due(t("2026-01-01T00:00:03Z"));
        assert_eq!(core.overdue_since(t("2026-01-01T00:00:03Z")), None);
    }
}
