//! A cluster of `cronmesh server` processes with Raft on loopback, whose
//! members can be killed with SIGKILL and restarted on the same ports and
//! data directories.

use std::{collections::BTreeMap, path::PathBuf, process::ExitStatus, time::Duration};

use reqwest::StatusCode;
use serde_json::{json, Value};

pub use crate::ports::free_port;
use crate::{
    api::Api,
    process::{server_with_env, Proc},
    wait,
};

pub struct Cluster {
    pub dir: tempfile::TempDir,
    /// (http port, raft port) per node, node id = index + 1.
    ports: Vec<(u16, u16)>,
    nodes: Vec<Option<Proc>>,
    /// Nodes that joined with `--join` rather than being listed in `--peers`.
    joined: Vec<bool>,
    executors: Vec<String>,
    extra: Vec<String>,
    /// The admin token given in `extra`, which every API call then sends.
    token: Option<String>,
}

impl Cluster {
    /// Starts `size` nodes that know each other through `--peers`.
    pub fn start(size: usize, executors: &[&str], extra: &[&str]) -> Self {
        let mut cluster = Self::prepare(size, executors, extra);
        for id in 1..=size as u64 {
            cluster.restart(id);
        }
        cluster
    }

    /// Ports and data directories for `size` nodes, none started yet (a
    /// test can seed a data directory first, then [`restart`](Self::restart)).
    pub fn prepare(size: usize, executors: &[&str], extra: &[&str]) -> Self {
        let ports: Vec<(u16, u16)> = (0..size).map(|_| (free_port(), free_port())).collect();
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            ports,
            nodes: (0..size).map(|_| None).collect(),
            joined: vec![false; size],
            executors: executors.iter().map(|e| e.to_string()).collect(),
            extra: extra.iter().map(|e| e.to_string()).collect(),
            token: extra
                .windows(2)
                .find(|pair| pair[0] == "--admin-token")
                .map(|pair| pair[1].to_string()),
        }
    }

    fn peers(&self) -> String {
        self.ports
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.joined[*i])
            .map(|(i, (_, raft))| format!("{}=127.0.0.1:{raft}", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts one more node that asks node 1 to add it; returns its id.
    pub fn join(&mut self) -> u64 {
        self.ports.push((free_port(), free_port()));
        self.nodes.push(None);
        self.joined.push(true);
        let id = self.nodes.len() as u64;
        self.restart(id);
        id
    }

    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node{id}"))
    }

    /// (Re)starts node `id` on its ports and data directory.
    pub fn restart(&mut self, id: u64) {
        self.restart_with_env(id, &[]);
    }

    /// [`restart`](Self::restart) with environment variables set, e.g.
    /// `[("FAILPOINTS", "NAME=return")]` to arm a kill point.
    pub fn restart_with_env(&mut self, id: u64, env: &[(&str, &str)]) {
        let (http, raft) = self.ports[(id - 1) as usize];
        let (node_id, raft_addr, peers) =
            (id.to_string(), format!("127.0.0.1:{raft}"), self.peers());
        let join = format!("http://127.0.0.1:{}", self.ports[0].0);
        let mut args = vec!["--node-id", node_id.as_str(), "--raft", raft_addr.as_str()];
        if self.joined[(id - 1) as usize] {
            args.extend(["--join", join.as_str()]);
        } else {
            args.extend(["--peers", peers.as_str()]);
        }
        args.extend(self.extra.iter().map(String::as_str));
        let executors: Vec<&str> = self.executors.iter().map(String::as_str).collect();
        let proc = server_with_env(
            &self.data_dir(id),
            &format!("127.0.0.1:{http}"),
            &executors,
            &args,
            env,
        );
        self.nodes[(id - 1) as usize] = Some(proc);
    }

    /// SIGTERM node `id` and wait for it to exit; its exit code.
    pub fn terminate(&mut self, id: u64) -> Option<i32> {
        self.nodes[(id - 1) as usize]
            .take()
            .and_then(|proc| proc.terminate(Duration::from_secs(20)))
    }

    /// SIGKILL node `id`.
    pub fn kill(&mut self, id: u64) {
        if let Some(proc) = self.nodes[(id - 1) as usize].take() {
            proc.kill9();
        }
    }

    /// SIGKILL node `id` and remove its data directory: a node that lost
    /// its disk. [`restart`](Self::restart) starts it empty.
    pub fn wipe(&mut self, id: u64) {
        self.kill(id);
        let dir = self.data_dir(id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .unwrap_or_else(|e| panic!("remove {}: {e}", dir.display()));
        }
    }

    /// The process id of node `id`, while the fixture holds its process.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.nodes[(id - 1) as usize].as_ref().map(Proc::pid)
    }

    /// How node `id` exited by itself (e.g. at a kill point), or `None`
    /// while it runs. Its process stays held, so its log stays readable,
    /// until it is restarted or killed.
    pub fn exit_status(&mut self, id: u64) -> Option<ExitStatus> {
        self.nodes[(id - 1) as usize]
            .as_mut()
            .and_then(Proc::exit_status)
    }

    /// The log lines node `id`'s current process has written so far.
    pub fn log_lines(&self, id: u64) -> Vec<String> {
        self.nodes[(id - 1) as usize]
            .as_ref()
            .map(Proc::log_lines)
            .unwrap_or_default()
    }

    /// `GET /v1/cluster` on node `id`, which must answer 200.
    pub async fn status(&self, id: u64) -> Value {
        let (status, body) = self.api(id).get("/v1/cluster").await;
        assert_eq!(
            status,
            StatusCode::OK,
            "GET /v1/cluster on node {id}: {body}"
        );
        body
    }

    /// The Raft address of node `id`, as node `id`'s `GET /v1/cluster`
    /// lists it.
    pub async fn raft_addr(&self, id: u64) -> String {
        let status = self.status(id).await;
        status["members"]
            .as_array()
            .and_then(|members| {
                members
                    .iter()
                    .find(|m| m["node_id"].as_u64() == Some(id))
                    .and_then(|m| m["raft_addr"].as_str())
            })
            .unwrap_or_else(|| panic!("node {id}'s raft address in {status}"))
            .to_string()
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.nodes[(id - 1) as usize].is_some()
    }

    pub fn api(&self, id: u64) -> Api {
        let api = Api::new(format!(
            "http://127.0.0.1:{}",
            self.ports[(id - 1) as usize].0
        ));
        match &self.token {
            Some(token) => api.with_token(token),
            None => api,
        }
    }

    /// Ids of the running nodes.
    pub fn running(&self) -> Vec<u64> {
        (1..=self.nodes.len() as u64)
            .filter(|id| self.is_running(*id))
            .collect()
    }

    /// A running node other than `leader`.
    pub fn follower_of(&self, leader: u64) -> u64 {
        self.running()
            .into_iter()
            .find(|id| *id != leader)
            .expect("a running node besides the leader")
    }

    /// The leader every running node agrees on, once there is one.
    pub async fn leader(&self) -> u64 {
        wait::until(
            "a leader all running nodes agree on",
            Duration::from_secs(20),
            || async {
                let mut seen = None;
                for id in self.running() {
                    let (status, body) = self.api(id).get("/v1/cluster").await;
                    let leader = body["leader_id"].as_u64().filter(|_| status.is_success())?;
                    if seen.is_some_and(|s| s != leader) || !self.is_running(leader) {
                        return None;
                    }
                    seen = Some(leader);
                }
                seen
            },
        )
        .await
    }

    /// Creates small jobs `PREFIX-N` through the leader until the
    /// leader's log starts after entry `index + 1` (it compacted away the
    /// first entry a node that applied `index` still needs), so such a
    /// node can only catch up by a snapshot. Gives up after `limit`; the
    /// jobs it created.
    pub async fn write_until_compacted_past(
        &self,
        index: u64,
        prefix: &str,
        limit: Duration,
    ) -> BTreeMap<String, ParamsDigest> {
        let deadline = std::time::Instant::now() + limit;
        let mut created = BTreeMap::new();
        loop {
            let leader = self.leader().await;
            let status = self.status(leader).await;
            let start = status["log_start_index"].as_u64().unwrap_or_default();
            if start > index + 1 {
                return created;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "after {limit:?} and {} more jobs the leader's log still starts at {start}, \
                 not after {index} + 1: {status}",
                created.len()
            );
            let api = self.api(leader);
            for _ in 0..10 {
                let id = format!("{prefix}-{}", created.len());
                let digest = create_small_job(&api, &id).await;
                created.insert(id, digest);
            }
        }
    }

    /// Waits until node `id` has applied at least `index`.
    pub async fn caught_up(&self, id: u64, index: u64) -> Value {
        self.caught_up_within(id, index, Duration::from_secs(30))
            .await
    }

    /// [`caught_up`](Self::caught_up) with a deadline of `limit`, for a
    /// node that has much to catch up.
    pub async fn caught_up_within(&self, id: u64, index: u64, limit: Duration) -> Value {
        wait::until(
            &format!("node {id} to apply index {index}"),
            limit,
            || async {
                let (_, body) = self.api(id).get("/v1/cluster").await;
                (body["applied_index"].as_u64()? >= index).then_some(body)
            },
        )
        .await
    }
}

