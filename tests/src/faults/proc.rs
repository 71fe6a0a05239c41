//! `cronmesh` processes started through a wrapper (`ip netns exec NS`),
//! as [`crate::process::Proc`] starts them on loopback: the child announces
//! its URL on stdout, its log lines are echoed (prefixed with the member's
//! name) and kept. Each line also goes to a log file that outlives
//! restarts, so a failure can be traced afterwards.
//!
//! The wrapper execs, so the child's pid is the `cronmesh` process
//! itself: SIGSTOP, SIGCONT and SIGKILL hit it ([`NsProc::spawn`] checks).

use std::{
    collections::VecDeque,
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{mpsc, Arc, Mutex},
    time::{Duration, Instant},
};

use crate::process::binary;

const KEPT_LOG_LINES: usize = 20_000;

pub struct NsProc {
    pub name: String,
    pub url: String,
    child: Child,
    log: Arc<Mutex<VecDeque<String>>>,
}

/// The scheduler state letter of a process (`R`, `S`, `T` stopped, `Z`...),
/// `None` once it is gone.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .unwrap_or_else(|e| panic!("cannot run kill -s {signal} {pid}: {e}"));
    assert!(status.success(), "kill -s {signal} {pid} failed: {status}");
}

impl NsProc {
    /// Starts `wrapper... cronmesh args...` and waits up to 30 s for the
    /// stdout line starting with `announce`.
    pub fn spawn(
        name: &str,
        wrapper: &[String],
        args: &[String],
        env: &[(String, String)],
        announce: &str,
        log_file: &Path,
    ) -> Self {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_file)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log_file.display()));
        let file = Arc::new(Mutex::new(file));
        let bin = binary();
        let mut command = Command::new(&wrapper[0]);
        command.args(&wrapper[1..]).arg(&bin).args(args);
        // Only what the test says: no settings, proxies or colours from
        // the environment of whoever runs the tests.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().to_string();
            if key.starts_with("CRONMESH_") || key.to_ascii_lowercase().ends_with("_proxy") {
                command.env_remove(&key);
            }
        }
        let mut child = command
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("CRONMESH_LOG", "info")
            .env("NO_COLOR", "1")
            // Panics keep their backtrace (RUST_BACKTRACE); logged errors
            // do not print one each.
            .env("RUST_LIB_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {wrapper:?} {bin:?}: {e}"));
        let pid = child.id();
        append(
            &file,
            &format!("=== {name}: pid {pid}: {wrapper:?} cronmesh {args:?}"),
        );
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (kept, to_file, prefix) = (log.clone(), file.clone(), name.to_string());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[{prefix}] {line}");
                append(&to_file, &line);
                let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
                if kept.len() == KEPT_LOG_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        let (tx, rx) = mpsc::channel();
        let (wanted, to_file) = (announce.to_string(), file);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                append(&to_file, &format!("stdout: {line}"));
                if let Some(url) = line.strip_prefix(&wanted) {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let lines = log.lock().unwrap_or_else(|p| p.into_inner());
                panic!(
                    "{name} ({wrapper:?} cronmesh {args:?}) did not announce itself; its log:\n{}",
                    lines.iter().cloned().collect::<Vec<_>>().join("\n")
                );
            }
        };
        let proc = Self {
            name: name.to_string(),
            url,
            child,
            log,
        };
        proc.assert_is_cronmesh(&bin);
        proc
    }

    /// The pid is the `cronmesh` process itself, not a wrapper around it.
    fn assert_is_cronmesh(&self, bin: &Path) {
        let exe = std::fs::read_link(format!("/proc/{}/exe", self.pid()))
            .unwrap_or_else(|e| panic!("{}: /proc/{}/exe: {e}", self.name, self.pid()));
        let bin = std::fs::canonicalize(bin).unwrap_or_else(|_| bin.to_path_buf());
        assert_eq!(
            exe,
            bin,
            "{}: pid {} must be cronmesh itself (the wrapper must exec)",
            self.name,
            self.pid()
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_lines(&self) -> Vec<String> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().cloned().collect()
    }

    /// SIGSTOP, and waits until the kernel shows it stopped.
    pub fn stop(&self) {
        send_signal(self.pid(), "STOP");
        self.wait_state("stopped", |s| s == Some('T'));
    }

    /// SIGCONT, and waits until it is no longer stopped.
    pub fn cont(&self) {
        send_signal(self.pid(), "CONT");
        self.wait_state("running again", |s| s != Some('T'));
    }

    pub fn is_stopped(&self) -> bool {
        process_state(self.pid()) == Some('T')
    }

    fn wait_state(&self, what: &str, ok: impl Fn(Option<char>) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ok(process_state(self.pid())) {
            assert!(
                Instant::now() < deadline,
                "{} (pid {}) is not {what} 5 s after the signal: state {:?}",
                self.name,
                self.pid(),
                process_state(self.pid())
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL, as a crash; waits for it to be gone.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NsProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn append(file: &Mutex<File>, line: &str) {
    let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
    let _ = writeln!(file, "{line}");
}
