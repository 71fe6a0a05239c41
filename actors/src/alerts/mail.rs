//! E-mail over SMTP (lettre on tokio and rustls with ring).

use std::time::Duration;

use lettre::{
    message::{header::ContentType, Mailbox},
    transport::smtp::authentication::Credentials,
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
};

use super::retry::Attempt;

/// How long one message may take, connection included.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// Where and as whom alerts are mailed (`--smtp-url`, `--smtp-from`,
/// `--smtp-credentials-file`).
#[derive(Clone)]
pub struct SmtpSettings {
    /// `smtp://host:port` (plain), `smtp://host:port?tls=required`
    /// (STARTTLS), `smtps://host:port` (TLS from the start).
    pub url: String,
    pub from: String,
    /// User and password, read from the credentials file.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for SmtpSettings {
    /// The password is never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("url", &protocol::alert::redact_url(&self.url))
            .field("from", &self.from)
            .field("credentials", &self.credentials.as_ref().map(|(u, _)| u))
            .finish()
    }
}

/// Reads `user:password` (the first line of the file; the password may
/// itself hold colons). The error never quotes the file.
pub fn parse_credentials(text: &str) -> Result<(String, String), String> {
    let line = text.lines().next().unwrap_or_default();
    match line.split_once(':') {
        Some((user, password)) if !user.is_empty() => Ok((user.to_string(), password.to_string())),
        _ => Err("the SMTP credentials file must hold user:password on its first line".into()),
    }
}

/// Sends alert e-mails through one SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(settings: &SmtpSettings) -> Result<Self, String> {
        crate::http_client::install_crypto_provider();
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| format!("--smtp-from {:?}: {e}", settings.from))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.url)
            .map_err(|e| format!("--smtp-url: {e}"))?
            .timeout(Some(SEND_TIMEOUT));
        if let Some((user, password)) = &settings.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// Mails one message to `to`.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Attempt {
        let to: Mailbox = match to.parse() {
            Ok(to) => to,
            Err(e) => return Attempt::Permanent(format!("invalid address: {e}")),
        };
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body);
        let message = match message {
            Ok(message) => message,
            Err(e) => return Attempt::Permanent(format!("cannot build the message: {e}")),
        };
        match self.transport.send(message).await {
            Ok(_) => Attempt::Delivered,
            Err(e) if e.is_permanent() => Attempt::Permanent(e.to_string()),
            Err(e) => Attempt::Transient(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_user_colon_password() {
        assert_eq!(
            parse_credentials("alerts:pa:ss\n").unwrap(),
            ("alerts".to_string(), "pa:ss".to_string())
        );
        let error = parse_credentials("no-colon-secret").unwrap_err();
        assert!(!error.contains("no-colon-secret"));
    }

    #[test]
    fn settings_never_show_the_password() {
        let settings = SmtpSettings {
            url: "smtp://u:hidden@mail:25".into(),
            from: "cron@example.com".into(),
            credentials: Some(("u".into(), "hidden".into())),
        };
        assert!(!format!("{settings:?}").contains("hidden"));
    }
}
