//! All the wiring of a scheduler node, top to bottom: storage, the log,
//! the actors, the executors it knows and the admin API.

use std::{future::Future, net::TcpListener, sync::Arc};

use actix::{Actor, AsyncContext, Context};
use actors::{
    backlog::Backlog,
    clock::{SharedClock, TokioClock},
    dispatcher::{Dispatcher, DispatcherCore, DispatcherLinks, Transport},
    http_client::{build_client, build_client_with_token},
    job_store::JobStore,
    lease::Lease,
    log_sink::LogSink,
    messages::{Leadership, SetExecutors, SetReportTo},
    proposer::Proposer,
    router::{ExecutorEntry, Router, RouterCore},
    store::{local_log::LocalLog, StateMachine},
    trigger::{Trigger, TriggerCore},
};
use anyhow::{bail, Context as _};
use tokio::sync::watch;

/// sled's page cache (its default is 1 GiB).
const SLED_CACHE_BYTES: u64 = 128 * 1024 * 1024;
/// The snapshot point (index and term) a cluster seeded from a restored
/// backup starts its log after.
const RESTORED_POINT: u64 = 1;
/// The token a node presents to other nodes' admin APIs (joining).
fn admin_token(tokens: &[(crate::tokens::Scope, String)]) -> Option<&str> {
    tokens
        .iter()
        .find(|(scope, _)| *scope == crate::tokens::Scope::Admin)
        .map(|(_, token)| token.as_str())
}

/// How long a stopping leader waits for another node to take over.
const HANDOVER_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long stopping waits for the last flush of the store.
const FINAL_FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(3);

use protocol::{
    api::{ClusterStatus, MemberRequest},
    meta::NodeInfo,
    replay::ReplayCache,
    signature::DEFAULT_REPLAY_WINDOW_SECS,
    signing::{Signer, Verifier},
    MetaCommand,
};

use membership::{Member, Membership, MembershipConfig, SchedulerInfo};

use crate::{
    api::{self, AppState},
    config::{NodeConfig, RaftSettings},
    consensus::Consensus,
    discovery,
    disk::{self, guard::GuardedProposer},
    events::{self, publisher::EventPublisher, EventFeed},
    executor::{self, ExecutorConfig, RunningExecutor},
    metrics::{recorder::MetricsRecorder, timed_proposer::TimedProposer, Metrics},
    raft::{
        engine::{self, EngineConfig, EngineHandle},
        proposer::RaftProposer,
        snapshot::{builder::SnapshotBuilder, files::SnapshotDir},
        storage::RaftStorage,
        transport::RaftTransport,
    },
};

/// A started node.
pub struct RunningNode {
    /// Base URL of the admin API.
    pub api_url: String,
    pub store: Arc<StateMachine>,
    server: actix_web::dev::ServerHandle,
    events: EventFeed,
    /// To hand leadership over before stopping.
    consensus: Consensus,
    builtin_executor: Option<RunningExecutor>,
    /// A wedged store makes the leadership handover and the last flush
    /// pointless: stopping skips or bounds them.
    disk: disk::DiskHandle,
}

