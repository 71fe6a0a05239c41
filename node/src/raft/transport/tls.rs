//! Mutual TLS on the Raft port, when the node has certificates
//! (`--raft-tls-cert`, `--raft-tls-key`, `--raft-tls-ca`).
//!
//! Both ends present a certificate signed by the cluster's CA, and only by
//! it: the system's roots are not trusted here, so a certificate any public
//! CA would sign opens nothing. The side that connects checks that the
//! certificate of the side it reached names the IP address it dialled (a
//! `subjectAltName` IP entry), as an HTTPS client checks a host name; the
//! accepting side checks only the chain, since peers connect from any
//! address. One certificate per node serves both ways.
//!
//! TLS comes first and the handshake of [`super::handshake`] (the cluster
//! secret, and the member id the connection is bound to) runs inside it,
//! so a connection is refused if either check fails, and the frames and
//! snapshot streams that follow are encrypted. TLS 1.3 session tickets are
//! off: they would be the only bytes a receiver writes on a frame
//! connection, which the sender takes as the connection being finished
//! (see `connection_alive`), and peers keep their connections anyway.

use std::{
    fmt, io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// A node's TLS identity and trust on the Raft port: cheap to clone.
#[derive(Clone)]
pub struct RaftTls {
    /// Used when this node connects: presents its certificate and trusts
    /// the cluster's CA alone.
    connector: tokio_rustls::TlsConnector,
    /// Used when a peer connects: requires a certificate the cluster's CA
    /// signed.
    acceptor: tokio_rustls::TlsAcceptor,
}

impl fmt::Debug for RaftTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RaftTls")
    }
}

/// Why a TLS handshake on the Raft port did not complete.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS handshake timed out after {0:?}")]
    Timeout(Duration),
    /// Certificate refused (either side), no TLS at all, or the connection
    /// lost.
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] io::Error),
}

impl RaftTls {
    /// The configurations of a node whose certificate chain (its own
    /// certificate first) and key are `chain` and `key`, in a cluster whose
    /// certificates `roots` signed. Fails if the key does not match the
    /// certificate or the CA set is empty.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        roots: rustls::RootCertStore,
    ) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let provider = crate::tls::provider();
        let roots = Arc::new(roots);
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            provider.clone(),
        )
        .build()
        .context("the Raft CA cannot verify client certificates")?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .context("the Raft certificate and key do not make a usable pair")?;
        server.send_tls13_tickets = 0;
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .context("the Raft certificate and key do not make a usable pair")?;
        client.resumption = rustls::client::Resumption::disabled();
        Ok(Self {
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
        })
    }

    /// TLS as the side that dialled `addr` over `tcp`, within `limit`: the
    /// peer's certificate must be the CA's and name `addr`'s IP.
    pub async fn connect(
        &self,
        tcp: TcpStream,
        addr: SocketAddr,
        limit: Duration,
    ) -> Result<RaftStream, TlsError> {
        let name = ServerName::IpAddress(addr.ip().into());
        let stream = tokio::time::timeout(limit, self.connector.connect(name, tcp))
            .await
            .map_err(|_| TlsError::Timeout(limit))?
            .map_err(TlsError::Handshake)?;
        Ok(RaftStream::Tls(Box::new(stream.into())))
    }

    /// TLS as the side that accepted `tcp`, within `limit`: the peer must
    /// present a certificate the CA signed.
    pub async fn accept(&self, tcp: TcpStream, limit: Duration) -> Result<RaftStream, TlsError> {
        let stream = tokio::time::timeout(limit, self.acceptor.accept(tcp))
            .await
            .map_err(|_| TlsError::Timeout(limit))?
            .map_err(TlsError::Handshake)?;
        Ok(RaftStream::Tls(Box::new(stream.into())))
    }
}

/// A Raft connection, frames or snapshot stream: plain TCP, or TLS over it.
/// Writers must `flush` after each message they expect an answer to or
/// that must leave now (TLS holds written bytes until then).
pub enum RaftStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

impl RaftStream {
    /// The TCP connection underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            RaftStream::Plain(stream) => stream,
            RaftStream::Tls(stream) => stream.get_ref().0,
        }
    }
}

impl From<TcpStream> for RaftStream {
    fn from(stream: TcpStream) -> Self {
        RaftStream::Plain(stream)
    }
}

impl AsyncRead for RaftStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            RaftStream::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            RaftStream::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for RaftStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            RaftStream::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            RaftStream::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            RaftStream::Plain(stream) => Pin::new(stream).poll_flush(cx),
            RaftStream::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            RaftStream::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            RaftStream::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}
