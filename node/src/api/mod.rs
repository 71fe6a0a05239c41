//! The admin HTTP API (docs/API.md).
//!
//! - `jobs`, `runs`: jobs and run history; `report`: executor reports.
//! - `cluster`: the Raft group's state and membership changes.
//! - `system`: schedule preview, executors, health.
//! - `backup`: the whole state, streamed from a point-in-time view.
//! - `events`: the server-sent event stream; `stats`: the last hour of runs.
//! - `catalog`: every route, registered from one table that also gives
//!   `/v1/openapi.json` and docs/API.md.
//! - `auth`: the admin tokens; `forward`: writes on a follower go to the leader.
//! - `offload`: heavy request work (previews, pages, stats, backups) runs
//!   off the request workers, a few at a time, so health checks never wait.
//! - `input`, `error`: typed request parsing and JSON errors naming the field.
//! - `origin`: no web page of another origin (or a name rebound to
//!   127.0.0.1) can drive the node.

mod auth;
mod backup;
pub mod catalog;
pub(crate) mod cluster;
mod connections;
mod error;
mod events;
mod forward;
mod input;
pub(crate) mod jobs;
pub(crate) mod offload;
pub(crate) mod origin;
mod rate_limit;
mod report;
mod runs;
pub mod stats;
mod system;

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix::Addr;
use actix_web::{dev::Server, web, App, HttpServer};
use actors::{
    clock::SharedClock, dispatcher::Dispatcher, job_store::JobStore, router::Router,
    store::StateMachine,
};

pub use auth::{Tokens, COOKIE as TOKEN_COOKIE};
pub use error::{ApiError, ApiResult};
pub use origin::HostPolicy;
pub use rate_limit::RateLimit;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Gossip membership, when this node takes part in one.
    pub membership: Option<membership::Membership>,
    /// Who leads, and where writes go.
    pub consensus: crate::consensus::Consensus,
    pub store: Arc<StateMachine>,
    pub job_store: Addr<JobStore>,
    pub router: Addr<Router>,
    pub dispatcher: Addr<Dispatcher>,
    pub clock: SharedClock,
    /// For live output from executors and forwarding to the leader.
    pub http: reqwest::Client,
    /// The cluster secret: proves requests forwarded between members.
    pub secret: Option<Arc<Vec<u8>>>,
    /// Signs this node's reads of executors (live output); `None` without
    /// a secret.
    pub signer: Option<Arc<protocol::signing::Signer>>,
    /// Checks executors' reports: signed for this node's `api_url`, each
    /// once. `None` without a secret.
    pub report_verifier: Option<Arc<protocol::signing::Verifier>>,
    /// What `/v1/events` streams.
    pub events: crate::events::EventFeed,
    /// Required of admin requests when set.
    pub tokens: Option<Arc<Tokens>>,
    /// The dashboard's figures, shared by everyone who looks for a moment.
    pub stats: Arc<stats::StatsCache>,
    /// What `/metrics` reports.
    pub metrics: crate::metrics::Metrics,
    /// The trigger's backlog, for `/metrics`.
    pub backlog: actors::backlog::Backlog,
    /// Requests per second each client address may make; unlimited if None.
    pub rate_limit: Option<Arc<rate_limit::RateLimit>>,
    /// This node's API URL as others reach it: a loopback listener also
    /// answers to its host (see `origin`).
    pub api_url: String,
    /// The data directory's free space and storage state.
    pub disk: crate::disk::DiskHandle,
}

impl AppState {
    /// 507 while the disk is too short of room for new work (a manual
    /// trigger is checked here: its runs join the log among scheduled ones).
    pub fn room_for_new_work(&self) -> Result<(), error::ApiError> {
        crate::disk::guard::admit(
            &self.disk,
            crate::disk::phase::WriteClass::NewWork,
            &self.metrics,
        )?;
        Ok(())
    }

    /// The Raft group as this node sees it, with this node's storage.
    pub async fn cluster_status(&self) -> protocol::api::ClusterStatus {
        let mut status = self.consensus.status(&self.store).await;
        status.storage = Some(self.disk.status());
        status
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    catalog::register(cfg);
}

/// Request workers: each serves its connections on one thread; heavy work
/// goes to [`offload`], so two keep up.
const WORKERS: usize = 2;
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// The HTTP server on `listener`, HTTPS with `tls`; the caller spawns it.
pub fn serve(
    state: AppState,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<Server> {
    let hosts = web::Data::new(HostPolicy::new(listener.local_addr()?, &state.api_url));
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(hosts.clone())
            .wrap(actix_web::middleware::from_fn(forward::forward_to_leader))
            // A request without the token goes no further.
            .wrap(actix_web::middleware::from_fn(auth::require_token))
            // Nor does one a web page of another origin sent, token or not.
            .wrap(actix_web::middleware::from_fn(origin::refuse_cross_site))
            .wrap(actix_web::middleware::from_fn(rate_limit::limit_requests))
            // Every request is counted, refused ones included.
            .wrap(actix_web::middleware::from_fn(
                crate::metrics::requests::count_requests,
            ))
            // Outermost: every answer, refusals too, carries the headers
            // that keep the console to itself in a browser.
            .wrap(crate::console::headers::on_every_response())
            .configure(routes)
            .configure(crate::console::routes)
            .default_service(web::to(system::not_found))
    })
    .workers(WORKERS)
    .max_connections(connections::per_worker(
        connections::raise_open_files(),
        WORKERS,
    ))
    // A client gets this long to send a request's head, and then to close
    // after the answer; an idle kept-alive connection closes after
    // KEEP_ALIVE. (A body has its own deadline, where it is read.)
    .client_request_timeout(REQUEST_HEAD_TIMEOUT)
    .client_disconnect_timeout(DISCONNECT_TIMEOUT)
    .keep_alive(KEEP_ALIVE)
    .disable_signals();
    let server = match tls {
        Some(tls) => server.listen_rustls_0_23(listener, (*tls).clone())?,
        None => server.listen(listener)?,
    };
    Ok(server.run())
}
