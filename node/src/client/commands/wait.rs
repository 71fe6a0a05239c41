//! Waiting for runs to end: `run output --follow` prints a run's output as
//! it grows, `job trigger --wait` waits for the runs it started. Both end
//! with exit code 5 when a run did not succeed, so a script can run a job
//! and act on its result.

use std::time::Duration;

use protocol::RunStatus;
use serde_json::Value;

use super::{value, Ctx};
use crate::client::{error::CliError, write_stdout};

/// How often a waited-for run is asked about.
const POLL: Duration = Duration::from_millis(500);

/// A run's record, and whether it has ended.
async fn run_record(ctx: &Ctx, id: &str) -> Result<(Value, Option<RunStatus>), CliError> {
    let url = ctx.api.url(&["v1", "runs", id], &[]);
    let record = value(&url, &ctx.api.get(url.clone()).await?)?;
    let status = record
        .get("status")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<RunStatus>().ok())
        .filter(|s| s.is_terminal());
    Ok((record, status))
}

fn outcome(id: &str, status: RunStatus) -> Result<(), CliError> {
    match status {
        RunStatus::Succeeded => Ok(()),
        other => Err(CliError::RunDidNotSucceed {
            id: id.to_string(),
            status: other.to_string(),
        }),
    }
}

/// What of `now` was not printed yet, given `printed` so far. The output
/// keeps only its last 64 KiB, so once it rolls over the new text is the
/// part after the longest end of `printed` that `now` starts with.
fn unseen<'a>(printed: &str, now: &'a str) -> &'a str {
    if let Some(rest) = now.strip_prefix(printed) {
        return rest;
    }
    let overlap = (1..=printed.len().min(now.len()))
        .rev()
        .filter(|n| printed.is_char_boundary(printed.len() - n) && now.is_char_boundary(*n))
        .find(|n| printed.ends_with(&now[..*n]))
        .unwrap_or(0);
    &now[overlap..]
}

/// Prints the run's output as it grows until the run ends.
pub(super) async fn follow_output(ctx: &Ctx, id: &str) -> Result<(), CliError> {
    let output_url = ctx.api.url(&["v1", "runs", id, "output"], &[]);
    let mut printed = String::new();
    loop {
        // Read the status first: output read after the run ended is final.
        let (_, ended) = run_record(ctx, id).await?;
        let now = ctx.api.get(output_url.clone()).await?;
        let now = String::from_utf8_lossy(&now);
        write_stdout(unseen(&printed, &now).as_bytes())?;
        printed = now.into_owned();
        if let Some(status) = ended {
            return outcome(id, status);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until every run in `ids` has ended; prints a line per run as it
/// ends (or, with `--output json`, the final records as one array).
pub(super) async fn wait_for_runs(ctx: &Ctx, ids: &[String]) -> Result<(), CliError> {
    let mut waiting: Vec<&String> = ids.iter().collect();
    let mut ended: Vec<(Value, RunStatus)> = Vec::new();
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for id in waiting {
            match run_record(ctx, id).await? {
                (record, Some(status)) => {
                    if !ctx.json() {
                        write_stdout(format!("run {id} {status}\n").as_bytes())?;
                    }
                    ended.push((record, status));
                }
                (_, None) => still.push(id),
            }
        }
        waiting = still;
        if !waiting.is_empty() {
            tokio::time::sleep(POLL).await;
        }
    }
    if ctx.json() {
        let records: Vec<&Value> = ended.iter().map(|(r, _)| r).collect();
        let text = serde_json::to_string_pretty(&records).unwrap_or_default();
        write_stdout(format!("{text}\n").as_bytes())?;
    }
    for (record, status) in &ended {
        let id = record.get("id").and_then(Value::as_str).unwrap_or("?");
        outcome(id, *status)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::unseen;

    #[test]
    fn only_new_output_is_printed() {
        assert_eq!(unseen("", "a\n"), "a\n");
        assert_eq!(unseen("a\n", "a\nb\n"), "b\n");
        assert_eq!(unseen("a\nb\n", "a\nb\n"), "");
        // The kept window rolled past the start: continue after the overlap.
        assert_eq!(unseen("1\n2\n3\n", "2\n3\n4\n"), "4\n");
        assert_eq!(unseen("xyz", "new"), "new");
    }
}
