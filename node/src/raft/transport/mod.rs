//! The node-to-node Raft transport: raft-rs messages over TCP (the
//! `--raft ADDR` port).
//!
//! # Shape
//!
//! The Raft ready loop runs on its own std thread and must never wait on
//! the network, so [`RaftTransport::send`] only pushes messages onto a
//! bounded in-memory queue per peer and wakes that peer's tokio task. The
//! task owns the peer's single outgoing frame connection: it connects
//! lazily, drains everything queued into as few frames as possible, and
//! writes them. While the peer is unreachable the task retries with
//! exponential backoff (50 ms doubling to 2 s, reset on a successful
//! connect) and the queue keeps filling up to its bound, beyond which the
//! oldest messages are dropped: Raft retransmits whatever matters, and old
//! heartbeats and appends are the least useful ones.
//!
//! Incoming connections are accepted without limit (an unauthenticated one
//! lives at most the handshake's few seconds); each (but snapshot streams,
//! below) has a read loop that decodes frames and hands every
//! message to the Raft thread through a std `mpsc::Sender` (the Raft thread
//! receives from a std channel). A connection that sends a malformed or
//! oversized frame is closed with a warning; the node goes on serving every
//! other connection.
//!
//! # Authentication
//!
//! With a cluster secret (`--secret-file`), every connection, frames and
//! snapshot streams alike, begins with the handshake of [`handshake`]: the
//! two nodes prove to each other that they hold the secret (HMAC-SHA256
//! with the key `protocol::keys::derive(secret, KeyUse::Raft)`, over both
//! ids and a nonce from each side) and the connection is bound to the id
//! of the node that opened it, which must be a known peer (one added with
//! [`RaftTransport::add_peer`] and not removed since). The sending side
//! treats a failed handshake like a failed connect (backoff, and Raft hears
//! the peer is unreachable); the receiving side closes the connection with
//! a warning, counted in [`TransportStats::handshakes_refused`]. A
//! connection that skips the handshake (the format of a node without a
//! secret) is refused on its first four bytes.
//!
//! After the handshake every message must be `from` the bound id and `to`
//! this node. A message from another id, or from a peer removed since the
//! handshake, is dropped with a warning and counted
//! ([`TransportStats::dropped_wrong_sender`]); the connection stays open,
//! as for a misaddressed message: only a holder of the secret gets that
//! far, and closing would only cost the peer its messages in flight. A
//! snapshot stream whose message is from another id is refused whole.
//!
//! With certificates (`--raft-tls-*`, see [`tls`]) every connection is
//! mutual TLS first, both ends presenting a certificate of the cluster's
//! CA, and the handshake (when there is a secret) runs inside it. A failed
//! TLS handshake is counted and treated like a failed handshake of the
//! secret, on both sides.
//!
//! Without a secret (`--unsigned`) there is no handshake, nothing is bound
//! and only `to` is checked: anyone who reaches the port can step this
//! node's Raft (force elections, install a snapshot). That mode is for test
//! setups and trusted networks only.
//!
//! Memory: the queue bound is a message count, not bytes. That is enough
//! because Raft's own flow control (`max_inflight_msgs` times
//! `max_size_per_msg`) bounds the bytes of log entries in flight to one
//! peer; the rest are small heartbeats and votes.
//!
//! # Wire format
//!
//! With certificates, everything below travels inside TLS. With a secret,
//! a connection begins with the handshake (hello, challenge, proof,
//! accept; fixed sizes, see [`handshake`]); what follows is the same as
//! without one. A frame connection then carries frames and a snapshot
//! stream its magic, message and file, below.
//!
//! A frame is a `u32` big-endian payload length followed by the payload.
//! The payload is a batch: a `u32` big-endian message count, then for each
//! message a `u32` big-endian length and the protobuf bytes of a
//! `raft::eraftpb::Message`. Frames over [`MAX_FRAME_BYTES`] are refused on
//! both sides. Past the handshake, the receiving side never writes anything
//! back on a frame connection: Raft's own responses travel on the receiver's outgoing
//! connection.
//!
//! # Snapshots travel out of band
//!
//! A `MsgSnapshot` carries only a [`SnapshotDescriptor`] (index, term and
//! size of a dump file); the state itself is the leader's file
//! `SnapshotDir::file(Side::Outgoing, index, term)`, which can be gigabytes.
//! Putting it in a frame would need it whole in memory on both sides, would
//! hit [`MAX_FRAME_BYTES`], and would hold up every heartbeat and append
//! queued behind it on the peer's one connection. So the peer's task never
//! frames a snapshot: it hands it to a separate task (at most one per peer;
//! a second one meanwhile is refused and reported) that opens a connection
//! of its own and streams the file:
//!
//! ```text
//! u32 SNAPSHOT_STREAM_MAGIC                   over MAX_FRAME_BYTES
//! u32 length, protobuf Message                the MsgSnapshot, at most 1 MiB
//! { u32 length (1..=1 MiB), file bytes }*     the dump file, in order
//! u32 0                                       end of the file
//!                       <- u8 ACK or NACK     receiver's verdict
//! ```
//!
//! Integers are big-endian, as in frames. The receiver tells the two kinds
//! of connection apart by their first four bytes: the magic
//! ([`SNAPSHOT_STREAM_MAGIC`]) is not a length any frame may have. It
//! checks that the message is a snapshot for this node whose data is a
//! descriptor, writes the chunks to the partial file
//! (`SnapshotDir::partial(Side::Incoming, ..)`) while it computes the
//! dump's CRC-32, and refuses a stream longer than the descriptor says. Only when the size and the checksum (the
//! dump's last four bytes) match does it sync and rename the file to its
//! final name, acknowledge, and hand the message to the Raft thread, so
//! Raft never sees a snapshot whose file is not whole on disk. A refused
//! stream leaves no file behind and nothing reaches Raft. One stream at a
//! time is taken per sending node and per snapshot, and a few at most in
//! all, so a misbehaving peer cannot pile up partial files. Each side holds
//! one chunk buffer whatever the file size; reads and writes time out per
//! chunk, not per transfer, so a slow but live transfer of a large file is
//! not cut. Any failure on the sending side (file missing, connect,
//! timeout, refusal) is logged and reported like a dropped snapshot, below,
//! so raft-rs sends it again later.
//!
//! [`SnapshotDescriptor`]: crate::raft::snapshot::descriptor::SnapshotDescriptor
//!
//! # Telling Raft about lost messages
//!
//! Raft needs to hear about peers it cannot reach (`report_unreachable`)
//! and about snapshots that never arrived (`report_snapshot(.., Failure)`),
//! or a follower's progress can stay paused. The transport records both
//! and the ready loop collects them with
//! [`RaftTransport::take_send_failures`].

use std::{
    collections::{BTreeSet, HashMap, HashSet, VecDeque},
    fmt, io,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc, Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use anyhow::Context as _;
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    runtime::Handle,
    sync::Notify,
    task::{JoinHandle, JoinSet},
};
use tracing::{debug, info, warn};

use super::{faults::Faults, snapshot::files::SnapshotDir};

pub mod handshake;
mod snapshot_stream;
pub mod tls;

pub use handshake::{HandshakeError, RaftKey};
use snapshot_stream::{IncomingStreams, OutgoingSnapshot};
pub use snapshot_stream::{
    SnapshotReceiveError, SnapshotSendError, MAX_SNAPSHOT_MESSAGE_BYTES, SNAPSHOT_CHUNK_BYTES,
    SNAPSHOT_STREAM_MAGIC,
};
pub use tls::{RaftStream, RaftTls, TlsError};

/// Largest frame payload accepted or sent. A peer announcing more is
/// misbehaving (or is not a cronmesh peer at all) and its connection is
/// closed before anything is allocated. A single message that cannot fit is
/// dropped by the sender; snapshots, the only messages that could grow
/// this large, never go into frames (see the module documentation).
pub const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;

/// Once a frame being built passes this many bytes, the next message starts
/// a new frame: it keeps one frame's buffer, and the latency of the first
/// message in it, reasonable while a backlog of appends is flushed.
const SOFT_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// Most messages queued for one peer. Beyond it the oldest are dropped
/// (and counted): Raft retransmits, and a peer that is this far behind
/// gains nothing from stale heartbeats.
pub const MAX_QUEUED_PER_PEER: usize = 4096;

/// First wait after a failed connect; doubles after each further failure.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
/// Longest wait between two connect attempts to the same peer.
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// A connect that takes longer is a failure (an unroutable address would
/// otherwise hang for the kernel's SYN timeout, minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A write that takes longer means the peer stopped reading: the connection
/// is dropped and re-established rather than wedging the peer's task.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Least time between two warnings about refused handshakes; see
/// `Shared::last_refusal_warning`.
const REFUSAL_WARNING_EVERY: Duration = Duration::from_secs(1);
/// Pause after a failed `accept` (e.g. out of file descriptors), so the
/// accept loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The Raft transport of one node. Cheap to clone (an `Arc` inside); all
/// clones drive the same listener and connections. Dropping the last clone
/// stops every task, as [`RaftTransport::shutdown`] does.
#[derive(Clone)]
pub struct RaftTransport {
    /// Shared state; the tokio tasks hold only the parts they need, never
    /// this, so dropping the last handle really ends the transport.
    inner: Arc<Inner>,
}

