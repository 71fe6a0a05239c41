//! A cronmesh cluster on a [`Net`]: `cronmesh server` nodes `n1..` (Raft,
//! gossip) and `cronmesh executor` processes `e1..` that join by gossip,
//! each in its own network namespace, every one on fixed ports of its own
//! address. Any of them can be SIGSTOPped, SIGCONTed, killed with SIGKILL
//! and restarted on the same address and data directory.
//!
//! The cluster's own HTTP client gives up quickly (a stopped or cut-off
//! node must not hold a test up) and answers `None` when a node does not
//! answer.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::Value;

use super::{net::Net, proc::NsProc};
use crate::wait;

pub const HTTP_PORT: u16 = 7070;
pub const RAFT_PORT: u16 = 7071;
pub const GOSSIP_PORT: u16 = 7072;
pub const EXECUTOR_PORT: u16 = 7080;
pub const EXECUTOR_GOSSIP_PORT: u16 = 7082;

/// The environment variable that tells a job's command which executor
/// runs it (executors pass their environment on to the commands).
pub const EXECUTOR_NAME_VAR: &str = "FAULTS_EXECUTOR";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Scheduler(u64),
    Executor,
}

pub struct NetCluster {
    procs: Vec<Mutex<Option<NsProc>>>,
    roles: Vec<(String, Role)>,
    pub net: Net,
    gossip_cluster: String,
    secret: PathBuf,
    client: reqwest::Client,
    /// Kept (not deleted) when the test panics, for its logs.
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

/// Whether this `cronmesh executor` takes `--data-dir` (its record of
/// running processes and of the leader term, kept across restarts). Given
/// when it does: a restarted executor is then held to what it admitted
/// before the crash, as in production.
fn executor_has_data_dir() -> bool {
    static ANSWER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ANSWER.get_or_init(|| {
        let help = std::process::Command::new(crate::process::binary())
            .args(["executor", "--help"])
            .output()
            .expect("run cronmesh executor --help");
        let has = String::from_utf8_lossy(&help.stdout).contains("--data-dir");
        eprintln!(
            "faults: executors {} --data-dir",
            if has { "run with" } else { "have no" }
        );
        has
    })
}

/// 32 random bytes, base64, as `head -c 32 /dev/urandom | base64` makes.
fn secret_text() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("32 bytes from /dev/urandom");
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl NetCluster {
    /// `schedulers` server nodes and `executors` executors, each in its
    /// own namespace; returns once every node answers and the schedulers
    /// see every executor alive.
    pub async fn start(schedulers: u64, executors: usize) -> Arc<Self> {
        let mut roles: Vec<(String, Role)> = (1..=schedulers)
            .map(|id| (format!("n{id}"), Role::Scheduler(id)))
            .collect();
        roles.extend((1..=executors).map(|i| (format!("e{i}"), Role::Executor)));
        let names: Vec<&str> = roles.iter().map(|(n, _)| n.as_str()).collect();
        let net = Net::new(&names);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_path_buf();
        std::fs::create_dir_all(path.join("logs")).expect("log dir");
        let secret = path.join("secret");
        std::fs::write(&secret, secret_text() + "\n").expect("write the secret file");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_millis(800))
            .timeout(Duration::from_secs(2))
            .build()
            .expect("static client config");
        let cluster = Arc::new(Self {
            procs: roles.iter().map(|_| Mutex::new(None)).collect(),
            gossip_cluster: format!("faults-{}", net.tag),
            roles,
            net,
            secret,
            client,
            dir: Some(dir),
            path,
        });
        for name in cluster.names() {
            cluster.clone().restart(&name).await;
        }
        let leader = cluster.wait_leader(Duration::from_secs(30)).await;
        let want: BTreeSet<String> = cluster
            .executors()
            .iter()
            .map(|e| cluster.executor_url(e))
            .collect();
        wait::until(
            &format!("{leader} to see executors {want:?} alive"),
            Duration::from_secs(30),
            || async { (cluster.executors_alive(&leader).await? == want).then_some(()) },
        )
        .await;
        cluster
    }

