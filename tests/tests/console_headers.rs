//! Every answer of a node carries the headers that keep the console to
//! itself in a browser (docs/OPERATIONS.md, "Browser security headers"):
//! a content security policy allowing only the node's own script and
//! stylesheet, no framing, no type sniffing, no Referer to other sites.
//! The console's pages hold nothing that policy would block (no inline
//! script, event handler attribute or style), and in Chromium the
//! stylesheet applies and the script runs under it.

use std::time::Duration;

use cronmesh_tests::{api::Api, browser::Browser, process, wait};
use reqwest::header::HeaderMap;
use serde_json::json;

const EXPECTED: [(&str, &str); 4] = [
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
];

fn assert_headers(what: &str, headers: &HeaderMap) {
    for (name, value) in EXPECTED {
        assert_eq!(
            headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{what}: {name}"
        );
    }
}

/// What the policy would block in a page's markup, if anything.
fn blocked_markup(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut found = Vec::new();
    for (at, _) in lower.match_indices("<script") {
        let tag = &lower[at..lower[at..].find('>').map_or(lower.len(), |end| at + end)];
        if !tag.contains(" src=") {
            found.push(format!("inline script: {tag}"));
        }
    }
    if lower.contains("<style") {
        found.push("a <style> element".into());
    }
    if lower.contains(" style=") {
        found.push("a style attribute".into());
    }
    // An event handler attribute: ` on` plus letters and `=`, inside a tag.
    let bytes = lower.as_bytes();
    for (at, _) in lower.match_indices(" on") {
        let name: String = lower[at + 3..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase())
            .collect();
        let after = at + 3 + name.len();
        if !name.is_empty() && bytes.get(after) == Some(&b'=') {
            found.push(format!("handler attribute on{name}"));
        }
    }
    if lower.contains("javascript:") {
        found.push("a javascript: URL".into());
    }
    found
}

#[tokio::test]
async fn every_answer_carries_the_headers_and_no_page_needs_inline_code() {
    let dir = tempfile::tempdir().unwrap();
    let node = process::dev(dir.path(), &[]);
    let base = node.url.clone();
    let api = Api::new(base.clone());
    api.create_job(json!({"id": "shown", "schedule": "@every 1s",
        "target": {"type": "shell", "command": "echo shown"}}))
        .await;
    let run = wait::until("a finished run", Duration::from_secs(30), || async {
        let runs = api.runs_of("shown").await;
        runs.into_iter().find(|r| r["status"] == "succeeded")
    })
    .await;
    let run_id = run["id"].as_str().unwrap_or_default().to_string();

    let client = reqwest::Client::new();
    let get = |path: String| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let response = client
                .get(&url)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            let headers = response.headers().clone();
            (
                response.status(),
                headers,
                response.text().await.unwrap_or_default(),
            )
        }
    };
    let pages = [
        "/".to_string(),
        "/jobs".into(),
        "/jobs/new".into(),
        "/jobs/default/shown".into(),
        "/jobs/default/shown/edit".into(),
        "/runs".into(),
        format!("/runs/{run_id}"),
        "/executors".into(),
        "/cluster".into(),
        "/login".into(),
        "/jobs/default/missing".into(),
    ];
    for path in &pages {
        let (status, headers, html) = get(path.clone()).await;
        assert!(
            status.is_success() || status == reqwest::StatusCode::NOT_FOUND,
            "{path}: {status}"
        );
        assert_headers(path, &headers);
        assert!(html.contains("<html"), "{path} is a page");
        let blocked = blocked_markup(&html);
        assert!(blocked.is_empty(), "{path}: {blocked:?}");
    }
    // The assets, the API, and a refusal carry them as well.
    for path in [
        "/assets/console.js",
        "/assets/console.css",
        "/v1/jobs",
        "/healthz",
        "/metrics",
        "/v1/nothing",
    ] {
        let (_, headers, _) = get(path.to_string()).await;
        assert_headers(path, &headers);
    }
    let refused = client
        .post(format!("{base}/v1/jobs"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("the node answers");
    assert_eq!(
        refused.status(),
        reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_headers("a refusal", refused.headers());

    // In a browser, under the policy: the stylesheet styles the page, the
    // script connects to the event stream, and the chart is drawn.
    let browser = Browser::start(1280, 900).await;
    browser.goto(&format!("{base}/")).await;
    browser.find("svg.chart").await;
    wait::until(
        "the console script's live connection",
        Duration::from_secs(30),
        || async {
            let class = browser
                .script("return document.getElementById('live').className;")
                .await;
            (class == "live on").then_some(())
        },
    )
    .await;
    let styled = browser
        .script("return getComputedStyle(document.querySelector('header.top')).display;")
        .await;
    assert_eq!(styled, "flex", "console.css applies");
    // Nothing the script rendered since carries inline style or handlers.
    let inline = browser
        .script(
            "return Array.from(document.querySelectorAll('*')).filter((e) => \
             e.hasAttribute('style') || Array.from(e.attributes).some((a) => a.name.startsWith('on'))\
             ).map((e) => e.outerHTML.slice(0, 80));",
        )
        .await;
    assert_eq!(inline, json!([]));
    browser.quit().await;
}

#[test]
fn the_markup_check_finds_what_the_policy_would_block() {
    let allowed = r#"<script src="/assets/console.js" defer></script><p class="on">turned on</p>"#;
    assert_eq!(blocked_markup(allowed), Vec::<String>::new());
    for blocked in [
        "<script>alert(1)</script>",
        r#"<div style="color: red">"#,
        "<style>p { color: red }</style>",
        r#"<button onclick="go()">"#,
        r#"<a href="javascript:go()">"#,
    ] {
        assert_eq!(blocked_markup(blocked).len(), 1, "{blocked}");
    }
}
