//! What an alert says, and the bodies it travels in: the `json` event,
//! a Slack message, a Teams Adaptive Card and an e-mail.

use protocol::{alert::WebhookFormat, run::tail, Run};
use serde_json::{json, Value};

/// Output kept in an e-mail.
pub const MAIL_OUTPUT_TAIL: usize = 4 * 1024;
/// Output kept in a chat message (Slack's section text is at most 3,000
/// characters; Teams cards stay small).
pub const CHAT_OUTPUT_TAIL: usize = 1024;
/// Longest fact value in a chat message (Slack's field text limit is 2,000).
const MAX_FACT_LEN: usize = 1000;

/// An alert as people read it, whatever carries it.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// One line: `[cronmesh] default/nightly-billing failed`.
    pub title: String,
    /// Name and value pairs: run id, status, slot, ...
    pub facts: Vec<(String, String)>,
    /// Text shown as code: the tail of a run's output.
    pub output: Option<String>,
}

impl Message {
    /// What a run's alert says.
    pub fn of_run(run: &Run) -> Self {
        let mut facts = vec![
            (
                "Job".to_string(),
                format!("{}/{}", run.namespace, run.job_id),
            ),
            ("Run".to_string(), run.id.clone()),
            ("Status".to_string(), run.status.to_string()),
            ("Slot".to_string(), run.scheduled_at.to_rfc3339()),
            ("Attempt".to_string(), run.attempt.to_string()),
        ];
        if let Some(executor) = &run.executor {
            facts.push(("Executor".to_string(), executor.clone()));
        }
        if let Some(code) = run.exit_code {
            facts.push(("Exit code".to_string(), code.to_string()));
        }
        if let Some(error) = &run.error {
            facts.push(("Error".to_string(), error.clone()));
        }
        Self {
            title: format!(
                "[cronmesh] {}/{} {}",
                run.namespace,
                run.job_id,
                run.status.as_str().replace('_', " ")
            ),
            facts,
            output: Some(run.output.clone()).filter(|o| !o.is_empty()),
        }
    }
}

/// The body of a run's alert to a webhook of `format`.
pub fn run_webhook_body(format: WebhookFormat, run: &Run) -> Value {
    match format {
        WebhookFormat::Json => json!({"event": format!("run.{}", run.status), "run": run}),
        WebhookFormat::Slack => slack(&Message::of_run(run)),
        WebhookFormat::Teams => teams(&Message::of_run(run)),
    }
}

/// A Slack incoming-webhook message: `text` for notifications, `blocks`
/// for the message (a header, the facts, the output as code).
pub fn slack(message: &Message) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": cut(&message.title, 150), "emoji": false}
    })];
    // A section holds at most 10 fields.
    for chunk in message.facts.chunks(10) {
        let fields: Vec<Value> = chunk
            .iter()
            .map(|(name, value)| {
                json!({
                    "type": "mrkdwn",
                    "text": format!("*{}*\n{}", slack_escape(name), slack_escape(&cut(value, MAX_FACT_LEN)))
                })
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    if let Some(output) = &message.output {
        let shown = tail(output, CHAT_OUTPUT_TAIL).replace("```", "` ` `");
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": format!("```{}```", slack_escape(&shown))}
        }));
    }
    json!({"text": slack_escape(&message.title), "blocks": blocks})
}

/// A Teams message (Workflows or incoming webhook) carrying one Adaptive
/// Card: the title, a fact set, the output in a monospace block.
pub fn teams(message: &Message) -> Value {
    let facts: Vec<Value> = message
        .facts
        .iter()
        .map(|(name, value)| json!({"title": name, "value": teams_escape(&cut(value, MAX_FACT_LEN))}))
        .collect();
    let mut body = vec![
        json!({"type": "TextBlock", "text": teams_escape(&message.title), "weight": "Bolder", "size": "Medium", "wrap": true}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    if let Some(output) = &message.output {
        body.push(json!({
            "type": "TextBlock",
            "text": teams_escape(tail(output, CHAT_OUTPUT_TAIL)),
            "fontType": "Monospace",
            "wrap": true
        }));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body
            }
        }]
    })
}