/// What authenticates the connections of the Raft port: the cluster
/// secret's handshake, mutual TLS, both (TLS outside, the handshake inside
/// it) or, on a trusted network only, neither.
#[derive(Clone, Default)]
pub struct RaftSecurity {
    /// The handshake key derived from the cluster secret: every connection
    /// is bound to a member's id.
    pub key: Option<RaftKey>,
    /// The node's certificate and the cluster's CA: every connection is
    /// TLS, both ends presenting a certificate the CA signed.
    pub tls: Option<RaftTls>,
}

impl RaftSecurity {
    /// The handshake alone, as a node with a secret and no certificates.
    pub fn secret(key: Option<RaftKey>) -> Self {
        Self { key, tls: None }
    }
}

impl fmt::Debug for RaftSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaftSecurity")
            .field("handshake", &self.key.is_some())
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Counters of what the transport did, for tests and metrics. Every field
/// only grows over the transport's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Batch frames written to peers; with batching, far fewer than
    /// `messages_sent` under load.
    pub frames_sent: u64,
    /// Messages written to peers (inside `frames_sent`; snapshots are
    /// counted in `snapshots_sent` instead).
    pub messages_sent: u64,
    /// Oldest messages dropped because a peer's queue was full (the peer
    /// was unreachable or slower than the Raft thread).
    pub dropped_queue_full: u64,
    /// Messages dropped by injected [`Faults`] (partition, isolation, drop
    /// rate). Always 0 with `Faults::default()`.
    pub dropped_faults: u64,
    /// Messages addressed to a node id that is not a known peer (never
    /// added, or removed); raft-rs can address a peer just removed by a
    /// configuration change.
    pub dropped_unknown_peer: u64,
    /// Messages that could not be encoded, or that alone would exceed
    /// [`MAX_FRAME_BYTES`].
    pub dropped_unsendable: u64,
    /// Messages lost because the connection broke while they were being
    /// written.
    pub dropped_send_error: u64,
    /// Outgoing connections established after a failed attempt or a lost
    /// connection to the same peer.
    pub reconnects: u64,
    /// Failed outgoing connect attempts (each followed by a backoff).
    pub connect_failures: u64,
    /// Batch frames received and decoded from peers.
    pub frames_received: u64,
    /// Messages received in frames and handed to the Raft thread
    /// (snapshots are counted in `snapshots_received` instead).
    pub messages_received: u64,
    /// Incoming connections closed for a malformed or oversized frame.
    pub bad_frames: u64,
    /// Received messages whose `to` is not this node, dropped: a peer
    /// with a wrong address book must not make this node act for another.
    pub dropped_misaddressed: u64,
    /// Snapshot streams the peer acknowledged: the file arrived whole,
    /// checked and on disk, and the peer handed the message to Raft.
    pub snapshots_sent: u64,
    /// Snapshots this node failed to stream (file missing or of the wrong
    /// size, connect error, timeout, connection lost, refused by the peer),
    /// plus snapshots dropped because one was still streaming to the same
    /// peer. Each was reported to Raft through [`SendFailures`]. Snapshots
    /// dropped before their stream could start (unknown peer, full queue,
    /// injected faults) are counted with those drops instead.
    pub snapshot_send_failures: u64,
    /// File bytes written into snapshot streams, as they go (so a large
    /// transfer shows progress), including streams that failed later.
    pub snapshot_bytes_sent: u64,
    /// Snapshot streams received whole: the file was checked, synced and
    /// renamed to its final name, and the message handed to Raft.
    pub snapshots_received: u64,
    /// Incoming snapshot streams refused or lost (bad header, not a
    /// snapshot for this node, too long, wrong size or checksum, a stream
    /// for the same sender or snapshot already running, timeout, disk
    /// error); none left a file behind or reached Raft.
    pub snapshot_receive_failures: u64,
    /// Incoming connections (frame or snapshot) closed because their
    /// handshake, TLS or the secret's, failed: no handshake at all (a peer without the secret, or
    /// not a cronmesh peer), a wrong proof (another cluster's secret), an
    /// unknown or misaddressed id, a certificate the cluster's CA did not
    /// sign, garbage, or a timeout. Always 0 without a secret or TLS.
    pub handshakes_refused: u64,
    /// Outgoing connections (frame or snapshot) whose handshake, TLS or the
    /// secret's, failed: the peer's proof or certificate was wrong, it
    /// refused this node, or it did not answer.
    pub handshake_failures: u64,
    /// Received messages whose `from` is not the id their connection was
    /// bound to by its handshake, or whose bound id is no longer a peer;
    /// dropped.
    pub dropped_wrong_sender: u64,
}

/// Peers the Raft thread should tell raft-rs about, collected since the
/// last [`RaftTransport::take_send_failures`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendFailures {
    /// Peers that could not be reached or whose connection broke: call
    /// `RawNode::report_unreachable(id)` for each, so the leader goes back
    /// to probing them instead of streaming appends into the void.
    pub unreachable: Vec<u64>,
    /// Peers to which a `MsgSnapshot` was dropped or whose snapshot stream
    /// failed: call `RawNode::report_snapshot(id, SnapshotStatus::Failure)`
    /// for each, or the leader waits for that snapshot forever.
    pub snapshot_failed: Vec<u64>,
    /// Peers that acknowledged a whole snapshot: call
    /// `RawNode::report_snapshot(id, SnapshotStatus::Finish)` for each, so
    /// the leader probes them again. A follower that dies before it
    /// installs the snapshot then gets another one; left waiting for the
    /// follower's answer, the leader would never send it anything again.
    pub snapshot_finished: Vec<u64>,
}

impl SendFailures {
    /// True when there is nothing to report (the common case, checked on
    /// every ready loop iteration).
    pub fn is_empty(&self) -> bool {
        self.unreachable.is_empty()
            && self.snapshot_failed.is_empty()
            && self.snapshot_finished.is_empty()
    }
}

/// What a [`RaftTransport`] handle owns.
struct Inner {
    /// This node's Raft id: the `from` side of fault checks and the only
    /// `to` accepted from peers.
    self_id: u64,
    /// The address actually bound (resolves port 0).
    local_addr: SocketAddr,
    /// The runtime the transport was started on, so `add_peer` can spawn
    /// tasks when called from a plain thread.
    runtime: Handle,
    /// What the tasks share with the handles.
    shared: Arc<Shared>,
    /// Known peers with their queue and sending task.
    peers: Mutex<HashMap<u64, PeerEntry>>,
    /// The accept loop (it owns the listener and the read loops); `None`
    /// once shut down.
    accept_task: Mutex<Option<JoinHandle<()>>>,
    /// Set by `shutdown`: later `add_peer` calls are ignored.
    closed: AtomicBool,
}

/// State shared between the handles and the tokio tasks.
struct Shared {
    /// See [`Inner::self_id`].
    self_id: u64,
    /// Injected faults, consulted by the sending tasks.
    faults: Faults,
    /// Where snapshot files are read from when sent and written to when
    /// received.
    snapshots: SnapshotDir,
    /// The incoming snapshot streams in progress, to refuse a second one
    /// from the same sender or for the same snapshot.
    incoming_snapshots: Mutex<IncomingStreams>,
    /// The counters behind [`TransportStats`].
    counters: Counters,
    /// Failures waiting for `take_send_failures`.
    failures: Mutex<FailureLog>,
    /// The key of the handshake, when the node has a cluster secret. With
    /// it every connection, both ways, starts with the handshake and is
    /// bound to a peer's id; without it (`--unsigned`) nothing is checked
    /// but `to`, which is only fit for a trusted network.
    auth: Option<RaftKey>,
    /// The node's TLS identity: with it every connection, both ways, is
    /// mutual TLS (the handshake of `auth` then runs inside it).
    tls: Option<RaftTls>,
    /// The ids of the known peers (those of `Inner::peers`), which the
    /// receiving side reads: a connection is bound only to one of them, and
    /// its messages are dropped once its peer is removed.
    known_peers: Mutex<HashSet<u64>>,
    /// When the last refused handshake was logged as a warning: anyone who
    /// reaches the port can make refusals, so at most one a
    /// [`REFUSAL_WARNING_EVERY`] is a warning, the rest go to debug (all
    /// are counted).
    last_refusal_warning: Mutex<Option<std::time::Instant>>,
}

/// One known peer: its queue and the task draining it.
struct PeerEntry {
    /// Queue and address, shared with the task.
    link: Arc<PeerLink>,
    /// The sending task; aborted when the peer is removed or the transport
    /// shuts down.
    task: JoinHandle<()>,
}

