//! With a shared secret, scheduler and executor sign every request of the
//! executor protocol; an executor with another secret takes nothing.

use std::time::Duration;

use cronmesh_tests::{
    api::Api,
    process::{executor_with, server_with},
    wait,
};
use serde_json::json;

#[tokio::test]
async fn signed_protocol_works_and_a_different_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, secret: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{secret}\n")).unwrap();
        path.to_string_lossy().to_string()
    };
    let ours = write("ours", "a-shared-secret-of-enough-length");
    let theirs = write("theirs", "another-secret-of-enough-length");
    let good = executor_with("default", &["--secret-file", &ours]);
    let stranger = executor_with("other", &["--secret-file", &theirs]);
    let data = dir.path().join("data");
    let node = server_with(
        &data,
        "127.0.0.1:0",
        &[&good.url, &format!("other={}", stranger.url)],
        &["--secret-file", &ours],
    );
    let api = Api::new(node.url.clone());

    api.create_job(json!({"id": "signed", "schedule": "@manual", "target": {"type": "shell", "command": "echo signed"}}))
        .await;
    api.post("/v1/jobs/signed/trigger", json!({})).await;
    let run = wait::until("the signed run", Duration::from_secs(15), || async {
        api.runs_of("signed")
            .await
            .into_iter()
            .find(|r| r["status"] == "succeeded")
    })
    .await;
    assert_eq!(
        run["output"], "signed\n",
        "the executor's signed report was accepted"
    );

    api.create_job(json!({"id": "refused", "schedule": "@manual", "target": {"type": "shell", "group": "other", "command": "echo no"}}))
        .await;
    api.post("/v1/jobs/refused/trigger", json!({})).await;
    let run = wait::until("the refused run", Duration::from_secs(15), || async {
        api.runs_of("refused")
            .await
            .into_iter()
            .find(|r| r["status"] == "failed")
    })
    .await;
    let error = run["error"].as_str().unwrap();
    assert!(error.contains("401") && error.contains("secret"), "{error}");
}
