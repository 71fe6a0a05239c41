//! The executor agent (`cronmesh executor`, the built-in one of `dev`, and
//! executors embedded in Rust services through [`Executor::builder`]).
//!
//! It takes runs from schedulers over HTTP (`POST /v1/dispatch`), runs
//! each at most once per run id (invariant 6), kills what outlives its
//! timeout (invariant 5) and reports every run's end to a scheduler until
//! one acknowledges it.
//!
//! - [`config`]: command-line flags and the configuration they become.
//! - `builder`: [`Executor::builder`], the embedding API over the config.
//! - `handlers`: in-process handlers by name, their context and their calls.
//! - `http`: the routes and their error bodies.
//! - `agent`: the core the routes call: admission, execution, kills.
//! - `runs`: the run table, running and recently finished runs by id.
//! - `process`: `sh -c` in its own process group, output capture, killing.
//! - `sandbox`: what a shell run sees of the executor: an allowlisted
//!   environment, and the `--run-as` user.
//! - `forward`: handler tasks forwarded to a local service (when no
//!   in-process handler has the name).
//! - `gossip`: announcing this executor to the schedulers, fencing, and
//!   the leader terms the schedulers gossip.
//! - `fence`: the newest leader term seen; requests of older terms come
//!   from deposed leaders and are refused.
//! - `data_dir`, `state`: `--data-dir`, what survives a restart.
//! - `ledger`, `orphans`, `procfs`: records of shell runs until their final
//!   report is taken, and the runs a crash left behind: killed and
//!   reported at the next start, or, finished, reported again.
//! - `reporter`: delivering run reports with retries.
//! - `report_frames`: batching reports bound for the same scheduler.
//! - `receipts`: `--receipts FILE`, one line per run admitted as new.
//! - `output`: the bounded tail of a run's output.
//! - `tasks`: background tasks, drained on shutdown.

