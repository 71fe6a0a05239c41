//! All the wiring of a scheduler node, top to bottom: storage, the log,
//! the actors, the executors it knows and the admin API.

use std::{future::Future, net::TcpListener, sync::Arc};

use actix::{Actor, AsyncContext, Context};
use actors::{
    clock::{SharedClock, TokioClock},
    dispatcher::{Dispatcher, DispatcherCore, DispatcherLinks, Transport},
    http_client::build_client,
    job_store::JobStore,
    log_sink::LogSink,
    messages::{Leadership, SetExecutors},
    proposer::Proposer,
    router::{ExecutorEntry, Router, RouterCore},
    store::{local_log::LocalLog, StateMachine},
    trigger::Trigger,
};
use anyhow::Context as _;

use crate::{
    api::{self, AppState},
    config::NodeConfig,
    executor::{self, ExecutorConfig, RunningExecutor},
};

/// A started node.
pub struct RunningNode {
    /// Base URL of the admin API.
    pub api_url: String,
    pub store: Arc<StateMachine>,
    server: actix_web::dev::ServerHandle,
    builtin_executor: Option<RunningExecutor>,
}

impl RunningNode {
    /// Stops serving, stops the built-in executor and flushes storage.
    pub async fn stop(self) {
        self.server.stop(true).await;
        if let Some(executor) = self.builtin_executor {
            executor.stop().await;
        }
        if let Err(e) = self.store.flush() {
            tracing::error!(error = %e, "final flush failed");
        }
    }
}

/// Runs a node until `shutdown` resolves.
pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let node = start(config).await?;
    // One line on stdout, so scripts and tests learn the bound port.
    println!("cronmesh node serving on {}", node.api_url);
    let _ = std::io::Write::flush(&mut std::io::stdout());
    shutdown.await;
    tracing::info!("shutting down");
    node.stop().await;
    Ok(())
}

/// Starts a node on the current actix System and returns once it serves.
pub async fn start(config: NodeConfig) -> anyhow::Result<RunningNode> {
    let clock: SharedClock = Arc::new(TokioClock::new());

    // Storage and the log every metadata change goes through.
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let store = Arc::new(
        StateMachine::open(&config.data_dir.join("state"), config.history_limit)
            .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?,
    );
    let (applied_tx, applied_rx) = tokio::sync::mpsc::unbounded_channel();
    let proposer: Arc<dyn Proposer> = Arc::new(LocalLog::start(
        store.clone(),
        applied_tx,
        config.durability,
    ));

    // The admin API's address comes first: executors report to it.
    let listener = TcpListener::bind(config.http)
        .with_context(|| format!("cannot listen on {}", config.http))?;
    let bound = listener.local_addr()?;
    let api_url = config
        .advertise_url
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"));

    // Executors known without gossip.
    let builtin_executor = if config.builtin_executor {
        let mut exec_config =
            ExecutorConfig::new(protocol::job::DEFAULT_GROUP, "127.0.0.1:0".parse()?);
        exec_config.secret = config.secret.clone();
        let started = executor::start(exec_config).await;
        Some(started.context("cannot start the built-in executor")?)
    } else {
        None
    };
    let mut executors: Vec<ExecutorEntry> = config
        .executors
        .iter()
        .map(|e| entry(&e.group, &e.endpoint))
        .collect();
    if let Some(builtin) = &builtin_executor {
        executors.push(entry(protocol::job::DEFAULT_GROUP, &builtin.endpoint));
    }

    // The actors. Router and Dispatcher talk both ways, so the Router's
    // address exists before it starts.
    let log_sink = LogSink::new(
        proposer.clone(),
        config.timings.log_max_batch,
        config.timings.log_linger,
    )
    .start();
    let router_ctx = Context::<Router>::new();
    let router_addr = router_ctx.address();
    let transport = Transport {
        client: build_client(),
        secret: config.secret.clone().map(Arc::new),
    };
    let dispatcher = Dispatcher::new(
        DispatcherCore::new(
            clock.clone(),
            vec![api_url.clone()],
            config.timings.run_grace,
        ),
        proposer.clone(),
        store.clone(),
        transport,
        DispatcherLinks {
            log_sink: log_sink.clone().recipient(),
            router: router_addr.clone().recipient(),
            load: router_addr.clone().recipient(),
        },
        config.timings.dispatcher_tick,
    )
    .start();
    let router = router_ctx.run(Router::new(
        RouterCore::new(config.seed),
        store.clone(),
        clock.clone(),
        dispatcher.clone().recipient(),
    ));
    router.do_send(SetExecutors(executors));
    let trigger = Trigger::new(
        store.clone(),
        clock.clone(),
        router.clone().recipient(),
        config.timings.catch_up_limit,
    )
    .start();
    let job_store = JobStore::new(
        proposer.clone(),
        applied_rx,
        vec![trigger.clone().recipient()],
    )
    .start();

    // A single node is always its own leader.
    dispatcher.do_send(Leadership(true));
    trigger.do_send(Leadership(true));

    // The admin API.
    let state = AppState {
        node_id: config.node_id,
        api_url: api_url.clone(),
        store: store.clone(),
        job_store,
        router,
        dispatcher,
        clock,
        http: build_client(),
        secret: config.secret.clone().map(Arc::new),
    };
    let server = api::serve(state, listener)?;
    let handle = server.handle();
    actix::spawn(server);
    tracing::info!(%api_url, node_id = config.node_id, "scheduler node serving");
    Ok(RunningNode {
        api_url,
        store,
        server: handle,
        builtin_executor,
    })
}

fn entry(group: &str, endpoint: &str) -> ExecutorEntry {
    ExecutorEntry {
        id: endpoint.to_string(),
        group: group.to_string(),
        endpoint: endpoint.to_string(),
        weight: 1,
        labels: Default::default(),
        handlers: Vec::new(),
    }
}
