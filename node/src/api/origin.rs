//! No web page can drive a node. A browser lets any page send a "simple"
//! request to any address, the visitor's cookies included, without asking
//! the server first (a CORS preflight): a form post, or `fetch` with
//! `mode: "no-cors"`, with a body typed `text/plain`, a form encoding or
//! none. On a laptop running `cronmesh dev`, that is a page creating and
//! running a shell job. So [`check`] refuses, before any handler or token
//! check:
//!
//! - on a loopback listener, a `Host` that is not a loopback name or the
//!   advertised URL's host (403 `host_not_allowed`): a page of a domain the
//!   attacker points at 127.0.0.1 (DNS rebinding) is otherwise
//!   same-origin with the node;
//! - a request that may change state (any method but GET, HEAD, OPTIONS)
//!   whose `Sec-Fetch-Site` is not `same-origin` or `none`, or whose
//!   `Origin` is another origin than the request's own (`null` included)
//!   (403 `cross_origin`);
//! - a console form post (`/login`, `/logout`) that proves neither:
//!   browsers send `Origin` or `Sec-Fetch-Site` with every POST (403
//!   `cross_origin`);
//! - any other POST whose `Content-Type` is not `application/json` (or
//!   `application/msgpack` on the executors' `/v1/internal/` routes) (415
//!   `unsupported_media_type`, field `content-type`): a page cannot send
//!   those types without a preflight, which the node never grants.
//!
//! Requests without `Origin` or `Sec-Fetch-Site` (curl, the CLI, the TUI,
//! executors, forwarding between nodes) pass the first rules untouched;
//! the only thing they must do is say their body is JSON.
//!
//! [`check`] is a plain function of what a request says; [`refuse_cross_site`]
//! is the actix middleware around it.

use std::net::{IpAddr, SocketAddr};

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{header, StatusCode},
    middleware::Next,
    web,
};
use url::Host;

use super::error::ApiError;

/// The console's form routes: posted by its own pages as HTML forms.
const FORM_ROUTES: [&str; 2] = ["/login", "/logout"];
/// Where executors post their reports, in their own encoding.
const EXECUTOR_ROUTES: &str = "/v1/internal/";
const JSON: &str = "application/json";
const MSGPACK: &str = protocol::dispatch::MSGPACK;

/// Which `Host` names a node answers to.
#[derive(Clone, Debug)]
pub struct HostPolicy {
    /// Only loopback names (and `advertised`): the listener is on loopback,
    /// where no name but these can honestly reach it.
    loopback_only: bool,
    /// The host of the URL the node advertises, when it has one: an
    /// operator who named the node may also reach it by that name.
    advertised: Option<Host<String>>,
    /// POSTs under this path may be MessagePack as well as JSON.
    msgpack_under: &'static str,
}

impl HostPolicy {
    /// The policy of a listener on `listening`, advertised as `api_url`.
    pub fn new(listening: SocketAddr, api_url: &str) -> Self {
        Self {
            loopback_only: is_loopback_ip(listening.ip()),
            advertised: url::Url::parse(api_url)
                .ok()
                .and_then(|u| u.host().map(|h| h.to_owned())),
            msgpack_under: EXECUTOR_ROUTES,
        }
    }

    /// Accepts MessagePack bodies under `prefix` instead of the admin
    /// API's `/v1/internal/` (an executor's own server takes it on every
    /// route).
    pub fn accepting_msgpack_under(self, prefix: &'static str) -> Self {
        Self {
            msgpack_under: prefix,
            ..self
        }
    }

    /// Whether a request naming `host` (the `Host` header's host) is
    /// served. (A request without a Host is no browser's: it passes.)
    fn admits(&self, host: &Host<String>) -> bool {
        !self.loopback_only || is_loopback_host(host) || self.advertised.as_ref() == Some(host)
    }
}

