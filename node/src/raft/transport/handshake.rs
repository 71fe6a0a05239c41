//! The handshake that opens every Raft connection of a node that has a
//! cluster secret: both sides prove they know the secret, and the
//! connection is bound to the Raft id of the side that opened it.
//!
//! ```text
//! client (the sender)                       server (the accepting node)
//!   hello: u32 HELLO_MAGIC, u8 VERSION,
//!          u64 from, u64 to, [32] nonce_c  ->
//!                                        <- [32] nonce_s, [32] proof_s
//!   [32] proof_c                           ->
//!                                        <- u8 ACCEPTED
//! ```
//!
//! Integers are big-endian. `proof_s` and `proof_c` are HMAC-SHA256, keyed
//! with the Raft key derived from the cluster secret
//! (`protocol::keys::derive(secret, KeyUse::Raft)`), over the transcript
//! `TRANSCRIPT_LABEL, role, VERSION, from, to, nonce_c, nonce_s`, where the
//! role is `b'S'` for the server's proof and `b'C'` for the client's. The
//! role keeps one side's proof from being replayed as the other's (a
//! reflection: connecting back to a node and handing it its own proof);
//! the two fresh nonces keep a proof from being replayed on another
//! connection; `from` and `to` bind it to the pair of nodes. Every field
//! has a fixed size, so the transcript is unambiguous.
//!
//! The server answers a hello only when `to` is its own id; it proves
//! itself before it checks that `from` is a known peer, so a node being
//! added can be checked by the leader before it knows the leader. It binds
//! the connection to `from` once `proof_c` verifies and `from` is a known
//! peer, then writes `ACCEPTED`: a client that reads anything else (or
//! nothing) knows it was refused and backs off instead of writing frames
//! into a closing connection.
//!
//! Every message has a fixed size (at most [`HELLO_LEN`] bytes), so a
//! hostile peer can make neither side allocate; each side gives the whole
//! exchange [`HANDSHAKE_TIMEOUT`], so a slow or silent one cannot hold a
//! connection open. After the handshake the connection carries what it
//! carried before: frames, or a snapshot stream.

use std::{fmt, io, time::Duration};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

type HmacSha256 = Hmac<Sha256>;

/// The first four bytes of a handshake (`0xC3` then `RH1`). Like the
/// snapshot stream's magic it is far over any frame length, so a node
/// without a secret that receives it refuses it as an oversized frame, and
/// a node with a secret that receives a frame (the format of a node
/// without one) refuses it at once, without waiting for more bytes.
pub const HELLO_MAGIC: u32 = 0xC352_4831;
const _: () = assert!(HELLO_MAGIC as u64 > super::MAX_FRAME_BYTES as u64);
const _: () = assert!(HELLO_MAGIC != super::SNAPSHOT_STREAM_MAGIC);

/// The handshake's version; a node refuses any other. A later format
/// changes it, so that mixed versions fail loudly instead of misreading.
pub const VERSION: u8 = 1;

/// Bytes of a nonce: 256 random bits, never repeated in practice.
pub const NONCE_LEN: usize = 32;

/// Bytes of a proof (an HMAC-SHA256 tag).
pub const PROOF_LEN: usize = 32;

/// Bytes of the hello: magic, version, from, to, nonce.
pub const HELLO_LEN: usize = 4 + 1 + 8 + 8 + NONCE_LEN;

/// Bytes of the server's answer: its nonce and its proof.
pub const CHALLENGE_LEN: usize = NONCE_LEN + PROOF_LEN;

/// The server's last byte when it bound the connection.
const ACCEPTED: u8 = 1;

/// How long the whole exchange may take on either side. A peer on the same
/// network needs a few round trips of milliseconds; a peer that takes
/// longer is gone or hostile, and its connection is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Prefix of every transcript, so that these tags can never be confused
/// with another HMAC made with the same key.
const TRANSCRIPT_LABEL: &[u8; 26] = b"cronmesh/raft/handshake/v1";

/// The key proofs are made with, derived from the cluster secret for the
/// Raft transport alone. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct RaftKey([u8; 32]);