/// What `send` and a peer's sending task share.
struct PeerLink {
    /// The peer's Raft id.
    id: u64,
    /// Where to connect; can change through `add_peer`.
    addr: Mutex<SocketAddr>,
    /// Set when `addr` changed, so the task drops its connection to the old
    /// address before the next write.
    addr_changed: AtomicBool,
    /// Messages waiting to be written, oldest first.
    queue: Mutex<PeerQueue>,
    /// Wakes the task when messages are queued.
    notify: Notify,
}

/// The bounded queue of one peer.
#[derive(Default)]
struct PeerQueue {
    /// Oldest first.
    messages: VecDeque<Message>,
    /// Dropped for the bound since the task last drained the queue; used to
    /// log one warning per overflow episode instead of one per message.
    dropped_since_drain: u64,
}

/// Atomic counters; see [`TransportStats`] for the meaning of each.
#[derive(Default)]
struct Counters {
    frames_sent: AtomicU64,
    messages_sent: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_faults: AtomicU64,
    dropped_unknown_peer: AtomicU64,
    dropped_unsendable: AtomicU64,
    dropped_send_error: AtomicU64,
    reconnects: AtomicU64,
    connect_failures: AtomicU64,
    frames_received: AtomicU64,
    messages_received: AtomicU64,
    bad_frames: AtomicU64,
    dropped_misaddressed: AtomicU64,
    snapshots_sent: AtomicU64,
    snapshot_send_failures: AtomicU64,
    snapshot_bytes_sent: AtomicU64,
    snapshots_received: AtomicU64,
    snapshot_receive_failures: AtomicU64,
    handshakes_refused: AtomicU64,
    handshake_failures: AtomicU64,
    dropped_wrong_sender: AtomicU64,
}

/// Failures recorded for the Raft thread; sets, because reporting a peer
/// once per ready iteration is enough.
#[derive(Default)]
struct FailureLog {
    unreachable: BTreeSet<u64>,
    snapshot_failed: BTreeSet<u64>,
    snapshot_finished: BTreeSet<u64>,
}

/// Why an incoming frame was refused. Public, with [`decode_batch`] and
/// [`read_frame`], so the fuzz targets reach the decoder peers face.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds the 64 MiB limit")]
    TooLarge(usize),
    #[error("truncated batch: {0}")]
    Truncated(&'static str),
    #[error("batch announces {count} messages but has only {remaining} bytes left")]
    CountTooLarge { count: usize, remaining: usize },
    #[error("message {index} is not a valid raft message: {source}")]
    Protobuf {
        index: usize,
        source: protobuf::ProtobufError,
    },
    #[error("{0} bytes after the last message")]
    TrailingBytes(usize),
}

/// One encoded frame, ready to write.
pub struct Frame {
    /// Length prefix included.
    pub bytes: Vec<u8>,
    /// How many messages it carries.
    pub messages: u64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Locks a mutex, ignoring poisoning: every value behind these mutexes is
/// left consistent at each statement, and a panic elsewhere must not stop
/// the node from talking to its peers.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn is_snapshot(message: &Message) -> bool {
    message.get_msg_type() == MessageType::MsgSnapshot
}

impl RaftTransport {
    /// Binds `listen` (port 0 picks a free port, see
    /// [`RaftTransport::local_addr`]), starts accepting peers, and starts one
    /// sending task per entry of `peers` (an entry for `self_id` itself is
    /// ignored, so the whole cluster's address list can be passed). Every
    /// message received from any peer is handed to `inbound`, a std channel
    /// because the Raft thread is a plain thread. `faults` are applied on
    /// this node's sending side; pass `Faults::default()` in production.
    /// `security` says what authenticates every connection: the handshake
    /// of the key derived from the cluster secret, mutual TLS, both, or
    /// (on a trusted network only) nothing; see the module documentation.
    ///
    /// The tasks run on the tokio runtime this is awaited on (its `Handle`
    /// is kept, so later [`RaftTransport::add_peer`] calls from any thread
    /// spawn there too); awaiting it outside a tokio runtime is an error.
    pub async fn start(
        self_id: u64,
        listen: SocketAddr,
        peers: HashMap<u64, SocketAddr>,
        inbound: mpsc::Sender<Message>,
        faults: Faults,
        snapshots: SnapshotDir,
        security: RaftSecurity,
    ) -> anyhow::Result<Self> {
        let runtime = Handle::try_current()
            .context("the raft transport must be started inside a tokio runtime")?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding the raft listener on {listen}"))?;
        let local_addr = listener
            .local_addr()
            .context("reading the raft listener's bound address")?;
        let shared = Arc::new(Shared {
            self_id,
            faults,
            snapshots,
            incoming_snapshots: Mutex::new(IncomingStreams::default()),
            counters: Counters::default(),
            failures: Mutex::new(FailureLog::default()),
            auth: security.key,
            tls: security.tls,
            known_peers: Mutex::new(HashSet::new()),
            last_refusal_warning: Mutex::new(None),
        });
        let accept_task = runtime.spawn(accept_loop(listener, Arc::clone(&shared), inbound));
        let transport = RaftTransport {
            inner: Arc::new(Inner {
                self_id,
                local_addr,
                runtime,
                shared,
                peers: Mutex::new(HashMap::new()),
                accept_task: Mutex::new(Some(accept_task)),
                closed: AtomicBool::new(false),
            }),
        };
        for (id, addr) in peers {
            transport.add_peer(id, addr);
        }
        info!(node_id = self_id, addr = %local_addr, "raft transport listening");
        Ok(transport)
    }

    /// The address the listener is bound to; with port 0 in `listen`, the
    /// port the OS picked (what other nodes must be told).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Checks, before node `to` at `addr` is made a member, that it passes
    /// what this node's connections require: TLS with a certificate of the
    /// cluster's CA naming `addr`'s IP, and proof of the cluster secret.
    /// The node may then refuse this one (it learns the members only once
    /// added), which is fine: it proved itself first. Always `Ok` for a
    /// node with neither a secret nor certificates.
    pub async fn prove_peer(&self, addr: SocketAddr, to: u64) -> Result<(), ConnectError> {
        let shared = &self.inner.shared;
        if shared.auth.is_none() && shared.tls.is_none() {
            return Ok(());
        }
        let mut stream = secure(addr, shared).await?;
        match &shared.auth {
            Some(key) => handshake::prove_peer(&mut stream, key, shared.self_id, to)
                .await
                .map_err(ConnectError::Handshake),
            None => Ok(()),
        }
    }

    /// Queues each message for its `to` peer and wakes that peer's task,
    /// which writes everything queued as one batch frame. Never blocks on
    /// the network (only short mutex holds), so the Raft thread calls it
    /// directly. Messages for unknown peers are dropped with a debug log; a
    /// queue over [`MAX_QUEUED_PER_PEER`] loses its oldest messages. Both
    /// are counted in [`RaftTransport::stats`].
    pub fn send(&self, messages: Vec<Message>) {
        if messages.is_empty() {
            return;
        }
        // Group per peer first, keeping each peer's order, so a peer's task
        // is woken once and finds the whole lot queued.
        let mut per_peer: Vec<(u64, Vec<Message>)> = Vec::new();
        for message in messages {
            let to = message.to;
            match per_peer.iter_mut().find(|(id, _)| *id == to) {
                Some((_, list)) => list.push(message),
                None => per_peer.push((to, vec![message])),
            }
        }
        let shared = &self.inner.shared;
        let peers = lock(&self.inner.peers);
        for (to, list) in per_peer {
            let Some(entry) = peers.get(&to) else {
                debug!(
                    node_id = self.inner.self_id,
                    peer = to,
                    messages = list.len(),
                    "dropping raft messages for an unknown peer"
                );
                if list.iter().any(is_snapshot) {
                    shared.snapshot_failed(to);
                }
                add(&shared.counters.dropped_unknown_peer, list.len() as u64);
                continue;
            };
            entry.link.push(list, shared);
        }
    }

    /// Adds a peer (or changes its address: the current connection is then
    /// replaced before the next write). Messages for it are queued from now
    /// on and sent once it is reachable. Ignored for this node's own id and
    /// after shutdown.
    pub fn add_peer(&self, id: u64, addr: SocketAddr) {
        if id == self.inner.self_id {
            debug!(node_id = id, "not adding this node as its own raft peer");
            return;
        }
        if self.inner.closed.load(Ordering::Acquire) {
            return;
        }
        let mut peers = lock(&self.inner.peers);
        lock(&self.inner.shared.known_peers).insert(id);
        if let Some(entry) = peers.get(&id) {
            let mut current = lock(&entry.link.addr);
            if *current != addr {
                info!(peer = id, old = %*current, new = %addr, "raft peer address changed");
                *current = addr;
                entry.link.addr_changed.store(true, Ordering::Release);
            }
            return;
        }
        let link = Arc::new(PeerLink {
            id,
            addr: Mutex::new(addr),
            addr_changed: AtomicBool::new(false),
            queue: Mutex::new(PeerQueue::default()),
            notify: Notify::new(),
        });
        let task = self
            .inner
            .runtime
            .spawn(run_peer(Arc::clone(&link), Arc::clone(&self.inner.shared)));
        debug!(peer = id, %addr, "raft peer added");
        peers.insert(id, PeerEntry { link, task });
    }