/// What a test knows of a job's `params` without keeping them: length and
/// an FNV-1a hash.
pub type ParamsDigest = (usize, u64);

fn params_digest(params: &str) -> ParamsDigest {
    let hash = params.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (params.len(), hash)
}

/// Jobs created by [`grow_state`]: id → digest of their params, and the
/// bytes of the request bodies that created them.
#[derive(Debug, Default)]
pub struct Grown {
    pub jobs: BTreeMap<String, ParamsDigest>,
    pub body_bytes: u64,
}

/// `params` of each job [`grow_state`] creates: just under the 64 KiB
/// limit.
pub const BULK_PARAMS_BYTES: usize = 60 * 1024;
/// Jobs per `POST /v1/jobs` array (one Raft entry of about 2 MiB).
const BULK_JOBS_PER_REQUEST: usize = 32;

/// Makes the replicated state grow by at least `bytes`: creates jobs
/// named `PREFIX-N` with [`BULK_PARAMS_BYTES`] of pseudo-random `params`
/// (from `seed`; not compressible), disabled and `@manual` so none ever
/// fires, by arrays of [`BULK_JOBS_PER_REQUEST`] through `api`. Retries
/// while the cluster answers 503 (an election).
/// The member ids a `GET /v1/cluster` answer lists, in order.
pub fn member_ids(status: &Value) -> Vec<u64> {
    let mut ids: Vec<u64> = status["members"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["node_id"].as_u64()).collect())
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

