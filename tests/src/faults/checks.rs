//! The invariants a fault scenario checks, comparing the ledger (what ran)
//! with the run records of the admin API. Each check returns its
//! violations as messages naming runs and slots, so one failing test
//! reports all of them at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use super::ledger::{parse_slot, slot_text, Ledger};

/// A run record as the checks need it.
#[derive(Clone, Debug)]
pub struct Record {
    pub id: String,
    pub job: String,
    pub slot: i64,
    pub shard: u32,
    pub trigger: String,
    pub status: String,
    pub executor: String,
    pub error: String,
    pub retry_of: String,
}

impl Record {
    pub fn from_json(run: &Value) -> Option<Self> {
        let text = |key: &str| run[key].as_str().unwrap_or_default().to_string();
        Some(Self {
            id: run["id"].as_str()?.to_string(),
            job: text("job_id"),
            slot: parse_slot(run["scheduled_at"].as_str()?)?,
            shard: run["shard"]["index"].as_u64().unwrap_or_default() as u32,
            trigger: text("trigger"),
            status: text("status"),
            executor: text("executor"),
            error: text("error"),
            retry_of: text("retry_of"),
        })
    }

    pub fn is_terminal(&self) -> bool {
        !matches!(self.status.as_str(), "pending" | "dispatched" | "running")
    }
}

impl std::fmt::Display for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "run {} ({} {} slot {} shard {}, {}, executor {:?}",
            self.id,
            self.trigger,
            self.job,
            slot_text(self.slot),
            self.shard,
            self.status,
            self.executor
        )?;
        if !self.retry_of.is_empty() {
            write!(f, ", retry_of {}", self.retry_of)?;
        }
        if !self.error.is_empty() {
            write!(f, ", error {:?}", self.error)?;
        }
        write!(f, ")")
    }
}

/// Records by run id.
pub fn index(records: &[Record]) -> HashMap<&str, &Record> {
    records.iter().map(|r| (r.id.as_str(), r)).collect()
}

