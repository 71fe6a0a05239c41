//! Bad input gets a 4xx JSON error naming the field; nothing is stored
//! and the node keeps serving.

use cronmesh_tests::{
    api::{assert_error_answer, Api},
    process::server,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn job(extra: Value) -> Value {
    let mut job =
        json!({"id": "v", "schedule": "@daily", "target": {"type": "shell", "command": "true"}});
    for (k, v) in extra.as_object().unwrap() {
        job[k] = v.clone();
    }
    job
}

fn assert_error(answer: &(StatusCode, Value), status: StatusCode, field: Option<&str>) {
    let error = assert_error_answer(answer, status);
    if let Some(field) = field {
        assert_eq!(error["field"], field, "{}", answer.1);
    }
}

#[tokio::test]
async fn every_kind_of_bad_input_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let node = server(dir.path(), "127.0.0.1:0", &[]);
    let api = Api::new(node.url.clone());
    let bad = StatusCode::BAD_REQUEST;

    assert_error(
        &api.raw(
            Method::POST,
            "/v1/jobs",
            "application/json",
            b"{\"id\": ".to_vec(),
        )
        .await,
        bad,
        None,
    );
    assert_error(
        &api.post("/v1/jobs", job(json!({"colour": "blue"}))).await,
        bad,
        Some("colour"),
    );
    assert_error(
        &api.post("/v1/jobs", job(json!({"schedule": "61 * * * *"})))
            .await,
        bad,
        Some("schedule"),
    );
    assert_error(
        &api.post("/v1/jobs", job(json!({"schedule": "every tuesday"})))
            .await,
        bad,
        Some("schedule"),
    );
    assert_error(
        &api.post("/v1/jobs", job(json!({"timezone": "Mars/Olympus_Mons"})))
            .await,
        bad,
        Some("timezone"),
    );
    assert_error(
        &api.post("/v1/jobs", job(json!({"timeout": "-5s"}))).await,
        bad,
        Some("timeout"),
    );
    assert_error(
        &api.post("/v1/jobs", job(json!({"timeout": "100years"})))
            .await,
        bad,
        Some("timeout"),
    );
    assert_error(
        &api.post("/v1/jobs", job(json!({"retry": {"backoff": "1000d"}})))
            .await,
        bad,
        Some("retry.backoff"),
    );
    assert_error(
        &api.post("/v1/jobs", job(json!({"shards": -1}))).await,
        bad,
        Some("shards"),
    );
    assert_error(
        &api.post("/v1/jobs", job(json!({"target": {"type": "shell"}})))
            .await,
        bad,
        Some("target.command"),
    );
    assert_error(
        &api.post("/v1/jobs", job(json!({"target": {"type": "ftp"}})))
            .await,
        bad,
        Some("target.type"),
    );
    assert_error(
        &api.post("/v1/jobs", job(json!({"id": "../etc"}))).await,
        bad,
        Some("id"),
    );
    let huge = job(json!({"description": "x".repeat(1024 * 1024 + 1)}));
    assert_error(
        &api.post("/v1/jobs", huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        Some("body"),
    );
    assert_error(
        &api.raw(Method::POST, "/v1/jobs", "text/plain", b"{}".to_vec())
            .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        None,
    );
    assert_error(
        &api.get("/v1/jobs/missing").await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert_error(
        &api.post("/v1/jobs/missing/trigger", json!({})).await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert_error(
        &api.post("/v1/jobs/missing/pause", json!({})).await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert_error(
        &api.delete("/v1/jobs/missing").await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert_error(
        &api.get("/v1/runs/missing").await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert_error(
        &api.get("/v1/runs?status=sleeping").await,
        bad,
        Some("status"),
    );
    assert_error(&api.get("/v1/runs?limit=0").await, bad, Some("limit"));
    assert_error(
        &api.post(
            "/v1/schedules/preview",
            json!({"schedule": "@daily", "count": 0}),
        )
        .await,
        bad,
        Some("count"),
    );
    assert_error(&api.get("/v2/nothing").await, StatusCode::NOT_FOUND, None);

    // Nothing was stored, and the node still serves.
    let (status, list) = api.get("/v1/jobs").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"], json!([]));
    assert_eq!(api.get("/healthz").await.0, StatusCode::OK);

    // A good job is stored once; a second create conflicts; PUT cannot rename.
    api.create_job(job(json!({}))).await;
    assert_error(
        &api.post("/v1/jobs", job(json!({}))).await,
        StatusCode::CONFLICT,
        None,
    );
    assert_error(
        &api.put("/v1/jobs/v", job(json!({"id": "w"}))).await,
        bad,
        Some("id"),
    );
    let (status, replaced) = api
        .put(
            "/v1/jobs/v",
            json!({"schedule": "@hourly", "target": {"type": "shell", "command": "true"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["schedule"], "@hourly");
}

#[tokio::test]
async fn a_report_batch_refuses_unknown_runs_one_by_one_and_bad_bodies_whole() {
    let dir = tempfile::tempdir().unwrap();
    let node = server(dir.path(), "127.0.0.1:0", &[]);
    let api = Api::new(node.url.clone());
    let report = |run_id: &str| {
        json!({"run_id": run_id, "executor": "http://127.0.0.1:1", "status": "succeeded",
               "started_at": null, "finished_at": null, "exit_code": 0, "error": null})
    };
    let (status, body) = api
        .post(
            "/v1/internal/reports",
            json!({"reports": [report("no-such-run"), report("nor-this-one")]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"results": ["refused", "refused"]}));
    assert_error(
        &api.raw(
            Method::POST,
            "/v1/internal/reports",
            "application/json",
            b"{\"reports\": [{\"run_id\": 7}]}".to_vec(),
        )
        .await,
        StatusCode::BAD_REQUEST,
        None,
    );
    assert_eq!(api.get("/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_array_of_jobs_is_created_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let node = server(dir.path(), "127.0.0.1:0", &[]);
    let api = Api::new(node.url.clone());
    let many = |ids: &[&str], bad_schedule_at: Option<usize>| {
        Value::Array(
            ids.iter()
                .enumerate()
                .map(|(i, id)| {
                    let schedule = if Some(i) == bad_schedule_at { "61 * * * *" } else { "@every 1s" };
                    json!({"id": id, "schedule": schedule, "target": {"type": "shell", "command": "true"}})
                })
                .collect(),
        )
    };
    assert_error(
        &api.post("/v1/jobs", many(&["a", "b", "c"], Some(1))).await,
        StatusCode::BAD_REQUEST,
        Some("[1].schedule"),
    );
    assert_error(
        &api.post("/v1/jobs", many(&["a", "b", "a"], None)).await,
        StatusCode::BAD_REQUEST,
        Some("[2].id"),
    );
    assert_error(
        &api.post("/v1/jobs", json!([])).await,
        StatusCode::BAD_REQUEST,
        None,
    );
    api.create_job(job(json!({"id": "taken"}))).await;
    assert_error(
        &api.post("/v1/jobs", many(&["a", "taken"], None)).await,
        StatusCode::CONFLICT,
        None,
    );
    let (_, list) = api.get("/v1/jobs").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");

    let (status, created) = api.post("/v1/jobs", many(&["a", "b", "c"], None)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["created"], 3);
    // The CLI sends a file of many jobs (TOML `[[jobs]]`) the same way.
    let file = dir.path().join("jobs.toml");
    std::fs::write(
        &file,
        "[[jobs]]\nid = \"d\"\nschedule = \"@every 1s\"\ntarget = { type = \"shell\", command = \"true\" }\n\n\
         [[jobs]]\nid = \"e\"\nschedule = \"@daily\"\ntarget = { type = \"shell\", command = \"true\" }\n",
    )
    .unwrap();
    let (code, stdout, stderr) =
        cronmesh_tests::process::cli(&node.url, &["job", "create", "-f", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout} {stderr}");
    assert!(stdout.contains("created 2 jobs"), "{stdout}");
    let (_, list) = api.get("/v1/jobs").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(6), "{list}");
    // They are scheduled like any other job: each gets run records.
    for id in ["a", "b", "c", "d"] {
        cronmesh_tests::wait::until(
            &format!("a run of {id}"),
            std::time::Duration::from_secs(10),
            || async { (!api.runs_of(id).await.is_empty()).then_some(()) },
        )
        .await;
    }
}
