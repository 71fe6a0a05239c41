//! Runs an earlier life of this executor left behind. A shell run's
//! processes are a process group of their own, so they outlive an executor
//! killed with SIGKILL; the cluster would never hear how their runs ended,
//! and the work could run on beside its failover. At start-up, every
//! record of `ledger` without a result names such a run: its group is
//! killed if it is still the same group, and the run is reported `failed`
//! with the reason. A record with a result names a run that finished but
//! whose final report no scheduler had taken: it is reported again.

use std::sync::Arc;

use nix::{
    errno::Errno,
    sys::signal::{killpg, Signal},
    unistd::Pid,
};

use super::{agent::Agent, ledger::RunRecord, procfs, runs::Outcome};

/// The error of a run whose process was killed at start-up.
pub const KILLED_AT_RESTART: &str = "the executor restarted during the run; its process was killed";
/// The error of a run whose process had ended while the executor was down.
pub const ENDED_UNSEEN: &str =
    "the executor restarted during the run; its process had ended meanwhile, and how it ended is not known";
/// The error of a run the executor stopped while starting.
pub const STOPPED_STARTING: &str = "the executor stopped while starting the run's process; \
     whatever of it began ended with the executor, and how is not known";
/// The error of a run whose process group could not be checked.
pub const NOT_CHECKED: &str = "the executor restarted during the run; whether its process still \
     runs could not be checked, so it was not killed";

/// What became of a recorded run's process group.
#[derive(Debug, PartialEq, Eq)]
pub enum Reaped {
    /// It still ran: `processes` of it got SIGKILL.
    Killed { processes: usize },
    /// Nothing of it is left (ended, or the machine rebooted).
    Gone,
    /// The record has no start time, or `/proc` cannot be read: without
    /// them a recycled group id cannot be told apart, so nothing was killed.
    NotChecked,
    /// The executor stopped while starting the process, before it knew
    /// its group: a shell that began got the parent-death signal.
    StoppedStarting,
}

impl Reaped {
    /// The error the run's final report carries.
    pub fn error(&self) -> &'static str {
        match self {
            Reaped::Killed { .. } => KILLED_AT_RESTART,
            Reaped::Gone => ENDED_UNSEEN,
            Reaped::NotChecked => NOT_CHECKED,
            Reaped::StoppedStarting => STOPPED_STARTING,
        }
    }
}

/// What [`end_left_behind`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LeftBehind {
    /// Runs that were still running, ended now and reported failed.
    pub ended: usize,
    /// Runs that had finished with their final report not yet taken,
    /// reported again.
    pub finished: usize,
}

/// Ends every run the records name that was still running: kills what is
/// left of its process group, and reports it `failed` with the reason.
/// Runs recorded with their result (finished, report not yet taken) are
/// known as finished and reported again. Either report is retried until a
/// scheduler takes it; the record goes then. Called before the agent
/// serves, so a scheduler that dispatches such a run again gets a
/// duplicate and the run's end instead of a second start.
pub fn end_left_behind(agent: &Arc<Agent>) -> anyhow::Result<LeftBehind> {
    let Some(ledger) = agent.ledger() else {
        return Ok(LeftBehind::default());
    };
    let mut ended = 0;
    let mut finished = 0;
    for found in ledger.left_behind()? {
        let record = match found {
            Ok(record) => record,
            Err(unreadable) => {
                tracing::error!(
                    path = %unreadable.path.display(),
                    "a run record cannot be read, so its process cannot be checked; \
                     removing it: {}",
                    unreadable.reason
                );
                let _ = std::fs::remove_file(&unreadable.path);
                continue;
            }
        };
        if let Some(result) = &record.result {
            // It ended in an earlier life, and its group with it (a group id
            // that may belong to someone else by now): only the report is
            // left to deliver.
            tracing::info!(
                run_id = %record.run_id,
                job = %record.job_id,
                attempt = record.attempt,
                status = %result.status,
                "a run an earlier life of this executor finished is reported again"
            );
            if agent.adopt_finished(&record, result) {
                finished += 1;
            } else {
                ledger.remove(&record.run_id);
            }
            continue;
        }
        let reaped = reap(&record, agent.boot_id());
        tracing::warn!(
            run_id = %record.run_id,
            job = %record.job_id,
            attempt = record.attempt,
            pgid = record.pgid,
            ?reaped,
            "a run left behind by an earlier life of this executor is ended"
        );
        if agent.adopt_ended(&record, Outcome::failed(None, reaped.error())) {
            ended += 1;
        } else {
            ledger.remove(&record.run_id);
        }
    }
    Ok(LeftBehind { ended, finished })
}