    pub fn dir(&self) -> &Path {
        &self.path
    }

    pub fn names(&self) -> Vec<String> {
        self.roles.iter().map(|(n, _)| n.clone()).collect()
    }

    pub fn schedulers(&self) -> Vec<String> {
        self.roles
            .iter()
            .filter(|(_, r)| matches!(r, Role::Scheduler(_)))
            .map(|(n, _)| n.clone())
            .collect()
    }

    pub fn executors(&self) -> Vec<String> {
        self.roles
            .iter()
            .filter(|(_, r)| *r == Role::Executor)
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn index(&self, name: &str) -> usize {
        self.roles
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    pub fn role(&self, name: &str) -> Role {
        self.roles[self.index(name)].1
    }

    pub fn api_url(&self, name: &str) -> String {
        format!("http://{}:{HTTP_PORT}", self.net.ip(name))
    }

    pub fn executor_url(&self, name: &str) -> String {
        format!("http://{}:{EXECUTOR_PORT}", self.net.ip(name))
    }

    pub fn log_file(&self, name: &str) -> PathBuf {
        self.path.join("logs").join(format!("{name}.log"))
    }

    fn args(&self, name: &str) -> (Vec<String>, Vec<(String, String)>, &'static str) {
        let ip = self.net.ip(name);
        let secret = self.secret.to_string_lossy().to_string();
        let scheduler_gossip: Vec<String> = self
            .schedulers()
            .iter()
            .map(|s| format!("{}:{GOSSIP_PORT}", self.net.ip(s)))
            .collect();
        match self.role(name) {
            Role::Scheduler(id) => {
                let peers: Vec<String> = self
                    .roles
                    .iter()
                    .filter_map(|(n, r)| match r {
                        Role::Scheduler(i) => Some(format!("{i}={}:{RAFT_PORT}", self.net.ip(n))),
                        Role::Executor => None,
                    })
                    .collect();
                let mine = format!("{ip}:{GOSSIP_PORT}");
                let seeds: Vec<String> = scheduler_gossip
                    .iter()
                    .filter(|s| **s != mine)
                    .cloned()
                    .collect();
                let data = self.path.join(name).to_string_lossy().to_string();
                let args = [
                    "server",
                    "--node-id",
                    &id.to_string(),
                    "--data-dir",
                    &data,
                    "--http",
                    &format!("{ip}:{HTTP_PORT}"),
                    "--raft",
                    &format!("{ip}:{RAFT_PORT}"),
                    "--gossip",
                    &mine,
                    "--gossip-cluster",
                    &self.gossip_cluster,
                    "--peers",
                    &peers.join(","),
                    "--seeds",
                    &seeds.join(","),
                    "--secret-file",
                    &secret,
                ]
                .map(String::from)
                .to_vec();
                (args, Vec::new(), "cronmesh node serving on ")
            }
            Role::Executor => {
                let args = [
                    "executor",
                    "--group",
                    "default",
                    "--listen",
                    &format!("{ip}:{EXECUTOR_PORT}"),
                    "--gossip",
                    &format!("{ip}:{EXECUTOR_GOSSIP_PORT}"),
                    "--seeds",
                    &scheduler_gossip.join(","),
                    "--gossip-cluster",
                    &self.gossip_cluster,
                    "--secret-file",
                    &secret,
                ]
                .map(String::from)
                .to_vec();
                let mut args = args;
                if executor_has_data_dir() {
                    args.push("--data-dir".to_string());
                    args.push(self.path.join(name).to_string_lossy().to_string());
                }
                let env = vec![(EXECUTOR_NAME_VAR.to_string(), name.to_string())];
                (args, env, "cronmesh executor listening on ")
            }
        }
    }

    /// (Re)starts `name` on its address, ports and data directory (it
    /// must not be running); returns once it announced itself.
    pub async fn restart(self: Arc<Self>, name: &str) {
        let name = name.to_string();
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.restart_blocking(&name))
            .await
            .expect("restart task");
    }

    pub fn restart_blocking(&self, name: &str) {
        let slot = &self.procs[self.index(name)];
        assert!(
            slot.lock().unwrap_or_else(|p| p.into_inner()).is_none(),
            "{name} is already running"
        );
        let (args, env, announce) = self.args(name);
        let proc = NsProc::spawn(
            name,
            &self.net.exec_prefix(name),
            &args,
            &env,
            announce,
            &self.log_file(name),
        );
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(proc);
    }

    fn with_proc<T>(&self, name: &str, f: impl FnOnce(&NsProc) -> T) -> Option<T> {
        let slot = self.procs[self.index(name)]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        slot.as_ref().map(f)
    }

    pub fn is_running(&self, name: &str) -> bool {
        self.with_proc(name, |_| ()).is_some()
    }

    pub fn pid(&self, name: &str) -> Option<u32> {
        self.with_proc(name, NsProc::pid)
    }

    pub fn is_stopped(&self, name: &str) -> bool {
        self.with_proc(name, NsProc::is_stopped).unwrap_or(false)
    }

    /// SIGSTOP `name` (it must be running); returns once it is stopped.
    pub fn stop(&self, name: &str) {
        self.with_proc(name, NsProc::stop)
            .unwrap_or_else(|| panic!("SIGSTOP: {name} is not running"));
    }

    pub fn cont(&self, name: &str) {
        self.with_proc(name, NsProc::cont)
            .unwrap_or_else(|| panic!("SIGCONT: {name} is not running"));
    }

    /// SIGKILL `name`, as a crash; returns once it is gone.
    pub fn kill9(&self, name: &str) {
        let proc = self.procs[self.index(name)]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        proc.unwrap_or_else(|| panic!("kill -9: {name} is not running"))
            .kill9();
    }

    /// After faults: heal every partition, SIGCONT whatever is stopped
    /// and restart whatever is dead.
    pub async fn recover_all(self: &Arc<Self>) {
        self.net.heal_all();
        for name in self.names() {
            if self.is_stopped(&name) {
                self.cont(&name);
            }
            if !self.is_running(&name) {
                self.clone().restart(&name).await;
            }
        }
    }

    /// GET `path` on `name`'s admin API; `None` when it does not answer
    /// within the client's short timeout.
    pub async fn get(&self, name: &str, path: &str) -> Option<(StatusCode, Value)> {
        self.get_within(name, path, Duration::from_secs(2)).await
    }

    /// [`get`](Self::get), giving up after `limit`.
    pub async fn get_within(
        &self,
        name: &str,
        path: &str,
        limit: Duration,
    ) -> Option<(StatusCode, Value)> {
        let response = self
            .client
            .get(format!("{}{path}", self.api_url(name)))
            .timeout(limit)
            .send()
            .await
            .ok()?;
        answer_of(response).await
    }

    pub async fn post(&self, name: &str, path: &str, body: &Value) -> Option<(StatusCode, Value)> {
        let response = self
            .client
            .post(format!("{}{path}", self.api_url(name)))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .ok()?;
        answer_of(response).await
    }

    /// `GET /v1/cluster` of every scheduler that answers within 0.7 s,
    /// asked at once.
    pub async fn statuses(&self) -> Vec<(String, Value)> {
        let mut asks = Vec::new();
        for name in self.schedulers() {
            let (client, url) = (
                self.client.clone(),
                format!("{}/v1/cluster", self.api_url(&name)),
            );
            asks.push((
                name,
                tokio::spawn(async move {
                    let response = client
                        .get(url)
                        .timeout(Duration::from_millis(700))
                        .send()
                        .await
                        .ok()?;
                    if !response.status().is_success() {
                        return None;
                    }
                    serde_json::from_str::<Value>(&response.text().await.ok()?).ok()
                }),
            ));
        }
        let mut answers = Vec::new();
        for (name, ask) in asks {
            if let Ok(Some(body)) = ask.await {
                answers.push((name, body));
            }
        }
        answers
    }

    /// The leader now, as the reachable node with the highest term sees it
    /// (a cut-off old leader may still think it leads, in an older term).
    pub async fn leader_now(&self) -> Option<String> {
        let statuses = self.statuses().await;
        let (_, newest) = statuses
            .iter()
            .filter(|(_, s)| s["leader_id"].as_u64().is_some())
            .max_by_key(|(_, s)| s["term"].as_u64().unwrap_or_default())?;
        let leader = format!("n{}", newest["leader_id"].as_u64()?);
        let leader_agrees = statuses
            .iter()
            .any(|(n, s)| *n == leader && s["leader_id"] == newest["leader_id"]);
        leader_agrees.then_some(leader)
    }

    pub async fn wait_leader(&self, limit: Duration) -> String {
        wait::until("a leader", limit, || self.leader_now()).await
    }

    /// The endpoints `name` sees alive in `GET /v1/executors`.
    pub async fn executors_alive(&self, name: &str) -> Option<BTreeSet<String>> {
        let (status, list) = self.get(name, "/v1/executors").await?;
        if !status.is_success() {
            return None;
        }
        Some(
            list.as_array()?
                .iter()
                .filter(|e| e["alive"] == true)
                .filter_map(|e| e["endpoint"].as_str().map(str::to_string))
                .collect(),
        )
    }

    /// Every run of `job` on `name` (all pages), or `None` if a page did
    /// not come.
    pub async fn runs_of(&self, name: &str, job: &str) -> Option<Vec<Value>> {
        let mut runs = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/runs?job={job}&limit=1000&cursor={c}"),
                None => format!("/v1/runs?job={job}&limit=1000"),
            };
            let (status, page) = self.get(name, &path).await?;
            if !status.is_success() {
                return None;
            }
            runs.extend(page["items"].as_array()?.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return Some(runs),
            }
        }
    }

    /// From inside `from`'s namespace, whether `to`'s admin API answers
    /// (`cronmesh cluster status` within 3 s).
    pub fn api_reachable_from(&self, from: &str, to: &str) -> bool {
        let bin = crate::process::binary();
        let url = self.api_url(to);
        let out = self.net.run_in(
            from,
            &[
                &bin.to_string_lossy(),
                "cluster",
                "status",
                "--api",
                &url,
                "--output",
                "json",
            ],
            Duration::from_secs(3),
        );
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        out.status.success()
            && matches!(self.role(to), Role::Scheduler(id) if answer["node_id"] == id)
    }

    /// Lines of every member's log file that contain `needle`.
    pub fn log_lines_with(&self, needle: &str) -> Vec<String> {
        let mut found = Vec::new();
        for name in self.names() {
            let text = std::fs::read_to_string(self.log_file(&name)).unwrap_or_default();
            found.extend(
                text.lines()
                    .filter(|l| l.contains(needle))
                    .map(|l| format!("[{name}] {l}")),
            );
        }
        found
    }
}

impl Drop for NetCluster {
    fn drop(&mut self) {
        // Processes first, while their namespaces still exist.
        for slot in &self.procs {
            drop(slot.lock().unwrap_or_else(|p| p.into_inner()).take());
        }
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!(
                    "faults: kept {} (logs/, the ledger, data directories)",
                    kept.display()
                );
            }
        }
    }
}

/// A response's status and its body as JSON (or as a JSON string when it
/// is not JSON); `None` if the body could not be read.
async fn answer_of(response: reqwest::Response) -> Option<(StatusCode, Value)> {
    let status = response.status();
    let text = response.text().await.ok()?;
    Some((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}
