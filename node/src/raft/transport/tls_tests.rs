//! The transport with mutual TLS: what reaches the Raft thread when peers
//! hold certificates of the cluster's CA, of another CA, none at all, or
//! one that names another address.

use std::collections::HashMap;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{
    handshake,
    tests::{
        any_port, cluster_secured, heartbeat, recv_n, seqs, start_secured, wait_until, DEADLINE,
    },
    *,
};

/// A certificate authority of a test cluster.
pub(super) struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
}

/// A node's certificate chain and key, as read from its PEM files.
pub(super) struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl TestCa {
    pub(super) fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} raft CA"));
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Self {
            cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A node certificate naming `ip`, signed by this CA.
    pub(super) fn identity(&self, ip: &str) -> Identity {
        let mut params = CertificateParams::new(vec![ip.to_string()]).expect("node params");
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("node key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("node certificate");
        Identity {
            chain: vec![cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        }
    }

    pub(super) fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.clone()).expect("CA root");
        roots
    }

    /// The TLS of a node on 127.0.0.1 in this CA's cluster.
    pub(super) fn node_tls(&self) -> RaftTls {
        let identity = self.identity("127.0.0.1");
        RaftTls::new(identity.chain, identity.key, self.roots()).expect("raft TLS")
    }
}

/// TLS and the handshake of the secret `b"secret"`.
pub(super) fn secured(ca: &TestCa) -> RaftSecurity {
    RaftSecurity {
        key: Some(RaftKey::from_secret(b"secret")),
        tls: Some(ca.node_tls()),
    }
}

/// Node 2 with TLS of `ca` and the secret, knowing nodes 1 and 3.
async fn receiver(ca: &TestCa) -> (RaftTransport, mpsc::Receiver<Message>) {
    let peers = HashMap::from([(1, any_port()), (3, any_port())]);
    start_secured(2, any_port(), peers, Faults::default(), secured(ca)).await
}

