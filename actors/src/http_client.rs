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
    install_crypto_provider();
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true)
        .build()
        .expect("the HTTP client configuration is static and valid")
}
