//! Every route of the admin API in one table: the server registers these
//! and nothing else, `GET /v1/openapi.json` describes these, and
//! docs/API.md lists these (a test keeps it equal), so the three cannot
//! drift apart. What each route takes and answers is in `operations`;
//! `openapi` assembles the document.

mod openapi;
mod operations;

use actix_web::{http::Method, web, HttpRequest, HttpResponse, Route};
use serde_json::Value;

use super::{backup, cluster, events, jobs, report, runs, stats, system};

/// Who may call a route when the node has tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health checks and this document.
    Open,
    /// A `read` or `admin` token.
    Read,
    /// An `admin` token.
    Admin,
    /// Executors, with the protocol's HMAC signature when a secret is set.
    Signed,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Open => "open",
            Access::Read => "read",
            Access::Admin => "admin",
            Access::Signed => "signed (executors)",
        }
    }
}

pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    /// Attaches the handler to a route of this method.
    pub to: fn(Route) -> Route,
}

macro_rules! endpoint {
    ($method:ident $path:literal, $access:ident, $summary:literal, $handler:path) => {
        Endpoint {
            method: Method::$method,
            path: $path,
            access: Access::$access,
            summary: $summary,
            to: |route| route.to($handler),
        }
    };
}

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        endpoint!(POST "/v1/jobs", Admin, "Create a job (201), or many from an array, all or none; 409 if one exists", jobs::create),
        endpoint!(GET "/v1/jobs", Read, "List jobs (?namespace=&label=k=v&enabled=&limit=&cursor=)", jobs::list),
        endpoint!(GET "/v1/jobs/{id}", Read, "One job with its next fire times and last run", jobs::get),
        endpoint!(PUT "/v1/jobs/{id}", Admin, "Replace a job", jobs::replace),
        endpoint!(DELETE "/v1/jobs/{id}", Admin, "Delete a job", jobs::delete),
        endpoint!(POST "/v1/jobs/{id}/trigger", Admin, "Run a job now (202, with its runs); optional {\"params\"}", jobs::trigger),
        endpoint!(POST "/v1/jobs/{id}/pause", Admin, "Stop firing a job's schedule", jobs::pause),
        endpoint!(POST "/v1/jobs/{id}/resume", Admin, "Fire a paused job's schedule again", jobs::resume),
        endpoint!(GET "/v1/jobs/{id}/placement", Read, "The live executors a job's runs may go to now, or why none may", jobs::placement),
        endpoint!(GET "/v1/jobs/{id}/runs", Read, "A job's runs, newest first", runs::of_job),
        endpoint!(GET "/v1/runs", Read, "Runs, newest first (?job=&status=&since=&until=)", runs::list),
        endpoint!(GET "/v1/runs/{id}", Read, "One run", runs::get),
        endpoint!(POST "/v1/runs/{id}/kill", Admin, "Kill an active run", runs::kill),
        endpoint!(GET "/v1/runs/{id}/output", Read, "A run's output as text, live while it runs", runs::output),
        endpoint!(POST "/v1/schedules/preview", Read, "The next fire times of a schedule in a time zone", system::preview),
        endpoint!(GET "/v1/cluster", Read, "Raft state: leader, term, commit and applied index, members, snapshot counters, and `raft_auth` (connections and messages the Raft port refused)", cluster::status),
        endpoint!(POST "/v1/cluster/members", Admin, "Add a scheduler node to the Raft group", cluster::add),
        endpoint!(DELETE "/v1/cluster/members/{id}", Admin, "Remove a scheduler node from the Raft group", cluster::remove),
        endpoint!(GET "/v1/executors", Read, "Live and recently dead executors", system::executors),
        endpoint!(GET "/v1/events", Read, "Server-sent events: run, job, leader and executor changes (?job=)", events::events),
        endpoint!(GET "/v1/stats", Read, "The last hour of runs per minute, lateness, failing jobs", stats::stats),
        endpoint!(GET "/v1/backup", Admin, "The whole state as of one applied index, streamed (for cronmesh backup)", backup::backup),
        endpoint!(GET "/v1/openapi.json", Read, "This API as an OpenAPI 3.1 document", openapi),
        endpoint!(POST "/v1/internal/runs/{id}/report", Signed, "An executor reports a run's progress", report::report),
        endpoint!(POST "/v1/internal/reports", Signed, "An executor reports many runs at once", report::reports),
        endpoint!(GET "/metrics", Read, "Prometheus (OpenMetrics) metrics", system::metrics),
        endpoint!(GET "/healthz", Open, "200 while the process serves", system::healthz),
        endpoint!(GET "/readyz", Open, "200 once the node knows a leader and has caught up and its disk takes writes; 503 until then, with the reason and the node's `storage`", system::readyz),
    ]
}