use std::{future::Future, io::Write, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;

mod agent;
mod builder;
pub mod config;
mod data_dir;
mod fence;
mod forward;
mod gossip;
mod handlers;
mod http;
mod ledger;
mod orphans;
mod output;
mod process;
mod procfs;
mod receipts;
mod report_frames;
mod reporter;
mod runs;
mod sandbox;
mod state;
mod tasks;

pub use builder::{Executor, ExecutorBuilder};
pub use config::{ExecutorArgs, ExecutorConfig};
pub use handlers::{
    Cancellation, HandlerContext, HandlerFn, HandlerOutcome, HandlerOutput, HandlerRegistry,
    ShardInfo, NOOP_HANDLER,
};
pub use orphans::{ENDED_UNSEEN, KILLED_AT_RESTART, STOPPED_STARTING};
pub use receipts::Receipts;

use agent::Agent;
use state::AgentState;

/// How long a stopping agent gives undelivered final reports.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A started agent. Dropping it leaves the server running until the
/// runtime ends; call [`RunningExecutor::stop`] to stop it cleanly.
pub struct RunningExecutor {
    /// The URL schedulers reach this agent at: the advertise URL, or
    /// `http://IP:PORT` of the bound address.
    pub endpoint: String,
    /// The bound address (the real port when the config asked for 0).
    pub addr: SocketAddr,
    /// The handler names announced, sorted (as `/v1/info` lists them): the
    /// in-process ones and those `--forward` serves (`*`: any).
    pub handlers: Vec<String>,
    agent: Arc<Agent>,
    /// This executor's place in the gossip, when it joined one.
    membership: Option<membership::Membership>,
    server: actix_web::dev::ServerHandle,
    server_task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl RunningExecutor {
    /// Runs in progress (for the `running` gossip key).
    pub fn running_count(&self) -> usize {
        self.agent.running_count()
    }

    /// The newest leader term this executor has seen.
    pub fn term(&self) -> u64 {
        self.agent.term()
    }

    /// Stops serving, kills running processes (their runs are reported as
    /// failed, so retry policies apply) and waits a few seconds for final
    /// reports to be delivered.
    pub async fn stop(mut self) {
        if let Some(membership) = self.membership.take() {
            membership.shutdown().await;
        }
        // Runs here may finish; kills and status requests are still served.
        let drain = self.agent.config().drain_timeout;
        let left = self.agent.drain(drain).await;
        if left > 0 {
            tracing::warn!(
                runs = left,
                "drain time is up; killing the runs still running"
            );
        }
        self.server.stop(true).await;
        if let Some(task) = self.server_task.take() {
            log_server_end(task.await);
        }
        self.agent.shutdown(STOP_GRACE).await;
        if let Some(receipts) = &self.agent.config().receipts {
            receipts.flush();
        }
        tracing::info!(endpoint = %self.endpoint, "executor stopped");
    }
}

fn log_server_end(result: Result<std::io::Result<()>, tokio::task::JoinError>) {
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!("the executor HTTP server failed: {e}"),
        Err(e) => tracing::error!("the executor HTTP server task ended abnormally: {e}"),
    }
}

/// Binds, starts serving on the current runtime and returns at once.
/// Processes and report deliveries run on the current runtime too.
pub async fn start(config: ExecutorConfig) -> anyhow::Result<RunningExecutor> {
    config.validate()?;
    // First: a data directory another executor holds stops the start.
    let state = AgentState::open(config.data_dir.as_deref())?;
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let endpoint = endpoint_for(&config, addr);
    let handlers = config.announced_handlers();
    if let Some(receipts) = &config.receipts {
        receipts.spawn_flusher();
    }
    tracing::info!(
        endpoint = %endpoint,
        group = %config.group,
        signed = config.secret.is_some(),
        handlers = ?handlers,
        "executor listening on {addr}"
    );
    let client =
        actors::http_client::build_client(&config.tls.trusted).map_err(anyhow::Error::msg)?;
    let tls = config.tls.server.clone();
    let agent = Agent::new(
        config,
        endpoint.clone(),
        client,
        tokio::runtime::Handle::current(),
        state,
    );
    // Before serving, so a run dispatched again is known as ended.
    let left = orphans::end_left_behind(&agent)?;
    if left.ended > 0 {
        tracing::warn!(
            runs = left.ended,
            "ended runs an earlier life of this executor left behind; reporting them failed"
        );
    }
    if left.finished > 0 {
        tracing::info!(
            runs = left.finished,
            "reporting again runs an earlier life of this executor finished without a \
             scheduler taking their final report"
        );
    }
    let server = http::server(agent.clone(), listener, tls)
        .with_context(|| format!("cannot serve on {addr}"))?;
    let handle = server.handle();
    let server_task = tokio::spawn(server);
    let membership = match &agent.config().gossip {
        Some(settings) => {
            let mut me =
                membership::ExecutorInfo::new(agent.config().group.clone(), endpoint.clone());
            me.handlers = handlers.clone();
            me.weight = agent.config().weight;
            me.max_concurrent = agent.config().max_concurrent;
            me.labels = agent.config().labels.clone();
            Some(gossip::join(&settings.clone(), agent.clone(), me).await?)
        }
        None => None,
    };
    Ok(RunningExecutor {
        endpoint,
        addr,
        handlers,
        agent,
        membership,
        server: handle,
        server_task: Some(server_task),
    })
}

/// The `cronmesh executor` process: starts, prints
/// `cronmesh executor listening on {endpoint}` on stdout, serves until
/// `shutdown` resolves (or the server fails), then stops.
pub async fn run(config: ExecutorConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let mut running = start(config).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "cronmesh executor listening on {}",
            running.endpoint
        )?;
        stdout.flush()?;
    }
    let mut failure = None;
    if let Some(mut task) = running.server_task.take() {
        tokio::select! {
            () = shutdown => running.server_task = Some(task),
            result = &mut task => {
                failure = Some(match result {
                    Ok(Ok(())) => anyhow::anyhow!("the executor HTTP server stopped unexpectedly"),
                    Ok(Err(e)) => anyhow::Error::new(e).context("the executor HTTP server failed"),
                    Err(e) => anyhow::Error::new(e).context("the executor HTTP server task failed"),
                });
            }
        }
    }
    running.stop().await;
    failure.map_or(Ok(()), Err)
}

/// The advertise URL, else the bound address (loopback when bound to
/// every interface, which is no address a scheduler could use).
fn endpoint_for(config: &ExecutorConfig, addr: SocketAddr) -> String {
    if let Some(advertise) = &config.advertise {
        return advertise.trim_end_matches('/').to_string();
    }
    let mut shown = addr;
    if addr.ip().is_unspecified() {
        let loopback = match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        };
        shown.set_ip(loopback);
        tracing::warn!(
            "listening on {addr} without --advertise: announcing {shown}, which only this \
             host can reach; pass --advertise URL for other hosts"
        );
    }
    format!("{}://{shown}", config.tls.scheme())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_prefers_advertise_and_avoids_unspecified() -> anyhow::Result<()> {
        let mut config = ExecutorConfig::new("default", "0.0.0.0:0".parse()?);
        assert_eq!(
            endpoint_for(&config, "0.0.0.0:7080".parse()?),
            "http://127.0.0.1:7080"
        );
        assert_eq!(
            endpoint_for(&config, "10.0.0.5:7080".parse()?),
            "http://10.0.0.5:7080"
        );
        config.advertise = Some("http://exec-1.internal:7080/".into());
        assert_eq!(
            endpoint_for(&config, "0.0.0.0:7080".parse()?),
            "http://exec-1.internal:7080"
        );
        Ok(())
    }
}