impl RunningNode {
    /// Hands leadership to another node if this one leads (so no slot
    /// waits for an election), then stops serving, stops the built-in
    /// executor and flushes storage. Runs in flight keep going on their
    /// executors, which report to the other nodes.
    pub async fn stop(self) {
        let wedged = self.disk.status().state == protocol::api::StorageState::Stalled;
        if let (Consensus::Raft(engine), false) = (&self.consensus, wedged) {
            match engine.transfer_leadership(HANDOVER_LIMIT).await {
                Ok(Some(to)) => tracing::info!(to, "leadership handed over"),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not hand leadership over; stopping anyway")
                }
            }
        }
        self.events.close();
        self.server.stop(true).await;
        if let Some(executor) = self.builtin_executor {
            executor.stop().await;
        }
        // A store wedged by a full disk never finishes its flush: the node
        // stops anyway (what was acknowledged is durable already).
        let store = self.store.clone();
        let flushed = tokio::task::spawn_blocking(move || store.flush());
        match tokio::time::timeout(FINAL_FLUSH_LIMIT, flushed).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "final flush failed"),
            Ok(Err(e)) => tracing::error!(error = %e, "final flush failed"),
            Err(_) => tracing::error!(
                "final flush did not finish in {} s (storage stalled); stopping without it",
                FINAL_FLUSH_LIMIT.as_secs()
            ),
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

    // Storage: one sled database for the state machine and the Raft log.
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let db = open_database(&config.data_dir.join("state"))
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    let store = Arc::new(StateMachine::with_db(db.clone(), config.history.clone())?);
    let (applied_tx, applied_rx) = tokio::sync::mpsc::unbounded_channel();

    // The admin API's address comes first: executors report to it.
    let listener = TcpListener::bind(config.http)
        .with_context(|| format!("cannot listen on {}", config.http))?;
    let bound = listener.local_addr()?;
    let api_url = config
        .advertise_url
        .clone()
        .unwrap_or_else(|| format!("{}://{bound}", config.tls.scheme()));

    // Gossip binds before any actor starts, so a port in use stops the
    // node before there is anything to stop.
    let joined_gossip = match &config.gossip {
        Some(gossip) => {
            let me = Member::Scheduler(SchedulerInfo {
                node_id: config.node_id,
                api_url: api_url.clone(),
                // A node without Raft has no Raft port to announce.
                raft_addr: config
                    .raft
                    .as_ref()
                    .map_or_else(|| "none".to_string(), |r| r.listen.to_string()),
                leader: false,
                // `discovery::announce_leadership` keeps it current.
                term: 0,
            });
            let name = format!("scheduler-{}", config.node_id);
            let mut membership_config =
                MembershipConfig::new(name, gossip.listen).with_seeds(gossip.seeds.clone());
            membership_config.cluster_id = gossip.cluster.clone();
            // With the cluster secret, announcements are signed and only
            // verified executors are routed to (docs/ARCHITECTURE.md).
            if let Some(secret) = &config.secret {
                membership_config = membership_config.with_secret(secret);
            }
            Some((Membership::start(membership_config, me.clone()).await?, me))
        }
        None => None,
    };

    // The log every metadata change goes through: local, or Raft.
    let (proposer, consensus): (Arc<dyn Proposer>, Consensus) = match &config.raft {
        None => (
            Arc::new(LocalLog::start(
                store.clone(),
                applied_tx,
                config.durability,
            )),
            Consensus::Local {
                node_id: config.node_id,
                api_url: api_url.clone(),
            },
        ),
        Some(settings) => {
            let (engine, transport, joining) =
                start_raft(&config, settings, &db, &store, applied_tx).await?;
            if let (true, Some(url)) = (joining, &settings.join) {
                let me = NodeInfo {
                    node_id: config.node_id,
                    api_url: api_url.clone(),
                    raft_addr: settings.listen.to_string(),
                };
                let http =
                    build_client_with_token(admin_token(&config.tokens), &config.tls.trusted)
                        .map_err(anyhow::Error::msg)?;
                actix::spawn(join_cluster(http, url.clone(), me, transport));
            }
            let proposer = RaftProposer {
                engine: engine.clone(),
            };
            (Arc::new(proposer), Consensus::Raft(engine))
        }
    };

    // Every proposal is timed for /metrics.
    let metrics = Metrics::new();
    let proposer: Arc<dyn Proposer> = Arc::new(TimedProposer {
        inner: proposer,
        metrics: metrics.clone(),
    });
    // The disk's room decides what reaches the log: a write the disk has
    // no room for is refused before it could fill the disk.
    let disk = disk::monitor::start(
        disk::monitor::MonitorSettings {
            dir: config.data_dir.clone(),
            floor: config.min_free_space,
            start_over: config.start_over_when_wedged,
        },
        store.clone(),
        metrics.clone(),
    )
    .context("cannot start the disk monitor")?;
    let proposer: Arc<dyn Proposer> = Arc::new(GuardedProposer {
        inner: proposer,
        disk: disk.clone(),
        metrics: metrics.clone(),
    });
    if let Consensus::Raft(engine) = &consensus {
        actix::spawn(disk::monitor::hand_over_when_short(
            disk.clone(),
            engine.clone(),
        ));
    }

    // Executors known without gossip.
    let builtin_executor = if config.builtin_executor {
        let mut exec_config =
            ExecutorConfig::new(protocol::job::DEFAULT_GROUP, "127.0.0.1:0".parse()?);
        exec_config.secret = config.secret.clone();
        exec_config.v1 = config.v1;
        exec_config.tls.trusted = config.tls.trusted.clone();
        // Its run records live beside the node's, so a crashed `dev`
        // leaves no job process running unknown after it restarts.
        exec_config.data_dir = Some(config.data_dir.join("executor"));
        let handlers = exec_config.handlers.names();
        let started = executor::start(exec_config).await;
        Some((
            started.context("cannot start the built-in executor")?,
            handlers,
        ))
    } else {
        None
    };
    // An executor given by URL does not say which handlers it has: it is
    // taken to have any (a task for one it lacks fails there).
    let mut executors: Vec<ExecutorEntry> = config
        .executors
        .iter()
        .map(|e| {
            entry(
                &e.group,
                &e.endpoint,
                vec![protocol::dispatch::ANY_HANDLER.to_string()],
            )
        })
        .collect();
    let builtin_executor = builtin_executor.map(|(builtin, handlers)| {
        executors.push(entry(
            protocol::job::DEFAULT_GROUP,
            &builtin.endpoint,
            handlers,
        ));
        builtin
    });

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
    let http = build_client(&config.tls.trusted).map_err(anyhow::Error::msg)?;
    // Alone, the node is the whole cluster and its lease never ends.
    let lease = match &consensus {
        Consensus::Local { .. } => Arc::new(Lease::unbounded(consensus.leader_state().term)),
        Consensus::Raft(engine) => engine.lease.clone(),
    };
    let mailer = match &config.smtp {
        Some(smtp) => Some(actors::alerts::Mailer::new(smtp).map_err(|e| anyhow::anyhow!(e))?),
        None => None,
    };
    let run_watch = crate::cluster_watch::spawn(
        crate::cluster_watch::Watched {
            consensus: consensus.clone(),
            node_id: config.node_id,
            router: router_addr.clone(),
            store: store.clone(),
            clock: clock.clone(),
            run_grace: config.timings.run_grace,
        },
        &config.cluster_alerts,
        http.clone(),
        mailer.clone().map(Arc::new),
    );
    let transport =
        Transport::new(http.clone(), config.secret.clone(), config.v1, lease).with_mailer(mailer);
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
    router.do_send(SetExecutors(executors.clone()));
    // Fires on their way into the log: the trigger hands over no more.
    let backlog = Backlog::new(config.timings.trigger_backlog);
    let trigger = Trigger::new(
        TriggerCore::new(config.timings.catch_up_limit)
            .with_fire_ahead(config.timings.fire_ahead)
            .with_bursts(config.timings.burst_rate, config.timings.max_fire_ahead),
        store.clone(),
        clock.clone(),
        router.clone().recipient(),
        backlog.clone(),
    )
    .start();
    let events = EventFeed::new();
    let event_publisher = EventPublisher::new(events.clone()).start();
    let metrics_recorder = MetricsRecorder::new(metrics.clone()).start();
    let job_store = JobStore::new(
        proposer.clone(),
        applied_rx,
        [
            trigger.clone().recipient(),
            dispatcher.clone().recipient(),
            event_publisher.recipient(),
            metrics_recorder.recipient(),
        ]
        .into_iter()
        .chain(run_watch)
        .collect(),
    )
    .start();

    // Only a leader that has caught up dispatches, and it fires schedules
    // once gossip has had its chance to find the executors (the slots in
    // between are caught up by the misfire policy).
    let (discovered_tx, discovered) = watch::channel(config.gossip.is_none());
    match &consensus {
        Consensus::Local { .. } => {
            let term = consensus.leader_state().term;
            dispatcher.do_send(Leadership::leading(term));
            let trigger = trigger.clone();
            let mut discovered = discovered.clone();
            actix::spawn(async move {
                if discovered.wait_for(|d| *d).await.is_ok() {
                    trigger.do_send(Leadership::leading(term));
                }
            });
        }
        Consensus::Raft(engine) => {
            let mut leader = engine.leader.clone();
            let (dispatcher, trigger) = (dispatcher.clone(), trigger.clone());
            let (store, own_url) = (store.clone(), api_url.clone());
            let mut discovered = discovered.clone();
            actix::spawn(async move {
                loop {
                    let state = leader.borrow_and_update().clone();
                    let leading = state.ready_to_lead;
                    let firing = leading && *discovered.borrow_and_update();
                    let as_leader = |yes: bool| {
                        if yes {
                            Leadership::leading(state.term)
                        } else {
                            Leadership::following()
                        }
                    };
                    if leading {
                        // Reports reach this node first, any other if it is gone.
                        let others = store
                            .nodes()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|n| n.api_url);
                        let mut urls = vec![own_url.clone()];
                        urls.extend(others.filter(|u| *u != own_url));
                        dispatcher.do_send(SetReportTo(urls));
                    }
                    dispatcher.do_send(as_leader(leading));
                    trigger.do_send(as_leader(firing));
                    // Discovery settles once; without gossip it starts settled
                    // and its sender is gone, which must not end this loop.
                    let settled = async {
                        if discovered.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    };
                    let changed = tokio::select! {
                        changed = leader.changed() => changed,
                        () = settled => Ok(()),
                    };
                    if changed.is_err() {
                        break;
                    }
                }
            });
            let node = NodeInfo {
                node_id: config.node_id,
                api_url: api_url.clone(),
                raft_addr: config
                    .raft
                    .as_ref()
                    .map(|r| r.listen.to_string())
                    .unwrap_or_default(),
            };
            actix::spawn(register_node(proposer.clone(), node));
        }
    }

    // The admin API.
    // Executors (and schedulers) found by gossip.
    let membership = match joined_gossip {
        Some((membership, me)) => {
            let discovered_tx = Arc::new(discovered_tx);
            actix::spawn(discovery::discovery_deadline(discovered_tx.clone()));
            actix::spawn(discovery::follow_executors(
                membership.clone(),
                executors,
                router.clone(),
                dispatcher.clone(),
                discovered_tx,
            ));
            actix::spawn(discovery::announce_leadership(
                membership.clone(),
                me,
                consensus.clone(),
            ));
            Some(membership)
        }
        None => None,
    };

    actix::spawn(events::watcher::watch(
        events.clone(),
        metrics.clone(),
        consensus.clone(),
        router.clone(),
        membership.clone(),
    ));
    let state_consensus = consensus.clone();
    let state_disk = disk.clone();
    let state = AppState {
        membership,
        consensus,
        store: store.clone(),
        job_store,
        router,
        dispatcher,
        clock,
        http,
        secret: config.secret.clone().map(Arc::new),
        signer: config
            .secret
            .as_deref()
            .map(|secret| Arc::new(Signer::new(secret, config.v1))),
        report_verifier: config.secret.as_deref().map(|secret| {
            Arc::new(Verifier::new(
                secret,
                &api_url,
                config.v1,
                DEFAULT_REPLAY_WINDOW_SECS,
                ReplayCache::default(),
            ))
        }),
        events: events.clone(),
        stats: Default::default(),
        rate_limit: std::num::NonZeroU32::new(config.rate_limit)
            .map(|n| Arc::new(api::RateLimit::per_second(n))),
        metrics,
        backlog,
        tokens: (!config.tokens.is_empty()).then(|| Arc::new(api::Tokens::new(&config.tokens))),
        api_url: api_url.clone(),
        disk,
    };
    let server = api::serve(state, listener, config.tls.server.clone())?;
    let handle = server.handle();
    actix::spawn(server);
    tracing::info!(%api_url, node_id = config.node_id, "scheduler node serving");
    Ok(RunningNode {
        api_url,
        store,
        server: handle,
        events,
        consensus: state_consensus,
        builtin_executor,
        disk: state_disk,
    })
}