/// The subject and plain-text body of an e-mail.
pub fn mail(message: &Message) -> (String, String) {
    let mut body = String::new();
    body.push_str(&message.title);
    body.push_str("\n\n");
    let width = message
        .facts
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0);
    for (name, value) in &message.facts {
        body.push_str(&format!("{name:width$}  {value}\n"));
    }
    if let Some(output) = &message.output {
        body.push_str(&format!(
            "\nOutput (the last {} KiB at most):\n\n",
            MAIL_OUTPUT_TAIL / 1024
        ));
        body.push_str(tail(output, MAIL_OUTPUT_TAIL));
        body.push('\n');
    }
    // A subject is one line.
    let subject = message.title.replace(['\r', '\n'], " ");
    (subject, body)
}

/// Slack's mrkdwn reads `&`, `<` and `>` as control characters.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Adaptive Card text is Markdown: its marks are escaped with a backslash.
fn teams_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\`*_{}[]()#+-.!<>|~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn cut(text: &str, limit: usize) -> String {
    let kept = protocol::run::head(text, limit);
    if kept.len() == text.len() {
        return text.to_string();
    }
    format!("{kept}…")
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use protocol::{JobKey, RunStatus};

    use super::*;
    use crate::store::fixtures::slot_run_of;

    fn failed_run() -> Run {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0).unwrap();
        Run {
            id: "r1".into(),
            status: RunStatus::Failed,
            executor: Some("http://exec-1:7000".into()),
            started_at: Some(at),
            finished_at: Some(at),
            exit_code: Some(3),
            output: format!("{}<b>&done</b>", "x".repeat(10_000)),
            error: Some("exit code 3 *bold*".into()),
            ..slot_run_of(&JobKey::new("default", "nightly-billing"), at)
        }
    }

    const SLACK_BLOCKS: [&str; 4] = ["header", "section", "context", "divider"];

    #[test]
    fn the_json_format_is_the_event_with_the_run() {
        let body = run_webhook_body(WebhookFormat::Json, &failed_run());
        assert_eq!(body["event"], "run.failed");
        assert_eq!(body["run"]["id"], "r1");
    }

    #[test]
    fn a_slack_message_has_text_and_typed_blocks_with_escaped_text() {
        let body = run_webhook_body(WebhookFormat::Slack, &failed_run());
        assert_eq!(body["text"], "[cronmesh] default/nightly-billing failed");
        let blocks = body["blocks"].as_array().unwrap();
        for block in blocks {
            let kind = block["type"].as_str().unwrap();
            assert!(SLACK_BLOCKS.contains(&kind), "{kind}");
            for text in block["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(Some(&block["text"]).filter(|t| t.is_object()))
            {
                let kind = text["type"].as_str().unwrap();
                assert!(kind == "mrkdwn" || kind == "plain_text");
                assert!(text["text"].as_str().unwrap().len() <= 3000);
            }
        }
        let output = blocks.last().unwrap()["text"]["text"].as_str().unwrap();
        assert!(
            output.ends_with("&lt;b&gt;&amp;done&lt;/b&gt;```"),
            "{output}"
        );
    }

    #[test]
    fn a_teams_message_carries_an_adaptive_card() {
        let body = run_webhook_body(WebhookFormat::Teams, &failed_run());
        assert_eq!(body["type"], "message");
        let attachment = &body["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let card = &attachment["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.4");
        let facts = card["body"][1]["facts"].as_array().unwrap();
        let error = facts.iter().find(|f| f["title"] == "Error").unwrap();
        assert_eq!(error["value"], "exit code 3 \\*bold\\*");
    }

    #[test]
    fn an_email_names_the_run_and_keeps_the_output_tail() {
        let (subject, body) = mail(&Message::of_run(&failed_run()));
        assert_eq!(subject, "[cronmesh] default/nightly-billing failed");
        for part in [
            "default/nightly-billing",
            "r1",
            "failed",
            "http://exec-1:7000",
            "Exit code  3",
        ] {
            assert!(body.contains(part), "{part} in {body}");
        }
        assert!(body.contains("<b>&done</b>"));
        assert!(body.len() < MAIL_OUTPUT_TAIL + 1024);
    }
}
