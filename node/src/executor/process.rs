//! Shell tasks: `sh -c COMMAND` in a process group of its own, its stdout
//! and stderr captured through one pipe (so their interleaving is the
//! order the process wrote in), killed as a whole group.
//!
//! In `cronmesh executor` on Linux the shell also gets SIGKILL when the
//! executor dies (its parent-death signal), which ends a command the shell
//! runs in its place (`sh -c 'exec ...'`, or a lone command, which `sh`
//! execs). The rest of a group outlives the executor; the run records
//! (`ledger`, `orphans`) are what ends them, at the executor's next start.

use std::{
    future::Future,
    io,
    os::fd::OwnedFd,
    os::unix::process::ExitStatusExt,
    process::{ExitStatus, Stdio},
    time::Duration,
};

use chrono::SecondsFormat;
use nix::{
    errno::Errno,
    fcntl::OFlag,
    sys::signal::{killpg, Signal},
    unistd::Pid,
};
use protocol::dispatch::DispatchRequest;
use tokio::{io::AsyncReadExt, net::unix::pipe, process::Child, task::JoinHandle};

use super::{
    output::SharedOutput,
    runs::{Outcome, StopReason},
    sandbox::JobSandbox,
};

/// After the process group is gone, how long to keep reading output a
/// process that escaped the group may still hold open.
const OUTPUT_DRAIN: Duration = Duration::from_secs(1);

/// The environment a shell task runs with (docs/API.md, "Run").
pub fn task_env(req: &DispatchRequest) -> Vec<(&'static str, String)> {
    vec![
        ("CRONMESH_JOB_ID", req.job_id.clone()),
        ("CRONMESH_NAMESPACE", req.namespace.clone()),
        ("CRONMESH_RUN_ID", req.run_id.clone()),
        (
            "CRONMESH_SCHEDULED_AT",
            req.scheduled_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        ),
        ("CRONMESH_ATTEMPT", req.attempt.to_string()),
        ("CRONMESH_SHARD_INDEX", req.shard.index.to_string()),
        ("CRONMESH_SHARD_COUNT", req.shard.count.to_string()),
        ("CRONMESH_SHARD_PARAM", req.shard.param.clone()),
        ("CRONMESH_PARAMS", req.params.clone()),
        // Empty unless the run is a child's (trigger `child`).
        ("CRONMESH_PARENT_RUN_IDS", req.parent_run_ids.join(",")),
        (
            "CRONMESH_PARENT_SCHEDULED_AT",
            req.parent_scheduled_at
                .map(|at| at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
                .unwrap_or_default(),
        ),
    ]
}

/// A started shell task.
pub struct ShellProcess {
    child: Child,
    pgid: Pid,
    reader: JoinHandle<()>,
}

impl ShellProcess {
    /// Starts `sh -c command` with the task environment, confined by
    /// `sandbox` (its environment and user); output goes to
    /// `output`. With `parent_death_signal` the shell is killed when the
    /// thread calling this exits (see [`die_with_the_executor`]).
    pub fn spawn(
        req: &DispatchRequest,
        command: &str,
        output: SharedOutput,
        sandbox: &JobSandbox,
        parent_death_signal: bool,
    ) -> io::Result<Self> {
        // One pipe for both streams. O_CLOEXEC keeps the write end out of
        // processes other runs spawn meanwhile (they would hold it open and
        // delay end-of-file); the child's copies on fd 1 and 2 are made by
        // dup2, which clears the flag for it alone.
        let (read_end, write_end) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
        let stderr_end: OwnedFd = write_end.try_clone()?;

        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c").arg(command);
        // Before the parent-death signal: changing the user clears it.
        sandbox.apply(&mut cmd, task_env(req));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(write_end))
            .stderr(Stdio::from(stderr_end))
            .process_group(0)
            .kill_on_drop(true);
        if parent_death_signal {
            die_with_the_executor(&mut cmd);
        }
        let child = cmd.spawn()?;
        // Our copies of the write end must close, or end-of-file never comes.
        drop(cmd);

        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw)
            .ok_or_else(|| io::Error::other("the started process has no pid"))?;
        let receiver = pipe::Receiver::from_owned_fd(read_end)?;
        let reader = tokio::spawn(read_into(receiver, output));
        Ok(Self {
            child,
            pgid,
            reader,
        })
    }

    /// The process group id (the shell's pid).
    pub fn pgid(&self) -> Pid {
        self.pgid
    }

    /// Waits for the process to exit, `timeout` to pass or `stop` to
    /// resolve, then kills whatever is left of the group and finishes
    /// reading its output.
    pub async fn supervise(
        mut self,
        timeout: Duration,
        stop: impl Future<Output = StopReason>,
    ) -> Outcome {
        enum End {
            Exited(io::Result<ExitStatus>),
            TimedOut,
            Stopped(StopReason),
        }
        let end = tokio::select! {
            status = self.child.wait() => End::Exited(status),
            () = tokio::time::sleep(timeout) => End::TimedOut,
            reason = stop => End::Stopped(reason),
        };
        // Kill the group before reaping the shell in the other cases, so
        // the group id cannot have been reused; after a normal exit this
        // takes down background children left behind.
        kill_group(self.pgid);
        let outcome = match end {
            End::Exited(Ok(status)) => outcome_of(status),
            End::Exited(Err(e)) => {
                Outcome::failed(None, format!("cannot wait for the process: {e}"))
            }
            End::TimedOut => {
                self.reap().await;
                Outcome::timed_out(format!("timed out after {}", format_duration(timeout)))
            }
            End::Stopped(reason) => {
                self.reap().await;
                Outcome::stopped(reason)
            }
        };
        let mut reader = self.reader;
        if tokio::time::timeout(OUTPUT_DRAIN, &mut reader)
            .await
            .is_err()
        {
            tracing::warn!(
                pgid = self.pgid.as_raw(),
                "a process that left its process group still holds the output pipe; \
                 not reading its output any further"
            );
            reader.abort();
        }
        outcome
    }

    async fn reap(&mut self) {
        if let Err(e) = self.child.wait().await {
            tracing::warn!(
                pgid = self.pgid.as_raw(),
                "cannot reap the killed process: {e}"
            );
        }
    }
}