impl RaftKey {
    /// The Raft key of the cluster whose secret is `secret`.
    pub fn from_secret(secret: &[u8]) -> Self {
        RaftKey(protocol::keys::derive(secret, protocol::keys::KeyUse::Raft))
    }

    fn proof(&self, role: Role, from: u64, to: u64, nonce_c: &[u8], nonce_s: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(TRANSCRIPT_LABEL);
        mac.update(&[role as u8, VERSION]);
        mac.update(&from.to_be_bytes());
        mac.update(&to.to_be_bytes());
        mac.update(nonce_c);
        mac.update(nonce_s);
        mac
    }
}

impl fmt::Debug for RaftKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RaftKey(..)")
    }
}

/// Which side a proof speaks for.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Role {
    Server = b'S',
    Client = b'C',
}

/// The client's first message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The Raft id the client claims; the connection is bound to it.
    pub from: u64,
    /// The Raft id the client means to reach: a node answers only hellos
    /// for itself, so a proof for one node is worth nothing at another.
    pub to: u64,
    /// The client's fresh nonce.
    pub nonce: [u8; NONCE_LEN],
}

impl Hello {
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let mut bytes = [0u8; HELLO_LEN];
        bytes[0..4].copy_from_slice(&HELLO_MAGIC.to_be_bytes());
        bytes[4] = VERSION;
        bytes[5..13].copy_from_slice(&self.from.to_be_bytes());
        bytes[13..21].copy_from_slice(&self.to.to_be_bytes());
        bytes[21..].copy_from_slice(&self.nonce);
        bytes
    }

    /// Decodes a hello; `bytes` must be exactly [`HELLO_LEN`] long.
    pub fn decode(bytes: &[u8]) -> Result<Self, HandshakeError> {
        let bytes: &[u8; HELLO_LEN] = bytes
            .try_into()
            .map_err(|_| HandshakeError::Length(bytes.len()))?;
        let (magic, rest) = bytes.split_at(4);
        let magic = u32::from_be_bytes(magic.try_into().map_err(|_| HandshakeError::Length(4))?);
        if magic != HELLO_MAGIC {
            return Err(HandshakeError::NotAHandshake(magic));
        }
        if rest[0] != VERSION {
            return Err(HandshakeError::Version(rest[0]));
        }
        let u64_at = |at: usize| {
            rest.get(at..at + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .ok_or(HandshakeError::Length(HELLO_LEN))
        };
        let from = u64_at(1)?;
        let to = u64_at(9)?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&rest[17..]);
        Ok(Hello { from, to, nonce })
    }
}

/// Why a handshake failed. Whatever the cause the connection is closed;
/// the variants say what to look at.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("connection error during the handshake: {0}")]
    Io(#[source] io::Error),
    #[error("no handshake within {0:?}")]
    Timeout(Duration),
    #[error("the connection does not start with a handshake (first bytes {0:08x}): a peer without the cluster secret, or not a cronmesh peer")]
    NotAHandshake(u32),
    #[error("handshake version {0}, this node speaks {VERSION}")]
    Version(u8),
    #[error("a handshake message of {0} bytes, not of its fixed size")]
    Length(usize),
    #[error("the hello is for node {to}, not for this node")]
    Misaddressed { to: u64 },
    #[error("the hello claims node {0}, which is not a known raft peer")]
    UnknownPeer(u64),
    #[error("the peer's proof does not verify: it does not hold this cluster's secret")]
    BadProof,
    #[error("the peer refused the handshake (its log says why)")]
    Refused,
}

/// Writes one step of the handshake and flushes it: over TLS, written
/// bytes wait in the session until flushed, and the peer would wait for
/// them.
async fn send<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> Result<(), HandshakeError> {
    stream.write_all(bytes).await.map_err(HandshakeError::Io)?;
    stream.flush().await.map_err(HandshakeError::Io)
}