    /// Every peer's id and the address messages for it go to.
    pub fn peer_addrs(&self) -> Vec<(u64, SocketAddr)> {
        let peers = lock(&self.inner.peers);
        peers
            .iter()
            .map(|(id, entry)| (*id, *lock(&entry.link.addr)))
            .collect()
    }

    /// Forgets a peer: its task stops, its connection closes, and messages
    /// still queued for it are dropped (a removed member needs none).
    pub fn remove_peer(&self, id: u64) {
        let removed = lock(&self.inner.peers).remove(&id);
        lock(&self.inner.shared.known_peers).remove(&id);
        if let Some(entry) = removed {
            entry.task.abort();
            debug!(peer = id, "raft peer removed");
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TransportStats {
        let c = &self.inner.shared.counters;
        TransportStats {
            frames_sent: read(&c.frames_sent),
            messages_sent: read(&c.messages_sent),
            dropped_queue_full: read(&c.dropped_queue_full),
            dropped_faults: read(&c.dropped_faults),
            dropped_unknown_peer: read(&c.dropped_unknown_peer),
            dropped_unsendable: read(&c.dropped_unsendable),
            dropped_send_error: read(&c.dropped_send_error),
            reconnects: read(&c.reconnects),
            connect_failures: read(&c.connect_failures),
            frames_received: read(&c.frames_received),
            messages_received: read(&c.messages_received),
            bad_frames: read(&c.bad_frames),
            dropped_misaddressed: read(&c.dropped_misaddressed),
            snapshots_sent: read(&c.snapshots_sent),
            snapshot_send_failures: read(&c.snapshot_send_failures),
            snapshot_bytes_sent: read(&c.snapshot_bytes_sent),
            snapshots_received: read(&c.snapshots_received),
            snapshot_receive_failures: read(&c.snapshot_receive_failures),
            handshakes_refused: read(&c.handshakes_refused),
            handshake_failures: read(&c.handshake_failures),
            dropped_wrong_sender: read(&c.dropped_wrong_sender),
        }
    }

    /// Takes the peers to report to raft-rs since the last call (see
    /// [`SendFailures`]); cheap, meant for every ready loop iteration.
    pub fn take_send_failures(&self) -> SendFailures {
        let mut log = lock(&self.inner.shared.failures);
        SendFailures {
            unreachable: std::mem::take(&mut log.unreachable).into_iter().collect(),
            snapshot_failed: std::mem::take(&mut log.snapshot_failed)
                .into_iter()
                .collect(),
            snapshot_finished: std::mem::take(&mut log.snapshot_finished)
                .into_iter()
                .collect(),
        }
    }

    /// Stops accepting, closes every connection and stops every task;
    /// queued messages are dropped. When it returns the listening port is
    /// closed. Idempotent; `send` afterwards drops everything.
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let mut tasks: Vec<JoinHandle<()>> = lock(&self.inner.peers)
            .drain()
            .map(|(_, entry)| entry.task)
            .collect();
        tasks.extend(lock(&self.inner.accept_task).take());
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            // Aborted tasks end with a cancellation error; a panic in one
            // was already reported by the runtime. Either way it is over.
            let _ = task.await;
        }
        info!(node_id = self.inner.self_id, "raft transport stopped");
    }
}

#[cfg(test)]
impl RaftTransport {
    /// The snapshot directory, for tests that write outgoing files or look
    /// at received ones.
    pub(crate) fn snapshot_dir(&self) -> &SnapshotDir {
        &self.inner.shared.snapshots
    }
}

impl fmt::Debug for RaftTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaftTransport")
            .field("self_id", &self.inner.self_id)
            .field("local_addr", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: nobody can send or shut down any more,
        // so stop the tasks (they do not keep `Inner` alive themselves).
        let peers = self.peers.get_mut().unwrap_or_else(|p| p.into_inner());
        for (_, entry) in peers.drain() {
            entry.task.abort();
        }
        let accept = self
            .accept_task
            .get_mut()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(task) = accept.take() {
            task.abort();
        }
    }
}

impl Shared {
    fn is_known_peer(&self, id: u64) -> bool {
        lock(&self.known_peers).contains(&id)
    }

    /// Counts and logs an incoming connection whose TLS or handshake
    /// failed; it is then closed.
    fn refused(&self, remote: SocketAddr, error: &dyn std::error::Error) {
        add(&self.counters.handshakes_refused, 1);
        if self.may_warn_of_refusal() {
            warn!(%remote, %error, "raft handshake refused; closing the connection");
        } else {
            debug!(%remote, %error, "raft handshake refused; closing the connection");
        }
    }

    /// Whether a refused handshake may be logged as a warning now.
    fn may_warn_of_refusal(&self) -> bool {
        let now = std::time::Instant::now();
        let mut last = lock(&self.last_refusal_warning);
        if last.is_some_and(|at| now.duration_since(at) < REFUSAL_WARNING_EVERY) {
            return false;
        }
        *last = Some(now);
        true
    }

    fn unreachable(&self, peer: u64) {
        lock(&self.failures).unreachable.insert(peer);
    }

    fn snapshot_failed(&self, peer: u64) {
        lock(&self.failures).snapshot_failed.insert(peer);
    }

    fn snapshot_finished(&self, peer: u64) {
        lock(&self.failures).snapshot_finished.insert(peer);
    }
}

impl PeerLink {
    fn addr(&self) -> SocketAddr {
        *lock(&self.addr)
    }

    /// Appends `messages`, enforces the bound by dropping the oldest, and
    /// wakes the task.
    fn push(&self, messages: Vec<Message>, shared: &Shared) {
        {
            let mut queue = lock(&self.queue);
            queue.messages.extend(messages);
            let excess = queue.messages.len().saturating_sub(MAX_QUEUED_PER_PEER);
            if excess > 0 {
                if queue.dropped_since_drain == 0 {
                    warn!(
                        peer = self.id,
                        bound = MAX_QUEUED_PER_PEER,
                        "raft send queue full; dropping the oldest messages"
                    );
                }
                let mut lost_snapshot = false;
                for dropped in queue.messages.drain(..excess) {
                    lost_snapshot |= is_snapshot(&dropped);
                }
                queue.dropped_since_drain += excess as u64;
                add(&shared.counters.dropped_queue_full, excess as u64);
                if lost_snapshot {
                    shared.snapshot_failed(self.id);
                }
            }
        }
        self.notify.notify_one();
    }

    /// Waits until at least one message is queued.
    async fn wait_for_messages(&self) {
        loop {
            let empty = lock(&self.queue).messages.is_empty();
            if !empty {
                return;
            }
            // `notify_one` stores a permit when nobody waits, so a push
            // between the check above and this await is not missed.
            self.notify.notified().await;
        }
    }

    /// Takes everything queued.
    fn take_queued(&self) -> Vec<Message> {
        let mut queue = lock(&self.queue);
        if queue.dropped_since_drain > 0 {
            info!(
                peer = self.id,
                dropped = queue.dropped_since_drain,
                "raft send queue drained after dropping messages"
            );
            queue.dropped_since_drain = 0;
        }
        queue.messages.drain(..).collect()
    }
}