/// Opens the Raft log, connects to the peers and starts the engine
/// thread. The flag says the node still has to be added to a cluster.
async fn start_raft(
    config: &NodeConfig,
    settings: &RaftSettings,
    db: &sled::Db,
    store: &Arc<StateMachine>,
    applied: tokio::sync::mpsc::UnboundedSender<actors::proposer::Applied>,
) -> anyhow::Result<(EngineHandle, RaftTransport, bool)> {
    let storage = RaftStorage::open(db)?;
    let snapshot_dir = SnapshotDir::open(config.data_dir.join("snapshots"))
        .with_context(|| format!("cannot open {}/snapshots", config.data_dir.display()))?;
    let snapshots = Arc::new(SnapshotBuilder::new(snapshot_dir.clone(), store.clone()));
    storage.set_snapshot_source(snapshots.clone());
    let joining = !storage.is_initialized() && settings.join.is_some();
    if !storage.is_initialized() && !joining {
        let voters: Vec<u64> = settings.peers.iter().map(|(id, _)| *id).collect();
        // A store with state but no log was restored from a backup. Fresh
        // peers bootstrapped beside it would replay the log from index 1
        // onto empty stores; joiners instead get its state as a snapshot.
        if voters.len() > 1 && !store.is_empty() {
            bail!(
                "this data directory was restored from a backup: start it as the only voter \
                 (--peers {id}=ADDR) and add the other nodes with --join",
                id = config.node_id
            );
        }
        if store.is_empty() {
            storage.bootstrap(&voters)?;
        } else {
            // The restored state is in no log entry: the log starts after
            // it, at a snapshot point of index 1, so every joiner receives
            // the state as a snapshot instead of replaying an empty log.
            store.skip_entry(RESTORED_POINT)?;
            storage.bootstrap_at(&voters, RESTORED_POINT)?;
        }
    }
    // Peers: the initial members, and every node registered since.
    let mut peers: std::collections::HashMap<u64, std::net::SocketAddr> =
        settings.peers.iter().copied().collect();
    for node in store.nodes()? {
        if let Ok(addr) = node.raft_addr.parse() {
            peers.entry(node.node_id).or_insert(addr);
        }
    }
    peers.remove(&config.node_id);
    let (inbound_tx, inbound_rx) = std::sync::mpsc::channel();
    let transport = RaftTransport::start(
        config.node_id,
        settings.listen,
        peers,
        inbound_tx,
        settings.faults.clone(),
        snapshot_dir.clone(),
        // With the cluster secret every Raft connection is authenticated,
        // inside mutual TLS when the node has certificates; with neither
        // (`--unsigned`) the port must be on a trusted network.
        crate::raft::transport::RaftSecurity {
            key: config
                .secret
                .as_deref()
                .map(crate::raft::transport::RaftKey::from_secret),
            tls: settings.tls.clone(),
        },
    )
    .await?;
    let mut engine_config = EngineConfig::new(config.node_id);
    engine_config.tick = settings.tick;
    engine_config.durability = settings.durability;
    engine_config.compact_after = settings.compact_after;
    engine_config.log_tail = settings.log_tail;
    engine_config.log_tail_bytes = settings.log_tail_bytes;
    let engine = engine::spawn(
        engine_config,
        storage,
        store.clone(),
        transport.clone(),
        inbound_rx,
        applied,
        snapshots,
    )?;
    Ok((engine, transport, joining))
}

