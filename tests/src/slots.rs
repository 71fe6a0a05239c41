//! Checks of the invariants on what ran: every slot of a window has exactly
//! one record (a run or a skip), and no executor ran a slot twice.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::Path,
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{api::Api, wait};

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap_or_default())
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

/// Waits until every whole second in `[from, until]` has a record for
/// `job` (an `@every 1s` job), then asserts none has two.
pub async fn assert_every_slot_once(
    api: &Api,
    job: &str,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) {
    let records = wait::until(
        &format!("every slot of {job} to be recorded"),
        Duration::from_secs(30),
        || async {
            let runs = api.runs_of(job).await;
            let slots: BTreeSet<i64> = runs
                .iter()
                .map(|r| time(&r["scheduled_at"]).timestamp())
                .collect();
            (from.timestamp()..=until.timestamp())
                .all(|s| slots.contains(&s))
                .then_some(runs)
        },
    )
    .await;
    let mut per_slot: BTreeMap<(i64, u64), usize> = BTreeMap::new();
    for run in records
        .iter()
        .filter(|r| r["trigger"] == "schedule" || r["trigger"] == "misfire")
    {
        let shard = run["shard"]["index"].as_u64().unwrap_or_default();
        *per_slot
            .entry((time(&run["scheduled_at"]).timestamp(), shard))
            .or_default() += 1;
    }
    let doubled: Vec<_> = per_slot.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubled.is_empty(),
        "{job}: slots with two records: {doubled:?}"
    );
}

/// Asserts no line of an executor's own record appears twice; returns how
/// many executions it lists.
pub fn assert_executed_once(record: &Path) -> usize {
    let text = std::fs::read_to_string(record).unwrap_or_default();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for line in text.lines() {
        *seen.entry(line).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "the executor ran these slots twice: {twice:?}"
    );
    seen.len()
}
