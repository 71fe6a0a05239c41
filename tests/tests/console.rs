//! The web console in a real headless Chromium, used as a person would:
//! sign in with the admin token, create a job through the form (after
//! being told at the field what is wrong with it), watch it run, read its
//! output, and kill a long run. Every page must fit a phone-width screen.
//!
//! With `CRONMESH_SCREENSHOTS=DIR` set, the test also saves a screenshot
//! of each page there (docs/screenshots holds the ones in the docs).

use std::path::PathBuf;

use cronmesh_tests::{api::Api, browser::Browser, process};
use serde_json::json;

const TOKEN: &str = "console-test-token";

fn screenshots() -> Option<PathBuf> {
    std::env::var_os("CRONMESH_SCREENSHOTS").map(PathBuf::from)
}

#[tokio::test]
async fn a_person_creates_watches_and_kills_jobs_in_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let node = process::dev(dir.path(), &["--admin-token", TOKEN]);
    let base = node.url.clone();
    let shots = screenshots();
    let browser = Browser::start(1280, 900).await;

    // Behind the token: the console asks for it, and refuses a wrong one.
    browser.goto(&format!("{base}/jobs")).await;
    browser.wait_for_path("/login?next=%2Fjobs").await;
    browser.fill("#token", "not-the-token").await;
    browser.click("form.signin button[type=submit]").await;
    browser
        .wait_for(".field-error.shown", |t| {
            t.contains("not one of this node's tokens")
        })
        .await;
    browser.fill("#token", TOKEN).await;
    browser.click("form.signin button[type=submit]").await;
    browser.wait_for_path("/jobs").await;

    // The form: a bad schedule is named at its field, by the preview as it
    // is typed and by the API when the form is sent.
    browser.goto(&format!("{base}/jobs/new")).await;
    browser.fill("#f-id", "report").await;
    browser.fill("#f-schedule", "every day at noon").await;
    browser
        .fill("#f-target-command", "echo report for $CRONMESH_JOB_ID")
        .await;
    browser
        .wait_for(r#".field[data-field="schedule"] .field-error"#, |t| {
            t.contains("fields")
        })
        .await;
    browser.click("#job-form button[type=submit]").await;
    let error = browser
        .wait_for(
            r#".field.invalid[data-field="schedule"] .field-error"#,
            |t| !t.is_empty(),
        )
        .await;
    assert!(error.text().await.unwrap().contains("5, 6 or 7 fields"));
    browser.script("window.scrollTo(0, 0);").await;
    browser.screenshot(shots.as_deref(), "job-form-error").await;
    let api = Api::new(base.clone()).with_token(TOKEN);
    let (status, _) = api.get("/v1/jobs/report").await;
    assert_eq!(status, 404, "nothing is stored from a refused form");

    // Fixed, it previews the next fire times and creates the job.
    browser.fill("#f-schedule", "*/2 * * * * *").await;
    browser.wait_for("#preview li", |t| t.contains("UTC")).await;
    let previewed = browser
        .client
        .find_all(fantoccini::Locator::Css("#preview li"))
        .await
        .unwrap();
    assert_eq!(previewed.len(), 5);
    browser.click("#job-form button[type=submit]").await;
    browser.wait_for_path("/jobs/default/report").await;

    // Watch it run: the history fills in live, without a reload.
    let succeeded = browser
        .wait_for("#history table.runs tr", |t| t.contains("succeeded"))
        .await;
    let run_link = succeeded
        .find(fantoccini::Locator::Css("a.mono"))
        .await
        .unwrap();
    browser.find("#durations svg.chart").await;
    run_link.click().await.unwrap();
    browser
        .wait_for("#output", |t| t.contains("report for report"))
        .await;
    browser.wait_for("#run-status", |t| t == "succeeded").await;
    browser.screenshot(shots.as_deref(), "run-detail").await;

    // A long run: trigger it from its page, follow its output while it
    // runs, and kill it (after confirming).
    let (status, _) = api
        .post(
            "/v1/jobs",
            json!({"id": "long-export", "schedule": "@manual",
                   "target": {"type": "shell", "command": "echo export started; sleep 300"}}),
        )
        .await;
    assert_eq!(status, 201);
    browser
        .goto(&format!("{base}/jobs/default/long-export"))
        .await;
    browser.click("#job-actions button.primary").await;
    let running = browser
        .wait_for("#history table.runs tr", |t| t.contains("running"))
        .await;
    running
        .find(fantoccini::Locator::Css("a.mono"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for("#output", |t| t.contains("export started"))
        .await;
    browser.screenshot(shots.as_deref(), "run-live").await;
    browser.click("#kill").await;
    browser
        .client
        .accept_alert()
        .await
        .expect("the kill asks for confirmation");
    browser.wait_for("#run-status", |t| t == "killed").await;

    // The run history of all jobs, filtered to what was killed.
    browser.goto(&format!("{base}/runs?status=killed")).await;
    let killed = browser
        .wait_for("#runs", |t| t.contains("long-export"))
        .await;
    assert!(
        !killed.text().await.unwrap().contains("succeeded"),
        "the status filters"
    );
    browser.screenshot(shots.as_deref(), "runs").await;

    // Pause and resume from the job's page; edit it through the form;
    // delete it after confirming.
    browser
        .goto(&format!("{base}/jobs/default/long-export"))
        .await;
    browser.click("#job-actions button[data-done=Paused]").await;
    browser.wait_for("h1 .badge", |t| t == "paused").await;
    let (_, stored) = api.get("/v1/jobs/long-export").await;
    assert_eq!(stored["enabled"], false);
    browser
        .click("#job-actions button[data-done=Resumed]")
        .await;
    browser.wait_for("h1 .badge", |t| t == "enabled").await;
    browser
        .goto(&format!("{base}/jobs/default/long-export/edit"))
        .await;
    browser.fill("#f-description", "exports everything").await;
    browser.fill("#f-retry-max_retries", "2").await;
    // Placement and alerts: a bad selector is named at its field.
    browser
        .fill("#f-selector", r#"{"zone": {"is": "eu-1"}}"#)
        .await;
    browser.click("#job-form button[type=submit]").await;
    browser
        .wait_for(
            r#".field.invalid[data-field="selector"] .field-error"#,
            |t| !t.is_empty(),
        )
        .await;
    browser.fill("#f-selector", r#"{"zone": "eu-1"}"#).await;
    browser.fill("#f-start_deadline", "10m").await;
    browser
        .fill(
            "#f-alerts-webhooks",
            "http://hooks.example/cron\nhttp://hooks.example/slack slack",
        )
        .await;
    browser.fill("#f-alerts-emails", "ops@example.com").await;
    browser.click("#job-form button[type=submit]").await;
    browser.wait_for_path("/jobs/default/long-export").await;
    browser
        .wait_for("main", |t| t.contains("exports everything"))
        .await;
    let (_, stored) = api.get("/v1/jobs/long-export").await;
    assert_eq!(stored["retry"]["max_retries"], 2);
    assert_eq!(stored["selector"], json!({"zone": "eu-1"}));
    assert_eq!(stored["start_deadline"], "10m");
    assert_eq!(
        stored["alerts"]["webhooks"],
        json!(["http://hooks.example/cron", {"url": "http://hooks.example/slack", "format": "slack"}])
    );
    assert_eq!(stored["alerts"]["emails"], json!(["ops@example.com"]));
    assert_eq!(
        stored["target"]["command"], "echo export started; sleep 300",
        "the edit keeps the rest"
    );
    browser.click("#job-actions button.danger").await;
    browser
        .client
        .accept_alert()
        .await
        .expect("the delete asks for confirmation");
    browser.wait_for_path("/jobs").await;
    let (status, _) = api.get("/v1/jobs/long-export").await;
    assert_eq!(status, 404);

    // The other pages show what they promise.
    browser.goto(&format!("{base}/jobs/default/report")).await;
    browser
        .wait_for("#success-rate", |t| t.contains("100%"))
        .await;
    browser.screenshot(shots.as_deref(), "job-detail").await;
    browser.goto(&format!("{base}/")).await;
    browser
        .wait_for("#recent-runs", |t| t.contains("report"))
        .await;
    browser.wait_for(".cards", |t| t.contains("node 1")).await;
    browser.screenshot(shots.as_deref(), "dashboard").await;
    api.create_job(json!({"id": "cache-warmer", "schedule": "@hourly",
        "labels": {"team": "web"}, "target": {"type": "shell", "command": "true"}}))
        .await;
    browser.goto(&format!("{base}/jobs?q=warm")).await;
    let listed = browser
        .wait_for("#jobs", |t| t.contains("cache-warmer"))
        .await;
    assert!(
        !listed.text().await.unwrap().contains("report"),
        "the search filters"
    );
    browser.goto(&format!("{base}/jobs?label=team%3Dweb")).await;
    let listed = browser
        .wait_for("#jobs", |t| t.contains("cache-warmer"))
        .await;
    assert!(
        !listed.text().await.unwrap().contains("report"),
        "the label filters"
    );
    browser.goto(&format!("{base}/jobs")).await;
    browser
        .wait_for("#jobs", |t| {
            t.contains("report") && t.contains("cache-warmer")
        })
        .await;
    browser.screenshot(shots.as_deref(), "jobs").await;
    browser.goto(&format!("{base}/executors")).await;
    browser
        .wait_for("#executors", |t| t.contains("alive"))
        .await;
    browser.screenshot(shots.as_deref(), "executors").await;
    browser.goto(&format!("{base}/cluster")).await;
    browser.wait_for("#members", |t| t.contains("leader")).await;
    browser.screenshot(shots.as_deref(), "cluster").await;

    // Phone width: nothing scrolls sideways but the tables' own boxes.
    browser.client.set_window_size(390, 844).await.unwrap();
    for page in [
        "/",
        "/jobs",
        "/jobs/new",
        "/jobs/default/report",
        "/executors",
        "/cluster",
    ] {
        browser.goto(&format!("{base}{page}")).await;
        browser.find("main h1").await;
        assert!(
            browser.fits_width().await,
            "{page} is wider than a phone screen"
        );
    }
    browser.goto(&format!("{base}/")).await;
    browser
        .screenshot(shots.as_deref(), "dashboard-phone")
        .await;
    browser.quit().await;
}
