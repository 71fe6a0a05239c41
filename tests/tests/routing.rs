//! Routing by executor labels and handlers, with real executors joined by
//! gossip: a job's `selector` keeps its runs (every shard, every fire,
//! broadcast too) on the executors whose labels match, a handler job goes
//! only to executors announcing its handler, and a job nothing matches
//! fails at once saying what did not match, which the placement route and
//! the console's job page say before it fires.

use std::{collections::BTreeSet, net::TcpListener};

use actix_web::{web, App, HttpResponse, HttpServer};
use cronmesh_tests::mesh::Mesh;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn executors_of(runs: &[Value]) -> BTreeSet<String> {
    runs.iter()
        .map(|r| r["executor"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn assert_all_succeeded(job: &str, runs: &[Value]) {
    for run in runs {
        assert_eq!(run["status"], "succeeded", "{job}: {run}");
    }
}

async fn console_page(base: &str, path: &str) -> String {
    let response = reqwest::get(format!("{base}{path}"))
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.text().await.unwrap_or_default()
}

#[actix_web::test]
async fn a_selector_keeps_runs_on_executors_whose_labels_match() {
    let mesh = Mesh::start();
    let eu_a = mesh.executor(&["--label", "zone=eu-1", "--label", "tier=a"]);
    let eu_b = mesh.executor(&["--label", "zone=eu-1", "--label", "tier=b"]);
    let us_a = mesh.executor(&["--label", "zone=us-1", "--label", "tier=a"]);
    mesh.sees_alive(&[&eu_a.url, &eu_b.url, &us_a.url]).await;
    let eu: BTreeSet<String> = [eu_a.url.clone(), eu_b.url.clone()].into();

    let shell = json!({"type": "shell", "command": "true"});
    for (id, routing, shards, selector) in [
        ("sharded", "round_robin", 6, json!({"zone": "eu-1"})),
        ("hashed", "consistent_hash", 4, json!({"zone": "eu-1"})),
        (
            "busy",
            "least_busy",
            1,
            json!({"zone": {"in": ["eu-1", "ap-1"]}}),
        ),
        ("tier-b", "random", 1, json!({"tier": {"in": ["b", "c"]}})),
        ("everywhere-eu", "broadcast", 1, json!({"zone": "eu-1"})),
        (
            "nowhere",
            "round_robin",
            2,
            json!({"zone": "ap-1", "tier": "a"}),
        ),
    ] {
        mesh.api
            .create_job(
                json!({"id": id, "schedule": "@manual", "routing": routing, "shards": shards,
                "target": shell, "selector": selector}),
            )
            .await;
    }

    mesh.trigger("sharded", 3).await;
    let runs = mesh.ended_runs("sharded", 18).await;
    assert_all_succeeded("sharded", &runs);
    assert_eq!(executors_of(&runs), eu, "every shard of every fire in eu-1");

    mesh.trigger("hashed", 2).await;
    let runs = mesh.ended_runs("hashed", 8).await;
    assert_all_succeeded("hashed", &runs);
    assert!(executors_of(&runs).is_subset(&eu), "{runs:?}");

    mesh.trigger("busy", 6).await;
    let runs = mesh.ended_runs("busy", 6).await;
    assert_all_succeeded("busy", &runs);
    assert!(executors_of(&runs).is_subset(&eu), "`in` matches: {runs:?}");

    mesh.trigger("tier-b", 6).await;
    let runs = mesh.ended_runs("tier-b", 6).await;
    assert_all_succeeded("tier-b", &runs);
    assert_eq!(executors_of(&runs), BTreeSet::from([eu_b.url.clone()]));

    mesh.trigger("everywhere-eu", 1).await;
    let runs = mesh.ended_runs("everywhere-eu", 2).await;
    assert_all_succeeded("everywhere-eu", &runs);
    assert_eq!(runs.len(), 2, "one run per matching executor: {runs:?}");
    assert_eq!(executors_of(&runs), eu);

    // Nothing matches: the runs fail at once, naming the selector.
    let (_, placement) = mesh.api.get("/v1/jobs/nowhere/placement").await;
    let expected = r#"no live executor in group "default" matches selector {tier=a, zone=ap-1}"#;
    assert_eq!(placement["executors"], json!([]), "{placement}");
    assert_eq!(placement["problem"], expected, "{placement}");
    mesh.trigger("nowhere", 1).await;
    let runs = mesh.ended_runs("nowhere", 2).await;
    for run in &runs {
        assert_eq!(run["status"], "failed", "{run}");
        assert_eq!(run["error"], expected, "{run}");
        assert!(run["started_at"].is_null(), "never dispatched: {run}");
    }

    // The placement route and the console's job page say so beforehand.
    let (_, placement) = mesh.api.get("/v1/jobs/sharded/placement").await;
    let listed: BTreeSet<String> = placement["executors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(listed, eu, "{placement}");
    assert!(placement["problem"].is_null(), "{placement}");
    let html = console_page(&mesh.api.base, "/jobs/default/nowhere").await;
    assert!(html.contains(r#"id="placement-warning""#), "{html}");
    assert!(
        html.contains("matches selector {tier=a, zone=ap-1}"),
        "the warning names the selector: {html}"
    );
    let html = console_page(&mesh.api.base, "/jobs/default/sharded").await;
    assert!(!html.contains(r#"id="placement-warning""#), "{html}");
    assert!(
        html.contains("<code>{zone=eu-1}</code>"),
        "the selector is shown: {html}"
    );
}

#[actix_web::test]
async fn handler_jobs_go_only_to_executors_announcing_the_handler() {
    // A service that implements `reconcile` for the forwarding executor.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let service = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(|| {
        App::new().route(
            "/reconcile",
            web::post().to(|| async { HttpResponse::Ok().body("reconciled") }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);

    let mesh = Mesh::start();
    let serving = mesh.executor(&["--forward", &service, "--handler", "reconcile"]);
    let plain = mesh.executor(&[]);
    let other = mesh.executor(&["--forward", &service, "--handler", "resize"]);
    mesh.sees_alive(&[&serving.url, &plain.url, &other.url])
        .await;
    let (_, listed) = mesh.api.get("/v1/executors").await;
    let handlers_of = |url: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["endpoint"] == url)
            .map(|e| e["handlers"].clone())
    };
    assert_eq!(
        handlers_of(&serving.url),
        Some(json!(["noop", "reconcile"]))
    );
    assert_eq!(handlers_of(&other.url), Some(json!(["noop", "resize"])));

    for (id, handler) in [("reconcile", "reconcile"), ("absent", "absent")] {
        mesh.api
            .create_job(
                json!({"id": id, "schedule": "@manual", "routing": "round_robin",
                "target": {"type": "executor", "handler": handler}}),
            )
            .await;
    }
    mesh.trigger("reconcile", 9).await;
    let runs = mesh.ended_runs("reconcile", 9).await;
    for run in &runs {
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["output"], "reconciled", "{run}");
    }
    assert_eq!(
        executors_of(&runs),
        BTreeSet::from([serving.url.clone()]),
        "only the executor announcing the handler"
    );

    let expected = r#"no live executor in group "default" announces handler "absent""#;
    let html = console_page(&mesh.api.base, "/jobs/default/absent").await;
    assert!(html.contains(r#"id="placement-warning""#), "{html}");
    assert!(
        html.contains("announces handler &quot;absent&quot;"),
        "{html}"
    );
    mesh.trigger("absent", 1).await;
    let runs = mesh.ended_runs("absent", 1).await;
    assert_eq!(runs[0]["status"], "failed", "{}", runs[0]);
    assert_eq!(runs[0]["error"], expected, "{}", runs[0]);
}