/// The sending task of one peer: waits for messages, makes sure a
/// connection exists, then drains and writes the queue batch by batch,
/// starting a snapshot stream for each snapshot instead of framing it.
/// Runs until aborted (peer removed, shutdown, or last handle dropped),
/// which also aborts its snapshot stream.
async fn run_peer(link: Arc<PeerLink>, shared: Arc<Shared>) {
    let peer = link.id;
    let counters = &shared.counters;
    let mut conn: Option<RaftStream> = None;
    // The stream started for the last snapshot; owned here so that it ends
    // with this task.
    let mut snapshot_stream: Option<OutgoingSnapshot> = None;
    let mut backoff = BACKOFF_MIN;
    // Whether a connect failed or a connection broke since the last
    // successful connect: the next success then counts as a reconnect.
    let mut lost = false;
    loop {
        link.wait_for_messages().await;

        if let Some(stream) = &conn {
            if link.addr_changed.swap(false, Ordering::AcqRel) {
                conn = None;
            } else if !connection_alive(stream) {
                debug!(peer, "raft connection closed by the peer; reconnecting");
                conn = None;
                lost = true;
            }
        }
        if conn.is_none() {
            conn = Some(connect(&link, &shared, &mut backoff, &mut lost).await);
        }
        let Some(stream) = conn.as_mut() else {
            continue;
        };

        let mut batch = link.take_queued();
        let before = batch.len();
        let mut lost_snapshot = false;
        batch.retain(|message| {
            let allowed = shared.faults.allows(shared.self_id, peer);
            lost_snapshot |= !allowed && is_snapshot(message);
            allowed
        });
        add(&counters.dropped_faults, (before - batch.len()) as u64);
        if lost_snapshot {
            shared.snapshot_failed(peer);
        }
        if batch.is_empty() {
            continue;
        }
        let delay = shared.faults.delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }

        let (snapshots, batch): (Vec<Message>, Vec<Message>) =
            batch.into_iter().partition(is_snapshot);
        for snapshot in snapshots {
            if snapshot_stream
                .as_ref()
                .is_some_and(OutgoingSnapshot::is_running)
            {
                warn!(
                    peer,
                    "a snapshot is still streaming to this peer; dropping a newer one"
                );
                add(&counters.snapshot_send_failures, 1);
                shared.snapshot_failed(peer);
                continue;
            }
            snapshot_stream = Some(OutgoingSnapshot::start(
                peer,
                link.addr(),
                snapshot,
                Arc::clone(&shared),
            ));
        }
        if batch.is_empty() {
            continue;
        }

        let (frames, unsendable) = encode_frames(&batch, SOFT_FRAME_BYTES, MAX_FRAME_BYTES);
        add(&counters.dropped_unsendable, unsendable.messages);
        drop(batch);

        let mut unsent = 0u64;
        let mut broken = false;
        for frame in &frames {
            if broken {
                unsent += frame.messages;
                continue;
            }
            // Flushed frame by frame: TLS holds written bytes until then.
            let write = async {
                stream.write_all(&frame.bytes).await?;
                stream.flush().await
            };
            let error = match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                Ok(Ok(())) => {
                    add(&counters.frames_sent, 1);
                    add(&counters.messages_sent, frame.messages);
                    continue;
                }
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("write timed out after {WRITE_TIMEOUT:?}"),
            };
            warn!(peer, addr = %link.addr(), %error, "raft connection lost; reconnecting");
            broken = true;
            unsent += frame.messages;
        }
        if broken {
            conn = None;
            lost = true;
            add(&counters.dropped_send_error, unsent);
            shared.unreachable(peer);
        }
    }
}

/// Connects to the peer's current address and, with a secret, passes the
/// handshake, retrying with exponential backoff until both succeed (the
/// task is aborted if it should stop). A failed handshake counts as a
/// failed connect: a peer that refuses this node is not written to.
async fn connect(
    link: &PeerLink,
    shared: &Shared,
    backoff: &mut Duration,
    lost: &mut bool,
) -> RaftStream {
    let peer = link.id;
    loop {
        link.addr_changed.store(false, Ordering::Release);
        let addr = link.addr();
        let error = match open(addr, shared, peer).await {
            Ok(stream) => {
                if *lost {
                    add(&shared.counters.reconnects, 1);
                    info!(peer, %addr, "raft peer reconnected");
                } else {
                    debug!(peer, %addr, "raft peer connected");
                }
                *lost = false;
                *backoff = BACKOFF_MIN;
                return stream;
            }
            Err(error) => error.to_string(),
        };
        add(&shared.counters.connect_failures, 1);
        shared.unreachable(peer);
        if *lost {
            debug!(peer, %addr, %error, retry_in = ?*backoff, "raft peer still unreachable");
        } else {
            // Once per outage; the retries log at debug level.
            warn!(peer, %addr, %error, "raft peer unreachable; retrying with backoff");
        }
        *lost = true;
        tokio::time::sleep(*backoff).await;
        *backoff = (*backoff * 2).min(BACKOFF_MAX);
    }
}

/// Why an outgoing connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Connect(#[source] io::Error),
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    #[error("raft handshake failed: {0}")]
    Handshake(#[source] HandshakeError),
    #[error("raft {0}")]
    Tls(#[source] TlsError),
}

/// Opens one outgoing connection (frame or snapshot stream) to `peer` at
/// `addr`: TCP, then TLS when the node has certificates, then the handshake
/// when it has a secret. A failed handshake is counted here, once for both
/// kinds; the callers log it (the frame connection once per outage, not on
/// every retry).
async fn open(addr: SocketAddr, shared: &Shared, peer: u64) -> Result<RaftStream, ConnectError> {
    let mut stream = secure(addr, shared).await.inspect_err(|error| {
        if matches!(error, ConnectError::Tls(_)) {
            add(&shared.counters.handshake_failures, 1);
        }
    })?;
    if let Some(key) = &shared.auth {
        if let Err(error) = handshake::client(&mut stream, key, shared.self_id, peer).await {
            add(&shared.counters.handshake_failures, 1);
            return Err(ConnectError::Handshake(error));
        }
    }
    Ok(stream)
}

/// TCP to `addr`, then TLS when the node has certificates.
async fn secure(addr: SocketAddr, shared: &Shared) -> Result<RaftStream, ConnectError> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| ConnectError::Timeout(CONNECT_TIMEOUT))?
        .map_err(ConnectError::Connect)?;
    // Small frames (heartbeats, votes) must leave at once; the chunks of a
    // snapshot are large writes anyway.
    if let Err(error) = tcp.set_nodelay(true) {
        debug!(%addr, %error, "could not set TCP_NODELAY on a raft connection");
    }
    match &shared.tls {
        None => Ok(RaftStream::Plain(tcp)),
        Some(tls) => tls
            .connect(tcp, addr, handshake::HANDSHAKE_TIMEOUT)
            .await
            .map_err(ConnectError::Tls),
    }
}

/// Whether an outgoing connection still looks usable, without blocking.
/// Past the handshake (whose every byte the client reads) peers never write
/// on our outgoing connections, so readable data or EOF
/// both mean the connection is finished (typically the peer restarted);
/// catching that here saves writing a batch into a dead socket.
/// With TLS the raw bytes are read: any at all (an alert, a close) mean the
/// same.
fn connection_alive(stream: &RaftStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.tcp().try_read(&mut byte) {
        Err(error) => error.kind() == io::ErrorKind::WouldBlock,
        Ok(_) => false,
    }
}

/// Messages `encode_frames` could not send.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Unsendable {
    /// How many.
    pub messages: u64,
    /// Whether one was a snapshot (Raft must be told).
    pub snapshot: bool,
}

/// Encodes `messages` into frames: a new frame starts when the current one
/// has passed `soft_limit` bytes, and a message that alone would make a
/// frame exceed `hard_limit` payload bytes is left out (and logged).
pub fn encode_frames(
    messages: &[Message],
    soft_limit: usize,
    hard_limit: usize,
) -> (Vec<Frame>, Unsendable) {
    // Frame header (payload length) + batch header (count).
    const HEADER: usize = 8;
    let mut frames = Vec::new();
    let mut unsendable = Unsendable::default();
    let mut current: Option<Frame> = None;
    for message in messages {
        let size = message.compute_size() as usize;
        if size + 4 + 4 > hard_limit {
            warn!(
                to = message.to,
                msg_type = ?message.get_msg_type(),
                bytes = size,
                limit = hard_limit,
                "raft message too large for one frame; dropped"
            );
            unsendable.messages += 1;
            unsendable.snapshot |= is_snapshot(message);
            continue;
        }
        let full = current.as_ref().is_some_and(|frame| {
            frame.bytes.len() >= HEADER + soft_limit
                || frame.bytes.len() - 4 + 4 + size > hard_limit
        });
        if full {
            frames.extend(current.take().map(finish_frame));
        }
        let frame = current.get_or_insert_with(|| Frame {
            bytes: vec![0; HEADER],
            messages: 0,
        });
        let start = frame.bytes.len();
        frame.bytes.extend_from_slice(&(size as u32).to_be_bytes());
        let written = message.write_to_vec(&mut frame.bytes);
        let ok = match written {
            Ok(()) => frame.bytes.len() - start - 4 == size,
            Err(error) => {
                warn!(to = message.to, %error, "could not encode a raft message; dropped");
                false
            }
        };
        if ok {
            frame.messages += 1;
        } else {
            frame.bytes.truncate(start);
            unsendable.messages += 1;
            unsendable.snapshot |= is_snapshot(message);
        }
    }
    frames.extend(current.take().map(finish_frame));
    frames.retain(|frame| frame.messages > 0);
    (frames, unsendable)
}

/// Fills in the two headers of a frame built by `encode_frames`.
fn finish_frame(mut frame: Frame) -> Frame {
    let payload = (frame.bytes.len() - 4) as u32;
    frame.bytes[0..4].copy_from_slice(&payload.to_be_bytes());
    frame.bytes[4..8].copy_from_slice(&(frame.messages as u32).to_be_bytes());
    frame
}