/// What [`check`] reads of a request. A header that is present but not
/// readable text is `Some("")`, which no rule accepts.
#[derive(Clone, Copy, Debug, Default)]
pub struct Seen<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// `http` or `https`, as the request reached the node (or the proxy
    /// in front of it says).
    pub scheme: &'a str,
    pub host: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub fetch_site: Option<&'a str>,
    pub content_type: Option<&'a str>,
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A loopback listener was reached by another name.
    Host(String),
    /// `Origin` names another origin.
    Origin(String),
    /// `Sec-Fetch-Site` says another site or origin sent it.
    FetchSite(String),
    /// A console form post with neither `Origin` nor `Sec-Fetch-Site`.
    Unproven,
    /// A POST whose body is not typed as the route needs.
    ContentType { got: Option<String>, wanted: String },
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        let forbidden = |code, message: String| ApiError::new(StatusCode::FORBIDDEN, code, message);
        match refusal {
            Refusal::Host(host) => forbidden(
                "host_not_allowed",
                format!(
                    "this node listens on loopback and answers only to localhost, 127.0.0.1 or \
                     [::1] (or the host of its advertise URL), not to Host {host:?}: a web \
                     page of another domain must not reach it"
                ),
            ),
            Refusal::Origin(origin) => forbidden(
                "cross_origin",
                format!(
                    "refused a change sent from the web page at Origin {origin:?}, another \
                     origin than this node's"
                ),
            ),
            Refusal::FetchSite(site) => forbidden(
                "cross_origin",
                format!(
                    "refused a change a web page of another site sent (Sec-Fetch-Site: {site})"
                ),
            ),
            Refusal::Unproven => forbidden(
                "cross_origin",
                "refused a console form without Origin or Sec-Fetch-Site: post it from the \
                 console's own page"
                    .to_string(),
            ),
            Refusal::ContentType { got, wanted } => ApiError {
                field: Some("content-type".into()),
                ..ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    match got {
                        None => format!("send the body with content-type: {wanted}"),
                        Some(got) => {
                            format!("send the body with content-type: {wanted}, not {got:?}")
                        }
                    },
                )
            },
        }
    }
}

/// Ok if the request may go on to the routes; else why not.
pub fn check(policy: &HostPolicy, req: &Seen<'_>) -> Result<(), Refusal> {
    let host = req.host.map(|h| (h, parse_host(h)));
    if let Some((text, parsed)) = &host {
        let admitted = match parsed {
            Some((host, _)) => policy.admits(host),
            // Garbage is no loopback name; elsewhere it only matches no Origin.
            None => !policy.loopback_only,
        };
        if !admitted {
            return Err(Refusal::Host(text.to_string()));
        }
    }
    if matches!(req.method, "GET" | "HEAD" | "OPTIONS") {
        return Ok(());
    }
    if let Some(site) = req.fetch_site {
        if !matches!(site.to_ascii_lowercase().as_str(), "same-origin" | "none") {
            return Err(Refusal::FetchSite(site.to_string()));
        }
    }
    if let Some(origin) = req.origin {
        let own = host.and_then(|(_, parsed)| parsed);
        if !same_origin(origin, req.scheme, own.as_ref()) {
            return Err(Refusal::Origin(origin.to_string()));
        }
    }
    if FORM_ROUTES.contains(&req.path) {
        if req.origin.is_none() && req.fetch_site.is_none() {
            return Err(Refusal::Unproven);
        }
        return Ok(());
    }
    // A POST to a path without one changes nothing: it gets the router's
    // 405 with `Allow`, whatever its body.
    let routed = super::catalog::methods_at(req.path)
        .is_none_or(|methods| methods.contains(&actix_web::http::Method::POST));
    if req.method == "POST" && routed {
        let essence = req.content_type.map(media_type);
        let wanted: &[&str] = if req.path.starts_with(policy.msgpack_under) {
            &[JSON, MSGPACK]
        } else {
            &[JSON]
        };
        if !essence.as_deref().is_some_and(|e| wanted.contains(&e)) {
            return Err(Refusal::ContentType {
                got: req.content_type.map(str::to_string),
                wanted: wanted.join(" or "),
            });
        }
    }
    Ok(())
}

