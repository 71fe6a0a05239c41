//! No request adds metric series for good: `cronmesh_http_requests_total`
//! is labelled from fixed sets (a registered route or `unmatched`, a
//! standard method or `other`, a status), so a client inventing methods
//! and paths — on `/healthz`, which anyone may call — leaves the number
//! of series as it was.

use cronmesh_tests::process;
use reqwest::Method;

/// The `cronmesh_http_requests_total` series in a scrape.
fn request_series(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| line.starts_with("cronmesh_http_requests_total{"))
        .filter_map(|line| line.rsplit_once(' ').map(|(series, _)| series.to_string()))
        .collect()
}

async fn scrape(client: &reqwest::Client, base: &str) -> String {
    let response = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    response.text().await.expect("the metrics text")
}

/// Sends `count` requests, each with a method and a path never used
/// before, the first `count / 2` to `/healthz` and the rest to paths
/// no route has.
async fn invent(client: &reqwest::Client, base: &str, from: usize, count: usize) {
    for i in from..from + count {
        let method = Method::from_bytes(format!("X-INVENTED-{i}").as_bytes()).unwrap();
        let path = if i % 2 == 0 {
            "/healthz".to_string()
        } else {
            format!("/nothing/here/{i}?q={i}")
        };
        let response = client
            .request(method, format!("{base}{path}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert!(
            response.status().is_client_error(),
            "an invented method gets a 4xx, not {}",
            response.status()
        );
    }
}

#[tokio::test]
async fn invented_methods_and_paths_add_no_series() {
    let dir = tempfile::tempdir().unwrap();
    let node = process::dev(dir.path(), &["--rate-limit", "0"]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();

    // The first few make every series such requests can make.
    invent(&client, &node.url, 0, 10).await;
    let _ = scrape(&client, &node.url).await;
    let before = request_series(&scrape(&client, &node.url).await);

    invent(&client, &node.url, 10, 1_000).await;
    let text = scrape(&client, &node.url).await;
    let after = request_series(&text);

    assert_eq!(
        after, before,
        "1,000 invented methods and paths changed the series"
    );
    assert!(
        after
            .iter()
            .all(|s| !s.contains("X-INVENTED") && !s.contains("/nothing")),
        "a label holds what the client sent: {after:#?}"
    );
    let other_on_healthz = after
        .iter()
        .find(|s| s.contains(r#"route="/healthz""#) && s.contains(r#"method="other""#))
        .unwrap_or_else(|| panic!("no series of other methods on /healthz: {after:#?}"));
    let count: f64 = text
        .lines()
        .find_map(|line| {
            line.strip_prefix(other_on_healthz.as_str())?
                .trim()
                .parse()
                .ok()
        })
        .expect("its count");
    assert_eq!(count, 505.0, "every invented method on /healthz is counted");
    assert!(
        after
            .iter()
            .any(|s| s.contains(r#"route="unmatched""#) && s.contains(r#"method="other""#)),
        "{after:#?}"
    );
}