/// The access a request needs: its route's in the table; outside the API,
/// a console page needs `read` to look and `admin` to change (None for a
/// route anyone may call).
pub fn access_of(method: &Method, pattern: Option<&str>) -> Access {
    static TABLE: std::sync::LazyLock<Vec<Endpoint>> = std::sync::LazyLock::new(endpoints);
    let found = pattern.and_then(|p| {
        TABLE
            .iter()
            .find(|e| e.path == p && e.method == method)
            .map(|e| e.access)
    });
    // A method the path lacks gets 405 with `Allow`, which says no more
    // than the path's most open route lets anyone learn.
    let path_has = || {
        TABLE
            .iter()
            .filter(|e| Some(e.path) == pattern)
            .map(|e| e.access)
            .min_by_key(|access| match access {
                Access::Open | Access::Signed => 0,
                Access::Read => 1,
                Access::Admin => 2,
            })
    };
    match found.or_else(path_has) {
        Some(access) => access,
        None if matches!(*method, Method::GET | Method::HEAD) => Access::Read,
        None => Access::Admin,
    }
}

/// Registers every endpoint, then for each path a last route that answers
/// any other method 405 with the methods the path has in `Allow` (without
/// it, such a request would fall through to the 404 of unknown paths).
pub fn register(cfg: &mut web::ServiceConfig) {
    let endpoints = endpoints();
    for endpoint in &endpoints {
        cfg.route(
            endpoint.path,
            (endpoint.to)(web::route().method(endpoint.method.clone())),
        );
    }
    let mut paths: Vec<&'static str> = endpoints.iter().map(|e| e.path).collect();
    paths.sort_unstable();
    paths.dedup();
    for path in paths {
        cfg.route(path, web::route().to(method_not_allowed));
    }
}

/// The methods `path` (a route pattern) is served with, as `Allow` lists them.
fn allowed_methods(path: &str) -> String {
    endpoints()
        .iter()
        .filter(|e| e.path == path)
        .map(|e| e.method.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The methods the API serves at a request's `path` (`/v1/jobs/x/pause`
/// matches `/v1/jobs/{id}/pause`), or None when no route has that path.
/// Checks that run before routing use it to leave a method the path does
/// not have to its 405.
pub fn methods_at(path: &str) -> Option<Vec<Method>> {
    let matches = |pattern: &str| {
        let mut given = path.split('/');
        let mut wanted = pattern.split('/');
        loop {
            match (given.next(), wanted.next()) {
                (None, None) => return true,
                (Some(g), Some(w)) if w.starts_with('{') => {
                    if g.is_empty() {
                        return false;
                    }
                }
                (Some(g), Some(w)) if g == w => {}
                _ => return false,
            }
        }
    };
    let methods: Vec<Method> = endpoints()
        .into_iter()
        .filter(|e| matches(e.path))
        .map(|e| e.method)
        .collect();
    (!methods.is_empty()).then_some(methods)
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let allow = allowed_methods(req.match_pattern().as_deref().unwrap_or_default());
    let error = super::ApiError::new(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} {} is not served; this path takes {allow}",
            req.method(),
            req.path()
        ),
    );
    let mut response = actix_web::ResponseError::error_response(&error);
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allow) {
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    response
}