/// Asks the cluster at `url` to add this node, until it does, then
/// connects to the members it names.
async fn join_cluster(http: reqwest::Client, url: String, me: NodeInfo, transport: RaftTransport) {
    let request = MemberRequest {
        node_id: me.node_id,
        raft_addr: me.raft_addr,
        api_url: me.api_url,
    };
    let base = url.trim_end_matches('/').to_string();
    let endpoint = format!("{base}/v1/cluster/members");
    loop {
        let body = serde_json::to_vec(&request).unwrap_or_default();
        let answer = http
            .post(&endpoint)
            .header("content-type", "application/json")
            .body(body)
            .timeout(std::time::Duration::from_secs(15))
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => {
                let bytes = response.bytes().await.unwrap_or_default();
                let status = serde_json::from_slice::<ClusterStatus>(&bytes).ok();
                tracing::info!(%url, "joined the cluster");
                learn_peers(&http, &base, me.node_id, status, &transport).await;
                return;
            }
            Ok(response) => {
                tracing::warn!(%url, status = %response.status(), "the cluster did not add this node yet")
            }
            Err(e) => tracing::warn!(%url, error = %e, "cannot reach the cluster to join"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Adds every other member's Raft address to the transport. A joined node
/// can answer the leader only once it knows the leader's address, and it
/// learns no address from the log until the leader's snapshot arrives: so
/// until every member's address is known (a member registers its address
/// through the log shortly after it starts), it asks the cluster again.
async fn learn_peers(
    http: &reqwest::Client,
    base: &str,
    me: u64,
    mut status: Option<ClusterStatus>,
    transport: &RaftTransport,
) {
    const ATTEMPTS: u32 = 150;
    for _ in 0..ATTEMPTS {
        if let Some(status) = &status {
            let mut missing = 0;
            for member in status.members.iter().filter(|m| m.node_id != me) {
                match member.raft_addr.as_ref().and_then(|a| a.parse().ok()) {
                    Some(addr) => transport.add_peer(member.node_id, addr),
                    None => missing += 1,
                }
            }
            if missing == 0 {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        status = async {
            let response = http
                .get(format!("{base}/v1/cluster"))
                .timeout(std::time::Duration::from_secs(5))
                .send()
                .await
                .ok()?;
            serde_json::from_slice(&response.bytes().await.ok()?).ok()
        }
        .await;
    }
    tracing::warn!(
        "some members' Raft addresses are still unknown; they reach this node once it catches up"
    );
}

/// Opens the sled database of a data directory (`DIR/state`) as every
/// command that writes one does: `server`, `dev` and `restore`.
pub fn open_database(path: &std::path::Path) -> sled::Result<sled::Db> {
    sled::Config::new()
        .path(path)
        // Run records are written many times a second: favour write
        // throughput over compaction, and bound the page cache so memory
        // stays flat however much history is kept.
        .mode(sled::Mode::HighThroughput)
        .cache_capacity(SLED_CACHE_BYTES)
        .open()
}

/// Announces this node's addresses through the log, retrying until a
/// leader commits it, so every node can forward writes to it.
async fn register_node(proposer: Arc<dyn Proposer>, node: NodeInfo) {
    loop {
        match proposer
            .propose(MetaCommand::RegisterNode { node: node.clone() })
            .await
        {
            Ok(_) => return,
            Err(e) => {
                tracing::debug!(error = %e, "node not registered yet; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
        }
    }
}

fn entry(group: &str, endpoint: &str, handlers: Vec<String>) -> ExecutorEntry {
    ExecutorEntry {
        id: endpoint.to_string(),
        group: group.to_string(),
        endpoint: endpoint.to_string(),
        weight: 1,
        labels: Default::default(),
        handlers,
        max_concurrent: 0,
    }
}
