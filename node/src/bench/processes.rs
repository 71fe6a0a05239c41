//! The bench's child processes: one `cronmesh server` or `cronmesh
//! executor` each, started with its output appended to a log file,
//! stopped with SIGTERM (SIGKILL past a deadline), killed with SIGKILL,
//! and started again with the same flags.

use std::{
    fs::OpenOptions,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::Context;
use nix::{sys::signal::Signal, unistd::Pid};

/// What a process is to the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Server,
    Executor,
}

/// One child of the bench, possibly started several times.
pub struct Managed {
    /// Names the process in the report and its log file (`node2`,
    /// `executor1`).
    pub label: String,
    pub role: Role,
    /// The scheduler's node id; `None` for executors.
    pub node_id: Option<u64>,
    /// Starts of this process so far; 2 after one restart.
    pub incarnation: u32,
    binary: PathBuf,
    args: Vec<String>,
    /// stdout and stderr of every incarnation, appended.
    pub log: PathBuf,
    /// The running incarnation; `None` before the first start and after a
    /// kill or stop.
    child: Option<Child>,
}

impl Managed {
    pub fn new(
        label: String,
        role: Role,
        node_id: Option<u64>,
        binary: PathBuf,
        args: Vec<String>,
        log: PathBuf,
    ) -> Self {
        Self {
            label,
            role,
            node_id,
            incarnation: 0,
            binary,
            args,
            log,
            child: None,
        }
    }

    /// Starts the process (again). Children log at `warn` unless
    /// `CRONMESH_LOG` says otherwise: a log line per run would cost the
    /// processes more than the work measured.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open {}", self.log.display()))?;
        let log_err = log.try_clone()?;
        let level = std::env::var("CRONMESH_LOG").unwrap_or_else(|_| "warn".to_string());
        let child = Command::new(&self.binary)
            .args(&self.args)
            .env("CRONMESH_LOG", level)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))?;
        self.incarnation += 1;
        self.child = Some(child);
        Ok(())
    }

    /// The value given to `flag` on the command line (`--data-dir DIR`).
    pub fn flag_value(&self, flag: &str) -> Option<&str> {
        let at = self.args.iter().position(|a| a == flag)?;
        self.args.get(at + 1).map(String::as_str)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// An error naming the log if the process has exited by itself.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        let Some(child) = self.child.as_mut() else {
            anyhow::bail!("{} is not running", self.label);
        };
        match child.try_wait()? {
            None => Ok(()),
            Some(status) => {
                self.child = None;
                anyhow::bail!(
                    "{} exited ({status}); see {}",
                    self.label,
                    self.log.display()
                )
            }
        }
    }

    /// SIGKILL, as a crash, and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within `deadline`.
    /// Returns whether it stopped by itself.
    pub async fn terminate(&mut self, deadline: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let pid = Pid::from_raw(child.id() as i32);
        if nix::sys::signal::kill(pid, Signal::SIGTERM).is_err() {
            let _ = child.wait();
            return true;
        }
        let until = tokio::time::Instant::now() + deadline;
        while tokio::time::Instant::now() < until {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for Managed {
    /// Nothing outlives the bench, whatever way it ends.
    fn drop(&mut self) {
        self.kill9();
    }
}
