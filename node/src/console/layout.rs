//! The frame every console page shares and the responses pages return.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use maud::{html, Markup, DOCTYPE};

use crate::api::{ApiError, AppState};

/// Where a page sits in the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Dashboard,
    Jobs,
    Runs,
    Executors,
    Cluster,
}

impl Section {
    const ALL: [(Section, &'static str, &'static str); 5] = [
        (Section::Dashboard, "/", "Dashboard"),
        (Section::Jobs, "/jobs", "Jobs"),
        (Section::Runs, "/runs", "Runs"),
        (Section::Executors, "/executors", "Executors"),
        (Section::Cluster, "/cluster", "Cluster"),
    ];
}

/// What a page tells the frame about itself.
pub struct Frame<'a> {
    pub title: &'a str,
    pub section: Option<Section>,
    /// Re-render the page's main part when an event arrives (lists and
    /// details do; forms do not, so typing is never interrupted).
    pub live: bool,
}

pub fn render(state: &AppState, frame: Frame<'_>, body: Markup) -> HttpResponse {
    let leader = state.consensus.leader_state();
    let signed_in = state.tokens.is_some();
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(frame.title, true))
            body {
                header.top {
                    a.brand href="/" { "cronmesh" }
                    nav {
                        @for (section, href, label) in Section::ALL {
                            a href=(href) class=[(frame.section == Some(section)).then_some("active")] { (label) }
                        }
                    }
                    span.node title="the node serving this page" {
                        "node " (state.consensus.node_id())
                        " · leader " (leader.leader_id.map_or_else(|| "none".to_string(), |l| l.to_string()))
                        " · term " (leader.term)
                    }
                    span #live.live title="live updates" { "●" }
                    @if signed_in {
                        form.logout method="post" action="/logout" { button type="submit" { "Sign out" } }
                    }
                }
                div #toast role="status" aria-live="polite" {}
                main data-live=[frame.live.then_some("1")] { (body) }
            }
        }
    };
    html_response(StatusCode::OK, markup)
}

/// The `<head>` of every page; `scripted` pages load the console script.
pub fn head(title: &str, scripted: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · cronmesh" }
            link rel="stylesheet" href="/assets/console.css";
            @if scripted { script src="/assets/console.js" defer {} }
        }
    }
}

pub fn html_response(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .body(markup.into_string())
}

/// A page that cannot be shown: the API's error, as HTML.
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<actors::store::StoreError> for PageError {
    fn from(e: actors::store::StoreError) -> Self {
        Self(e.into())
    }
}

impl From<actix::MailboxError> for PageError {
    fn from(e: actix::MailboxError) -> Self {
        Self(e.into())
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    fn error_response(&self) -> HttpResponse {
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                (head(&self.0.status.as_u16().to_string(), false))
                body {
                    header.top { a.brand href="/" { "cronmesh" } }
                    main {
                        h1 { (self.0.status.canonical_reason().unwrap_or("Error")) }
                        p.error-message { (self.0.message) }
                        p { a href="/" { "Back to the dashboard" } }
                    }
                }
            }
        };
        html_response(self.0.status, markup)
    }
}

pub type PageResult = Result<HttpResponse, PageError>;

/// A page's query string; what cannot be read shows the page unfiltered,
/// as a hand-edited address should.
pub fn query_or_default<T: serde::de::DeserializeOwned + Default>(
    req: &actix_web::HttpRequest,
) -> T {
    actix_web::web::Query::<T>::from_query(req.query_string())
        .map(actix_web::web::Query::into_inner)
        .unwrap_or_default()
}
