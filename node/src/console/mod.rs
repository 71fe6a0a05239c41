//! The web console, served by every node at `/`: HTML rendered on the
//! server from the node's own state, a stylesheet and one small script of
//! our own, all embedded in the binary. Reads come straight from the store;
//! every change (create, edit, pause, trigger, kill, delete) is a call of
//! the script to the admin JSON API, so the console validates, forwards to
//! the leader and authenticates exactly as the API does.
//!
//! - [`layout`]: the page frame (navigation, live indicator) and the
//!   HTML / error responses every page uses.
//! - [`format`]: times, durations and status badges.
//! - [`chart`]: the runs-per-minute chart, drawn as SVG.
//! - [`dashboard`], [`jobs`], [`job_form`], [`job_detail`], [`runs`], [`run_detail`],
//!   [`executors`], [`cluster`]: one page each.
//! - [`login`]: signing in with the admin token when the node has one.
//! - [`headers`]: the content security policy and the other headers every
//!   answer carries.
//! - `assets/`: `console.css` and `console.js`, served under `/assets/`.

pub mod chart;
pub mod cluster;
pub mod dashboard;
pub mod executors;
pub mod format;
pub mod headers;
pub mod job_detail;
pub mod job_form;
pub mod jobs;
pub mod layout;
pub mod login;
pub mod run_detail;
pub mod runs;

use actix_web::{web, HttpResponse};

const STYLESHEET: &str = include_str!("assets/console.css");
const SCRIPT: &str = include_str!("assets/console.js");

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(dashboard::page))
        .route("/jobs", web::get().to(jobs::page))
        .route("/jobs/new", web::get().to(job_form::new_job))
        .route("/jobs/{namespace}/{id}", web::get().to(job_detail::page))
        .route(
            "/jobs/{namespace}/{id}/edit",
            web::get().to(job_form::edit_job),
        )
        .route("/runs", web::get().to(runs::page))
        .route("/runs/{id}", web::get().to(run_detail::page))
        .route("/executors", web::get().to(executors::page))
        .route("/cluster", web::get().to(cluster::page))
        .route("/login", web::get().to(login::page))
        .route("/login", web::post().to(login::sign_in))
        .route("/logout", web::post().to(login::sign_out))
        .route("/assets/console.css", web::get().to(stylesheet))
        .route("/assets/console.js", web::get().to(script));
}

async fn stylesheet() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("cache-control", "no-cache"))
        .body(body)
}
