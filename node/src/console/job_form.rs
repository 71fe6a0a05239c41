//! `/jobs/new` and `/jobs/{namespace}/{id}/edit`: the job form. The page
//! script sends the form as job JSON to the admin API, shows each error the
//! API names at its field, and previews the next fire times as the schedule
//! is typed. Editing starts from the stored job, so fields the form does
//! not show (children, alert statuses, shard params) are kept.

use actix_web::web;
use maud::{html, Markup};
use protocol::{alert::Webhook, job::Routing, Job, JobKey, Target};

use super::{
    format::{job_path, plain, segment},
    layout::{render, Frame, PageResult, Section},
};
use crate::api::{ApiError, AppState};

const CONCURRENCY: [&str; 4] = ["allow", "forbid", "replace", "queue"];
const MISFIRE: [&str; 3] = ["fire_once", "fire_all", "skip"];
const TARGETS: [&str; 3] = ["shell", "executor", "http"];

pub async fn new_job(state: web::Data<AppState>) -> PageResult {
    let blank = serde_json::json!({"id": "new", "schedule": "@manual",
        "target": {"type": "shell", "command": ""}});
    let mut job: Job = serde_json::from_value(blank)
        .map_err(|e| ApiError::internal(format!("the blank job: {e}")))?;
    job.id.clear();
    job.schedule.clear();
    let body = form(&job, None);
    Ok(render(
        &state,
        Frame {
            title: "New job",
            section: Some(Section::Jobs),
            live: false,
        },
        body,
    ))
}

pub async fn edit_job(state: web::Data<AppState>, path: web::Path<(String, String)>) -> PageResult {
    let (namespace, id) = path.into_inner();
    let key = JobKey::new(namespace, id);
    let job = crate::api::jobs::stored_job(&state, &key)?;
    let body = form(&job, Some(&key));
    Ok(render(
        &state,
        Frame {
            title: &format!("Edit {}", key.id),
            section: Some(Section::Jobs),
            live: false,
        },
        body,
    ))
}

