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

/// A pooled client for talking to executors, schedulers and HTTP targets.
/// Per-request timeouts are set by the caller.
pub fn build_client() -> reqwest::Client {
    client_builder()
        .build()
        .expect("the HTTP client configuration is static and valid")
}

/// A client that sends `Authorization: Bearer TOKEN` with every request:
/// how a node speaks to other nodes' admin APIs when they require a token.
/// Fails only if the token cannot be a header value.
pub fn build_client_with_token(token: Option<&str>) -> Result<reqwest::Client, String> {
    let Some(token) = token else {
        return Ok(build_client());
    };
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| "the admin token cannot travel in a header".to_string())?;
    value.set_sensitive(true);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, value);
    client_builder()
        .default_headers(headers)
        .build()
        .map_err(|e| e.to_string())
}

fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true)
}
