//! `cronmesh tui` in a real terminal (tmux, 160 x 48) against `cronmesh dev`:
//! the screen shows the leader, a job and the status of its runs; `t`
//! triggers the job, `?` opens the help, `q` closes it and then quits.

use std::{
    process::{Command, Output},
    time::{Duration, Instant},
};

use cronmesh_tests::{api::Api, process};
use serde_json::json;

/// Longest wait for something to show on the screen.
const LIMIT: Duration = Duration::from_secs(30);
/// Pause between two reads of the screen.
const POLL: Duration = Duration::from_millis(100);

/// A tmux server of its own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
    /// The socket file, removed on drop (tmux leaves it behind).
    socket_path: Option<String>,
}

impl Tmux {
    /// Fails the test at once when tmux cannot be run.
    fn require() {
        let version = Command::new("tmux").arg("-V").output();
        assert!(
            version.as_ref().is_ok_and(|o| o.status.success()),
            "tmux is not installed or does not run ({version:?}): this test needs it \
             (apt-get install tmux)"
        );
    }

    /// Starts `command` in a detached 160 x 48 session.
    fn start(command: &str) -> Self {
        let mut tmux = Self {
            socket: format!("cronmesh-tui-test-{}", std::process::id()),
            socket_path: None,
        };
        let out = tmux.run(&["new-session", "-d", "-x", "160", "-y", "48", command]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
        let path = tmux
            .run(&["display-message", "-p", "#{socket_path}"])
            .stdout;
        let path = String::from_utf8_lossy(&path).trim().to_string();
        tmux.socket_path = (!path.is_empty()).then_some(path);
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
    }

    /// The text on the screen now.
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p"]).stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        let out = self.run(&["send-keys", keys]);
        assert!(out.status.success(), "tmux send-keys {keys}: {out:?}");
    }

    /// Polls the screen until `check` holds for it; panics with the last
    /// screen after [`LIMIT`].
    async fn until(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            if Instant::now() >= deadline {
                panic!("timed out after {LIMIT:?} waiting for {what}; screen:\n{screen}");
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[tokio::test]
async fn tui_shows_the_cluster_jobs_and_runs_and_answers_keys() {
    Tmux::require();
    let dir = tempfile::tempdir().expect("temp dir");
    let dev = process::dev(dir.path(), &[]);
    let api = Api::new(&dev.url);
    api.create_job(json!({
        "id": "tui-smoke",
        "schedule": "@every 2s",
        "target": {"type": "shell", "group": "default", "command": "echo from tui-smoke"}
    }))
    .await;

    let binary = process::binary();
    // The pane stays after the viewer exits, to show how it exited.
    let command = format!(
        "'{}' tui --api {}; echo \"tui exited: $?\"; sleep 600",
        binary.display(),
        dev.url
    );
    let tmux = Tmux::start(&command);

    let screen = tmux
        .until("the leader, the job and a finished run", |s| {
            s.contains("leader node 1") && s.contains("tui-smoke") && s.contains("succeeded")
        })
        .await;
    assert!(screen.contains("term "), "{screen}");
    assert!(
        screen.contains(&format!("connected to {}", dev.url)),
        "{screen}"
    );
    assert!(screen.contains("@every 2s"), "{screen}");

    tmux.keys("t");
    tmux.until("the trigger's answer", |s| {
        s.contains("triggered tui-smoke: run")
    })
    .await;

    tmux.keys("?");
    tmux.until("the help", |s| {
        s.contains("Help · keys") && s.contains("trigger the job now")
    })
    .await;
    tmux.keys("q");
    let screen = tmux
        .until("the help to close", |s| !s.contains("Help · keys"))
        .await;
    assert!(
        !screen.contains("tui exited"),
        "q closes the help first:\n{screen}"
    );

    tmux.keys("q");
    tmux.until("the viewer to quit cleanly", |s| {
        s.contains("tui exited: 0")
    })
    .await;
}
