//! The flags of alert e-mail: the SMTP server, the sender, and the file
//! with the server's user and password (read at start, never logged).

use std::path::PathBuf;

use actors::alerts::SmtpSettings;
use anyhow::{bail, Context};

/// SMTP flags, flattened into `cronmesh server` and `cronmesh dev`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SmtpArgs {
    /// SMTP server that alert e-mail goes through: smtp://HOST:PORT
    /// (plain), smtp://HOST:PORT?tls=required (STARTTLS) or
    /// smtps://HOST:PORT (TLS). Unset: jobs' alert e-mail is not sent, and
    /// each attempt is recorded as failed saying so.
    #[arg(long, value_name = "URL")]
    pub smtp_url: Option<String>,
    /// Sender of alert e-mail, e.g. "cronmesh <cron@example.com>".
    #[arg(long, value_name = "ADDRESS", requires = "smtp_url")]
    pub smtp_from: Option<String>,
    /// File holding `user:password` for the SMTP server, on its first line.
    #[arg(long, value_name = "FILE", requires = "smtp_url")]
    pub smtp_credentials_file: Option<PathBuf>,
}

impl SmtpArgs {
    /// The SMTP settings, or `None` without `--smtp-url`. An unreadable
    /// credentials file or a missing sender stops the node.
    pub fn settings(&self) -> anyhow::Result<Option<SmtpSettings>> {
        let Some(url) = &self.smtp_url else {
            return Ok(None);
        };
        let Some(from) = &self.smtp_from else {
            bail!("--smtp-url needs --smtp-from, the sender of alert e-mail");
        };
        let credentials = match &self.smtp_credentials_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the SMTP credentials file {}", path.display())
                })?;
                let parsed = actors::alerts::mail::parse_credentials(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                Some(parsed)
            }
            None => None,
        };
        let settings = SmtpSettings {
            url: url.clone(),
            from: from.clone(),
            credentials,
        };
        // A bad URL or sender stops the node now, not at the first alert.
        actors::alerts::Mailer::new(&settings).map_err(|e| anyhow::anyhow!(e))?;
        Ok(Some(settings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str, from: Option<&str>, file: Option<PathBuf>) -> SmtpArgs {
        SmtpArgs {
            smtp_url: Some(url.into()),
            smtp_from: from.map(str::to_string),
            smtp_credentials_file: file,
        }
    }

    #[test]
    fn smtp_needs_a_sender_and_a_readable_credentials_file() {
        assert!(SmtpArgs::default().settings().unwrap().is_none());
        let err = args("smtp://127.0.0.1:2525", None, None)
            .settings()
            .unwrap_err();
        assert!(err.to_string().contains("--smtp-from"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("smtp");
        std::fs::write(&file, "alerts:s3cret\n").unwrap();
        let settings = args(
            "smtp://127.0.0.1:2525",
            Some("cron@example.com"),
            Some(file),
        )
        .settings()
        .unwrap()
        .unwrap();
        assert_eq!(
            settings.credentials,
            Some(("alerts".to_string(), "s3cret".to_string()))
        );
        let missing = args(
            "smtp://127.0.0.1:2525",
            Some("cron@example.com"),
            Some(dir.path().join("none")),
        );
        assert!(missing.settings().is_err());
        let bad_url = args("gopher://x", Some("cron@example.com"), None);
        assert!(bad_url.settings().is_err());
    }
}

/// Where alerts about the cluster go, and when they fire; flattened into
/// `cronmesh server`.
#[derive(clap::Args, Debug, Clone)]
pub struct ClusterAlertArgs {
    /// Webhook for cluster alerts (repeatable): URL, or FORMAT:URL with
    /// FORMAT json, slack or teams (slack:https://hooks.slack.com/...).
    #[arg(long = "alert-webhook", value_name = "[FORMAT:]URL", value_parser = parse_alert_webhook)]
    pub alert_webhooks: Vec<protocol::alert::Webhook>,
    /// Address sent cluster alerts by e-mail (repeatable; needs --smtp-url).
    #[arg(long = "alert-email", value_name = "ADDRESS")]
    pub alert_emails: Vec<String>,
    /// Alert when this node has seen no leader for this long (30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_threshold)]
    pub alert_no_leader_after: std::time::Duration,
    /// Alert (on the leader) when a scheduled run starts this long after
    /// its slot, or a slot is skipped by its job's misfire policy; a run of
    /// the job that starts on time resolves it.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_threshold)]
    pub alert_lateness: std::time::Duration,
}

impl Default for ClusterAlertArgs {
    fn default() -> Self {
        Self {
            alert_webhooks: Vec::new(),
            alert_emails: Vec::new(),
            alert_no_leader_after: std::time::Duration::from_secs(30),
            alert_lateness: std::time::Duration::from_secs(60),
        }
    }
}

/// The node's cluster alert settings.
#[derive(Clone, Debug, Default)]
pub struct ClusterAlertSettings {
    pub webhooks: Vec<protocol::alert::Webhook>,
    pub emails: Vec<String>,
    pub no_leader_after: std::time::Duration,
    pub late_after: std::time::Duration,
}

impl ClusterAlertArgs {
    pub fn settings(&self) -> ClusterAlertSettings {
        ClusterAlertSettings {
            webhooks: self.alert_webhooks.clone(),
            emails: self.alert_emails.clone(),
            no_leader_after: self.alert_no_leader_after,
            late_after: self.alert_lateness,
        }
    }
}

/// `URL` or `FORMAT:URL`; the URL must be http or https with a host.
pub fn parse_alert_webhook(text: &str) -> Result<protocol::alert::Webhook, String> {
    use protocol::alert::{FormattedWebhook, Webhook, WebhookFormat};
    let (format, url) = match text.split_once(':') {
        Some((format @ ("json" | "slack" | "teams"), url)) => {
            (format.parse::<WebhookFormat>()?, url)
        }
        _ => (WebhookFormat::Json, text),
    };
    let parsed = url::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(
            "must be an http or https URL, optionally after json:, slack: or teams:".into(),
        );
    }
    Ok(Webhook::Formatted(FormattedWebhook {
        url: url.to_string(),
        format,
    }))
}

fn parse_threshold(text: &str) -> Result<std::time::Duration, String> {
    let value = text.parse::<protocol::HumanDuration>()?.as_duration();
    if value.is_zero() {
        return Err("must be longer than 0".into());
    }
    Ok(value)
}

#[cfg(test)]
mod cluster_tests {
    use protocol::alert::WebhookFormat;

    use super::*;

    #[test]
    fn an_alert_webhook_may_name_its_format() {
        let hook = parse_alert_webhook("slack:https://hooks.example.com/a").unwrap();
        assert_eq!(hook.format(), WebhookFormat::Slack);
        assert_eq!(hook.url(), "https://hooks.example.com/a");
        let plain = parse_alert_webhook("https://hooks.example.com/a").unwrap();
        assert_eq!(plain.format(), WebhookFormat::Json);
        assert_eq!(plain.url(), "https://hooks.example.com/a");
        assert!(parse_alert_webhook("irc:https://x").is_err());
        assert!(parse_alert_webhook("ftp://x/").is_err());
    }
}