/// Gives the child SIGKILL as its parent-death signal. Linux sends it when
/// the thread that forked the child exits, not the process: only where
/// that thread lives as long as the executor (the `cronmesh executor`
/// process runs on its main thread) is this the executor's death. A tokio
/// worker thread may end earlier (`block_in_place` retires it), which
/// would kill runs of an embedded executor for nothing.
#[cfg(target_os = "linux")]
fn die_with_the_executor(cmd: &mut tokio::process::Command) {
    let parent = nix::unistd::getpid();
    let set_signal = move || -> io::Result<()> {
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
        // The executor may have died between the fork and the prctl, and
        // then no signal comes: the child has been re-parented by now. (An
        // errno, not a message: allocating in a forked child can deadlock.)
        if nix::unistd::getppid() != parent {
            return Err(io::Error::from(Errno::ESRCH));
        }
        Ok(())
    };
    // SAFETY: the closure runs in the forked child before exec and makes
    // only async-signal-safe system calls (prctl, getppid); it allocates
    // nothing and takes no lock.
    unsafe {
        cmd.pre_exec(set_signal);
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_the_executor(_cmd: &mut tokio::process::Command) {}

async fn read_into(mut receiver: pipe::Receiver, output: SharedOutput) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match receiver.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => output.push(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("cannot read the process output: {e}");
                break;
            }
        }
    }
}

/// SIGKILL to every process of the group; a group already gone is fine.
pub fn kill_group(pgid: Pid) {
    match killpg(pgid, Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => tracing::warn!(pgid = pgid.as_raw(), "cannot kill process group: {e}"),
    }
}

/// Succeeded, failed with the exit code, or failed naming the signal.
pub fn outcome_of(status: ExitStatus) -> Outcome {
    if let Some(code) = status.code() {
        if code == 0 {
            Outcome::succeeded(Some(0))
        } else {
            Outcome::failed(Some(code), format!("exited with code {code}"))
        }
    } else if let Some(signal) = status.signal() {
        let name = Signal::try_from(signal)
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|_| format!("signal {signal}"));
        Outcome::failed(None, format!("killed by signal {name} ({signal})"))
    } else {
        Outcome::failed(None, format!("ended abnormally: {status}"))
    }
}

/// "500ms", "30s", "1.5s".
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if d.subsec_millis() == 0 {
        format!("{}s", ms / 1000)
    } else {
        let secs = format!("{:.3}", d.as_secs_f64());
        format!("{}s", secs.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_name_code_and_signal() {
        assert_eq!(
            outcome_of(ExitStatus::from_raw(0)),
            Outcome::succeeded(Some(0))
        );
        // Wait statuses: exit code in the second byte, signal in the first.
        assert_eq!(
            outcome_of(ExitStatus::from_raw(3 << 8)),
            Outcome::failed(Some(3), "exited with code 3")
        );
        assert_eq!(
            outcome_of(ExitStatus::from_raw(15)),
            Outcome::failed(None, "killed by signal SIGTERM (15)")
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }
}