/// Opens a connection as node `from` towards node `to`: proves this node
/// holds the secret, checks that the peer does, and waits for the peer to
/// accept. Within [`HANDSHAKE_TIMEOUT`].
pub async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    key: &RaftKey,
    from: u64,
    to: u64,
) -> Result<(), HandshakeError> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, client_steps(stream, key, from, to))
        .await
        .map_err(|_| HandshakeError::Timeout(HANDSHAKE_TIMEOUT))?
}

async fn client_steps<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    key: &RaftKey,
    from: u64,
    to: u64,
) -> Result<(), HandshakeError> {
    let hello = Hello {
        from,
        to,
        nonce: rand::random(),
    };
    send(stream, &hello.encode()).await?;
    let mut challenge = [0u8; CHALLENGE_LEN];
    stream
        .read_exact(&mut challenge)
        .await
        .map_err(HandshakeError::Io)?;
    let (nonce_s, proof_s) = challenge.split_at(NONCE_LEN);
    key.proof(Role::Server, from, to, &hello.nonce, nonce_s)
        .verify_slice(proof_s)
        .map_err(|_| HandshakeError::BadProof)?;
    let proof_c = key
        .proof(Role::Client, from, to, &hello.nonce, nonce_s)
        .finalize()
        .into_bytes();
    send(stream, &proof_c).await?;
    match stream.read_u8().await {
        Ok(ACCEPTED) => Ok(()),
        Ok(_) => Err(HandshakeError::Refused),
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Err(HandshakeError::Refused),
        Err(error) => Err(HandshakeError::Io(error)),
    }
}

/// Checks that the node at the other end of `stream`, as Raft id `to`,
/// holds the cluster secret before it is made a member: runs the handshake
/// as node `from` and verifies the node's proof. The node may then refuse
/// this one (it does not know `from` yet: it learns the members once
/// added), which is fine here: it proved itself before it refused. Within
/// [`HANDSHAKE_TIMEOUT`].
pub async fn prove_peer<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    key: &RaftKey,
    from: u64,
    to: u64,
) -> Result<(), HandshakeError> {
    match client(stream, key, from, to).await {
        Ok(()) | Err(HandshakeError::Refused) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Answers the handshake of an accepted connection for node `self_id`;
/// `is_known` says whether a Raft id is a peer this node talks to. Returns
/// the id the connection is bound to. Within [`HANDSHAKE_TIMEOUT`].
pub async fn server<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    key: &RaftKey,
    self_id: u64,
    is_known: impl Fn(u64) -> bool,
) -> Result<u64, HandshakeError> {
    tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        server_steps(stream, key, self_id, is_known),
    )
    .await
    .map_err(|_| HandshakeError::Timeout(HANDSHAKE_TIMEOUT))?
}

async fn server_steps<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    key: &RaftKey,
    self_id: u64,
    is_known: impl Fn(u64) -> bool,
) -> Result<u64, HandshakeError> {
    let mut bytes = [0u8; HELLO_LEN];
    // The magic first: a connection in another format (a frame, a
    // snapshot stream, an HTTP request) is refused on its first four
    // bytes instead of after the timeout.
    stream
        .read_exact(&mut bytes[..4])
        .await
        .map_err(HandshakeError::Io)?;
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if magic != HELLO_MAGIC {
        return Err(HandshakeError::NotAHandshake(magic));
    }
    stream
        .read_exact(&mut bytes[4..])
        .await
        .map_err(HandshakeError::Io)?;
    let hello = Hello::decode(&bytes)?;
    if hello.to != self_id {
        return Err(HandshakeError::Misaddressed { to: hello.to });
    }
    let nonce_s: [u8; NONCE_LEN] = rand::random();
    let proof_s = key
        .proof(Role::Server, hello.from, hello.to, &hello.nonce, &nonce_s)
        .finalize()
        .into_bytes();
    let mut challenge = [0u8; CHALLENGE_LEN];
    challenge[..NONCE_LEN].copy_from_slice(&nonce_s);
    challenge[NONCE_LEN..].copy_from_slice(&proof_s);
    send(stream, &challenge).await?;
    let mut proof_c = [0u8; PROOF_LEN];
    stream
        .read_exact(&mut proof_c)
        .await
        .map_err(HandshakeError::Io)?;
    key.proof(Role::Client, hello.from, hello.to, &hello.nonce, &nonce_s)
        .verify_slice(&proof_c)
        .map_err(|_| HandshakeError::BadProof)?;
    if !is_known(hello.from) {
        return Err(HandshakeError::UnknownPeer(hello.from));
    }
    send(stream, &[ACCEPTED]).await?;
    Ok(hello.from)
}

