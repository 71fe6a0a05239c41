//! The admin HTTP API (see DESIGN.md "Admin HTTP API").
//!
//! - `jobs`, `runs`: jobs and run history; `report`: executor reports.
//! - `cluster`: the Raft group's state and membership changes.
//! - `system`: schedule preview, executors, health.
//! - `events`: the server-sent event stream; `stats`: the last hour of runs.
//! - `auth`: the admin token; `forward`: writes on a follower go to the leader.
//! - `input`, `error`: typed request parsing and JSON errors naming the field.

mod auth;
pub(crate) mod cluster;
mod error;
mod events;
mod forward;
mod input;
pub(crate) mod jobs;
mod report;
mod runs;
pub mod stats;
mod system;

use std::{net::TcpListener, sync::Arc};

use actix::Addr;
use actix_web::{dev::Server, web, App, HttpServer};
use actors::{
    clock::SharedClock, dispatcher::Dispatcher, job_store::JobStore, router::Router,
    store::StateMachine,
};

pub use auth::{AdminToken, COOKIE as TOKEN_COOKIE};
pub use error::{ApiError, ApiResult};

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
    /// Verifies executor reports when set.
    pub secret: Option<Arc<Vec<u8>>>,
    /// What `/v1/events` streams.
    pub events: crate::events::EventFeed,
    /// Required of admin requests when set.
    pub admin_token: Option<Arc<AdminToken>>,
    /// The dashboard's figures, shared by everyone who looks for a moment.
    pub stats: Arc<stats::StatsCache>,
    /// What `/metrics` reports.
    pub metrics: crate::metrics::Metrics,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .route("/jobs", web::post().to(jobs::create))
            .route("/jobs", web::get().to(jobs::list))
            .route("/jobs/{id}", web::get().to(jobs::get))
            .route("/jobs/{id}", web::put().to(jobs::replace))
            .route("/jobs/{id}", web::delete().to(jobs::delete))
            .route("/jobs/{id}/trigger", web::post().to(jobs::trigger))
            .route("/jobs/{id}/pause", web::post().to(jobs::pause))
            .route("/jobs/{id}/resume", web::post().to(jobs::resume))
            .route("/jobs/{id}/runs", web::get().to(runs::of_job))
            .route("/runs", web::get().to(runs::list))
            .route("/runs/{id}", web::get().to(runs::get))
            .route("/runs/{id}/kill", web::post().to(runs::kill))
            .route("/runs/{id}/output", web::get().to(runs::output))
            .route("/schedules/preview", web::post().to(system::preview))
            .route("/cluster", web::get().to(cluster::status))
            .route("/cluster/members", web::post().to(cluster::add))
            .route("/cluster/members/{id}", web::delete().to(cluster::remove))
            .route("/executors", web::get().to(system::executors))
            .route("/events", web::get().to(events::events))
            .route("/stats", web::get().to(stats::stats))
            .route("/backup", web::get().to(system::backup))
            .route("/internal/runs/{id}/report", web::post().to(report::report))
            .route("/internal/reports", web::post().to(report::reports)),
    )
    .route("/metrics", web::get().to(system::metrics))
    .route("/healthz", web::get().to(system::healthz))
    .route("/readyz", web::get().to(system::readyz));
}

/// The HTTP server on `listener`; the caller spawns it.
pub fn serve(state: AppState, listener: TcpListener) -> std::io::Result<Server> {
    let data = web::Data::new(state);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(actix_web::middleware::from_fn(forward::forward_to_leader))
            // A request without the token goes no further.
            .wrap(actix_web::middleware::from_fn(auth::require_token))
            // Outermost: every request is counted, refused ones included.
            .wrap(actix_web::middleware::from_fn(
                crate::metrics::requests::count_requests,
            ))
            .configure(routes)
            .configure(crate::console::routes)
            .default_service(web::to(system::not_found))
    })
    .workers(2)
    .disable_signals()
    .listen(listener)?
    .run())
}