/// The form; `editing` is the key of the stored job being replaced.
fn form(job: &Job, editing: Option<&JobKey>) -> Markup {
    let (method, url, stored) = match editing {
        Some(key) => (
            "PUT",
            format!(
                "/v1/jobs/{}?namespace={}",
                segment(&key.id),
                segment(&key.namespace)
            ),
            serde_json::to_string(job).unwrap_or_else(|_| "{}".into()),
        ),
        None => ("POST", "/v1/jobs".to_string(), "{}".to_string()),
    };
    let (kind, group, command, handler, url_target, http_method, http_body) = match &job.target {
        Target::Shell { group, command } => {
            ("shell", group.as_str(), command.as_str(), "", "", "GET", "")
        }
        Target::Executor { group, handler } => (
            "executor",
            group.as_str(),
            "",
            handler.as_str(),
            "",
            "GET",
            "",
        ),
        Target::Http {
            url, method, body, ..
        } => (
            "http",
            "default",
            "",
            "",
            url.as_str(),
            method.as_str(),
            body.as_str(),
        ),
    };
    let labels: String = job
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    let selector = if job.selector.is_empty() {
        String::new()
    } else {
        serde_json::to_string(&job.selector).unwrap_or_default()
    };
    let start_deadline = job
        .start_deadline
        .map(|d| d.to_string())
        .unwrap_or_default();
    let webhooks: String = job
        .alerts
        .webhooks
        .iter()
        .map(|hook| match hook {
            Webhook::Url(url) => format!("{url}\n"),
            Webhook::Formatted(hook) => format!("{} {}\n", hook.url, hook.format.as_str()),
        })
        .collect();
    let emails: String = job.alerts.emails.iter().map(|a| format!("{a}\n")).collect();
    let retries = job.retry.max_retries.to_string();
    let shards = job.shards.to_string();
    html! {
        h1 { @if let Some(key) = editing { "Edit " (key.id) } @else { "New job" } }
        form #job-form novalidate data-method=(method) data-url=(url) data-job=(stored) {
            div.form-error #form-error role="alert" {}
            fieldset {
                legend { "Job" }
                (text("Id", "id", &job.id, editing.is_some(), "letters, digits, . _ -"))
                (text("Namespace", "namespace", &job.namespace, editing.is_some(), ""))
                (text("Description", "description", &job.description, false, ""))
            }
            fieldset {
                legend { "Schedule" }
                (text("Schedule", "schedule", &job.schedule, false, "crontab (5, 6 or 7 fields), @daily, @every 30s, @at 2026-12-01T00:00:00Z, @manual"))
                (text("Time zone", "timezone", &job.timezone, false, "IANA name, e.g. Europe/Berlin"))
                div.preview { span.small.muted { "Next fire times" } ol #preview {} }
            }
            fieldset {
                legend { "Target" }
                (choice("Type", "target.type", &TARGETS, kind))
                div data-target="shell executor" { (text("Executor group", "target.group", group, false, "")) }
                div data-target="shell" { (area("Command", "target.command", command, "run by sh -c on an executor")) }
                div data-target="executor" { (text("Handler", "target.handler", handler, false, "registered by an executor")) }
                div data-target="http" {
                    (text("URL", "target.url", url_target, false, ""))
                    (text("Method", "target.method", http_method, false, ""))
                    (area("Body", "target.body", http_body, ""))
                }
            }
            fieldset {
                legend { "Policies" }
                div.grid {
                    (choice("Routing", "routing", &Routing::ALL.map(Routing::as_str), job.routing.as_str()))
                    (number("Shards", "shards", &shards))
                    (text("Timeout", "timeout", &job.timeout.to_string(), false, "e.g. 30s, 5m"))
                    (number("Retries", "retry.max_retries", &retries))
                    (text("Retry backoff", "retry.backoff", &job.retry.backoff.to_string(), false, ""))
                    (choice("Concurrency", "concurrency", &CONCURRENCY, &plain(&job.concurrency)))
                    (choice("Misfire", "misfire.policy", &MISFIRE, &plain(&job.misfire.policy)))
                    (text("Misfire threshold", "misfire.threshold", &job.misfire.threshold.to_string(), false, ""))
                }
                label.check { input type="checkbox" name="failover" checked[job.failover]; " Fail over to another executor when one dies" }
                label.check { input type="checkbox" name="enabled" checked[job.enabled]; " Enabled" }
            }
            fieldset {
                legend { "More" }
                (text("Parameters", "params", &job.params, false, "passed as CRONMESH_PARAMS"))
                (area("Labels", "labels", &labels, "one key=value per line"))
            }
            fieldset {
                legend { "Placement and alerts" }
                (text("Selector", "selector", &selector, false, r#"executor labels as JSON, e.g. {"zone": "eu-1", "tier": {"in": ["a", "b"]}}"#))
                (text("Start deadline", "start_deadline", &start_deadline, false, "how long a run may wait for room; empty: the misfire threshold"))
                (area("Alert webhooks", "alerts.webhooks", &webhooks, "one URL per line, optionally followed by slack or teams"))
                (area("Alert e-mails", "alerts.emails", &emails, "one address per line"))
            }
            div.form-actions {
                button.primary type="submit" { @if editing.is_some() { "Save" } @else { "Create job" } }
                a.button href=(editing.map_or_else(|| "/jobs".to_string(), |k| job_path(&k.namespace, &k.id))) { "Cancel" }
            }
        }
    }
}

fn field(label: &str, name: &str, input: Markup, hint: &str) -> Markup {
    html! {
        div.field data-field=(name) {
            label for=(input_id(name)) { (label) }
            (input)
            @if !hint.is_empty() { small.hint { (hint) } }
            small.field-error {}
        }
    }
}

fn input_id(name: &str) -> String {
    format!("f-{}", name.replace('.', "-"))
}

fn text(label: &str, name: &str, value: &str, readonly: bool, hint: &str) -> Markup {
    field(
        label,
        name,
        html! { input type="text" id=(input_id(name)) name=(name) value=(value) readonly[readonly]; },
        hint,
    )
}

fn number(label: &str, name: &str, value: &str) -> Markup {
    field(
        label,
        name,
        html! { input type="number" min="0" id=(input_id(name)) name=(name) value=(value) data-number="1"; },
        "",
    )
}

fn area(label: &str, name: &str, value: &str, hint: &str) -> Markup {
    field(
        label,
        name,
        html! { textarea id=(input_id(name)) name=(name) rows="3" { (value) } },
        hint,
    )
}

fn choice(label: &str, name: &str, options: &[&str], selected: &str) -> Markup {
    field(
        label,
        name,
        html! {
            select id=(input_id(name)) name=(name) {
                @for option in options { option value=(option) selected[*option == selected] { (option) } }
            }
        },
        "",
    )
}