/// The type and subtype of a `Content-Type`, lowercased, without parameters.
fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// A `Host` header's host and port; None if it is not one.
fn parse_host(value: &str) -> Option<(Host<String>, Option<u16>)> {
    let (host, port) = match value.strip_prefix('[') {
        Some(rest) => {
            let (inside, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                after => Some(after.strip_prefix(':')?),
            };
            (&value[..inside.len() + 2], port)
        }
        None => match value.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (value, None),
        },
    };
    let port = match port {
        None => None,
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            Some(port.parse().ok()?)
        }
        Some(_) => return None,
    };
    if host.is_empty() {
        return None;
    }
    Some((Host::parse(host).ok()?, port))
}

/// Whether `origin` is the origin of a request to `own` over `scheme`.
fn same_origin(origin: &str, scheme: &str, own: Option<&(Host<String>, Option<u16>)>) -> bool {
    let Some((host, port)) = own else {
        return false;
    };
    let Ok(origin) = url::Url::parse(origin) else {
        return false;
    };
    let default_port = |scheme: &str| match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    origin.scheme().eq_ignore_ascii_case(scheme)
        && origin.host().map(|h| h.to_owned()).as_ref() == Some(host)
        && origin.port_or_known_default() == port.or_else(|| default_port(scheme))
}

fn is_loopback_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// localhost and its subdomains (which browsers resolve to loopback
/// themselves, never through DNS) and loopback addresses.
fn is_loopback_host(host: &Host<String>) -> bool {
    match host {
        Host::Domain(name) => {
            let name = name.trim_end_matches('.');
            name == "localhost" || name.ends_with(".localhost")
        }
        Host::Ipv4(v4) => v4.is_loopback(),
        Host::Ipv6(v6) => is_loopback_ip(IpAddr::V6(*v6)),
    }
}

/// A header as text: `Some("")` when present but not visible ASCII.
fn header_text(req: &ServiceRequest, name: header::HeaderName) -> Option<&str> {
    req.headers()
        .get(name)
        .map(|v| v.to_str().unwrap_or_default())
}

