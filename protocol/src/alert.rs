//! Alert destinations and the record of each delivery attempt.
//!
//! A job's `alerts.webhooks` entry is either a plain URL (the `json`
//! format) or `{"url": ..., "format": "json"|"slack"|"teams"}`; each
//! attempt to deliver an alert, by webhook or by e-mail, is kept on the
//! run as an [`AlertDelivery`].

use std::fmt;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{de, Deserialize, Deserializer, Serialize};

/// Most deliveries kept on one run: the newest win. Five attempts to each
/// of a few destinations fit; a job with many destinations keeps the end.
pub const MAX_RUN_ALERT_DELIVERIES: usize = 32;
/// Longest error text kept on a delivery.
pub const MAX_ALERT_ERROR_LEN: usize = 512;
/// Longest target (URL or address) kept on a delivery.
pub const MAX_ALERT_TARGET_LEN: usize = 1024;

/// The body a webhook is sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// `{"event": "run.<status>", "run": RUN}`, signed like the executor
    /// protocol when a secret is set.
    #[default]
    Json,
    /// A Slack incoming-webhook message (`text` and `blocks`).
    Slack,
    /// A Microsoft Teams message with an Adaptive Card attachment.
    Teams,
}

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Slack => "slack",
            WebhookFormat::Teams => "teams",
        }
    }
}

impl std::str::FromStr for WebhookFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(WebhookFormat::Json),
            "slack" => Ok(WebhookFormat::Slack),
            "teams" => Ok(WebhookFormat::Teams),
            other => Err(format!(
                "unknown webhook format {other:?}: json, slack or teams"
            )),
        }
    }
}

/// One webhook of a job: a plain URL, or a URL with a format. A plain URL
/// stays a plain URL when the job is read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Webhook {
    Url(String),
    Formatted(FormattedWebhook),
}

/// A webhook with the format of its body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FormattedWebhook {
    /// An `http` or `https` URL with a host.
    #[schemars(length(min = 1, max = crate::validate::MAX_URL_LEN))]
    pub url: String,
    #[serde(default)]
    pub format: WebhookFormat,
}

impl Webhook {
    pub fn url(&self) -> &str {
        match self {
            Webhook::Url(url) => url,
            Webhook::Formatted(hook) => &hook.url,
        }
    }

    pub fn format(&self) -> WebhookFormat {
        match self {
            Webhook::Url(_) => WebhookFormat::Json,
            Webhook::Formatted(hook) => hook.format,
        }
    }
}

impl From<&str> for Webhook {
    fn from(url: &str) -> Self {
        Webhook::Url(url.to_string())
    }
}

/// A string or an object; the object's own errors keep their path
/// (`alerts.webhooks[1].format`), which an untagged enum would lose.
impl<'de> Deserialize<'de> for Webhook {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Webhook;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a URL or an object {\"url\": ..., \"format\": ...}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Webhook, E> {
                Ok(Webhook::Url(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Webhook, E> {
                Ok(Webhook::Url(v))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Webhook, A::Error> {
                FormattedWebhook::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(Webhook::Formatted)
            }
            // A record stored by field position.
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Webhook, A::Error> {
                FormattedWebhook::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(Webhook::Formatted)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for Webhook {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Webhook".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let object = generator.subschema_for::<FormattedWebhook>();
        schemars::json_schema!({
            "description": "A URL (sent the `json` format), or a URL with the format of the body.",
            "anyOf": [
                {"type": "string", "minLength": 1, "maxLength": crate::validate::MAX_URL_LEN},
                object
            ]
        })
    }
}

/// How an alert travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertChannel {
    Webhook,
    Email,
}

impl AlertChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertChannel::Webhook => "webhook",
            AlertChannel::Email => "email",
        }
    }
}

impl fmt::Display for AlertChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One attempt to deliver a run's alert, and how it went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AlertDelivery {
    pub channel: AlertChannel,
    /// The webhook URL (without user and password) or the e-mail address.
    pub target: String,
    /// 1 for the first attempt to this target, 2 for the next, ...
    pub attempt: u32,
    /// When the attempt ended.
    pub at: DateTime<Utc>,
    /// The webhook answered 2xx, or the mail server took the message.
    pub ok: bool,
    /// Why the attempt failed (at most 512 bytes).
    #[serde(default)]
    pub error: Option<String>,
}

