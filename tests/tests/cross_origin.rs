//! No web page can drive a node (docs/API.md, "Browsers and cross-site
//! requests"). In a real Chromium, a page of another origin tries what any
//! page can do without asking the node first: `fetch` in `no-cors` mode
//! with a JSON or `text/plain` body, and an HTML form posted to the API;
//! nothing is created and nothing runs, with or without an admin token
//! (with one, the browser is signed in to the console, and its cookie goes
//! along: another port of 127.0.0.1 is the same site). A name the attacker
//! points at 127.0.0.1 (DNS rebinding) gets nothing either. The console's
//! own pages still create and run jobs. Then each rule over plain HTTP.

use std::time::Duration;

use cronmesh_tests::{
    api::{assert_error_answer, Api},
    browser::{Browser, Site},
    process, wait,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const TOKEN: &str = "cross-origin-test-token";
/// Long enough for a browser and a node to answer at all.
const PATIENCE: Duration = Duration::from_secs(30);

fn victim() -> Value {
    json!({"id": "victim", "schedule": "@manual",
           "target": {"type": "shell", "command": "echo ran"}})
}

/// The hostile page: writes a page can send to `node` without a
/// preflight (a job with no Content-Type or as text/plain, a trigger with
/// no body, an empty form posted to the trigger), then one that needs a
/// preflight (which the node never grants). It sets `window.done` once the
/// fetches have answers and the form has gone.
fn hostile_page(node: &str) -> String {
    format!(
        r#"<!doctype html>
<html><body>
<iframe name="sink"></iframe>
<form id="form" method="post" action="{node}/v1/jobs/victim/trigger" target="sink"></form>
<script>
const node = "{node}";
const planted = JSON.stringify({{ id: "planted", schedule: "@every 1s",
  target: {{ type: "shell", command: "echo planted" }} }});
window.sent = [];
async function attempt(name, url, init) {{
  try {{
    const r = await fetch(url, Object.assign({{ method: "POST", credentials: "include" }}, init));
    window.sent.push(name + ": " + r.type);
  }} catch (e) {{
    window.sent.push(name + ": failed");
  }}
}}
(async () => {{
  // A Blob of no type goes without any Content-Type.
  await attempt("untyped", node + "/v1/jobs", {{ mode: "no-cors", body: new Blob([planted]) }});
  await attempt("text/plain", node + "/v1/jobs", {{ mode: "no-cors", body: planted }});
  await attempt("empty trigger", node + "/v1/jobs/victim/trigger", {{ mode: "no-cors" }});
  await attempt("preflighted", node + "/v1/jobs",
    {{ headers: {{ "content-type": "application/json" }}, body: planted }});
  document.getElementById("form").submit();
  window.done = true;
}})();
</script>
</body></html>"#
    )
}

/// POSTs to `route` the node has answered, from its metrics: in all, and
/// refused with 403.
async fn posts_to(api: &Api, route: &str) -> (f64, f64) {
    let (status, text) = api.get("/metrics").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let series = format!(r#"cronmesh_http_requests_total{{route="{route}",method="POST",status=""#);
    let (mut all, mut refused) = (0.0, 0.0);
    for line in text.as_str().unwrap_or_default().lines() {
        let Some(rest) = line.strip_prefix(&series) else {
            continue;
        };
        let Some((status, value)) = rest.split_once("\"} ") else {
            continue;
        };
        let value: f64 = value.trim().parse().unwrap_or(0.0);
        all += value;
        if status == "403" {
            refused += value;
        }
    }
    (all, refused)
}

/// Sends the browser to the hostile page, waits until the four writes
/// that leave it have reached the node, and checks nothing happened.
async fn attack(browser: &Browser, node: &str, api: &Api) {
    let before = (
        posts_to(api, "/v1/jobs").await,
        posts_to(api, "/v1/jobs/{id}/trigger").await,
    );
    let site = Site::serve(hostile_page(node)).await;
    browser.goto(&site.url).await;
    let sent = wait::until("the page's attempts", PATIENCE, || async {
        let sent = browser
            .script("return window.done === true ? window.sent : null;")
            .await;
        (!sent.is_null()).then_some(sent)
    })
    .await;
    assert_eq!(
        sent,
        json!([
            "untyped: opaque",
            "text/plain: opaque",
            "empty trigger: opaque",
            // The preflight is not granted: the POST is never sent.
            "preflighted: failed"
        ])
    );
    // Two creations and two triggers (one of them the form) reached the
    // node: none had any effect, and each was refused for its origin.
    let (created, triggered) = wait::until("four writes to reach the node", PATIENCE, || async {
        let (all, refused) = posts_to(api, "/v1/jobs").await;
        let created = (all - before.0 .0, refused - before.0 .1);
        let (all, refused) = posts_to(api, "/v1/jobs/{id}/trigger").await;
        let triggered = (all - before.1 .0, refused - before.1 .1);
        (created.0 >= 2.0 && triggered.0 >= 2.0).then_some((created, triggered))
    })
    .await;
    let (status, body) = api.get("/v1/jobs/planted").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(api.runs_of("victim").await.is_empty(), "nothing ran");
    assert_eq!(created, (2.0, 2.0), "creations: (answered, refused)");
    assert_eq!(triggered, (2.0, 2.0), "triggers: (answered, refused)");
}

/// The console itself still writes: a job made with its form, and the
/// victim triggered from its page.
async fn console_still_works(browser: &Browser, node: &str, api: &Api) {
    browser.goto(&format!("{node}/jobs/new")).await;
    browser.fill("#f-id", "made-in-console").await;
    browser.fill("#f-schedule", "@manual").await;
    browser.fill("#f-target-command", "echo console").await;
    browser.click("#job-form button[type=submit]").await;
    browser.wait_for_path("/jobs/default/made-in-console").await;
    let (status, body) = api.get("/v1/jobs/made-in-console").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    browser.goto(&format!("{node}/jobs/default/victim")).await;
    browser.click("#job-actions button.primary").await;
    wait::until("the console's trigger to start a run", PATIENCE, || async {
        (!api.runs_of("victim").await.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_page_of_another_origin_cannot_create_or_run_jobs_on_a_node_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let node = process::dev(dir.path(), &[]);
    let api = Api::new(node.url.clone());
    api.create_job(victim()).await;
    let browser = Browser::start(1280, 900).await;

    attack(&browser, &node.url, &api).await;
    console_still_works(&browser, &node.url, &api).await;
    browser.quit().await;
}

#[tokio::test]
async fn a_page_of_another_origin_cannot_use_the_console_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let node = process::dev(dir.path(), &["--admin-token", TOKEN]);
    let api = Api::new(node.url.clone()).with_token(TOKEN);
    api.create_job(victim()).await;
    let browser = Browser::start(1280, 900).await;
    // Signed in: the browser holds the console's cookie for 127.0.0.1.
    browser.goto(&format!("{}/login", node.url)).await;
    browser.fill("#token", TOKEN).await;
    browser.click("form.signin button[type=submit]").await;
    browser.wait_for_path("/").await;

    attack(&browser, &node.url, &api).await;
    console_still_works(&browser, &node.url, &api).await;
    browser.quit().await;
}

#[tokio::test]
async fn a_name_rebound_to_loopback_reaches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = process::dev(dir.path(), &[]);
    let api = Api::new(node.url.clone());
    let port = node.url.rsplit(':').next().unwrap_or_default();
    // The attacker's domain now resolves to 127.0.0.1, so its page is
    // same-origin with the node as far as the browser knows.
    let browser = Browser::start_with(
        1280,
        900,
        &[
            "--host-resolver-rules=MAP rebind.test 127.0.0.1",
            "--disable-features=HttpsUpgrades",
        ],
    )
    .await;
    browser.goto(&format!("http://rebind.test:{port}/")).await;
    let page = browser
        .script("return document.body ? document.body.innerText : '';")
        .await;
    assert!(
        page.as_str()
            .unwrap_or_default()
            .contains("host_not_allowed"),
        "{page}"
    );
    let answers = browser
        .script_async(
            r#"const done = arguments[arguments.length - 1];
            const job = JSON.stringify({ id: "rebound", schedule: "@manual",
              target: { type: "shell", command: "echo rebound" } });
            Promise.all([
              fetch("/v1/jobs", { method: "POST", headers: { "content-type": "application/json" }, body: job }),
              fetch("/v1/jobs"),
            ]).then((rs) => done(rs.map((r) => r.status)), (e) => done(String(e)));"#,
        )
        .await;
    assert_eq!(answers, json!([403, 403]));
    let (status, _) = api.get("/v1/jobs/rebound").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    browser.quit().await;
}

/// A POST to `path` with `headers` and a JSON job body.
async fn post(node: &str, path: &str, headers: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{node}{path}"))
        .timeout(PATIENCE)
        .body(
            json!({"id": "sneaked", "schedule": "@manual",
                   "target": {"type": "shell", "command": "true"}})
            .to_string(),
        );
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the node answers");
    let status = response.status();
    (status, json_of(response).await)
}

/// The answer's JSON body (null if it is not JSON).
async fn json_of(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn assert_refused(answer: &(StatusCode, Value), status: StatusCode, code: &str) {
    let error = assert_error_answer(answer, status);
    assert_eq!(error["code"], code, "{}", answer.1);
}

#[tokio::test]
async fn each_rule_refuses_what_a_page_could_send_and_passes_our_clients() {
    let dir = tempfile::tempdir().unwrap();
    let node = process::dev(dir.path(), &[]);
    let url = node.url.as_str();
    let api = Api::new(node.url.clone());
    api.create_job(victim()).await;
    let json = ("content-type", "application/json");

    // Another origin, whatever the body says it is.
    for origin in ["http://evil.example", "http://localhost:1", "null"] {
        assert_refused(
            &post(url, "/v1/jobs", &[json, ("origin", origin)]).await,
            StatusCode::FORBIDDEN,
            "cross_origin",
        );
    }
    for site in ["cross-site", "same-site"] {
        assert_refused(
            &post(url, "/v1/jobs", &[json, ("sec-fetch-site", site)]).await,
            StatusCode::FORBIDDEN,
            "cross_origin",
        );
    }
    // Bodies typed as a page may type them without asking, or untyped.
    for kind in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let headers: Vec<(&str, &str)> = kind.map(|k| ("content-type", k)).into_iter().collect();
        for path in ["/v1/jobs", "/v1/jobs/victim/trigger"] {
            let answer = post(url, path, &headers).await;
            assert_refused(
                &answer,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            );
            assert_eq!(answer.1["error"]["field"], "content-type", "{kind:?}");
        }
    }
    // A name other than a loopback one, on a loopback listener: reads too.
    let port = url.rsplit(':').next().unwrap_or_default();
    let rebound = format!("rebind.test:{port}");
    let refused = reqwest::Client::new()
        .get(format!("{url}/v1/jobs"))
        .header("host", &rebound)
        .timeout(PATIENCE)
        .send()
        .await
        .expect("the node answers");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body = json_of(refused).await;
    assert_eq!(body["error"]["code"], "host_not_allowed", "{body}");
    assert_refused(
        &post(url, "/v1/jobs", &[json, ("host", &rebound)]).await,
        StatusCode::FORBIDDEN,
        "host_not_allowed",
    );
    // A console form without proof of its page.
    let (status, _) = post(
        url,
        "/login",
        &[("content-type", "application/x-www-form-urlencoded")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Nothing came of any of it.
    let (status, _) = api.get("/v1/jobs/sneaked").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(api.runs_of("victim").await.is_empty());

    // What passes: our clients' JSON, the console's own origin, loopback
    // names, reads from anywhere, a typed-in address, a proven form.
    let (status, body) = post(
        url,
        "/v1/jobs",
        &[json, ("origin", url), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = api
        .raw(
            Method::POST,
            "/v1/jobs/victim/trigger",
            "application/json; charset=utf-8",
            Vec::new(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = api.post("/v1/jobs/victim/pause", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for host in [format!("localhost:{port}"), format!("[::1]:{port}")] {
        let answer = reqwest::Client::new()
            .get(format!("{url}/healthz"))
            .header("host", &host)
            .timeout(PATIENCE)
            .send()
            .await
            .expect("the node answers");
        assert_eq!(answer.status(), StatusCode::OK, "{host}");
    }
    let read = reqwest::Client::new()
        .get(format!("{url}/v1/jobs"))
        .header("origin", "http://evil.example")
        .header("sec-fetch-site", "cross-site")
        .timeout(PATIENCE)
        .send()
        .await
        .expect("the node answers");
    assert_eq!(read.status(), StatusCode::OK);
    assert!(
        read.headers().get("access-control-allow-origin").is_none(),
        "no page of another origin may read the answer"
    );
    let (status, body) = api
        .raw(Method::DELETE, "/v1/jobs/sneaked", "text/plain", Vec::new())
        .await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "DELETE needs no body type: {body}"
    );
    let signed_in = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{url}/login"))
        .header("origin", url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=x&next=%2F")
        .timeout(PATIENCE)
        .send()
        .await
        .expect("the node answers");
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);

    // The CLI's writes without a body (pause, resume, kill) say JSON too.
    let (code, stdout, stderr) = process::cli(url, &["job", "resume", "victim"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}
