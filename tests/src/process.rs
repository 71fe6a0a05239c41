//! `cronmesh` child processes: schedulers and executors, as users run
//! them. Each is killed (SIGKILL) when dropped.

use std::{
    collections::VecDeque,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc, Mutex,
    },
    thread::JoinHandle,
    time::Duration,
};

/// The `cronmesh` binary built beside the test binaries.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let bin = dir.join("cronmesh");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p cronmesh` (or `cargo test --workspace`)",
        bin.display()
    );
    bin
}

/// A child that prints one line announcing its URL on stdout.
pub struct Proc {
    pub url: String,
    child: Child,
    /// Its latest log lines (stderr), also passed on to the test's own
    /// output so a failing test shows them.
    log: Arc<Mutex<VecDeque<String>>>,
}

/// Log lines a [`Proc`] keeps for [`Proc::log_lines`].
const KEPT_LOG_LINES: usize = 20_000;

impl Proc {
    /// Starts `cronmesh ARGS` and waits for the line starting with `prefix`.
    pub fn spawn(args: &[&str], prefix: &str) -> Self {
        Self::spawn_with_env(args, &[], prefix)
    }

    /// [`spawn`](Self::spawn) with environment variables set.
    pub fn spawn_with_env(args: &[&str], env: &[(&str, &str)], prefix: &str) -> Self {
        let mut command = Command::new(binary());
        command
            .args(args)
            .envs(env.iter().copied())
            .env("CRONMESH_LOG", "info");
        Self::from_command(command, prefix)
    }

    /// Starts any program (a server a test talks to, such as an SMTP
    /// server) and waits for its stdout line starting with `prefix`.
    pub fn from_command(mut command: Command, prefix: &str) -> Self {
        let args = format!("{command:?}");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {args}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
                if kept.len() == KEPT_LOG_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        let (tx, rx) = mpsc::channel();
        let prefix = prefix.to_string();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if let Some(url) = line.strip_prefix(&prefix) {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("{args} did not announce itself");
            });
        Self { url, child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How it exited, if it has (by itself: a kill point, a crash, a clean
    /// exit); `None` while it runs. Its log stays readable either way.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The lines it has logged so far (the latest `KEPT_LOG_LINES`).
    pub fn log_lines(&self) -> Vec<String> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().cloned().collect()
    }

    /// SIGTERM, as an operator or a service manager stops it; waits up to
    /// `limit` for it to exit and returns its exit code (None: it did not).
    pub fn terminate(mut self, limit: Duration) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGKILL, as a crash.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cronmesh executor` in `group` on a free loopback port.
pub fn executor(group: &str) -> Proc {
    executor_with(group, &[])
}

/// `cronmesh executor` with more flags.
pub fn executor_with(group: &str, extra: &[&str]) -> Proc {
    let mut args = vec!["executor", "--group", group, "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    unsigned_unless_secret(&mut args);
    Proc::spawn(&args, "cronmesh executor listening on ")
}

/// `cronmesh dev` (a node with its built-in executor) on a free port, with
/// data in `dir`, plus `extra` flags.
pub fn dev(dir: &Path, extra: &[&str]) -> Proc {
    let dir = dir.to_string_lossy().to_string();
    let mut args = vec!["dev", "--data-dir", &dir, "--http", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Proc::spawn(&args, "cronmesh node serving on ")
}

/// Test processes run the executor protocol unsigned unless the test gives
/// them a secret (as production must: a server or executor refuses to
/// start with neither).
fn unsigned_unless_secret(args: &mut Vec<&str>) {
    if !args.contains(&"--secret-file") {
        args.push("--unsigned");
    }
}

/// `cronmesh server` on `http` with data in `dir`, sending work to `executors`.
pub fn server(dir: &Path, http: &str, executors: &[&str]) -> Proc {
    server_with(dir, http, executors, &[])
}

/// `cronmesh server` with more flags.
pub fn server_with(dir: &Path, http: &str, executors: &[&str], extra: &[&str]) -> Proc {
    server_with_env(dir, http, executors, extra, &[])
}

/// [`server_with`] with environment variables set, e.g.
/// `("FAILPOINTS", "NAME=return")` to arm a kill point (which only a binary
/// built with the `failpoints` feature obeys).
pub fn server_with_env(
    dir: &Path,
    http: &str,
    executors: &[&str],
    extra: &[&str],
    env: &[(&str, &str)],
) -> Proc {
    let dir = dir.to_string_lossy().to_string();
    let mut args = vec!["server", "--data-dir", &dir, "--http", http];
    for e in executors {
        args.push("--executor");
        args.push(e);
    }
    args.extend_from_slice(extra);
    unsigned_unless_secret(&mut args);
    Proc::spawn_with_env(&args, env, "cronmesh node serving on ")
}

/// The resident memory of process `pid` in bytes (VmRSS of
/// `/proc/PID/status`); `None` once it is gone.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Samples a process's resident memory on a thread of its own, every
/// `every`, until [`stop`](RssSampler::stop).
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<RssSamples>,
}

/// What an [`RssSampler`] saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct RssSamples {
    /// The largest VmRSS sampled, in bytes.
    pub max: u64,
    /// The last VmRSS sampled, in bytes.
    pub last: u64,
    /// Samples taken (none once the process is gone).
    pub count: u64,
}

impl RssSampler {
    pub fn start(pid: u32, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = RssSamples::default();
            while !stopped.load(Ordering::Relaxed) {
                if let Some(rss) = rss_bytes(pid) {
                    seen.max = seen.max.max(rss);
                    seen.last = rss;
                    seen.count += 1;
                }
                std::thread::sleep(every);
            }
            seen
        });
        Self { stop, thread }
    }

    pub fn stop(self) -> RssSamples {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the sampling thread")
    }
}

/// Runs a client command against the API at `api`: exit code, stdout, stderr.
pub fn cli(api: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(binary())
        .args(args)
        .env("CRONMESH_API", api)
        .output()
        .expect("run the cli");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Processes of a group that are not zombies (a zombie has exited; only
/// its parent has yet to collect it).
pub fn live_members_of_group(pgid: i32) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid pgrp ...: comm may hold spaces, so read after ')'.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
        })
        .count()
}

/// Waits until no process of the group whose leader wrote its pid to
/// `pid_file` is left.
pub async fn assert_group_gone(pid_file: &std::path::Path) {
    let pgid: i32 = std::fs::read_to_string(pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let alive = || live_members_of_group(pgid) > 0;
    crate::wait::until(
        "the process group to be gone",
        std::time::Duration::from_secs(5),
        || async { (!alive()).then_some(()) },
    )
    .await;
}
