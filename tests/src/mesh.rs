//! A scheduler with a gossip port of its own, and `cronmesh executor`
//! processes that join it: the fixture of the tests of membership and
//! routing.

use std::{collections::BTreeSet, time::Duration};

use serde_json::{json, Value};

use crate::{
    api::Api,
    cluster::free_port,
    process::{executor_with, server_with, Proc},
    wait,
};

/// A scheduler with a gossip port, and executors that join it.
pub struct Mesh {
    pub api: Api,
    /// The scheduler's gossip address, the executors' seed.
    pub gossip: String,
    /// A gossip cluster of its own, so meshes of parallel tests never meet.
    pub cluster: String,
    /// The scheduler; a test may take it to stop it.
    pub server: Option<Proc>,
    /// Holds the scheduler's data; scratch space for the test too.
    pub dir: tempfile::TempDir,
}

impl Mesh {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A mesh whose scheduler gets `extra` flags too (e.g. `--secret-file`).
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let gossip = format!("127.0.0.1:{}", free_port());
        let cluster = format!("test-{}", free_port());
        let mut args = vec!["--gossip", &gossip, "--gossip-cluster", &cluster];
        args.extend_from_slice(extra);
        let server = server_with(&dir.path().join("data"), "127.0.0.1:0", &[], &args);
        Self {
            api: Api::new(server.url.clone()),
            gossip,
            cluster,
            server: Some(server),
            dir,
        }
    }

    /// An executor of group `default` that joins this mesh, with `extra`
    /// flags.
    pub fn executor(&self, extra: &[&str]) -> Proc {
        let mut args = vec![
            "--seeds",
            self.gossip.as_str(),
            "--gossip-cluster",
            self.cluster.as_str(),
        ];
        args.extend_from_slice(extra);
        executor_with("default", &args)
    }

    /// Waits until the scheduler sees exactly these executors alive.
    pub async fn sees_alive(&self, endpoints: &[&str]) {
        let want: BTreeSet<String> = endpoints.iter().map(|e| e.to_string()).collect();
        wait::until(
            &format!("executors {want:?} alive"),
            Duration::from_secs(20),
            || async {
                let (_, list) = self.api.get("/v1/executors").await;
                let alive: BTreeSet<String> = list
                    .as_array()?
                    .iter()
                    .filter(|e| e["alive"] == true)
                    .map(|e| e["endpoint"].as_str().unwrap_or_default().to_string())
                    .collect();
                (alive == want).then_some(())
            },
        )
        .await
    }

    /// Triggers the job `times` times.
    pub async fn trigger(&self, job: &str, times: usize) {
        for _ in 0..times {
            let (status, body) = self
                .api
                .post(&format!("/v1/jobs/{job}/trigger"), json!({}))
                .await;
            assert_eq!(
                status,
                reqwest::StatusCode::ACCEPTED,
                "trigger {job}: {body}"
            );
        }
    }

    /// Waits until `count` runs of the job have ended; returns them.
    pub async fn ended_runs(&self, job: &str, count: usize) -> Vec<Value> {
        wait::until(
            &format!("{count} runs of {job} to end"),
            Duration::from_secs(30),
            || async {
                let runs = self.api.runs_of(job).await;
                let ended = runs
                    .iter()
                    .filter(|r| !matches!(r["status"].as_str(), Some("pending" | "running")))
                    .count();
                (runs.len() >= count && ended == runs.len()).then_some(runs)
            },
        )
        .await
    }
}
