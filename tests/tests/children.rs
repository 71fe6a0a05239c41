//! Child jobs end to end: a real scheduler with real executors fires a
//! parent's children once per parent fire, after every shard ended, with
//! the parent's run ids; links are checked when jobs are stored.

use std::time::Duration;

use cronmesh_tests::{
    api::{assert_error_answer, with_status, Api},
    cluster::Cluster as RaftCluster,
    fleet::Fleet,
    process::{cli, executor},
    wait,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn shell(id: &str, command: &str) -> Value {
    json!({"id": id, "schedule": "@manual", "target": {"type": "shell", "command": command}})
}

async fn trigger(api: &Api, job: &str, params: &str) -> Vec<Value> {
    let (status, body) = api
        .post(
            &format!("/v1/jobs/{job}/trigger"),
            json!({"params": params}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body["runs"].as_array().cloned().unwrap_or_default()
}

fn time(value: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .to_utc()
}

/// Ids of `runs` of one fire in shard order, each shard's latest attempt.
fn final_ids_in_shard_order(runs: &[Value]) -> Vec<String> {
    let mut latest: std::collections::BTreeMap<u64, &Value> = Default::default();
    for run in runs {
        let shard = run["shard"]["index"].as_u64().unwrap();
        let newer = latest
            .get(&shard)
            .is_none_or(|seen| run["attempt"].as_u64() > seen["attempt"].as_u64());
        if newer {
            latest.insert(shard, run);
        }
    }
    latest
        .values()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_sharded_parent_starts_its_child_once_per_fire_with_its_run_ids() {
    let c = Fleet::start(2);
    c.api
        .create_job(shell(
            "child",
            "echo \"ids=$CRONMESH_PARENT_RUN_IDS\"; echo \"slot=$CRONMESH_PARENT_SCHEDULED_AT\"; echo \"params=$CRONMESH_PARAMS\"",
        ))
        .await;
    let mut parent = shell("parent", "sleep 0.$CRONMESH_SHARD_INDEX");
    parent["shards"] = json!(10);
    parent["children"] = json!([{"job": "child", "on": "success", "params": "parent"}]);
    c.api.create_job(parent).await;

    for (fire, params) in ["first", "second"].into_iter().enumerate() {
        let created = trigger(&c.api, "parent", params).await;
        assert_eq!(created.len(), 10);
        let slot = created[0]["scheduled_at"].clone();
        let child = wait::until(
            "the child of this fire succeeded",
            Duration::from_secs(30),
            || async {
                let runs = c.api.runs_of("child").await;
                runs.into_iter()
                    .find(|r| r["parent_scheduled_at"] == slot && r["status"] == "succeeded")
            },
        )
        .await;
        let parents: Vec<Value> = c
            .api
            .runs_of("parent")
            .await
            .into_iter()
            .filter(|r| r["scheduled_at"] == slot)
            .collect();
        assert_eq!(with_status(&parents, "succeeded").len(), 10, "{parents:?}");
        let ids = final_ids_in_shard_order(&parents);
        assert_eq!(child["trigger"], "child");
        assert_eq!(child["parent_job_id"], "parent");
        assert_eq!(child["parent_run_ids"], json!(ids));
        // Started after every shard of the fire ended.
        let last_end = parents
            .iter()
            .map(|r| time(&r["finished_at"]))
            .max()
            .unwrap();
        assert!(
            time(&child["created_at"]) >= last_end,
            "{child} before {last_end}"
        );
        let output = child["output"].as_str().unwrap();
        assert!(
            output.contains(&format!("ids={}\n", ids.join(","))),
            "{output}"
        );
        assert!(
            output.contains(&format!("slot={}\n", slot.as_str().unwrap())),
            "{output} {slot}"
        );
        assert!(output.contains(&format!("params={params}\n")), "{output}");
        // One child run per parent fire so far: the ten ends made one.
        let children = c.api.runs_of("child").await;
        assert_eq!(children.len(), fire + 1, "{children:?}");

        // The console links the child's run to its parent's runs.
        let html = page(
            &c.api.base,
            &format!("/runs/{}", child["id"].as_str().unwrap()),
        )
        .await;
        for id in &ids {
            assert!(
                html.contains(&format!(r#"href="/runs/{id}""#)),
                "{id} not linked: {html}"
            );
        }
    }
    // The job pages name the link from both ends.
    let html = page(&c.api.base, "/jobs/default/parent").await;
    assert!(
        html.contains(r#"href="/jobs/default/child">child</a> on success"#),
        "{html}"
    );
    let html = page(&c.api.base, "/jobs/default/child").await;
    assert!(
        html.contains(r#"href="/jobs/default/parent">parent</a>"#),
        "{html}"
    );
}

/// A console page's HTML, which must be 200.
async fn page(base: &str, path: &str) -> String {
    let response = reqwest::get(format!("{base}{path}"))
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.text().await.unwrap_or_default()
}

#[tokio::test]
async fn the_condition_is_judged_on_the_whole_fire() {
    let c = Fleet::start(1);
    for id in ["on-success", "on-failure", "on-end"] {
        c.api.create_job(shell(id, "true")).await;
    }
    // Shard 1 of 3 fails; shard 0 fails once and succeeds on its retry.
    let mut parent = shell(
        "parent",
        "[ \"$CRONMESH_SHARD_INDEX\" != 1 ] && { [ \"$CRONMESH_SHARD_INDEX\" != 0 ] || [ \"$CRONMESH_ATTEMPT\" -ge 2 ]; }",
    );
    parent["shards"] = json!(3);
    parent["retry"] = json!({"max_retries": 1, "backoff": "100ms"});
    parent["children"] = json!([
        {"job": "on-success"},
        {"job": "on-failure", "on": "failure"},
        {"job": "on-end", "on": "end"}
    ]);
    c.api.create_job(parent).await;
    trigger(&c.api, "parent", "").await;
    // The children of one judgment are fired together: once these two
    // ran, the success child would have too.
    wait::until(
        "the failure and end children ran",
        Duration::from_secs(30),
        || async {
            let failure = c.api.runs_of("on-failure").await;
            let end = c.api.runs_of("on-end").await;
            (!with_status(&failure, "succeeded").is_empty()
                && !with_status(&end, "succeeded").is_empty())
            .then_some(())
        },
    )
    .await;
    assert!(c.api.runs_of("on-success").await.is_empty());
    let parents = c.api.runs_of("parent").await;
    let failure = &c.api.runs_of("on-failure").await[0];
    assert_eq!(
        failure["parent_run_ids"],
        json!(final_ids_in_shard_order(&parents))
    );
    assert_eq!(c.api.runs_of("on-failure").await.len(), 1);
    assert_eq!(c.api.runs_of("on-end").await.len(), 1);

    // All shards succeed, shard 0 after a retry: the success child fires.
    let definition = json!({
        "id": "fixed", "schedule": "@manual", "shards": 2,
        "retry": {"max_retries": 1, "backoff": "100ms"},
        "target": {"type": "shell", "command": "[ \"$CRONMESH_SHARD_INDEX\" != 0 ] || [ \"$CRONMESH_ATTEMPT\" -ge 2 ]"},
        "children": [{"job": "on-success"}, {"job": "on-failure", "on": "failure"}]
    });
    c.api.create_job(definition).await;
    trigger(&c.api, "fixed", "").await;
    let child = wait::until("the success child ran", Duration::from_secs(30), || async {
        c.api.runs_of("on-success").await.into_iter().next()
    })
    .await;
    let fixed = c.api.runs_of("fixed").await;
    assert_eq!(fixed.len(), 3, "shard 0 ran twice: {fixed:?}");
    assert_eq!(
        child["parent_run_ids"],
        json!(final_ids_in_shard_order(&fixed))
    );
    assert_eq!(
        c.api.runs_of("on-failure").await.len(),
        1,
        "only the first parent's"
    );
}

#[tokio::test]
async fn a_new_leader_neither_loses_nor_doubles_the_child_of_a_fire_in_flight() {
    let exec = executor("default");
    let mut cluster = RaftCluster::start(3, &[&exec.url], &[]);
    let leader = cluster.leader().await;
    let api = cluster.api(leader);
    api.create_job(shell("child", "true")).await;
    let mut parent = shell("parent", "sleep 2");
    parent["shards"] = json!(3);
    parent["children"] = json!([{"job": "child"}]);
    api.create_job(parent).await;
    let created = trigger(&api, "parent", "").await;
    let slot = created[0]["scheduled_at"].clone();
    wait::until(
        "the parent's shards run",
        Duration::from_secs(15),
        || async {
            let runs = api.runs_of("parent").await;
            (with_status(&runs, "running").len() == 3).then_some(())
        },
    )
    .await;
    // The leader goes while every shard of the fire is running.
    cluster.kill(leader);
    let api = cluster.api(cluster.leader().await);
    let child = wait::until("the child of the fire", Duration::from_secs(30), || async {
        let runs = api.runs_of("child").await;
        runs.into_iter().find(|r| r["status"] == "succeeded")
    })
    .await;
    assert_eq!(child["parent_scheduled_at"], slot);
    let parents = api.runs_of("parent").await;
    assert_eq!(with_status(&parents, "succeeded").len(), 3, "{parents:?}");
    assert_eq!(
        child["parent_run_ids"],
        json!(final_ids_in_shard_order(&parents))
    );
    // A second fire's child comes after any late double of the first's.
    let second = trigger(&api, "parent", "").await;
    let second_slot = second[0]["scheduled_at"].clone();
    wait::until(
        "the child of the second fire",
        Duration::from_secs(30),
        || async {
            let runs = api.runs_of("child").await;
            runs.iter()
                .any(|r| r["parent_scheduled_at"] == second_slot && r["status"] == "succeeded")
                .then_some(())
        },
    )
    .await;
    let children = api.runs_of("child").await;
    assert_eq!(children.len(), 2, "one child per fire: {children:?}");
}

#[tokio::test]
async fn links_to_missing_jobs_and_cycles_are_refused() {
    let c = Fleet::start(0);
    let mut orphan = shell("orphan", "true");
    orphan["children"] = json!([{"job": "nowhere"}]);
    let refused = c.api.post("/v1/jobs", orphan).await;
    let error = assert_error_answer(&refused, StatusCode::BAD_REQUEST);
    assert_eq!(error["field"], "children[0].job");
    assert_eq!(c.api.get("/v1/jobs/orphan").await.0, StatusCode::NOT_FOUND);

    let mut itself = shell("itself", "true");
    itself["children"] = json!([{"job": "itself"}]);
    let refused = c.api.post("/v1/jobs", itself).await;
    assert_eq!(
        assert_error_answer(&refused, StatusCode::BAD_REQUEST)["field"],
        "children[0].job"
    );

    // Created together, in either order.
    let mut a = shell("a", "true");
    a["children"] = json!([{"job": "b"}]);
    let (status, body) = c.api.post("/v1/jobs", json!([a, shell("b", "true")])).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // b -> a closes a -> b -> a.
    let mut b = shell("b", "true");
    b["children"] = json!([{"job": "a"}]);
    let refused = c.api.put("/v1/jobs/b", b).await;
    let error = assert_error_answer(&refused, StatusCode::BAD_REQUEST);
    assert_eq!(error["field"], "children[0].job");
    assert!(
        error["message"].as_str().unwrap().contains("cycle"),
        "{error}"
    );
    assert_eq!(c.api.get("/v1/jobs/b").await.1["children"], json!([]));
}

#[tokio::test]
async fn deleting_a_linked_child_needs_force_which_unlinks_it() {
    let c = Fleet::start(0);
    c.api.create_job(shell("b", "true")).await;
    for parent in ["a", "c"] {
        let mut job = shell(parent, "true");
        job["children"] = json!([{"job": "b", "on": "always"}]);
        c.api.create_job(job).await;
    }
    let refused = c.api.delete("/v1/jobs/b").await;
    let error = assert_error_answer(&refused, StatusCode::CONFLICT);
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("a, c") && message.contains("force"),
        "{message}"
    );
    assert_eq!(c.api.get("/v1/jobs/b").await.0, StatusCode::OK);

    let (code, _, stderr) = cli(&c.api.base, &["job", "delete", "b"]);
    assert_ne!(code, Some(0), "the CLI is refused too");
    assert!(stderr.contains("force"), "{stderr}");
    let (code, stdout, stderr) = cli(&c.api.base, &["job", "delete", "b", "--force"]);
    assert_eq!(code, Some(0), "{stdout} {stderr}");
    assert_eq!(c.api.get("/v1/jobs/b").await.0, StatusCode::NOT_FOUND);
    for parent in ["a", "c"] {
        let job = c.api.get(&format!("/v1/jobs/{parent}")).await.1;
        assert_eq!(job["children"], json!([]), "{job}");
    }
}