/// Decodes one batch payload (without the frame's length prefix).
pub fn decode_batch(payload: &[u8]) -> Result<Vec<Message>, FrameError> {
    fn take_u32(rest: &mut &[u8], what: &'static str) -> Result<usize, FrameError> {
        let Some((head, tail)) = rest.split_first_chunk::<4>() else {
            return Err(FrameError::Truncated(what));
        };
        *rest = tail;
        Ok(u32::from_be_bytes(*head) as usize)
    }
    let mut rest = payload;
    let count = take_u32(&mut rest, "message count")?;
    // Each message needs at least its 4-byte length: refuse absurd counts
    // before allocating for them.
    if count > rest.len() / 4 {
        return Err(FrameError::CountTooLarge {
            count,
            remaining: rest.len(),
        });
    }
    let mut messages = Vec::with_capacity(count);
    for index in 0..count {
        let len = take_u32(&mut rest, "message length")?;
        if len > rest.len() {
            return Err(FrameError::Truncated("message bytes"));
        }
        let (bytes, tail) = rest.split_at(len);
        rest = tail;
        let message = Message::parse_from_bytes(bytes)
            .map_err(|source| FrameError::Protobuf { index, source })?;
        messages.push(message);
    }
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes(rest.len()));
    }
    Ok(messages)
}

/// Reads one frame's payload. `Ok(None)` is a clean end of stream between
/// frames; an oversized length is refused before reading the payload.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    if reader.read(&mut len[..1]).await? == 0 {
        return Ok(None);
    }
    reader.read_exact(&mut len[1..]).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            FrameError::TooLarge(len),
        ));
    }
    // Grow while reading instead of trusting the length with one big
    // allocation up front.
    let mut payload = Vec::with_capacity(len.min(64 * 1024));
    let read = (&mut *reader)
        .take(len as u64)
        .read_to_end(&mut payload)
        .await?;
    if read != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed inside a frame",
        ));
    }
    Ok(Some(payload))
}