/// A TLS client connection to `addr` trusting `ca`, presenting `identity`
/// if any; `Err` when the TLS handshake fails on this side.
async fn tls_client(
    addr: SocketAddr,
    ca: &TestCa,
    identity: Option<Identity>,
) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let builder = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(ca.roots());
    let config = match identity {
        Some(identity) => builder
            .with_client_auth_cert(identity.chain, identity.key)
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::IpAddress(addr.ip().into());
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// Whether the node ends a connection (alert, EOF or reset) before the
/// deadline, reading whatever it sends first.
async fn ended_by_the_node<S: AsyncReadExt + Unpin>(stream: &mut S) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(DEADLINE, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_of_one_ca_talk_over_tls_with_and_without_the_secret() {
    let ca = TestCa::new("cluster");
    for with_secret in [true, false] {
        let nodes = cluster_secured(2, &Faults::default(), |_| RaftSecurity {
            key: with_secret.then(|| RaftKey::from_secret(b"secret")),
            tls: Some(ca.node_tls()),
        })
        .await;
        let (t1, rx1) = &nodes[0];
        let (t2, rx2) = &nodes[1];
        t1.send((0..20).map(|seq| heartbeat(1, 2, seq)).collect());
        t2.send(vec![heartbeat(2, 1, 99)]);
        assert_eq!(seqs(&recv_n(rx2, 20).await), (0..20).collect::<Vec<_>>());
        assert_eq!(seqs(&recv_n(rx1, 1).await), vec![99]);
        // The same connection carries what follows.
        t1.send(vec![heartbeat(1, 2, 20)]);
        assert_eq!(seqs(&recv_n(rx2, 1).await), vec![20]);
        for (transport, _) in &nodes {
            let stats = transport.stats();
            assert_eq!(stats.handshakes_refused, 0, "secret: {with_secret}");
            assert_eq!(stats.handshake_failures, 0, "secret: {with_secret}");
            assert_eq!(stats.reconnects, 0, "secret: {with_secret}");
            transport.shutdown().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_ca_is_refused_both_ways_though_it_holds_the_secret() {
    let ours = TestCa::new("cluster");
    let theirs = TestCa::new("stranger");
    let nodes = cluster_secured(3, &Faults::default(), |id| {
        secured(if id == 3 { &theirs } else { &ours })
    })
    .await;
    super::auth_tests::node_three_stays_apart(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_tcp_and_clients_without_a_cluster_certificate_are_refused() {
    let ca = TestCa::new("cluster");
    let (t2, rx2) = receiver(&ca).await;
    let addr = t2.local_addr();

    // The wire format of a node without TLS: the secret's handshake in
    // the clear, which the secret would pass.
    let mut raw = TcpStream::connect(addr).await.expect("connect");
    let hello = handshake::Hello {
        from: 1,
        to: 2,
        nonce: [7; handshake::NONCE_LEN],
    };
    raw.write_all(&hello.encode()).await.expect("write");
    assert!(ended_by_the_node(&mut raw).await, "plain TCP was kept open");
    wait_until("plain TCP refused", || t2.stats().handshakes_refused == 1).await;

    // TLS that trusts the node but presents no certificate, then one of
    // another CA: refused though the client holds the secret.
    let stranger = TestCa::new("stranger").identity("127.0.0.1");
    for (refusals, identity) in [(2, None), (3, Some(stranger))] {
        let handshake = match tls_client(addr, &ca, identity).await {
            // TLS 1.3: the client finishes first and hears the refusal
            // when it reads.
            Ok(mut stream) => {
                handshake::client(&mut stream, &RaftKey::from_secret(b"secret"), 1, 2).await
            }
            Err(error) => Err(HandshakeError::Io(error)),
        };
        assert!(
            matches!(handshake, Err(HandshakeError::Io(_))),
            "a client without a cluster certificate: {handshake:?}"
        );
        wait_until("the client refused", || {
            t2.stats().handshakes_refused == refusals
        })
        .await;
    }

    // With a cluster certificate the secret's handshake follows inside TLS
    // and the frame arrives.
    let mut stream = tls_client(addr, &ca, Some(ca.identity("127.0.0.1")))
        .await
        .expect("TLS with a cluster certificate");
    handshake::client(&mut stream, &RaftKey::from_secret(b"secret"), 1, 2)
        .await
        .expect("the handshake inside TLS");
    let (frames, _) = encode_frames(&[heartbeat(1, 2, 5)], SOFT_FRAME_BYTES, MAX_FRAME_BYTES);
    stream.write_all(&frames[0].bytes).await.expect("write");
    stream.flush().await.expect("flush");
    assert_eq!(seqs(&recv_n(&rx2, 1).await), vec![5]);
    assert!(rx2.try_recv().is_err());
    assert_eq!(t2.stats().handshakes_refused, 3);
    t2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_names_another_address_is_refused_by_the_dialler() {
    let ca = TestCa::new("cluster");
    // Node 2's certificate names 10.9.8.7, not the 127.0.0.1 it is dialled at.
    let elsewhere = ca.identity("10.9.8.7");
    let node2 = RaftSecurity {
        key: Some(RaftKey::from_secret(b"secret")),
        tls: Some(RaftTls::new(elsewhere.chain, elsewhere.key, ca.roots()).expect("TLS")),
    };
    let nodes = cluster_secured(2, &Faults::default(), |id| {
        if id == 2 {
            node2.clone()
        } else {
            secured(&ca)
        }
    })
    .await;
    let (t1, _) = &nodes[0];
    let (_, rx2) = &nodes[1];
    t1.send(vec![heartbeat(1, 2, 1)]);
    wait_until("the dialler refused the certificate", || {
        t1.stats().handshake_failures >= 1
    })
    .await;
    assert!(rx2.try_recv().is_err(), "node 2 heard node 1");
    assert_eq!(t1.stats().messages_sent, 0);
    let proved = t1.prove_peer(nodes[1].0.local_addr(), 2).await;
    assert!(matches!(proved, Err(ConnectError::Tls(_))), "{proved:?}");
    for (transport, _) in &nodes {
        transport.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_must_pass_tls_and_the_secret_before_it_is_added() {
    let ca = TestCa::new("cluster");
    let (t1, _rx1) = start_secured(
        1,
        any_port(),
        HashMap::new(),
        Faults::default(),
        secured(&ca),
    )
    .await;
    // A joiner knows no member yet: it refuses node 1 after proving itself.
    let joiner =
        |security| start_secured(4, any_port(), HashMap::new(), Faults::default(), security);

    let (good, _) = joiner(secured(&ca)).await;
    t1.prove_peer(good.local_addr(), 4)
        .await
        .expect("a joiner with the CA's certificate and the secret");

    let (other_ca, _) = joiner(secured(&TestCa::new("stranger"))).await;
    let proved = t1.prove_peer(other_ca.local_addr(), 4).await;
    assert!(matches!(proved, Err(ConnectError::Tls(_))), "{proved:?}");

    let (other_secret, _) = joiner(RaftSecurity {
        key: Some(RaftKey::from_secret(b"other")),
        tls: Some(ca.node_tls()),
    })
    .await;
    let proved = t1.prove_peer(other_secret.local_addr(), 4).await;
    assert!(
        matches!(
            proved,
            Err(ConnectError::Handshake(HandshakeError::BadProof))
        ),
        "{proved:?}"
    );

    let (plain, _) = joiner(RaftSecurity::secret(Some(RaftKey::from_secret(b"secret")))).await;
    assert!(t1.prove_peer(plain.local_addr(), 4).await.is_err());
    for transport in [&t1, &good, &other_ca, &other_secret, &plain] {
        transport.shutdown().await;
    }
}