impl AlertDelivery {
    /// Cuts the target and error to their bounds, so a record never grows
    /// with what a webhook answered.
    pub fn bounded(mut self) -> Self {
        self.target = crate::run::head(&self.target, MAX_ALERT_TARGET_LEN).to_string();
        self.error = self
            .error
            .map(|e| crate::run::head(&e, MAX_ALERT_ERROR_LEN).to_string());
        self
    }
}

/// A URL as it may be shown: user and password are left out, since a
/// webhook's URL may carry them.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        Ok(_) => raw.to_string(),
        Err(_) => "(an invalid URL)".to_string(),
    }
}

/// `text` (an error that may quote the URL) with a webhook's user and
/// password left out wherever it quotes `raw`.
pub fn scrub_url(text: &str, raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(url) if !url.username().is_empty() || url.password().is_some() => {
            let shown = redact_url(raw);
            text.replace(url.as_str(), &shown).replace(raw, &shown)
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_url_and_an_object_are_both_webhooks() {
        let hooks: Vec<Webhook> = serde_json::from_str(
            r#"["http://a/x", {"url": "http://b/y", "format": "slack"}, {"url": "http://c"}]"#,
        )
        .unwrap();
        assert_eq!(hooks[0], Webhook::Url("http://a/x".into()));
        assert_eq!(hooks[1].format(), WebhookFormat::Slack);
        assert_eq!(hooks[2].format(), WebhookFormat::Json);
        // A plain URL is read back as it was written.
        assert_eq!(
            serde_json::to_value(&hooks).unwrap(),
            serde_json::json!(["http://a/x", {"url": "http://b/y", "format": "slack"}, {"url": "http://c", "format": "json"}])
        );
    }

    #[test]
    fn webhooks_survive_the_store_encoding() {
        let hooks = vec![
            Webhook::Url("http://a".into()),
            Webhook::Formatted(FormattedWebhook {
                url: "http://b".into(),
                format: WebhookFormat::Teams,
            }),
        ];
        let bytes = crate::wire::encode(&hooks).unwrap();
        let back: Vec<Webhook> = crate::wire::decode(&bytes).unwrap();
        assert_eq!(back, hooks);
        let compact = crate::wire::encode_compact(&hooks).unwrap();
        let back: Vec<Webhook> = crate::wire::decode(&compact).unwrap();
        assert_eq!(back, hooks);
    }

    #[test]
    fn credentials_in_a_url_are_not_shown() {
        assert_eq!(
            redact_url("https://user:secret@hooks.example.com/a?b=1"),
            "https://hooks.example.com/a?b=1"
        );
        assert_eq!(redact_url("http://hooks/a"), "http://hooks/a");
        assert_eq!(
            scrub_url(
                "error sending request for url (https://u:pw@hooks.example.com/a)",
                "https://u:pw@hooks.example.com/a"
            ),
            "error sending request for url (https://hooks.example.com/a)"
        );
    }

    #[test]
    fn a_delivery_is_bounded() {
        let delivery = AlertDelivery {
            channel: AlertChannel::Webhook,
            target: "é".repeat(2000),
            attempt: 1,
            at: Utc::now(),
            ok: false,
            error: Some("x".repeat(10_000)),
        }
        .bounded();
        assert!(delivery.target.len() <= MAX_ALERT_TARGET_LEN);
        assert_eq!(delivery.error.unwrap().len(), MAX_ALERT_ERROR_LEN);
    }
}