pub async fn grow_state(api: &Api, prefix: &str, bytes: u64, seed: u64) -> Grown {
    let mut rng = seed | 1;
    let mut grown = Grown::default();
    let mut n = 0usize;
    while grown.body_bytes < bytes {
        let mut batch = Vec::with_capacity(BULK_JOBS_PER_REQUEST);
        for _ in 0..BULK_JOBS_PER_REQUEST {
            let params: String = (0..BULK_PARAMS_BYTES)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    const CHARS: &[u8] =
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
                    CHARS[(rng % CHARS.len() as u64) as usize] as char
                })
                .collect();
            let id = format!("{prefix}-{n}");
            n += 1;
            grown.jobs.insert(id.clone(), params_digest(&params));
            batch.push(json!({
                "id": id, "schedule": "@manual", "enabled": false,
                "target": {"type": "shell", "command": "true"},
                "params": params,
            }));
        }
        let body = Value::Array(batch).to_string().into_bytes();
        grown.body_bytes += body.len() as u64;
        create_all_or_none(api, body).await;
    }
    grown
}

/// Creates a small job (disabled, `@manual`) named `id`; its digest.
pub async fn create_small_job(api: &Api, id: &str) -> ParamsDigest {
    let job = json!({"id": id, "schedule": "@manual", "enabled": false,
        "target": {"type": "shell", "command": "true"}});
    create_all_or_none(api, job.to_string().into_bytes()).await;
    params_digest("")
}

/// `POST /v1/jobs` with `body` until it is acknowledged: 201, or 409 for a
/// retry whose first try was applied though its answer was lost.
async fn create_all_or_none(api: &Api, body: Vec<u8>) {
    wait::until(
        "a job create to be acknowledged",
        Duration::from_secs(60),
        || async {
            let (status, answer) = api
                .raw(
                    reqwest::Method::POST,
                    "/v1/jobs",
                    "application/json",
                    body.clone(),
                )
                .await;
            match status {
                StatusCode::CREATED | StatusCode::CONFLICT => Some(()),
                StatusCode::SERVICE_UNAVAILABLE => None,
                other => panic!("POST /v1/jobs: {other} {answer}"),
            }
        },
    )
    .await
}

/// Every job node `api` serves (read locally, a page of 100 at a time):
/// id → digest of its params.
pub async fn job_digests(api: &Api) -> BTreeMap<String, ParamsDigest> {
    let mut jobs = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/jobs?limit=100&cursor={cursor}"),
            None => "/v1/jobs?limit=100".to_string(),
        };
        let (status, body) = api.get(&path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        for job in body["items"].as_array().expect("items") {
            let id = job["id"].as_str().expect("a job id").to_string();
            let params = job["params"].as_str().unwrap_or_default();
            jobs.insert(id, params_digest(params));
        }
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return jobs,
        }
    }
}
