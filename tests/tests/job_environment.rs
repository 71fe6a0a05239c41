//! What a shell job sees of its executor: only an allowlist of the
//! executor's environment (no secret, no path to it, nothing the operator
//! did not pass), and with `--run-as` another user, who cannot read the
//! secret file.

use std::{os::unix::fs::PermissionsExt, time::Duration};

use cronmesh_tests::{
    api::Api,
    process::{server_with, Proc},
    wait,
};
use serde_json::{json, Value};

const SECRET: &str = "a-shared-secret-no-job-may-read";

/// A secret file readable by its owner only, as docs/OPERATIONS.md says to
/// keep it.
fn secret_file(dir: &std::path::Path) -> String {
    let path = dir.join("secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_string_lossy().to_string()
}

/// `cronmesh executor` with the secret, `extra` flags and this environment.
fn executor(secret: &str, extra: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut args = vec![
        "executor",
        "--group",
        "default",
        "--listen",
        "127.0.0.1:0",
        "--secret-file",
        secret,
    ];
    args.extend_from_slice(extra);
    Proc::spawn_with_env(&args, env, "cronmesh executor listening on ")
}

/// A scheduler with data under `dir` that sends its runs to `exec`.
fn scheduler_of(dir: &std::path::Path, exec: &Proc, secret: &str) -> (Proc, Api) {
    let node = server_with(
        &dir.join("data"),
        "127.0.0.1:0",
        &[&exec.url],
        &["--secret-file", secret],
    );
    let api = Api::new(node.url.clone());
    (node, api)
}

/// Runs `command` once and returns the ended run.
async fn run_once(api: &Api, id: &str, command: &str) -> Value {
    api.create_job(json!({"id": id, "schedule": "@manual",
        "target": {"type": "shell", "command": command}}))
        .await;
    api.post(&format!("/v1/jobs/{id}/trigger"), json!({})).await;
    wait::until(
        &format!("the run of {id}"),
        Duration::from_secs(20),
        || async {
            api.runs_of(id)
                .await
                .into_iter()
                .find(|r| matches!(r["status"].as_str(), Some("succeeded" | "failed")))
        },
    )
    .await
}

#[tokio::test]
async fn a_job_finds_no_secret_in_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let exec = executor(
        &secret,
        &["--pass-env", "AWS_REGION"],
        &[
            ("CRONMESH_SECRET_FILE", secret.as_str()),
            ("DATABASE_PASSWORD", "hunter2"),
            ("AWS_REGION", "eu-west-1"),
        ],
    );
    let (_node, api) = scheduler_of(dir.path(), &exec, &secret);

    let run = run_once(&api, "env-dump", "env").await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let output = run["output"].as_str().unwrap();
    for present in ["CRONMESH_JOB_ID=env-dump", "PATH=", "AWS_REGION=eu-west-1"] {
        assert!(
            output.contains(present),
            "{present} missing from:\n{output}"
        );
    }
    for absent in [
        "hunter2",
        "DATABASE_PASSWORD",
        "CRONMESH_SECRET_FILE",
        SECRET,
    ] {
        assert!(!output.contains(absent), "{absent} leaked into:\n{output}");
    }
}

#[tokio::test]
async fn a_job_run_as_another_user_cannot_read_the_secret_file() {
    let dir = tempfile::tempdir().unwrap();
    if !runs_as_root(dir.path()) {
        eprintln!("skipped: --run-as needs the executor to run as root");
        return;
    }
    // The tempdir itself must let the other user in, as a real /etc would.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = secret_file(dir.path());
    let exec = executor(&secret, &["--run-as", "nobody"], &[]);
    let (_node, api) = scheduler_of(dir.path(), &exec, &secret);

    let run = run_once(&api, "who", "id -un").await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["output"], "nobody\n");

    let run = run_once(&api, "thief", &format!("cat {secret}")).await;
    assert_eq!(run["status"], "failed", "{run}");
    let output = run["output"].as_str().unwrap();
    assert!(!output.contains(SECRET), "the secret leaked: {output}");
    assert!(output.contains("Permission denied"), "{output}");
}

/// Whether this test runs as root: a file it creates is owned by uid 0.
fn runs_as_root(dir: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let probe = dir.join("owner-probe");
    std::fs::write(&probe, b"").unwrap();
    std::fs::metadata(&probe).unwrap().uid() == 0
}
