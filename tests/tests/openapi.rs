//! `GET /v1/openapi.json` describes exactly the routes the server serves,
//! and with tokens set every route asks for the scope the document gives
//! it: no token is refused (401), a read token may only look (403 on
//! admin routes), an admin token may do everything.

use std::time::Duration;

use cronmesh_tests::process;
use reqwest::{Method, StatusCode};
use serde_json::Value;

const ADMIN: &str = "admin-t0ken";
const READ: &str = "read-t0ken";

/// Each documented operation: (method, path with ids filled in, access).
fn operations(document: &Value) -> Vec<(Method, String, String)> {
    let mut out = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operations") {
            let method: Method = method.to_uppercase().parse().expect("a method");
            let filled = path.replace("{id}", "no-such-thing");
            let access = operation["x-cronmesh-access"]
                .as_str()
                .unwrap_or("")
                .to_string();
            out.push((method, filled, access));
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
        .filter(|(_, _, access)| access == "open")
        .map(|(_, path, _)| path.as_str())
        .collect();
    assert_eq!(open, ["/healthz", "/readyz"]);

    for (method, path, access) in &operations {
        let (anonymous, _) = status(&client, &node.url, method, path, None).await;
        let (reader, _) = status(&client, &node.url, method, path, Some(READ)).await;
        let (admin, body) = status(&client, &node.url, method, path, Some(ADMIN)).await;
        let what = format!(
            "{method} {path} ({access}): anonymous {anonymous}, read {reader}, admin {admin}"
        );
        // Served: never the answer for a route the server does not have.
        assert_ne!(admin, StatusCode::METHOD_NOT_ALLOWED, "{what}");
        assert!(!body.contains("no route for"), "{what}: {body}");
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

    // What the document leaves out, the server does not serve.
    for (method, path) in [(Method::DELETE, "/v1/runs/x"), (Method::GET, "/v1/jobz")] {
        let (code, body) = status(&client, &node.url, &method, path, Some(ADMIN)).await;
        assert!(
            code == StatusCode::METHOD_NOT_ALLOWED || body.contains("no route for"),
            "{method} {path}: {code} {body}"
        );
    }
}