#[cfg(test)]
mod tests {
    use tokio::io::duplex;

    use super::*;

    fn key(secret: &[u8]) -> RaftKey {
        RaftKey::from_secret(secret)
    }

    /// Runs both sides over an in-memory pipe.
    async fn pair(
        client_key: &RaftKey,
        server_key: &RaftKey,
        from: u64,
        to: u64,
        server_id: u64,
        known: &[u64],
    ) -> (Result<(), HandshakeError>, Result<u64, HandshakeError>) {
        let (mut a, mut b) = duplex(1024);
        let known = known.to_vec();
        let server = async move {
            let result = server(&mut b, server_key, server_id, |id| known.contains(&id)).await;
            // Closing tells a refused client at once.
            drop(b);
            result
        };
        let client = async move {
            let result = client(&mut a, client_key, from, to).await;
            // As a connection closes when its side gives up.
            drop(a);
            result
        };
        tokio::join!(client, server)
    }

    #[tokio::test]
    async fn same_secret_binds_the_client_id() {
        let k = key(b"secret");
        let (c, s) = pair(&k, &k, 2, 1, 1, &[2, 3]).await;
        assert!(c.is_ok(), "{c:?}");
        assert_eq!(s.expect("server"), 2);
    }

    #[tokio::test]
    async fn different_secrets_fail_on_both_sides() {
        let (c, s) = pair(&key(b"secret"), &key(b"other"), 2, 1, 1, &[2]).await;
        assert!(matches!(c, Err(HandshakeError::BadProof)), "{c:?}");
        // The client stops at the server's proof and closes.
        assert!(matches!(s, Err(HandshakeError::Io(_))), "{s:?}");
    }

    #[tokio::test]
    async fn unknown_or_misaddressed_peers_are_refused() {
        let k = key(b"secret");
        let (c, s) = pair(&k, &k, 9, 1, 1, &[2]).await;
        assert!(matches!(c, Err(HandshakeError::Refused)), "{c:?}");
        assert!(matches!(s, Err(HandshakeError::UnknownPeer(9))), "{s:?}");
        let (c, s) = pair(&k, &k, 2, 5, 1, &[2]).await;
        assert!(c.is_err());
        assert!(
            matches!(s, Err(HandshakeError::Misaddressed { to: 5 })),
            "{s:?}"
        );
    }

    #[tokio::test]
    async fn a_proof_is_bound_to_role_ids_and_nonces() {
        let k = key(b"secret");
        let (nc, ns) = ([1u8; 32], [2u8; 32]);
        let tag = |role, from, to, nc: &[u8], ns: &[u8]| {
            k.proof(role, from, to, nc, ns).finalize().into_bytes()
        };
        let base = tag(Role::Client, 2, 1, &nc, &ns);
        assert_eq!(base, tag(Role::Client, 2, 1, &nc, &ns));
        assert_ne!(base, tag(Role::Server, 2, 1, &nc, &ns));
        assert_ne!(base, tag(Role::Client, 3, 1, &nc, &ns));
        assert_ne!(base, tag(Role::Client, 2, 3, &nc, &ns));
        assert_ne!(base, tag(Role::Client, 2, 1, &ns, &ns));
        assert_ne!(base, tag(Role::Client, 2, 1, &nc, &nc));
        assert_ne!(
            base,
            key(b"other")
                .proof(Role::Client, 2, 1, &nc, &ns)
                .finalize()
                .into_bytes()
        );
    }

