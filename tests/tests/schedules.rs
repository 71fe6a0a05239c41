//! Schedule previews through the API and the CLI, across DST changes.

use chrono::{DateTime, Datelike, Weekday};
use cronmesh_tests::{api::Api, process::server};
use reqwest::StatusCode;
use serde_json::json;

fn days(times: &serde_json::Value) -> Vec<String> {
    times
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap()[..10].to_string())
        .collect()
}

#[tokio::test]
async fn preview_handles_dst_and_weekdays() {
    let dir = tempfile::tempdir().unwrap();
    let node = server(dir.path(), "127.0.0.1:0", &[]);
    let api = Api::new(node.url.clone());
    let preview = |from: &str| json!({"schedule": "30 2 * * *", "timezone": "Europe/Berlin", "from": from, "count": 3});
    let (status, spring) = api
        .post("/v1/schedules/preview", preview("2026-03-28T00:00:00Z"))
        .await;
    assert_eq!(status, StatusCode::OK, "{spring}");
    assert_eq!(
        days(&spring["fire_times"]),
        ["2026-03-28", "2026-03-29", "2026-03-30"],
        "one fire on the spring-forward day"
    );
    let (_, autumn) = api
        .post("/v1/schedules/preview", preview("2026-10-24T00:00:00Z"))
        .await;
    assert_eq!(
        days(&autumn["fire_times"]),
        ["2026-10-24", "2026-10-25", "2026-10-26"],
        "one fire on the fall-back day"
    );

    let (_, weekdays) = api
        .post(
            "/v1/schedules/preview",
            json!({"schedule": "0 9 * * 1-5", "from": "2026-11-21T00:00:00Z", "count": 10}),
        )
        .await;
    let names: Vec<Weekday> = weekdays["fire_times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            DateTime::parse_from_rfc3339(t.as_str().unwrap())
                .unwrap()
                .weekday()
        })
        .collect();
    use Weekday::*;
    assert_eq!(names, [Mon, Tue, Wed, Thu, Fri, Mon, Tue, Wed, Thu, Fri]);
}

#[tokio::test]
async fn cli_previews_and_manages_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let node = server(dir.path(), "127.0.0.1:0", &[]);
    let cli = |args: &[&str]| cronmesh_tests::process::cli(&node.url, args);
    let (code, stdout, _) = cli(&[
        "schedule",
        "preview",
        "30 2 * * *",
        "--tz",
        "Europe/Berlin",
        "--from",
        "2026-03-28T00:00:00Z",
        "--count",
        "3",
        "--output",
        "json",
    ]);
    assert_eq!(code, Some(0));
    let body: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        days(&body["fire_times"]),
        ["2026-03-28", "2026-03-29", "2026-03-30"]
    );

    let file = dir.path().join("job.toml");
    std::fs::write(&file, "id = \"nightly\"\nschedule = \"0 0 23 * * *\"\n[target]\ntype = \"shell\"\ncommand = \"echo hi\"\n").unwrap();
    let (code, _, stderr) = cli(&["job", "create", "-f", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stdout, _) = cli(&["job", "list"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("nightly") && stdout.contains("0 0 23 * * *"),
        "{stdout}"
    );
    let (code, stdout, _) = cli(&["job", "get", "nightly", "--output", "json"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["id"],
        "nightly"
    );
    let (code, _, stderr) = cli(&["job", "get", "missing"]);
    assert_eq!(code, Some(3), "not found exits 3: {stderr}");
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"id":"b","schedule":"99 * * * *","target":{"type":"shell","command":"x"}}"#,
    )
    .unwrap();
    let (code, _, stderr) = cli(&["job", "create", "-f", bad.to_str().unwrap()]);
    assert_eq!(code, Some(1), "refused exits 1: {stderr}");
    assert!(
        stderr.contains("schedule"),
        "the error names the field: {stderr}"
    );
    let (code, _, _) = cli(&["--api", "http://127.0.0.1:1", "job", "list"]);
    assert_eq!(code, Some(4), "unreachable exits 4");
}