/// The middleware: [`check`] on every request, refusals as JSON errors.
pub async fn refuse_cross_site(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // Fails closed: without its policy the node cannot tell who calls.
    let Some(policy) = req.app_data::<web::Data<HostPolicy>>().cloned() else {
        let refusal = ApiError::internal("the node cannot check the request's origin; refused");
        return Ok(req.error_response(refusal).map_into_boxed_body());
    };
    let scheme = req.connection_info().scheme().to_string();
    // HTTP/2 carries the host in the request's authority, not a header.
    let authority = req.uri().authority().map(|a| a.as_str().to_string());
    let verdict = check(
        &policy,
        &Seen {
            method: req.method().as_str(),
            path: req.path(),
            scheme: &scheme,
            host: header_text(&req, header::HOST).or(authority.as_deref()),
            origin: header_text(&req, header::ORIGIN),
            fetch_site: header_text(&req, header::HeaderName::from_static("sec-fetch-site")),
            content_type: header_text(&req, header::CONTENT_TYPE),
        },
    );
    match verdict {
        Ok(()) => Ok(next.call(req).await?.map_into_boxed_body()),
        Err(refusal) => Ok(req
            .error_response(ApiError::from(refusal))
            .map_into_boxed_body()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "127.0.0.1:7070";

    fn loopback() -> HostPolicy {
        HostPolicy::new(NODE.parse().unwrap(), "http://127.0.0.1:7070")
    }

    fn everywhere() -> HostPolicy {
        HostPolicy::new("0.0.0.0:7070".parse().unwrap(), "http://10.0.0.5:7070")
    }

    /// A JSON POST to /v1/jobs from curl: no Origin, no Sec-Fetch-Site.
    fn api_post() -> Seen<'static> {
        Seen {
            method: "POST",
            path: "/v1/jobs",
            scheme: "http",
            host: Some(NODE),
            content_type: Some("application/json"),
            ..Seen::default()
        }
    }

    #[test]
    fn our_clients_pass() {
        let policy = loopback();
        assert_eq!(check(&policy, &api_post()), Ok(()));
        let charset = Seen {
            content_type: Some("Application/JSON; charset=utf-8"),
            ..api_post()
        };
        assert_eq!(check(&policy, &charset), Ok(()));
        // The console's own fetch: same origin, said twice.
        let console = Seen {
            origin: Some("http://127.0.0.1:7070"),
            fetch_site: Some("same-origin"),
            ..api_post()
        };
        assert_eq!(check(&policy, &console), Ok(()));
        // An executor's report in MessagePack.
        let report = Seen {
            path: "/v1/internal/reports",
            content_type: Some("application/msgpack"),
            ..api_post()
        };
        assert_eq!(check(&policy, &report), Ok(()));
        // Reads need no content type; DELETE cannot come from another
        // origin without a preflight.
        for method in ["GET", "HEAD", "DELETE", "PUT"] {
            let req = Seen {
                method,
                content_type: None,
                ..api_post()
            };
            assert_eq!(check(&policy, &req), Ok(()), "{method}");
        }
    }

    #[test]
    fn a_write_from_another_origin_is_refused_whatever_it_carries() {
        let policy = loopback();
        for origin in [
            "http://127.0.0.1:8080",
            "http://localhost:7070",
            "https://127.0.0.1:7070",
            "http://evil.example",
            "null",
            "",
        ] {
            let req = Seen {
                origin: Some(origin),
                ..api_post()
            };
            assert_eq!(
                check(&policy, &req),
                Err(Refusal::Origin(origin.to_string())),
                "{origin}"
            );
        }
        for site in ["cross-site", "same-site", "whatever"] {
            let req = Seen {
                fetch_site: Some(site),
                ..api_post()
            };
            assert_eq!(
                check(&policy, &req),
                Err(Refusal::FetchSite(site.to_string()))
            );
        }
        // A typed-in address or bookmark is no other site.
        let typed = Seen {
            fetch_site: Some("none"),
            ..api_post()
        };
        assert_eq!(check(&policy, &typed), Ok(()));
        // Reads from anywhere are not refused for their Origin.
        let read = Seen {
            method: "GET",
            origin: Some("http://evil.example"),
            fetch_site: Some("cross-site"),
            ..api_post()
        };
        assert_eq!(check(&policy, &read), Ok(()));
    }

    #[test]
    fn the_origin_is_compared_with_scheme_host_and_port_of_the_request() {
        let policy = everywhere();
        let from = |scheme, host, origin| Seen {
            scheme,
            host: Some(host),
            origin: Some(origin),
            ..api_post()
        };
        let pass = [
            ("http", "cron.example:7070", "http://cron.example:7070"),
            ("http", "CRON.example:7070", "http://cron.example:7070"),
            ("https", "cron.example", "https://cron.example"),
            ("https", "cron.example", "https://cron.example:443"),
            ("http", "[::1]:7070", "http://[::1]:7070"),
        ];
        for (scheme, host, origin) in pass {
            assert_eq!(
                check(&policy, &from(scheme, host, origin)),
                Ok(()),
                "{origin}"
            );
        }
        let refuse = [
            ("http", "cron.example:7070", "http://cron.example:7071"),
            ("http", "cron.example", "https://cron.example"),
            ("http", "cron.example", "http://evil.example"),
        ];
        for (scheme, host, origin) in refuse {
            assert!(
                check(&policy, &from(scheme, host, origin)).is_err(),
                "{origin}"
            );
        }
        // Without a Host there is nothing an Origin can match.
        let hostless = Seen {
            host: None,
            origin: Some("http://cron.example:7070"),
            ..api_post()
        };
        assert!(check(&policy, &hostless).is_err());
    }

    #[test]
    fn api_posts_need_a_type_no_page_can_send_without_asking() {
        let policy = loopback();
        for content_type in [
            None,
            Some("text/plain"),
            Some("text/plain;charset=UTF-8"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some(""),
            Some("application/jsonx"),
        ] {
            let req = Seen {
                content_type,
                ..api_post()
            };
            let refusal = check(&policy, &req).expect_err("refused");
            assert!(
                matches!(&refusal, Refusal::ContentType { wanted, .. } if wanted == JSON),
                "{content_type:?}: {refusal:?}"
            );
            let error = ApiError::from(refusal);
            assert_eq!(error.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert_eq!(error.field.as_deref(), Some("content-type"));
        }
        // A POST to a route without one only learns the route's methods
        // (405), whatever it carries; one to a route with one is checked.
        let untyped = |path| Seen {
            path,
            content_type: None,
            ..api_post()
        };
        assert_eq!(check(&policy, &untyped("/v1/stats")), Ok(()));
        assert_eq!(check(&policy, &untyped("/healthz")), Ok(()));
        assert!(check(&policy, &untyped("/v1/jobs/x/trigger")).is_err());
        assert!(check(&policy, &untyped("/v1/no-such-route")).is_err());
        // MessagePack only where executors send it.
        let msgpack = Seen {
            content_type: Some("application/msgpack"),
            ..api_post()
        };
        assert!(check(&policy, &msgpack).is_err());
        let executor = loopback().accepting_msgpack_under("/v1/");
        assert_eq!(check(&executor, &msgpack), Ok(()));
        // A path spelled another way is still not a console form.
        let encoded = Seen {
            path: "/%76%31/jobs",
            content_type: None,
            ..api_post()
        };
        assert!(check(&policy, &encoded).is_err());
    }

    #[test]
    fn console_forms_need_proof_of_their_page() {
        let policy = loopback();
        let form = |origin, fetch_site| Seen {
            path: "/login",
            content_type: Some("application/x-www-form-urlencoded"),
            origin,
            fetch_site,
            ..api_post()
        };
        assert_eq!(check(&policy, &form(None, None)), Err(Refusal::Unproven));
        assert_eq!(
            check(&policy, &form(Some("http://127.0.0.1:7070"), None)),
            Ok(())
        );
        assert_eq!(check(&policy, &form(None, Some("same-origin"))), Ok(()));
        assert!(check(&policy, &form(Some("http://127.0.0.1:9999"), None)).is_err());
        assert!(check(&policy, &form(None, Some("same-site"))).is_err());
    }

    #[test]
    fn a_loopback_listener_answers_only_to_loopback_names() {
        let policy = loopback();
        for host in [
            "127.0.0.1:7070",
            "127.0.0.1",
            "127.1.2.3:7070",
            "localhost:7070",
            "LOCALHOST",
            "localhost.:7070",
            "app.localhost:7070",
            "[::1]:7070",
            "[::ffff:127.0.0.1]:7070",
        ] {
            let req = Seen {
                method: "GET",
                host: Some(host),
                ..api_post()
            };
            assert_eq!(check(&policy, &req), Ok(()), "{host}");
        }
        for host in [
            "evil.example:7070",
            "evil.example",
            "10.0.0.5:7070",
            "127.0.0.1.evil.example:7070",
            "localhost.evil.example",
            "evil.example@127.0.0.1:7070",
            "127.0.0.1:70x",
            "127.0.0.1:",
            "[::1",
            "",
        ] {
            let req = Seen {
                method: "GET",
                host: Some(host),
                ..api_post()
            };
            assert_eq!(
                check(&policy, &req),
                Err(Refusal::Host(host.to_string())),
                "{host}"
            );
        }
        // The name the node advertises is its own.
        let named = HostPolicy::new(NODE.parse().unwrap(), "http://cron.internal:7070");
        let req = Seen {
            host: Some("cron.internal:7070"),
            ..api_post()
        };
        assert_eq!(check(&named, &req), Ok(()));
        // A node listening everywhere is reached by any name.
        let req = Seen {
            host: Some("cron.example:7070"),
            ..api_post()
        };
        assert_eq!(check(&everywhere(), &req), Ok(()));
    }
}