/// `GET /v1/openapi.json`.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

/// The OpenAPI 3.1 document of [`endpoints`].
pub fn document() -> Value {
    openapi::document(&endpoints())
}

/// `get_v1_jobs_id_runs`, unique per method and path.
fn operation_id(e: &Endpoint) -> String {
    let path: String = e
        .path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let path = path
        .split('_')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    format!("{}_{path}", e.method.as_str().to_lowercase())
}

/// The table docs/API.md holds between its markers.
pub fn markdown() -> String {
    let mut out = String::from("| method | path | access | what it does |\n|---|---|---|---|\n");
    for e in endpoints() {
        out.push_str(&format!(
            "| {} | `{}` | {} | {} |\n",
            e.method,
            e.path,
            e.access.as_str(),
            e.summary.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn docs_api_lists_every_route_the_server_serves() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/API.md");
        let doc = std::fs::read_to_string(path).unwrap_or_default();
        let expected = markdown();
        let listed = doc
            .split_once("<!-- routes:start -->\n")
            .and_then(|(_, rest)| rest.split_once("<!-- routes:end -->"))
            .map(|(listed, _)| listed.to_string());
        if listed.as_deref() != Some(expected.as_str())
            && std::env::var_os("CRONMESH_UPDATE_DOCS").is_some()
        {
            let (head, tail) = match (
                doc.split_once("<!-- routes:start -->\n"),
                doc.split_once("<!-- routes:end -->"),
            ) {
                (Some((head, _)), Some((_, tail))) => (head.to_string(), tail.to_string()),
                _ => (doc.clone(), String::new()),
            };
            std::fs::write(
                path,
                format!("{head}<!-- routes:start -->\n{expected}<!-- routes:end -->{tail}"),
            )
            .unwrap();
            return;
        }
        assert!(
            listed.as_deref() == Some(expected.as_str()),
            "docs/API.md is out of date; run this test with CRONMESH_UPDATE_DOCS=1"
        );
    }

    /// Every `$ref` in `value`, with where it was found.
    fn refs(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    if let ("$ref", Value::String(target)) = (key.as_str(), inner) {
                        out.push((at.to_string(), target.clone()));
                    }
                    refs(inner, &format!("{at}/{key}"), out);
                }
            }
            Value::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    refs(inner, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn the_document_is_openapi_3_1_in_shape() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

        // Every reference resolves inside the document.
        let mut found = Vec::new();
        refs(&doc, "#", &mut found);
        assert!(found.len() > 50, "{found:?}");
        for (at, target) in &found {
            let pointer = target
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{at}: {target} is not local"));
            assert!(
                doc.pointer(pointer).is_some(),
                "{at}: {target} does not resolve"
            );
        }

        let methods = [
            "get", "put", "post", "delete", "patch", "head", "options", "trace",
        ];
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            assert!(path.starts_with('/'), "{path}");
            for (method, op) in item.as_object().expect("a path item") {
                assert!(methods.contains(&method.as_str()), "{method} {path}");
                operations += 1;
                let what = format!("{method} {path}");
                // Responses: each a description, one success at least,
                // each status a three-digit code, each body typed.
                let responses = op["responses"].as_object().expect(&what);
                assert!(
                    responses.keys().any(|s| s.starts_with('2')),
                    "{what}: no success"
                );
                for (status, response) in responses {
                    assert!(
                        status.len() == 3 && status.parse::<u16>().is_ok(),
                        "{what}: {status}"
                    );
                    assert!(response["description"].is_string(), "{what} {status}");
                    if let Some(content) = response.get("content") {
                        for (media, body) in content.as_object().expect(&what) {
                            assert!(media.contains('/'), "{what} {status}: {media}");
                            assert!(body["schema"].is_object(), "{what} {status} {media}");
                        }
                    }
                }
                // Every path template is a declared, required path parameter.
                let declared: Vec<&str> = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| p["in"] == "path")
                            .filter_map(|p| p["name"].as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                let templated: Vec<&str> = path
                    .split('/')
                    .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
                    .collect();
                assert_eq!(declared, templated, "{what}");
                for p in op["parameters"].as_array().into_iter().flatten() {
                    assert!(
                        ["path", "query", "header", "cookie"]
                            .contains(&p["in"].as_str().unwrap_or("")),
                        "{what}: {p}"
                    );
                    assert!(p["schema"].is_object(), "{what}: {p}");
                    if p["in"] == "path" {
                        assert_eq!(p["required"], true, "{what}: {p}");
                    }
                }
                if let Some(body) = op.get("requestBody") {
                    assert!(
                        body["content"]["application/json"]["schema"].is_object(),
                        "{what}"
                    );
                }
                // Routes behind a token say so, the others opt out.
                match op["x-cronmesh-access"].as_str() {
                    Some("open" | "signed (executors)") => assert_eq!(op["security"], json!([])),
                    Some("read" | "admin") => {
                        assert!(op.get("security").is_none(), "{what}");
                        assert!(responses.contains_key("401"), "{what}");
                    }
                    other => panic!("{what}: access {other:?}"),
                }
            }
        }
        assert_eq!(operations, endpoints().len());
        assert_eq!(doc["security"], json!([{"bearer": []}]));
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"],
            json!({"type": "http", "scheme": "bearer"})
        );
    }

    #[test]
    fn the_job_schema_is_what_the_server_reads() {
        let doc = document();
        let job = &doc["components"]["schemas"]["Job"];
        assert_eq!(job["additionalProperties"], false);
        assert_eq!(job["required"], json!(["id", "schedule", "target"]));
        assert_eq!(job["properties"]["shards"]["maximum"], 1000);
        let replacement = &doc["components"]["schemas"]["JobReplacement"];
        assert_eq!(replacement["required"], json!(["schedule", "target"]));
        // The names pattern is the one protocol states beside check_name.
        let pattern = job["properties"]["id"]["pattern"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(pattern, protocol::job::NAME_PATTERN);
    }

    #[test]
    fn methods_at_matches_paths_segment_by_segment() {
        assert_eq!(methods_at("/v1/jobs/x/pause"), Some(vec![Method::POST]));
        assert_eq!(
            methods_at("/v1/jobs"),
            Some(vec![Method::POST, Method::GET])
        );
        assert_eq!(methods_at("/healthz"), Some(vec![Method::GET]));
        assert_eq!(methods_at("/v1/jobs//pause"), None);
        assert_eq!(methods_at("/v1/jobs/x/y"), None);
        assert_eq!(methods_at("/v1/jobz"), None);
        assert_eq!(methods_at("/jobs"), None);
    }

    #[test]
    fn a_method_a_path_lacks_needs_what_the_paths_most_open_route_needs() {
        let other = Method::from_bytes(b"FOO").expect("a method");
        assert_eq!(access_of(&other, Some("/healthz")), Access::Open);
        assert_eq!(access_of(&Method::POST, Some("/healthz")), Access::Open);
        assert_eq!(access_of(&other, Some("/v1/jobs")), Access::Read);
        assert_eq!(access_of(&Method::PATCH, Some("/v1/backup")), Access::Admin);
        assert_eq!(access_of(&Method::POST, Some("/v1/jobs")), Access::Admin);
        // Console pages are not in the table.
        assert_eq!(access_of(&other, Some("/jobs")), Access::Admin);
        assert_eq!(access_of(&Method::GET, None), Access::Read);
    }

    #[test]
    fn every_operation_has_a_unique_id() {
        let ids: std::collections::BTreeSet<String> =
            endpoints().iter().map(operation_id).collect();
        assert_eq!(ids.len(), endpoints().len());
    }
}