    #[test]
    fn hello_round_trips_and_refuses_anything_else() {
        let hello = Hello {
            from: 2,
            to: u64::MAX,
            nonce: [7; NONCE_LEN],
        };
        let bytes = hello.encode();
        assert_eq!(Hello::decode(&bytes).expect("decode"), hello);
        for len in 0..bytes.len() {
            assert!(matches!(
                Hello::decode(&bytes[..len]),
                Err(HandshakeError::Length(n)) if n == len
            ));
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(matches!(
            Hello::decode(&longer),
            Err(HandshakeError::Length(_))
        ));
        let mut version = bytes;
        version[4] = 2;
        assert!(matches!(
            Hello::decode(&version),
            Err(HandshakeError::Version(2))
        ));
        let mut magic = bytes;
        magic[0] = 0;
        assert!(matches!(
            Hello::decode(&magic),
            Err(HandshakeError::NotAHandshake(_))
        ));
    }

    #[test]
    fn hello_decoder_is_total_on_arbitrary_bytes() {
        // A bound test in the manner of a fuzz target: any input of any
        // length decodes or is refused, never panics, and whatever decodes
        // re-encodes to the same bytes.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000u64 {
            let len = (next() % (2 * HELLO_LEN as u64)) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 && len >= 5 {
                // Half the inputs pass the magic and version checks.
                bytes[..4].copy_from_slice(&HELLO_MAGIC.to_be_bytes());
                bytes[4] = VERSION;
            }
            if let Ok(hello) = Hello::decode(&bytes) {
                assert_eq!(hello.encode().as_slice(), bytes.as_slice());
            }
        }
    }

    #[tokio::test]
    async fn server_refuses_a_frame_on_its_first_four_bytes() {
        let k = key(b"secret");
        let (mut a, mut b) = duplex(1024);
        // A frame of the format without a handshake; the pipe stays open,
        // so only the magic check can end the handshake before its timeout.
        a.write_all(&[0, 0, 0, 12, 0, 0, 0, 1])
            .await
            .expect("write");
        let started = tokio::time::Instant::now();
        let result = server(&mut b, &k, 1, |_| true).await;
        assert!(
            matches!(result, Err(HandshakeError::NotAHandshake(12))),
            "{result:?}"
        );
        assert!(started.elapsed() < HANDSHAKE_TIMEOUT);
    }

    #[tokio::test]
    async fn a_silent_or_slow_peer_times_out_on_both_sides() {
        let k = key(b"secret");
        // The server gets half a hello, then nothing; the client gets no
        // answer at all. Both give up at the timeout, not later.
        let (mut a, mut b) = duplex(1024);
        let (mut c, _silent) = duplex(1024);
        let started = tokio::time::Instant::now();
        let half = Hello {
            from: 2,
            to: 1,
            nonce: [0; 32],
        }
        .encode();
        a.write_all(&half[..20]).await.expect("write");
        let (server_result, client_result) =
            tokio::join!(server(&mut b, &k, 1, |_| true), client(&mut c, &k, 2, 1));
        assert!(
            matches!(server_result, Err(HandshakeError::Timeout(_))),
            "{server_result:?}"
        );
        assert!(
            matches!(client_result, Err(HandshakeError::Timeout(_))),
            "{client_result:?}"
        );
        assert!(started.elapsed() < HANDSHAKE_TIMEOUT * 2);
    }

    /// A listener answering every connection as node 4 would, holding
    /// `secret` and knowing no peer yet.
    async fn joiner(secret: &'static [u8]) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = server(&mut stream, &key(secret), 4, |_| false).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_joiner_proves_the_secret_before_it_knows_anyone() {
        let ours = key(b"secret");
        let prove = |addr, to| {
            let ours = ours.clone();
            async move {
                let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                prove_peer(&mut stream, &ours, 1, to).await
            }
        };
        assert!(prove(joiner(b"secret").await, 4).await.is_ok());
        let other = prove(joiner(b"other").await, 4).await;
        assert!(matches!(other, Err(HandshakeError::BadProof)), "{other:?}");
        // Asked under another id, the joiner does not answer.
        let wrong_id = prove(joiner(b"secret").await, 5).await;
        assert!(wrong_id.is_err(), "{wrong_id:?}");
    }
}
