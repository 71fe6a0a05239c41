//! Optional TLS with a private CA: the admin API, the web console and the
//! executor protocol over HTTPS, both ways (dispatches to the executor,
//! reports back to the scheduler). Certificates are verified: a client
//! that does not trust the CA is refused, naming the certificate, and
//! nothing is served in plain HTTP on an HTTPS port.

use std::time::Duration;

use cronmesh_tests::{
    api::Api,
    process::{cli, executor_with, server_with},
    tls::TestCa,
    wait,
};
use serde_json::json;

const TOKEN: &str = "tls-test-admin-token";

fn strings(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn a_job_runs_end_to_end_over_https_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::generate(dir.path(), "cluster");
    let ca_file = ca.ca.to_string_lossy().to_string();
    let mut tls = ca.serve_args();
    tls.extend(["--tls-ca".to_string(), ca_file.clone()]);

    let executor = executor_with("default", &strings(&tls));
    assert!(executor.url.starts_with("https://"), "{}", executor.url);
    let mut server_args = tls.clone();
    server_args.extend(["--admin-token".to_string(), TOKEN.to_string()]);
    let node = server_with(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &[&executor.url],
        &strings(&server_args),
    );
    assert!(node.url.starts_with("https://"), "{}", node.url);

    let job = dir.path().join("job.json");
    std::fs::write(
        &job,
        json!({"id": "secure", "schedule": "@manual",
            "target": {"type": "shell", "command": "echo over tls"}})
        .to_string(),
    )
    .unwrap();
    let job = job.to_string_lossy().to_string();
    let with_ca = |args: &[&str]| {
        let mut all = vec!["--api-ca", &ca_file, "--token", TOKEN];
        all.extend_from_slice(args);
        cli(&node.url, &all)
    };
    let (code, stdout, stderr) = with_ca(&["job", "create", "--file", &job]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    // Delivered to the executor over HTTPS, reported back over HTTPS.
    let (code, stdout, stderr) = with_ca(&["job", "trigger", "secure", "--wait"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let api = Api::trusting(node.url.clone(), &ca.ca_pem()).with_token(TOKEN);
    let runs = api.runs_of("secure").await;
    assert_eq!(runs[0]["status"], "succeeded", "{runs:?}");
    assert_eq!(runs[0]["executor"], executor.url.as_str());
    assert_eq!(runs[0]["output"], "over tls\n");

    // A client without the CA is refused, and told why.
    let (code, stdout, stderr) = cli(&node.url, &["--token", TOKEN, "job", "list"]);
    assert_ne!(code, Some(0), "{stdout}");
    assert!(stderr.contains("certificate"), "{stderr}");
    assert!(stderr.contains("--api-ca"), "{stderr}");
    // Plain HTTP on the HTTPS port gets no answer.
    let plain = node.url.replacen("https://", "http://", 1);
    let answer = reqwest::Client::new()
        .get(format!("{plain}/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    assert!(answer.is_err(), "{answer:?}");

    // The console's sign-in cookie is Secure over HTTPS.
    let (status, _) = api.get("/healthz").await;
    assert!(status.is_success());
    let client = reqwest::Client::builder()
        .tls_certs_merge([reqwest::Certificate::from_pem(&ca.ca_pem()).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = client
        .post(format!("{}/login", node.url))
        // As the console's own sign-in page posts it.
        .header("origin", &node.url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}&next=%2F"))
        .send()
        .await
        .unwrap();
    let cookie = answer
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}

#[tokio::test]
async fn a_scheduler_that_does_not_trust_the_executor_fails_the_run_naming_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let executor_ca = TestCa::generate(dir.path(), "executor");
    let executor = executor_with("default", &strings(&executor_ca.serve_args()));
    // No --tls-ca: the executor's private CA is unknown to the scheduler.
    let node = server_with(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &[&executor.url],
        &[],
    );
    let api = Api::new(node.url.clone());
    api.create_job(json!({"id": "untrusted", "schedule": "@manual",
        "target": {"type": "shell", "command": "true"}}))
        .await;
    let (status, body) = api.post("/v1/jobs/untrusted/trigger", json!({})).await;
    assert_eq!(status, 202, "{body}");
    let run = wait::until("the run to fail", Duration::from_secs(30), || async {
        let runs = api.runs_of("untrusted").await;
        runs.into_iter().find(|r| r["status"] == "failed")
    })
    .await;
    let error = run["error"].as_str().unwrap_or_default();
    assert!(error.contains("certificate"), "{error}");
}