/// Kills what is left of `record`'s process group.
///
/// The group is the recorded one when its leader (the shell) is alive
/// with the recorded start time. A leader that has died (as it does by its
/// parent-death signal when the executor dies) leaves its group id in use
/// while any member lives, and Linux gives no new process a pid still in
/// use as a group id; members that started before the shell cannot be of
/// its group, so they mark a group that was emptied and its id reused.
pub fn reap(record: &RunRecord, boot_id: Option<&str>) -> Reaped {
    if record.pgid <= 0 {
        return Reaped::StoppedStarting;
    }
    if let (Some(then), Some(now)) = (record.boot_id.as_deref(), boot_id) {
        if then != now {
            return Reaped::Gone;
        }
    }
    let Some(started) = record.start_ticks else {
        return Reaped::NotChecked;
    };
    if boot_id.is_none() {
        return Reaped::NotChecked;
    }
    let members = procfs::group_members(record.pgid);
    let ours = match procfs::start_ticks(record.pgid) {
        Some(leader_started) => leader_started == started,
        None => members.iter().all(|p| p.start_ticks >= started),
    };
    if members.is_empty() || !ours {
        return Reaped::Gone;
    }
    match killpg(Pid::from_raw(record.pgid), Signal::SIGKILL) {
        Ok(()) => Reaped::Killed {
            processes: members.len(),
        },
        Err(Errno::ESRCH) => Reaped::Gone,
        Err(e) => {
            tracing::error!(pgid = record.pgid, run_id = %record.run_id, "cannot kill a process group left behind: {e}");
            Reaped::NotChecked
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use std::{os::unix::process::CommandExt, process::Command, time::Duration};

    fn record_of(pgid: i32, start_ticks: Option<u64>) -> RunRecord {
        RunRecord {
            run_id: "r".into(),
            job_id: "j".into(),
            attempt: 1,
            report_to: vec![],
            pgid,
            start_ticks,
            boot_id: procfs::boot_id(),
            started_at: Utc::now(),
            result: None,
        }
    }

    /// `sleep 30` leading a group of its own.
    fn sleeper() -> anyhow::Result<std::process::Child> {
        Ok(Command::new("sleep").arg("30").process_group(0).spawn()?)
    }

    fn wait_gone(child: &mut std::process::Child) -> anyhow::Result<bool> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(false)
    }

    #[test]
    fn the_recorded_group_is_killed_and_a_stranger_is_not() -> anyhow::Result<()> {
        let mut ours = sleeper()?;
        let pgid = ours.id() as i32;
        let started = procfs::start_ticks(pgid);
        assert!(started.is_some());

        // Same id, another start time: a recycled id, left alone.
        let stranger = record_of(pgid, started.map(|t| t + 1));
        assert_eq!(reap(&stranger, procfs::boot_id().as_deref()), Reaped::Gone);
        assert!(ours.try_wait()?.is_none(), "a stranger's group was killed");
        let unchecked = record_of(pgid, None);
        assert_eq!(
            reap(&unchecked, procfs::boot_id().as_deref()),
            Reaped::NotChecked
        );
        let other_boot = RunRecord {
            boot_id: Some("another boot".into()),
            ..record_of(pgid, started)
        };
        assert_eq!(
            reap(&other_boot, procfs::boot_id().as_deref()),
            Reaped::Gone
        );
        assert!(ours.try_wait()?.is_none());

        let record = record_of(pgid, started);
        assert_eq!(
            reap(&record, procfs::boot_id().as_deref()),
            Reaped::Killed { processes: 1 }
        );
        assert!(wait_gone(&mut ours)?, "the recorded group still runs");
        assert_eq!(reap(&record, procfs::boot_id().as_deref()), Reaped::Gone);
        Ok(())
    }
}
