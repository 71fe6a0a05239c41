//! `GET /v1/openapi.json` describes exactly the routes the server serves,
//! and with tokens set every route asks for the scope the document gives
//! it: no token is refused (401), a read token may only look (403 on
//! admin routes), an admin token may do everything; every answer is one
//! the document lists for its operation, and a method a path lacks gets
//! 405 with `Allow`.

use std::time::Duration;

use cronmesh_tests::process;
use reqwest::{Method, StatusCode};
use serde_json::Value;

const ADMIN: &str = "admin-t0ken";
const READ: &str = "read-t0ken";

/// Each documented operation: (method, path with ids filled in, access,
/// the statuses it documents).
fn operations(document: &Value) -> Vec<(Method, String, String, Vec<u16>)> {
    let mut out = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operations") {
            let method: Method = method.to_uppercase().parse().expect("a method");
            let filled = path.replace("{id}", "no-such-thing");
            let access = operation["x-cronmesh-access"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let statuses = operation["responses"]
                .as_object()
                .expect("responses")
                .keys()
                .map(|s| s.parse().expect("a status code"))
                .collect();
            out.push((method, filled, access, statuses));
        }
    }
    out
}

async fn status(
    client: &reqwest::Client,
    base: &str,
    method: &Method,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, String) {
    let mut request = client
        .request(method.clone(), format!("{base}{path}"))
        .timeout(Duration::from_secs(10));
    if *method != Method::GET {
        request = request
            .header("content-type", "application/json")
            .body("{}");
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = response.status();
    // The event stream never ends: its status is enough.
    let body = if path == "/v1/events" {
        String::new()
    } else {
        response.text().await.unwrap_or_default()
    };
    (status, body)
}

#[tokio::test]
async fn the_document_matches_the_routes_and_each_route_asks_for_its_scope() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("admin {ADMIN}\nread {READ}\n")).unwrap();
    let tokens = tokens.to_string_lossy().to_string();
    let node = process::dev(&dir.path().join("data"), &["--token-file", &tokens]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();

    let (code, text) = status(
        &client,
        &node.url,
        &Method::GET,
        "/v1/openapi.json",
        Some(READ),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{text}");
    let document: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let operations = operations(&document);
    assert!(operations.len() >= 25, "{operations:?}");
    // With a token set, only the health checks answer without one (the
    // executor reports answer to their signature instead).
    let open: Vec<&str> = operations
        .iter()
        .filter(|(_, _, access, _)| access == "open")
        .map(|(_, path, _, _)| path.as_str())
        .collect();
    assert_eq!(open, ["/healthz", "/readyz"]);

    for (method, path, access, statuses) in &operations {
        let (anonymous, _) = status(&client, &node.url, method, path, None).await;
        let (reader, _) = status(&client, &node.url, method, path, Some(READ)).await;
        let (admin, body) = status(&client, &node.url, method, path, Some(ADMIN)).await;
        let what = format!(
            "{method} {path} ({access}): anonymous {anonymous}, read {reader}, admin {admin}"
        );
        // Served: never the answer for a route the server does not have.
        assert_ne!(admin, StatusCode::METHOD_NOT_ALLOWED, "{what}");
        assert!(!body.contains("no route for"), "{what}: {body}");
        // Each answer is one the document lists for the operation.
        for code in [anonymous, reader, admin] {
            assert!(
                statuses.contains(&code.as_u16()),
                "{what}: {code} is not among the documented {statuses:?}"
            );
        }
        match access.as_str() {
            "open" => assert!(anonymous.is_success(), "{what}"),
            "signed (executors)" => assert_ne!(anonymous, StatusCode::UNAUTHORIZED, "{what}"),
            "read" => {
                assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{what}");
                assert!(
                    ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&reader),
                    "{what}"
                );
                assert!(
                    ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&admin),
                    "{what}"
                );
            }
            "admin" => {
                assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{what}");
                assert_eq!(reader, StatusCode::FORBIDDEN, "{what}");
                assert!(
                    ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&admin),
                    "{what}"
                );
            }
            other => panic!("{what}: unknown access {other}"),
        }
    }

    // A method a path does not have gets 405, naming the ones it has.
    for (path, allowed) in [
        ("/v1/jobs", "POST, GET"),
        ("/v1/runs/x", "GET"),
        ("/healthz", "GET"),
    ] {
        let response = client
            .patch(format!("{}{path}", node.url))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap_or_else(|e| panic!("PATCH {path}: {e}"));
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "PATCH {path}"
        );
        let allow = response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        assert_eq!(allow.as_deref(), Some(allowed), "PATCH {path}");
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(body["error"]["code"], "method_not_allowed", "PATCH {path}");
    }

    // What the document leaves out, the server does not serve.
    for (method, path) in [(Method::DELETE, "/v1/runs/x"), (Method::GET, "/v1/jobz")] {
        let (code, body) = status(&client, &node.url, &method, path, Some(ADMIN)).await;
        assert!(
            code == StatusCode::METHOD_NOT_ALLOWED || body.contains("no route for"),
            "{method} {path}: {code} {body}"
        );
    }
}