/// a. No run id appears twice in the ledger.
pub fn no_run_ran_twice(ledger: &Ledger) -> Vec<String> {
    ledger
        .by_run()
        .into_iter()
        .filter(|(_, lines)| lines.len() > 1)
        .map(|(run, lines)| {
            format!(
                "run {run} ran {} times: {}",
                lines.len(),
                lines
                    .iter()
                    .map(|l| l.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })
        .collect()
}

/// b. No (job, slot, shard) ran twice, unless each later execution is a
/// run recorded as a `failover` or a `retry`.
pub fn no_slot_ran_twice(ledger: &Ledger, records: &[Record]) -> Vec<String> {
    let by_id = index(records);
    let mut problems = Vec::new();
    for ((job, slot, shard), lines) in ledger.by_slot() {
        let unexplained: Vec<String> = lines
            .iter()
            .skip(1)
            .filter(|line| {
                !by_id
                    .get(line.run_id.as_str())
                    .is_some_and(|r| r.trigger == "failover" || r.trigger == "retry")
            })
            .map(|line| match by_id.get(line.run_id.as_str()) {
                Some(record) => {
                    // An original that started after a run failing it
                    // over or retrying it had started: a stale dispatch.
                    let after_its_own = lines
                        .iter()
                        .take_while(|l| l.number < line.number)
                        .filter_map(|l| by_id.get(l.run_id.as_str()))
                        .find(|r| r.retry_of == record.id);
                    match after_its_own {
                        Some(newer) => format!(
                            "{line} = {record}, started after its own {} run {} had",
                            newer.trigger, newer.id
                        ),
                        None => format!("{line} = {record}"),
                    }
                }
                None => format!("{line} (no run record)"),
            })
            .collect();
        if !unexplained.is_empty() {
            problems.push(format!(
                "{job} slot {} shard {shard} ran {} times; first {}, then not a failover or retry: {}",
                slot_text(slot),
                lines.len(),
                lines[0],
                unexplained.join("; ")
            ));
        }
    }
    problems
}

/// c. For every job, every second from its first recorded slot to the
/// last one before it was paused (`last_slot`) has a run record of the
/// schedule (`schedule` or `misfire`), and none is `skipped`: with
/// `fire_all` no slot may be.
pub fn no_slot_missed(
    jobs: &[String],
    records: &[Record],
    last_slot: &BTreeMap<String, i64>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for job in jobs {
        let mut slots: BTreeMap<i64, Vec<&Record>> = BTreeMap::new();
        for r in records
            .iter()
            .filter(|r| r.job == *job && (r.trigger == "schedule" || r.trigger == "misfire"))
        {
            slots.entry(r.slot).or_default().push(r);
        }
        let Some(first) = slots.keys().next().copied() else {
            problems.push(format!("{job}: no run record at all"));
            continue;
        };
        let last = last_slot.get(job).copied().unwrap_or(first);
        let missing: Vec<i64> = (first..=last).filter(|s| !slots.contains_key(s)).collect();
        if !missing.is_empty() {
            problems.push(format!(
                "{job}: {} slots between {} and {} have no run record: {}",
                missing.len(),
                slot_text(first),
                slot_text(last),
                ranges(&missing)
            ));
        }
        let skipped: Vec<String> = slots
            .range(first..=last)
            .flat_map(|(_, rs)| rs.iter())
            .filter(|r| r.status == "skipped")
            .map(|r| r.to_string())
            .collect();
        if !skipped.is_empty() {
            problems.push(format!(
                "{job}: {} slots recorded skipped under fire_all: {}",
                skipped.len(),
                skipped.join("; ")
            ));
        }
    }
    problems
}

/// d. No run is left pending, dispatched or running.
pub fn every_run_ended(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter(|r| !r.is_terminal())
        .map(|r| format!("still {}: {r}", r.status))
        .collect()
}

/// e. Every run in the ledger has a run record: nothing ran that the
/// cluster did not commit.
pub fn every_execution_recorded(ledger: &Ledger, records: &[Record]) -> Vec<String> {
    let ids: BTreeSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    ledger
        .lines
        .iter()
        .filter(|l| !ids.contains(l.run_id.as_str()))
        .map(|l| format!("ran without a run record: {l}"))
        .collect()
}

/// `[1, 2, 3, 7]` as "2026-..:01..03, 2026-..:07" (slots as times).
fn ranges(slots: &[i64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < slots.len() {
        let mut j = i;
        while j + 1 < slots.len() && slots[j + 1] == slots[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            slot_text(slots[i])
        } else {
            format!("{}..{}", slot_text(slots[i]), slot_text(slots[j]))
        });
        i = j + 1;
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, slot: i64, trigger: &str, status: &str) -> Record {
        Record {
            id: id.into(),
            job: "j".into(),
            slot,
            shard: 0,
            trigger: trigger.into(),
            status: status.into(),
            executor: String::new(),
            error: String::new(),
            retry_of: String::new(),
        }
    }

    #[test]
    fn a_second_execution_is_allowed_only_as_a_failover_or_retry() {
        let t = "2026-01-01T00:00:01Z";
        let ledger = Ledger::parse(&format!(
            "a j {t} 0 1 e1\nb j {t} 0 2 e2\nc j {t} 0 1 e3\na j {t} 0 1 e1\n"
        ));
        let slot = parse_slot(t).expect("a time");
        let records = vec![
            record("a", slot, "schedule", "succeeded"),
            record("b", slot, "failover", "succeeded"),
            record("c", slot, "schedule", "succeeded"),
        ];
        assert_eq!(no_run_ran_twice(&ledger).len(), 1, "a ran twice");
        let doubled = no_slot_ran_twice(&ledger, &records);
        assert_eq!(doubled.len(), 1);
        assert!(
            doubled[0].contains("run c") && !doubled[0].contains("run b "),
            "{doubled:?}"
        );
    }

    #[test]
    fn gaps_and_skips_are_reported_up_to_the_last_slot() {
        let records = vec![
            record("1", 10, "schedule", "succeeded"),
            record("2", 11, "misfire", "failed"),
            record("4", 13, "schedule", "skipped"),
            record("6", 16, "schedule", "skipped"),
        ];
        let last = BTreeMap::from([("j".to_string(), 15)]);
        let problems = no_slot_missed(&["j".to_string()], &records, &last);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("3 slots"),
            "12, 14 and 15: {problems:?}"
        );
        assert!(problems[1].contains("run 4") && !problems[1].contains("run 6"));
    }
}
