//! The one way this process builds HTTP clients: rustls on the ring
//! provider, installed once, with pooled keep-alive connections.

use std::{sync::Once, time::Duration};

static INSTALL_PROVIDER: Once = Once::new();

/// Installs ring as the process-wide rustls provider (idempotent).
pub fn install_crypto_provider() {
    INSTALL_PROVIDER.call_once(|| {
        // Err means another provider is installed already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A pooled client for talking to executors, schedulers and HTTP targets,
/// trusting the system's CAs and `trusted`. Per-request timeouts are set
/// by the caller. Fails only if a trusted certificate is unusable.
pub fn build_client(trusted: &[reqwest::Certificate]) -> Result<reqwest::Client, String> {
    build_client_with_token(None, trusted)
}

/// A client that sends `Authorization: Bearer TOKEN` with every request:
/// how a node speaks to other nodes' admin APIs when they require a token.
/// Fails if the token cannot be a header value or a certificate is unusable.
pub fn build_client_with_token(
    token: Option<&str>,
    trusted: &[reqwest::Certificate],
) -> Result<reqwest::Client, String> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true);
    if !trusted.is_empty() {
        builder = builder.tls_certs_merge(trusted.iter().cloned());
    }
    if let Some(token) = token {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "the admin token cannot travel in a header".to_string())?;
        value.set_sensitive(true);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, value);
        builder = builder.default_headers(headers);
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Why a request failed, outermost cause first: reqwest's own message
/// ("error sending request for url ...") leaves out the reason, such as a
/// refused connection or an untrusted certificate. hyper's bare
/// "client error (...)" wrappers and repeats are left out.
pub fn causes(err: &reqwest::Error) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.starts_with("client error (") && parts.last() != Some(&text) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts
}

/// `err` with its [`causes`]: one line for a log or a run's error.
pub fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    for cause in causes(err) {
        text.push_str(": ");
        text.push_str(&cause);
    }
    text
}
