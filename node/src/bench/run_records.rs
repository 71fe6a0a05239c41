//! The run records the cluster holds for the bench's jobs, read from the
//! leader page by page (`GET /v1/runs?since=&until=&limit=1000`): a
//! summary of the window's, and (for `--target http`) the runs that
//! succeeded, which the calls are matched with.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, SecondsFormat, Utc};
use protocol::{api::Page, Run, RunStatus};

use super::{
    api::Admin,
    clock::{nanos, Nanos},
    load::job_index,
};

/// Largest page the API serves.
const PAGE: usize = 1000;

/// A summary of the bench jobs' runs scheduled in the window.
#[derive(Debug, Default)]
pub struct RunRecords {
    /// Every run record of a bench job scheduled in the window.
    pub total: u64,
    pub by_status: BTreeMap<String, u64>,
    /// Distinct (job, slot, shard) with at least one record.
    pub slots: HashSet<(u32, Nanos, u32)>,
    /// (job, slot) of the records with status `skipped`.
    pub skipped: Vec<(u32, Nanos)>,
}

/// A run of a bench job that succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalledRun {
    pub run_id: String,
    pub job_id: String,
    pub scheduled_at: Nanos,
    pub attempt: u32,
    pub shard_index: u32,
}

/// Reads the runs scheduled in `[since, until)` from the node at `api_url`.
pub async fn read(
    admin: &Admin,
    api_url: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> anyhow::Result<RunRecords> {
    let mut out = RunRecords::default();
    for_each(admin, api_url, (since, until), |run| out.add(run)).await?;
    Ok(out)
}

/// The bench jobs' runs scheduled in `[since, until)` that succeeded.
pub async fn read_succeeded(
    admin: &Admin,
    api_url: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> anyhow::Result<Vec<CalledRun>> {
    let mut out = Vec::new();
    for_each(admin, api_url, (since, until), |run| {
        if run.status == RunStatus::Succeeded && job_index(&run.job_id).is_some() {
            out.push(CalledRun {
                run_id: run.id.clone(),
                job_id: run.job_id.clone(),
                scheduled_at: nanos(run.scheduled_at),
                attempt: run.attempt,
                shard_index: run.shard.index,
            });
        }
    })
    .await?;
    Ok(out)
}

/// Calls `each` with every run scheduled in `[since, until)`.
async fn for_each(
    admin: &Admin,
    api_url: &str,
    (since, until): (DateTime<Utc>, DateTime<Utc>),
    mut each: impl FnMut(&Run),
) -> anyhow::Result<()> {
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!(
            "{api_url}/v1/runs?since={}&until={}&limit={PAGE}",
            since.to_rfc3339_opts(SecondsFormat::Nanos, true),
            until.to_rfc3339_opts(SecondsFormat::Nanos, true),
        );
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Page<Run> = admin.get_json(&url).await?;
        page.items.iter().for_each(&mut each);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}

impl RunRecords {
    fn add(&mut self, run: &Run) {
        let Some(job) = job_index(&run.job_id) else {
            return;
        };
        let slot = nanos(run.scheduled_at);
        self.total += 1;
        *self
            .by_status
            .entry(run.status.as_str().to_string())
            .or_default() += 1;
        self.slots.insert((job, slot, run.shard.index));
        if run.status == RunStatus::Skipped {
            self.skipped.push((job, slot));
        }
    }
}