/// Accepts peers until aborted; each connection gets its own task (a read
/// loop or a snapshot receiver), owned here so aborting this task closes
/// them all.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, inbound: mpsc::Sender<Message>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    debug!(%remote, "raft peer connection accepted");
                    connections.spawn(serve_connection(
                        stream,
                        remote,
                        Arc::clone(&shared),
                        inbound.clone(),
                    ));
                }
                Err(error) => {
                    warn!(%error, "accepting a raft connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
            // Reap finished connections so the set does not grow forever.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Serves one accepted connection: with certificates, TLS first; with a
/// secret, the handshake, which binds it to a peer's id (a failed one
/// closes the connection);
/// then its first four bytes tell a snapshot stream (the magic) from a
/// frame stream (the first frame's length, which is then read as part of
/// that frame).
async fn serve_connection(
    tcp: TcpStream,
    remote: SocketAddr,
    shared: Arc<Shared>,
    inbound: mpsc::Sender<Message>,
) {
    let mut stream = match &shared.tls {
        None => RaftStream::Plain(tcp),
        Some(tls) => match tls.accept(tcp, handshake::HANDSHAKE_TIMEOUT).await {
            Ok(stream) => stream,
            Err(error) => {
                shared.refused(remote, &error);
                return;
            }
        },
    };
    let bound = match &shared.auth {
        None => None,
        Some(key) => {
            let is_known = |id| shared.is_known_peer(id);
            match handshake::server(&mut stream, key, shared.self_id, is_known).await {
                Ok(id) => {
                    debug!(%remote, peer = id, "raft peer authenticated");
                    Some(id)
                }
                Err(error) => {
                    shared.refused(remote, &error);
                    return;
                }
            }
        }
    };
    let mut first = [0u8; 4];
    // A peer that connects and closes without a byte is not an error, as
    // between two frames.
    match stream.read(&mut first[..1]).await {
        Ok(0) => {
            debug!(%remote, "raft peer closed its connection");
            return;
        }
        Ok(_) => {}
        Err(error) => {
            debug!(%remote, %error, "raft connection ended");
            return;
        }
    }
    if let Err(error) = stream.read_exact(&mut first[1..]).await {
        debug!(%remote, %error, "raft connection ended");
        return;
    }
    if u32::from_be_bytes(first) == SNAPSHOT_STREAM_MAGIC {
        snapshot_stream::receive(stream, remote, bound, shared, inbound).await;
        return;
    }
    let reader = io::Cursor::new(first).chain(stream);
    read_loop(reader, remote, bound, shared, inbound).await;
}

/// Reads frames from one incoming connection and forwards their messages
/// to the Raft thread, until the peer closes, a frame is bad, or the Raft
/// thread is gone. On a connection `bound` to a peer by the handshake only
/// messages from that peer, while it is a known peer, are forwarded.
///
/// A message from another id is dropped, logged and counted, but the
/// connection stays: only a holder of the secret gets that far, so closing
/// would protect nothing, and the peer's other messages (raft-rs never
/// sends one with a `from` other than its own id) keep flowing. A
/// connection whose peer was removed has every message dropped the same
/// way; the removed node's sending task stops once it applies its removal.
async fn read_loop(
    stream: impl AsyncRead + Unpin,
    remote: SocketAddr,
    bound: Option<u64>,
    shared: Arc<Shared>,
    inbound: mpsc::Sender<Message>,
) {
    let counters = &shared.counters;
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    loop {
        let payload = match read_frame(&mut reader).await {
            Ok(Some(payload)) => payload,
            Ok(None) => {
                debug!(%remote, "raft peer closed its connection");
                return;
            }
            Err(error) if error.kind() == io::ErrorKind::InvalidData => {
                warn!(%remote, %error, "bad raft frame; closing the connection");
                add(&counters.bad_frames, 1);
                return;
            }
            Err(error) => {
                // Resets and EOF mid-frame happen when a peer restarts.
                debug!(%remote, %error, "raft connection ended");
                return;
            }
        };
        let messages = match decode_batch(&payload) {
            Ok(messages) => messages,
            Err(error) => {
                warn!(%remote, %error, "malformed raft frame; closing the connection");
                add(&counters.bad_frames, 1);
                return;
            }
        };
        add(&counters.frames_received, 1);
        // Once per frame: a peer removed since the handshake is heard no
        // more.
        let bound_known = bound.is_none_or(|id| shared.is_known_peer(id));
        for message in messages {
            if let Some(id) = bound {
                if message.from != id || !bound_known {
                    warn!(
                        %remote,
                        from = message.from,
                        bound = id,
                        known = bound_known,
                        "dropping a raft message not from the peer this connection authenticated as"
                    );
                    add(&counters.dropped_wrong_sender, 1);
                    continue;
                }
            }
            if message.to != shared.self_id {
                warn!(
                    %remote,
                    to = message.to,
                    node_id = shared.self_id,
                    "dropping a raft message addressed to another node"
                );
                add(&counters.dropped_misaddressed, 1);
                continue;
            }
            if inbound.send(message).is_err() {
                debug!(%remote, "raft thread gone; closing the connection");
                return;
            }
            add(&counters.messages_received, 1);
        }
    }
}

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod tls_tests;

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, TcpListener as StdTcpListener};

    use tokio::time::{sleep, Instant};

    use super::*;

    /// How long any one expectation may take on a loaded 2-core machine;
    /// every wait below returns as soon as its condition holds.
    pub(super) const DEADLINE: Duration = Duration::from_secs(20);

    pub(super) fn any_port() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
    }

    /// An address nothing listens on (yet): bind port 0, note it, close it.
    fn reserved_addr() -> SocketAddr {
        let listener = StdTcpListener::bind(any_port()).expect("bind a free port");
        listener.local_addr().expect("local addr")
    }

    pub(super) fn heartbeat(from: u64, to: u64, seq: u64) -> Message {
        let mut message = Message::default();
        message.set_msg_type(MessageType::MsgHeartbeat);
        message.from = from;
        message.to = to;
        message.term = 7;
        message.commit = seq;
        message
    }

    pub(super) async fn start(
        id: u64,
        listen: SocketAddr,
        peers: HashMap<u64, SocketAddr>,
        faults: Faults,
    ) -> (RaftTransport, mpsc::Receiver<Message>) {
        start_with(id, listen, peers, faults, None).await
    }

    /// [`start`] with the handshake key of a cluster secret, or none.
    pub(super) async fn start_with(
        id: u64,
        listen: SocketAddr,
        peers: HashMap<u64, SocketAddr>,
        faults: Faults,
        auth: Option<RaftKey>,
    ) -> (RaftTransport, mpsc::Receiver<Message>) {
        start_secured(id, listen, peers, faults, RaftSecurity::secret(auth)).await
    }

    /// [`start`] with the handshake key and TLS identity of `security`.
    pub(super) async fn start_secured(
        id: u64,
        listen: SocketAddr,
        peers: HashMap<u64, SocketAddr>,
        faults: Faults,
        security: RaftSecurity,
    ) -> (RaftTransport, mpsc::Receiver<Message>) {
        let (tx, rx) = mpsc::channel();
        let dir = std::env::temp_dir().join(format!(
            "cronmesh-transport-test-{}-{id}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let snapshots = SnapshotDir::open(dir).expect("snapshot dir");
        let transport = RaftTransport::start(id, listen, peers, tx, faults, snapshots, security)
            .await
            .expect("start transport");
        (transport, rx)
    }

    /// Nodes 1..=n, each knowing all the others, sharing `faults`.
    pub(super) async fn cluster(
        n: u64,
        faults: &Faults,
    ) -> Vec<(RaftTransport, mpsc::Receiver<Message>)> {
        cluster_with(n, faults, |_| None).await
    }

    /// [`cluster`] where node `id` has the handshake key `key(id)`.
    pub(super) async fn cluster_with(
        n: u64,
        faults: &Faults,
        key: impl Fn(u64) -> Option<RaftKey>,
    ) -> Vec<(RaftTransport, mpsc::Receiver<Message>)> {
        cluster_secured(n, faults, |id| RaftSecurity::secret(key(id))).await
    }

    /// [`cluster`] where node `id` has the handshake key and TLS identity
    /// of `security(id)`.
    pub(super) async fn cluster_secured(
        n: u64,
        faults: &Faults,
        security: impl Fn(u64) -> RaftSecurity,
    ) -> Vec<(RaftTransport, mpsc::Receiver<Message>)> {
        let mut nodes = Vec::new();
        for id in 1..=n {
            let node = start_secured(id, any_port(), HashMap::new(), faults.clone(), security(id));
            nodes.push(node.await);
        }
        let addrs: Vec<SocketAddr> = nodes.iter().map(|(t, _)| t.local_addr()).collect();
        for (transport, _) in &nodes {
            for (index, addr) in addrs.iter().enumerate() {
                transport.add_peer(index as u64 + 1, *addr);
            }
        }
        nodes
    }

    /// Receives exactly `n` messages, failing the test after [`DEADLINE`].
    pub(super) async fn recv_n(rx: &mpsc::Receiver<Message>, n: usize) -> Vec<Message> {
        let deadline = Instant::now() + DEADLINE;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match rx.try_recv() {
                Ok(message) => out.push(message),
                Err(mpsc::TryRecvError::Empty) => {
                    assert!(
                        Instant::now() < deadline,
                        "received {} of {n} messages before the deadline",
                        out.len()
                    );
                    sleep(Duration::from_millis(5)).await;
                }
                Err(mpsc::TryRecvError::Disconnected) => panic!("inbound channel closed"),
            }
        }
        out
    }

    pub(super) async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !condition() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            sleep(Duration::from_millis(5)).await;
        }
    }

    pub(super) fn seqs(messages: &[Message]) -> Vec<u64> {
        messages.iter().map(|m| m.commit).collect()
    }

    #[test]
    fn transport_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<RaftTransport>();
    }

    #[test]
    fn frames_round_trip_and_split_at_the_soft_limit() {
        let messages: Vec<Message> = (0..50)
            .map(|i| {
                let mut m = heartbeat(1, 2, i);
                m.context = vec![b'x'; 100].into();
                m
            })
            .collect();
        let (frames, unsendable) = encode_frames(&messages, 1000, MAX_FRAME_BYTES);
        assert_eq!(unsendable, Unsendable::default());
        assert!(
            frames.len() > 1 && frames.len() < 50,
            "{} frames",
            frames.len()
        );
        let mut decoded = Vec::new();
        for frame in &frames {
            let len = u32::from_be_bytes(frame.bytes[..4].try_into().unwrap()) as usize;
            assert_eq!(len, frame.bytes.len() - 4);
            let batch = decode_batch(&frame.bytes[4..]).expect("decode");
            assert_eq!(batch.len() as u64, frame.messages);
            decoded.extend(batch);
        }
        assert_eq!(decoded, messages);
    }

    #[test]
    fn oversized_message_is_left_out() {
        let mut big = heartbeat(1, 2, 1);
        big.set_msg_type(MessageType::MsgSnapshot);
        big.context = vec![0u8; 2000].into();
        let messages = vec![heartbeat(1, 2, 0), big, heartbeat(1, 2, 2)];
        let (frames, unsendable) = encode_frames(&messages, 1000, 1500);
        assert_eq!(
            unsendable,
            Unsendable {
                messages: 1,
                snapshot: true
            }
        );
        let decoded: Vec<Message> = frames
            .iter()
            .flat_map(|f| decode_batch(&f.bytes[4..]).expect("decode"))
            .collect();
        assert_eq!(seqs(&decoded), vec![0, 2]);
        assert!(frames.iter().all(|f| f.bytes.len() - 4 <= 1500));
    }

    #[test]
    fn malformed_batches_are_refused() {
        let (frames, _) = encode_frames(&[heartbeat(1, 2, 9)], SOFT_FRAME_BYTES, MAX_FRAME_BYTES);
        let good = frames[0].bytes[4..].to_vec();
        assert!(decode_batch(&good).is_ok());
        // Truncated anywhere.
        for cut in 0..good.len() {
            assert!(decode_batch(&good[..cut]).is_err(), "cut at {cut}");
        }
        // Trailing garbage.
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(
            decode_batch(&trailing),
            Err(FrameError::TrailingBytes(1))
        ));
        // A count no payload of this size can hold.
        assert!(matches!(
            decode_batch(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
            Err(FrameError::CountTooLarge { .. })
        ));
        // Bytes that are not a protobuf message.
        assert!(matches!(
            decode_batch(&[0, 0, 0, 1, 0, 0, 0, 2, 0xff, 0xff]),
            Err(FrameError::Protobuf { index: 0, .. })
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_nodes_deliver_in_order_per_sender() {
        let nodes = cluster(3, &Faults::default()).await;
        const N: u64 = 200;
        // Send from plain threads, one message per call, like the ready loop.
        let senders: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(index, (transport, _))| {
                let transport = transport.clone();
                let from = index as u64 + 1;
                std::thread::spawn(move || {
                    for seq in 0..N {
                        for to in (1..=3).filter(|to| *to != from) {
                            transport.send(vec![heartbeat(from, to, seq)]);
                        }
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.join().expect("sender thread");
        }
        for (index, (_, rx)) in nodes.iter().enumerate() {
            let me = index as u64 + 1;
            let received = recv_n(rx, 2 * N as usize).await;
            for from in (1..=3).filter(|from| *from != me) {
                let from_peer: Vec<Message> = received
                    .iter()
                    .filter(|m| m.from == from)
                    .cloned()
                    .collect();
                assert_eq!(
                    seqs(&from_peer),
                    (0..N).collect::<Vec<_>>(),
                    "{from} -> {me}"
                );
                assert!(from_peer.iter().all(|m| m.to == me
                    && m.term == 7
                    && m.get_msg_type() == MessageType::MsgHeartbeat));
            }
        }
        for (transport, _) in &nodes {
            let stats = transport.stats();
            assert_eq!(stats.messages_sent, 2 * N);
            assert_eq!(stats.messages_received, 2 * N);
            assert_eq!(stats.dropped_faults + stats.dropped_queue_full, 0);
            transport.shutdown().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_big_send_goes_out_in_few_frames() {
        let nodes = cluster(2, &Faults::default()).await;
        let (t1, _) = &nodes[0];
        let (t2, rx2) = &nodes[1];
        t1.send((0..1000).map(|seq| heartbeat(1, 2, seq)).collect());
        let received = recv_n(rx2, 1000).await;
        assert_eq!(seqs(&received), (0..1000).collect::<Vec<_>>());
        let stats = t1.stats();
        assert_eq!(stats.messages_sent, 1000);
        assert!(
            stats.frames_sent < 10,
            "{} frames for 1000 messages",
            stats.frames_sent
        );
        assert_eq!(t2.stats().frames_received, stats.frames_sent);
        t1.shutdown().await;
        t2.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn peer_that_starts_later_gets_the_queued_messages() {
        let addr2 = reserved_addr();
        let (t1, _rx1) = start(
            1,
            any_port(),
            HashMap::from([(2, addr2)]),
            Faults::default(),
        )
        .await;
        t1.send((0..10).map(|seq| heartbeat(1, 2, seq)).collect());
        wait_until("a failed connect", || t1.stats().connect_failures >= 1).await;
        assert_eq!(t1.take_send_failures().unreachable, vec![2]);

        let (t2, rx2) = start(
            2,
            addr2,
            HashMap::from([(1, t1.local_addr())]),
            Faults::default(),
        )
        .await;
        let received = recv_n(&rx2, 10).await;
        assert_eq!(seqs(&received), (0..10).collect::<Vec<_>>());
        assert!(t1.stats().reconnects >= 1);
        t1.shutdown().await;
        t2.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_queue_drops_the_oldest() {
        let addr2 = reserved_addr();
        let (t1, _rx1) = start(
            1,
            any_port(),
            HashMap::from([(2, addr2)]),
            Faults::default(),
        )
        .await;
        let total = MAX_QUEUED_PER_PEER as u64 + 904;
        t1.send((0..total).map(|seq| heartbeat(1, 2, seq)).collect());
        // The bound is enforced inside `send` itself.
        assert_eq!(t1.stats().dropped_queue_full, 904);

        let (t2, rx2) = start(2, addr2, HashMap::new(), Faults::default()).await;
        let received = recv_n(&rx2, MAX_QUEUED_PER_PEER).await;
        assert_eq!(seqs(&received), (904..total).collect::<Vec<_>>());
        t1.shutdown().await;
        t2.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reconnects_after_the_peer_restarts() {
        let nodes = cluster(2, &Faults::default()).await;
        let (t1, _) = &nodes[0];
        let (t2, rx2) = &nodes[1];
        t1.send(vec![heartbeat(1, 2, 0)]);
        recv_n(rx2, 1).await;
        let addr2 = t2.local_addr();
        t2.shutdown().await;

        let (t2b, rx2b) = start(2, addr2, HashMap::new(), Faults::default()).await;
        // Messages written into the dead connection are lost, as on a real
        // network; keep sending until one arrives on the new node.
        let deadline = Instant::now() + DEADLINE;
        let mut seq = 1;
        let first = loop {
            t1.send(vec![heartbeat(1, 2, seq)]);
            seq += 1;
            sleep(Duration::from_millis(20)).await;
            if let Ok(message) = rx2b.try_recv() {
                break message;
            }
            assert!(Instant::now() < deadline, "no message after the restart");
        };
        assert!(first.commit >= 1);
        assert!(t1.stats().reconnects >= 1);
        t1.shutdown().await;
        t2b.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn garbage_closes_only_that_connection() {
        let nodes = cluster(2, &Faults::default()).await;
        let (t1, _) = &nodes[0];
        let (t2, rx2) = &nodes[1];

        let garbage: [&[u8]; 3] = [
            // An HTTP request: its first four bytes read as a ~1.2 GB length.
            b"GET / HTTP/1.1\r\nHost: raft\r\n\r\n",
            // A valid length, but the batch announces 3 messages and has none.
            &[0, 0, 0, 4, 0, 0, 0, 3],
            // One message whose bytes are not protobuf.
            &[0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0xff, 0xff],
        ];
        for bytes in garbage {
            let mut raw = TcpStream::connect(t2.local_addr()).await.expect("connect");
            raw.write_all(bytes).await.expect("write garbage");
            let mut buf = [0u8; 16];
            let closed = tokio::time::timeout(DEADLINE, raw.read(&mut buf))
                .await
                .expect("the transport should close the connection");
            assert!(
                matches!(closed, Ok(0) | Err(_)),
                "expected EOF or reset, got {closed:?}"
            );
        }
        wait_until("three bad frames", || t2.stats().bad_frames == 3).await;

        // The node still serves real peers.
        t1.send(vec![heartbeat(1, 2, 42)]);
        assert_eq!(seqs(&recv_n(rx2, 1).await), vec![42]);
        t1.shutdown().await;
        t2.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn misaddressed_messages_are_dropped_but_the_connection_stays() {
        let (t2, rx2) = start(2, any_port(), HashMap::new(), Faults::default()).await;
        let mut raw = TcpStream::connect(t2.local_addr()).await.expect("connect");
        let (frames, _) = encode_frames(
            &[heartbeat(1, 99, 0), heartbeat(1, 2, 1)],
            SOFT_FRAME_BYTES,
            MAX_FRAME_BYTES,
        );
        raw.write_all(&frames[0].bytes).await.expect("write");
        assert_eq!(seqs(&recv_n(&rx2, 1).await), vec![1]);
        assert_eq!(t2.stats().dropped_misaddressed, 1);
        // Same connection, still open.
        let (frames, _) = encode_frames(&[heartbeat(1, 2, 2)], SOFT_FRAME_BYTES, MAX_FRAME_BYTES);
        raw.write_all(&frames[0].bytes).await.expect("write");
        assert_eq!(seqs(&recv_n(&rx2, 1).await), vec![2]);
        t2.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn partition_and_heal() {
        let faults = Faults::seeded(1);
        let nodes = cluster(3, &faults).await;
        let (t1, rx1) = &nodes[0];
        let (t2, rx2) = &nodes[1];
        let (t3, rx3) = &nodes[2];
        faults.partition(&[&[1], &[2, 3]]);

        t1.send((0..5).map(|seq| heartbeat(1, 2, seq)).collect());
        t2.send((0..5).map(|seq| heartbeat(2, 1, seq)).collect());
        t2.send((0..5).map(|seq| heartbeat(2, 3, seq)).collect());
        t3.send((0..5).map(|seq| heartbeat(3, 2, seq)).collect());

        // 2 <-> 3 works.
        assert!(recv_n(rx3, 5).await.iter().all(|m| m.from == 2));
        assert!(recv_n(rx2, 5).await.iter().all(|m| m.from == 3));
        // 1 <-> 2 is cut: once the senders have counted the drops, nothing
        // of it can arrive any more.
        wait_until("drops on 1 and 2", || {
            t1.stats().dropped_faults == 5 && t2.stats().dropped_faults == 5
        })
        .await;
        assert_eq!(t1.stats().messages_sent, 0);
        assert!(rx1.try_recv().is_err());
        assert!(rx2.try_recv().is_err());

        faults.heal();
        t1.send(vec![heartbeat(1, 2, 100)]);
        t2.send(vec![heartbeat(2, 1, 200)]);
        assert_eq!(seqs(&recv_n(rx2, 1).await), vec![100]);
        assert_eq!(seqs(&recv_n(rx1, 1).await), vec![200]);
        for (transport, _) in &nodes {
            transport.shutdown().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn drop_rate_one_drops_everything_and_counts_it() {
        let faults = Faults::seeded(3);
        faults.set_drop_rate(1.0);
        let nodes = cluster(2, &faults).await;
        let (t1, _) = &nodes[0];
        let (t2, rx2) = &nodes[1];
        t1.send((0..100).map(|seq| heartbeat(1, 2, seq)).collect());
        wait_until("100 dropped", || t1.stats().dropped_faults == 100).await;
        let stats = t1.stats();
        assert_eq!((stats.messages_sent, stats.frames_sent), (0, 0));
        assert!(rx2.try_recv().is_err());

        // Half the messages: the rest arrive, still in order.
        faults.set_drop_rate(0.5);
        t1.send((0..200).map(|seq| heartbeat(1, 2, seq)).collect());
        wait_until("200 accounted for", || {
            let s = t1.stats();
            s.dropped_faults - 100 + s.messages_sent == 200
        })
        .await;
        let delivered = t1.stats().messages_sent as usize;
        assert!(
            (20..=180).contains(&delivered),
            "{delivered} of 200 delivered"
        );
        let received = seqs(&recv_n(rx2, delivered).await);
        assert!(received.windows(2).all(|w| w[0] < w[1]));
        t1.shutdown().await;
        t2.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delay_holds_messages_back() {
        let faults = Faults::default();
        let nodes = cluster(2, &faults).await;
        let (t1, _) = &nodes[0];
        let (t2, rx2) = &nodes[1];
        faults.set_delay(Duration::from_millis(300));
        let started = Instant::now();
        t1.send(vec![heartbeat(1, 2, 0)]);
        recv_n(rx2, 1).await;
        assert!(started.elapsed() >= Duration::from_millis(300));
        t1.shutdown().await;
        t2.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_and_removed_peers_are_dropped() {
        let nodes = cluster(2, &Faults::default()).await;
        let (t1, _) = &nodes[0];
        let (t2, _) = &nodes[1];
        t1.send(vec![heartbeat(1, 9, 0)]);
        assert_eq!(t1.stats().dropped_unknown_peer, 1);
        t1.remove_peer(2);
        let mut snapshot = heartbeat(1, 2, 1);
        snapshot.set_msg_type(MessageType::MsgSnapshot);
        t1.send(vec![snapshot]);
        assert_eq!(t1.stats().dropped_unknown_peer, 2);
        assert_eq!(t1.take_send_failures().snapshot_failed, vec![2]);
        assert!(t1.take_send_failures().is_empty());
        t1.shutdown().await;
        t2.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_closes_the_port() {
        let (t1, _rx1) = start(1, any_port(), HashMap::new(), Faults::default()).await;
        let addr = t1.local_addr();
        t1.shutdown().await;
        assert!(TcpStream::connect(addr).await.is_err());
        // Still safe to use afterwards.
        t1.send(vec![heartbeat(1, 2, 0)]);
        t1.add_peer(2, addr);
        t1.shutdown().await;
    }
}
