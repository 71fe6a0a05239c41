//! TLS, optional everywhere: the certificate a scheduler (admin API, web
//! console, executor reports) or an executor (executor protocol) serves
//! HTTPS with, and the CA certificates a process trusts, besides the
//! system's, when it calls executors, other nodes or the admin API.

use std::{fmt, path::Path, path::PathBuf, sync::Arc};

use anyhow::{bail, Context};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};

/// The TLS flags of `server`, `dev` and `executor`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// PEM certificate chain to serve HTTPS with instead of HTTP (needs
    /// --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM file of CA certificates to trust, besides the system's, when
    /// calling executors, other nodes, HTTP targets and webhooks.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
}

/// The flags of mutual TLS on the Raft port (`server`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RaftTlsArgs {
    /// PEM certificate chain of this node on the Raft port, signed by
    /// --raft-tls-ca and naming the IP of this node's Raft address: with
    /// it, every Raft connection is mutual TLS. Needs --raft-tls-key and
    /// --raft-tls-ca.
    #[arg(long, value_name = "FILE", requires_all = ["raft_tls_key", "raft_tls_ca"])]
    pub raft_tls_cert: Option<PathBuf>,
    /// PEM private key of --raft-tls-cert.
    #[arg(long, value_name = "FILE", requires = "raft_tls_cert")]
    pub raft_tls_key: Option<PathBuf>,
    /// PEM file of the CA certificates that sign the cluster's Raft
    /// certificates: the only ones trusted on the Raft port.
    #[arg(long, value_name = "FILE", requires = "raft_tls_cert")]
    pub raft_tls_ca: Option<PathBuf>,
}

impl RaftTlsArgs {
    /// Reads the files; `None` without certificates. An error names the
    /// flag and the file.
    pub fn load(&self) -> anyhow::Result<Option<crate::raft::transport::RaftTls>> {
        let (Some(cert), Some(key), Some(ca)) =
            (&self.raft_tls_cert, &self.raft_tls_key, &self.raft_tls_ca)
        else {
            if self.raft_tls_cert.is_some()
                || self.raft_tls_key.is_some()
                || self.raft_tls_ca.is_some()
            {
                bail!("--raft-tls-cert, --raft-tls-key and --raft-tls-ca go together");
            }
            return Ok(None);
        };
        let tls = crate::raft::transport::RaftTls::new(
            read_chain("--raft-tls-cert", cert)?,
            read_key("--raft-tls-key", key)?,
            read_roots("--raft-tls-ca", ca)?,
        )
        .context("--raft-tls-cert")?;
        Ok(Some(tls))
    }
}

/// What [`TlsArgs`] become once their files are read.
#[derive(Clone, Default)]
pub struct Tls {
    /// HTTPS with this configuration; plain HTTP when `None`.
    pub server: Option<Arc<rustls::ServerConfig>>,
    /// CA certificates every HTTP client of the process trusts besides the
    /// system's, so a private CA works without touching the host.
    pub trusted: Vec<reqwest::Certificate>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("serves_https", &self.server.is_some())
            .field("trusted_cas", &self.trusted.len())
            .finish()
    }
}

impl Tls {
    /// The scheme of the URLs this process serves.
    pub fn scheme(&self) -> &'static str {
        if self.server.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

impl TlsArgs {
    /// Reads the files; an error names the flag and the file, so a node
    /// never falls back to plain HTTP because a certificate was unreadable.
    pub fn load(&self) -> anyhow::Result<Tls> {
        let server = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(server_config(cert, key)?)),
            (None, None) => None,
            _ => bail!("--tls-cert and --tls-key go together"),
        };
        let trusted = match &self.tls_ca {
            Some(path) => read_ca_file("--tls-ca", path)?,
            None => Vec::new(),
        };
        Ok(Tls { server, trusted })
    }
}

/// The CA certificates of the PEM file given to `flag`; at least one.
pub fn read_ca_file(flag: &str, path: &Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem =
        std::fs::read(path).with_context(|| format!("{flag}: cannot read {}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("{flag}: {} is not a PEM certificate bundle", path.display()))?;
    if certs.is_empty() {
        bail!(
            "{flag}: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    Ok(certs)
}

/// A rustls server configuration on the ring provider, TLS 1.2 and 1.3.
fn server_config(cert: &Path, key: &Path) -> anyhow::Result<rustls::ServerConfig> {
    let chain = read_chain("--tls-cert", cert)?;
    let key = read_key("--tls-key", key)?;
    rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("--tls-cert and --tls-key do not make a usable pair")
}

/// The crypto every TLS configuration of the process uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate chain in the PEM file given to `flag`; at least one.
pub fn read_chain(flag: &str, path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("{flag}: cannot read {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{flag}: {} is not PEM", path.display()))?;
    if chain.is_empty() {
        bail!(
            "{flag}: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    Ok(chain)
}

/// The private key in the PEM file given to `flag`.
pub fn read_key(flag: &str, path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).with_context(|| {
        format!(
            "{flag}: {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
            path.display()
        )
    })
}

/// The CA certificates in the PEM file given to `flag`, as the only roots
/// of trust (the system's are not among them).
pub fn read_roots(flag: &str, path: &Path) -> anyhow::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_chain(flag, path)? {
        roots.add(cert).with_context(|| {
            format!(
                "{flag}: {} holds an unusable CA certificate",
                path.display()
            )
        })?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn no_flags_means_plain_http() {
        let tls = TlsArgs::default().load().unwrap();
        assert!(tls.server.is_none());
        assert!(tls.trusted.is_empty());
        assert_eq!(tls.scheme(), "http");
    }

    #[test]
    fn unreadable_or_empty_files_are_refused_naming_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let junk = write(dir.path(), "junk.pem", "not a certificate\n");
        let args = TlsArgs {
            tls_ca: Some(junk.clone()),
            ..Default::default()
        };
        let err = format!("{:#}", args.load().unwrap_err());
        assert!(err.starts_with("--tls-ca:"), "{err}");

        let args = TlsArgs {
            tls_cert: Some(junk.clone()),
            tls_key: Some(junk),
            ..Default::default()
        };
        let err = format!("{:#}", args.load().unwrap_err());
        assert!(err.starts_with("--tls-cert:"), "{err}");

        let args = TlsArgs {
            tls_cert: Some(dir.path().join("missing.pem")),
            tls_key: Some(dir.path().join("missing.key")),
            ..Default::default()
        };
        let err = format!("{:#}", args.load().unwrap_err());
        assert!(err.contains("missing.pem"), "{err}");
    }
}
