//! Snapshot streams: a `MsgSnapshot` and its dump file on a connection of
//! their own, beside the peer's frame connection. The wire format and the
//! reasons for it are in the transport's module documentation.
//!
//! Sending: the peer's task hands each snapshot to
//! [`OutgoingSnapshot::start`], which streams it from a task of its own
//! and reports a failure to Raft through the transport's failure log.
//!
//! Receiving: the accept path reads the magic and calls [`receive`], which
//! checks the header, writes the file next to its final name while
//! checking its size and CRC-32, and only then makes it whole, answers,
//! and hands the message to the Raft thread.

use std::{
    collections::HashSet,
    fs::File,
    io::{self, BufWriter, Write},
    net::SocketAddr,
    path::PathBuf,
    sync::{mpsc, Arc, Mutex},
    time::Duration,
};

use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    task::JoinHandle,
    time::timeout,
};
use tracing::{debug, info, warn};

use super::{
    add, handshake::HandshakeError, lock, ConnectError, RaftStream, Shared, TlsError,
    MAX_FRAME_BYTES,
};
use crate::raft::snapshot::{
    descriptor::SnapshotDescriptor,
    files::{self, Side, SnapshotDir},
};

/// The first four bytes of a snapshot stream (`0xC3` then `SNP`). Read as a
/// frame length it is far over [`MAX_FRAME_BYTES`], so no valid frame
/// stream starts with it, and the accept path tells the two kinds of
/// connection apart from their first four bytes.
pub const SNAPSHOT_STREAM_MAGIC: u32 = 0xC353_4E50;
const _: () = assert!(SNAPSHOT_STREAM_MAGIC as u64 > MAX_FRAME_BYTES as u64);

/// Largest encoded `MsgSnapshot` at the head of a stream. The message holds
/// a descriptor and the snapshot's metadata (the configuration): a few
/// hundred bytes. The bound keeps a peer from making the receiver allocate
/// for an absurd announced length.
pub const MAX_SNAPSHOT_MESSAGE_BYTES: usize = 1024 * 1024;

/// Largest chunk of file in a stream, and the size of the one buffer each
/// side holds for it: large enough that the cost per chunk (a length, a
/// file call on the blocking pool) is negligible, small enough to hold per
/// stream whatever the file size.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;

/// Longest wait for one step of a stream (the header, one chunk, the end
/// marker) to be written or read. Per step, not per transfer: a 1 GiB file
/// can take minutes on a slow link, but a peer that takes or sends nothing
/// for this long is gone.
const SNAPSHOT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait, after the end marker, for the receiver's answer. The
/// receiver syncs the whole file to disk before it answers, which for a
/// large file on a busy disk can take far longer than one chunk.
const SNAPSHOT_ACK_TIMEOUT: Duration = Duration::from_secs(120);

/// The receiver's answer when the file is whole on disk and the message
/// goes to Raft.
const ACK: u8 = 1;

/// The receiver's answer to a refused stream. Best effort: the receiver
/// may close without it, and the sender treats both alike.
const NACK: u8 = 0;
/// Longest a refusing receiver waits to hand its [`NACK`] to the
/// connection before it closes it.
const NACK_WAIT: Duration = Duration::from_millis(100);

/// Most incoming snapshot streams at once, whoever the senders claim to
/// be: each holds a chunk buffer and a partial file. A follower normally
/// receives from one leader; a few leave room for a leader change in the
/// middle of a transfer.
const MAX_INCOMING_STREAMS: usize = 4;

/// Why a snapshot could not be streamed to a peer. Raft is told the same
/// way whatever the cause (it sends the snapshot again later); the variants
/// say what to look at.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotSendError {
    #[error("the snapshot's data is not a valid descriptor: {0}")]
    Descriptor(String),
    #[error("could not encode the snapshot message: {0}")]
    Encode(#[source] protobuf::ProtobufError),
    #[error(
        "the snapshot message takes {0} bytes, over the {MAX_SNAPSHOT_MESSAGE_BYTES}-byte limit"
    )]
    MessageTooLarge(usize),
    #[error("snapshot file {}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("snapshot file {} has {actual} bytes but its descriptor says {expected}", path.display())]
    SizeMismatch {
        path: PathBuf,
        actual: u64,
        expected: u64,
    },
    #[error("connecting to the peer: {0}")]
    Connect(#[source] io::Error),
    #[error("connecting to the peer timed out after {0:?}")]
    ConnectTimeout(Duration),
    #[error("raft handshake failed: {0}")]
    Handshake(#[source] HandshakeError),
    #[error("raft {0}")]
    Tls(#[source] TlsError),
    #[error("writing to the peer: {0}")]
    Write(#[source] io::Error),
    #[error("the peer took less than a step of the stream in {0:?}")]
    WriteStalled(Duration),
    #[error("no answer from the peer within {0:?} of the end of the file")]
    AckTimeout(Duration),
    #[error("the peer closed the connection without answering: {0}")]
    NoAck(#[source] io::Error),
    #[error("the peer refused the snapshot (its log says why)")]
    Refused,
}

/// Why an incoming snapshot stream was refused. Whatever the cause the
/// connection is closed, the partial file removed, and Raft sees nothing.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotReceiveError {
    #[error("reading the stream: {0}")]
    Read(#[source] io::Error),
    #[error("the sender sent less than a step of the stream in {0:?}")]
    Idle(Duration),
    #[error("the message announces {0} bytes, over the {MAX_SNAPSHOT_MESSAGE_BYTES}-byte limit")]
    MessageTooLarge(usize),
    #[error("the message is not a valid raft message: {0}")]
    NotAMessage(#[source] protobuf::ProtobufError),
    #[error("the message is a {0:?}, not a snapshot")]
    NotASnapshot(MessageType),
    #[error("the snapshot is addressed to node {to}, not to this node")]
    Misaddressed { to: u64 },
    #[error(
        "the snapshot claims to be from node {from} on a connection authenticated as node {bound}"
    )]
    WrongSender { from: u64, bound: u64 },
    #[error("the snapshot's data is not a valid descriptor: {0}")]
    Descriptor(String),
    #[error("a snapshot stream from node {0} is already in progress")]
    SenderBusy(u64),
    #[error("snapshot {index}/{term} is already being received")]
    SnapshotBusy { index: u64, term: u64 },
    #[error("{MAX_INCOMING_STREAMS} snapshot streams are already in progress")]
    TooManyStreams,
    #[error("a chunk of {0} bytes exceeds the {SNAPSHOT_CHUNK_BYTES}-byte limit")]
    ChunkTooLarge(usize),
    #[error("the stream goes on past the {expected} bytes its descriptor announces")]
    LongerThanDescriptor { expected: u64 },
    #[error("the stream ended after {received} of the {expected} bytes its descriptor announces")]
    ShorterThanDescriptor { received: u64, expected: u64 },
    #[error("the file states checksum {stated:08x} but its contents give {computed:08x}")]
    ChecksumMismatch { stated: u32, computed: u32 },
    #[error("writing the snapshot file: {0}")]
    File(#[source] io::Error),
}

/// A snapshot streaming to one peer from a task of its own. Dropping it
/// aborts the stream; the peer's task owns it, so removing the peer or
/// shutting the transport down ends the stream too.
pub(super) struct OutgoingSnapshot {
    task: JoinHandle<()>,
}

impl OutgoingSnapshot {
    /// Starts streaming `message` (a `MsgSnapshot`) and its file to `peer`
    /// at `addr`. On failure the peer is reported to Raft with
    /// `snapshot_failed`; either way the outcome is counted and logged.
    /// Must be called inside the transport's runtime.
    pub(super) fn start(
        peer: u64,
        addr: SocketAddr,
        message: Message,
        shared: Arc<Shared>,
    ) -> Self {
        let task = tokio::spawn(async move {
            let metadata = message.get_snapshot().get_metadata();
            let (index, term) = (metadata.index, metadata.term);
            match send(addr, &message, &shared).await {
                Ok(bytes) => {
                    add(&shared.counters.snapshots_sent, 1);
                    shared.snapshot_finished(peer);
                    info!(peer, %addr, index, term, bytes, "snapshot sent");
                }
                Err(error) => {
                    add(&shared.counters.snapshot_send_failures, 1);
                    warn!(
                        peer, %addr, index, term, %error,
                        "snapshot not sent; raft will send it again"
                    );
                    shared.snapshot_failed(peer);
                }
            }
        });
        OutgoingSnapshot { task }
    }

    /// Whether the stream is still going (a finished one, whatever its
    /// outcome, no longer blocks the next snapshot to the peer).
    pub(super) fn is_running(&self) -> bool {
        !self.task.is_finished()
    }
}

impl Drop for OutgoingSnapshot {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Streams one snapshot on a new connection to `addr`; answers the file
/// bytes sent once the peer acknowledged them.
async fn send(
    addr: SocketAddr,
    message: &Message,
    shared: &Shared,
) -> Result<u64, SnapshotSendError> {
    let snapshot = message.get_snapshot();
    let (index, term) = (snapshot.get_metadata().index, snapshot.get_metadata().term);
    let descriptor = SnapshotDescriptor::decode(&snapshot.data, index, term)
        .map_err(SnapshotSendError::Descriptor)?;
    let header = stream_header(message)?;

    let path = shared.snapshots.file(Side::Outgoing, index, term);
    let file_error = |source| SnapshotSendError::File {
        path: path.clone(),
        source,
    };
    // tokio's file reads run on the blocking pool, in pieces no larger than
    // the buffer they fill.
    let mut file = tokio::fs::File::open(&path).await.map_err(file_error)?;
    let actual = file.metadata().await.map_err(file_error)?.len();
    if actual != descriptor.bytes {
        return Err(SnapshotSendError::SizeMismatch {
            path: path.clone(),
            actual,
            expected: descriptor.bytes,
        });
    }

    let mut stream = connect(addr, shared, message.to).await?;
    write_step(&mut stream, &header).await?;
    // The one buffer of the stream: a chunk's length, then its bytes, so
    // that each chunk is one write.
    let mut chunk = vec![0u8; 4 + chunk_buffer_len(descriptor.bytes)];
    let mut remaining = descriptor.bytes;
    while remaining > 0 {
        let len = chunk_buffer_len(remaining);
        let (prefix, body) = chunk.split_at_mut(4);
        prefix.copy_from_slice(&(len as u32).to_be_bytes());
        file.read_exact(&mut body[..len])
            .await
            .map_err(file_error)?;
        write_step(&mut stream, &chunk[..4 + len]).await?;
        add(&shared.counters.snapshot_bytes_sent, len as u64);
        remaining -= len as u64;
    }
    write_step(&mut stream, &0u32.to_be_bytes()).await?;

    match timeout(SNAPSHOT_ACK_TIMEOUT, stream.read_u8()).await {
        Err(_) => Err(SnapshotSendError::AckTimeout(SNAPSHOT_ACK_TIMEOUT)),
        Ok(Err(error)) => Err(SnapshotSendError::NoAck(error)),
        Ok(Ok(ACK)) => Ok(descriptor.bytes),
        Ok(Ok(_)) => Err(SnapshotSendError::Refused),
    }
}

/// The bytes before the first chunk: the magic and the length-prefixed
/// message.
fn stream_header(message: &Message) -> Result<Vec<u8>, SnapshotSendError> {
    let encoded = message
        .write_to_bytes()
        .map_err(SnapshotSendError::Encode)?;
    if encoded.len() > MAX_SNAPSHOT_MESSAGE_BYTES {
        return Err(SnapshotSendError::MessageTooLarge(encoded.len()));
    }
    let mut header = Vec::with_capacity(8 + encoded.len());
    header.extend_from_slice(&SNAPSHOT_STREAM_MAGIC.to_be_bytes());
    header.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    header.extend_from_slice(&encoded);
    Ok(header)
}

/// The size of the next chunk when `remaining` bytes are left (also the
/// size of the buffer for a whole file): no larger than a chunk, so a small
/// file does not cost a whole chunk's buffer.
fn chunk_buffer_len(remaining: u64) -> usize {
    usize::try_from(remaining).map_or(SNAPSHOT_CHUNK_BYTES, |n| n.min(SNAPSHOT_CHUNK_BYTES))
}

/// Opens the stream's own connection (never the peer's frame connection,
/// whose heartbeats and appends must not wait behind the file), with the
/// handshake when the node has a secret. Without Nagle the end marker
/// leaves at once instead of waiting for the last chunk's ACK.
async fn connect(
    addr: SocketAddr,
    shared: &Shared,
    peer: u64,
) -> Result<RaftStream, SnapshotSendError> {
    super::open(addr, shared, peer)
        .await
        .map_err(|error| match error {
            ConnectError::Connect(error) => SnapshotSendError::Connect(error),
            ConnectError::Timeout(limit) => SnapshotSendError::ConnectTimeout(limit),
            ConnectError::Handshake(error) => SnapshotSendError::Handshake(error),
            ConnectError::Tls(error) => SnapshotSendError::Tls(error),
        })
}

/// Writes one step of the stream and flushes it (TLS holds written bytes
/// until then), failing if the peer takes none of it for
/// [`SNAPSHOT_IDLE_TIMEOUT`].
async fn write_step(stream: &mut RaftStream, bytes: &[u8]) -> Result<(), SnapshotSendError> {
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    timeout(SNAPSHOT_IDLE_TIMEOUT, write)
        .await
        .map_err(|_| SnapshotSendError::WriteStalled(SNAPSHOT_IDLE_TIMEOUT))?
        .map_err(SnapshotSendError::Write)
}

/// Receives one snapshot stream whose magic the accept path has read, on a
/// connection the handshake `bound` to a peer when the node has a secret
/// (the message must then be from that peer). A whole, checked file is
/// acknowledged and its message handed to the Raft thread; anything else
/// is refused with a warning and leaves nothing.
pub(super) async fn receive(
    mut stream: RaftStream,
    remote: SocketAddr,
    bound: Option<u64>,
    shared: Arc<Shared>,
    inbound: mpsc::Sender<Message>,
) {
    let message = match receive_file(&mut stream, bound, &shared).await {
        Ok(message) => message,
        Err(error) => {
            add(&shared.counters.snapshot_receive_failures, 1);
            warn!(%remote, %error, "snapshot stream refused; nothing reaches raft");
            // Best effort, hardly waiting: the sender learns sooner than
            // from its timeout. Closing with unread bytes may reset the
            // connection before the byte arrives; the sender fails either
            // way.
            let nack = async {
                stream.write_all(&[NACK]).await?;
                stream.flush().await
            };
            let _ = timeout(NACK_WAIT, nack).await;
            return;
        }
    };
    let from = message.from;
    let metadata = message.get_snapshot().get_metadata();
    let (index, term) = (metadata.index, metadata.term);
    // The file is whole and on disk whether or not the answer arrives: a
    // lost answer only makes the leader send the snapshot again, so the
    // message goes to Raft either way.
    let ack = async {
        stream.write_all(&[ACK]).await?;
        stream.flush().await
    };
    match timeout(SNAPSHOT_IDLE_TIMEOUT, ack).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => debug!(%remote, %error, "could not acknowledge a snapshot"),
        Err(_) => debug!(%remote, "acknowledging a snapshot timed out"),
    }
    if inbound.send(message).is_err() {
        debug!(%remote, "raft thread gone; snapshot not delivered");
        return;
    }
    add(&shared.counters.snapshots_received, 1);
    info!(%remote, from, index, term, "snapshot received");
}

/// Reads the header and the file of a stream into the snapshot directory;
/// answers the message once the file is whole under its final name.
async fn receive_file(
    stream: &mut RaftStream,
    bound: Option<u64>,
    shared: &Shared,
) -> Result<Message, SnapshotReceiveError> {
    let message = read_message(stream, shared.self_id).await?;
    if let Some(bound) = bound.filter(|id| *id != message.from) {
        return Err(SnapshotReceiveError::WrongSender {
            from: message.from,
            bound,
        });
    }
    let snapshot = message.get_snapshot();
    let (index, term) = (snapshot.get_metadata().index, snapshot.get_metadata().term);
    let descriptor = SnapshotDescriptor::decode(&snapshot.data, index, term)
        .map_err(SnapshotReceiveError::Descriptor)?;
    let mut check = DumpCheck::new(descriptor.bytes)?;
    // Declared before the file, so dropped after it: the partial file is
    // gone before another stream of the same snapshot may create it again.
    let _slot = IncomingSlot::claim(&shared.incoming_snapshots, message.from, index, term)?;
    let mut file =
        PartialFile::create(shared.snapshots.partial(Side::Incoming, index, term)).await?;

    let mut chunk = vec![0u8; chunk_buffer_len(descriptor.bytes)];
    loop {
        let mut len = [0u8; 4];
        read_step(stream, &mut len).await?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 {
            break;
        }
        if len > SNAPSHOT_CHUNK_BYTES {
            return Err(SnapshotReceiveError::ChunkTooLarge(len));
        }
        // Refused before it is read. Admitted, it is no larger than a
        // chunk nor than the file, so it fits the buffer.
        check.admit(len)?;
        read_step(stream, &mut chunk[..len]).await?;
        check.update(&chunk[..len]);
        chunk = file.append(chunk, len).await?;
    }
    check.finish()?;
    file.complete(shared.snapshots.clone(), index, term).await?;
    Ok(message)
}

/// Reads the length-prefixed message at the head of a stream and checks it
/// is a snapshot for this node.
async fn read_message(
    stream: &mut RaftStream,
    self_id: u64,
) -> Result<Message, SnapshotReceiveError> {
    let mut len = [0u8; 4];
    read_step(stream, &mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_SNAPSHOT_MESSAGE_BYTES {
        return Err(SnapshotReceiveError::MessageTooLarge(len));
    }
    let mut bytes = vec![0u8; len];
    read_step(stream, &mut bytes).await?;
    let message = Message::parse_from_bytes(&bytes).map_err(SnapshotReceiveError::NotAMessage)?;
    if message.get_msg_type() != MessageType::MsgSnapshot {
        return Err(SnapshotReceiveError::NotASnapshot(message.get_msg_type()));
    }
    if message.to != self_id {
        return Err(SnapshotReceiveError::Misaddressed { to: message.to });
    }
    Ok(message)
}

/// Fills `buf` from the stream, failing if the sender sends nothing to
/// complete it for [`SNAPSHOT_IDLE_TIMEOUT`].
async fn read_step(stream: &mut RaftStream, buf: &mut [u8]) -> Result<(), SnapshotReceiveError> {
    timeout(SNAPSHOT_IDLE_TIMEOUT, stream.read_exact(buf))
        .await
        .map_err(|_| SnapshotReceiveError::Idle(SNAPSHOT_IDLE_TIMEOUT))?
        .map(|_| ())
        .map_err(SnapshotReceiveError::Read)
}

/// The incoming snapshot streams in progress (see [`IncomingSlot`]).
#[derive(Default)]
pub(super) struct IncomingStreams {
    /// The sending node of each stream, as its message says.
    senders: HashSet<u64>,
    /// The (index, term) of each stream: two streams of one snapshot, from
    /// two successive leaders, would write the same partial file.
    snapshots: HashSet<(u64, u64)>,
}

/// A place in [`IncomingStreams`], held for the whole stream and given back
/// when dropped, however the stream ends.
struct IncomingSlot<'a> {
    streams: &'a Mutex<IncomingStreams>,
    from: u64,
    snapshot: (u64, u64),
}

impl<'a> IncomingSlot<'a> {
    /// Takes a place for a stream of snapshot (index, term) from `from`,
    /// unless one from the same sender or of the same snapshot is running,
    /// or [`MAX_INCOMING_STREAMS`] are.
    fn claim(
        streams: &'a Mutex<IncomingStreams>,
        from: u64,
        index: u64,
        term: u64,
    ) -> Result<Self, SnapshotReceiveError> {
        let mut running = lock(streams);
        if running.senders.contains(&from) {
            return Err(SnapshotReceiveError::SenderBusy(from));
        }
        if running.snapshots.contains(&(index, term)) {
            return Err(SnapshotReceiveError::SnapshotBusy { index, term });
        }
        if running.senders.len() >= MAX_INCOMING_STREAMS {
            return Err(SnapshotReceiveError::TooManyStreams);
        }
        running.senders.insert(from);
        running.snapshots.insert((index, term));
        Ok(IncomingSlot {
            streams,
            from,
            snapshot: (index, term),
        })
    }
}

impl Drop for IncomingSlot<'_> {
    fn drop(&mut self) {
        let mut running = lock(self.streams);
        running.senders.remove(&self.from);
        running.snapshots.remove(&self.snapshot);
    }
}

/// Checks a dump as it streams by, without holding it: its size against
/// its descriptor's, and its checksum. A dump (`actors::store::dump`) ends
/// with the big-endian CRC-32 of every byte before it, so the last four
/// bytes are set aside as they arrive and compared at the end with the CRC
/// of the others.
struct DumpCheck {
    /// The size the descriptor announces (at least the checksum's 4).
    expected: u64,
    /// Bytes seen so far.
    received: u64,
    /// CRC-32 of the bytes before the checksum seen so far.
    crc: crc32fast::Hasher,
    /// The dump's last four bytes, as far as they have arrived.
    stated_crc: [u8; 4],
}

impl DumpCheck {
    /// Bytes of the checksum at the end of a dump.
    const CRC_BYTES: u64 = 4;

    fn new(expected: u64) -> Result<Self, SnapshotReceiveError> {
        if expected < Self::CRC_BYTES {
            return Err(SnapshotReceiveError::Descriptor(format!(
                "a dump of {expected} bytes cannot even hold its checksum"
            )));
        }
        Ok(DumpCheck {
            expected,
            received: 0,
            crc: crc32fast::Hasher::new(),
            stated_crc: [0; 4],
        })
    }

    /// Refuses, before it is read, a chunk of `len` bytes that would take
    /// the stream past the announced size.
    fn admit(&self, len: usize) -> Result<(), SnapshotReceiveError> {
        if self.received + len as u64 > self.expected {
            return Err(SnapshotReceiveError::LongerThanDescriptor {
                expected: self.expected,
            });
        }
        Ok(())
    }

    /// Takes the next bytes of the dump (after [`DumpCheck::admit`]).
    fn update(&mut self, chunk: &[u8]) {
        let crc_at = self.expected - Self::CRC_BYTES;
        // The bytes of this chunk before the checksum feed the CRC...
        let body = usize::try_from(crc_at.saturating_sub(self.received))
            .map_or(chunk.len(), |n| n.min(chunk.len()));
        let (body, tail) = chunk.split_at(body);
        self.crc.update(body);
        // ...and the rest are (part of) the checksum.
        if !tail.is_empty() {
            let at = (self.received + body.len() as u64 - crc_at) as usize;
            if let Some(slot) = self.stated_crc.get_mut(at..at + tail.len()) {
                slot.copy_from_slice(tail);
            }
        }
        self.received += chunk.len() as u64;
    }

    /// Once the stream ended: the whole announced size arrived and the
    /// checksum matches.
    fn finish(self) -> Result<(), SnapshotReceiveError> {
        if self.received != self.expected {
            return Err(SnapshotReceiveError::ShorterThanDescriptor {
                received: self.received,
                expected: self.expected,
            });
        }
        let computed = self.crc.finalize();
        let stated = u32::from_be_bytes(self.stated_crc);
        if computed != stated {
            return Err(SnapshotReceiveError::ChecksumMismatch { stated, computed });
        }
        Ok(())
    }
}

/// A snapshot file being received under its partial name. Unless it was
/// completed, dropping it removes the file: a refused or broken stream, or
/// one whose task is aborted at shutdown, leaves nothing behind (and
/// `SnapshotDir::open` removes what a crash leaves).
struct PartialFile {
    path: PathBuf,
    /// `None` only while a write runs on the blocking pool, and after
    /// completion.
    writer: Option<BufWriter<File>>,
    completed: bool,
}

impl PartialFile {
    async fn create(path: PathBuf) -> Result<Self, SnapshotReceiveError> {
        // The guard exists before the file does, so that an error or an
        // abort from here on removes it.
        let mut partial = PartialFile {
            path: path.clone(),
            writer: None,
            completed: false,
        };
        let writer = blocking(move || files::create(&path))
            .await
            .and_then(|created| created)
            .map_err(SnapshotReceiveError::File)?;
        partial.writer = Some(writer);
        Ok(partial)
    }

    /// Appends `chunk[..len]` on the blocking pool; hands the buffer back
    /// for the next chunk.
    async fn append(
        &mut self,
        chunk: Vec<u8>,
        len: usize,
    ) -> Result<Vec<u8>, SnapshotReceiveError> {
        let mut writer = self.writer.take().ok_or_else(closed_writer)?;
        let (writer, chunk, written) = blocking(move || {
            let written = writer.write_all(&chunk[..len]);
            (writer, chunk, written)
        })
        .await
        .map_err(SnapshotReceiveError::File)?;
        self.writer = Some(writer);
        written.map_err(SnapshotReceiveError::File)?;
        Ok(chunk)
    }

    /// Flushes the file, syncs it and gives it its final name (see
    /// `SnapshotDir::complete`).
    async fn complete(
        mut self,
        dir: SnapshotDir,
        index: u64,
        term: u64,
    ) -> Result<(), SnapshotReceiveError> {
        let writer = self.writer.take().ok_or_else(closed_writer)?;
        blocking(move || {
            files::finish(writer)?;
            dir.complete(Side::Incoming, index, term)
        })
        .await
        .and_then(|completed| completed)
        .map_err(SnapshotReceiveError::File)?;
        self.completed = true;
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if self.completed {
            return;
        }
        // Drop what is buffered instead of flushing it into a file about to
        // go (and without a blocking write on this thread).
        if let Some(writer) = self.writer.take() {
            let _ = writer.into_parts();
        }
        // One unlink: quick enough for the async thread.
        match std::fs::remove_file(&self.path) {
            Ok(()) => debug!(path = %self.path.display(), "partial snapshot file removed"),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => warn!(
                path = %self.path.display(), %error,
                "could not remove a partial snapshot file"
            ),
        }
    }
}

fn closed_writer() -> SnapshotReceiveError {
    SnapshotReceiveError::File(io::Error::other("the partial snapshot file is closed"))
}

/// Runs blocking file work on tokio's blocking pool, so a slow disk does
/// not stall the transport's other connections.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| io::Error::other(format!("snapshot file task failed: {error}")))
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, fs, path::Path};

    use actors::store::dump::DumpWriter;
    use tokio::{
        io::AsyncReadExt,
        net::{TcpListener, TcpStream},
        sync::mpsc::{unbounded_channel, UnboundedReceiver},
    };

    use super::{
        super::{
            decode_batch, encode_frames,
            handshake::{self, RaftKey},
            read_frame,
            tests::{
                any_port, cluster, cluster_with, heartbeat, recv_n, seqs, start, start_with,
                wait_until, DEADLINE,
            },
            RaftTransport, SOFT_FRAME_BYTES,
        },
        *,
    };
    use crate::raft::faults::Faults;

    /// Fills `out` with pseudo-random bytes (xorshift), so that a chunk
    /// written at the wrong place cannot go unnoticed.
    fn fill_pseudo_random(out: &mut [u8], state: &mut u64) {
        for word in out.chunks_mut(8) {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
    }

    /// Writes a dump of at least `size` bytes to `out`; answers its size.
    fn write_dump(out: impl Write, size: usize) -> u64 {
        let mut writer = DumpWriter::new(out).expect("dump writer");
        let mut value = vec![0u8; 64 * 1024];
        let mut state = 0x9E37_79B9_7F4A_7C15 ^ size as u64;
        let mut written = 0;
        for key in 0u64.. {
            if written >= size {
                break;
            }
            fill_pseudo_random(&mut value, &mut state);
            writer.record(&key.to_be_bytes(), &value).expect("record");
            written += 8 + value.len() + 8;
        }
        writer.finish().expect("finish the dump").1
    }

    /// A dump of at least `size` bytes, in memory.
    fn dump_bytes(size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        write_dump(&mut out, size);
        out
    }

    /// Writes a dump of at least `size` bytes as `dir`'s outgoing snapshot
    /// at (index, term); answers its size.
    fn write_outgoing(dir: &SnapshotDir, index: u64, term: u64, size: usize) -> u64 {
        let path = dir.file(Side::Outgoing, index, term);
        write_dump(files::create(&path).expect("create the dump"), size)
    }

    /// A `MsgSnapshot` whose data is the descriptor of a `bytes`-byte file.
    fn snapshot_message(from: u64, to: u64, index: u64, term: u64, bytes: u64) -> Message {
        let mut message = Message::default();
        message.set_msg_type(MessageType::MsgSnapshot);
        message.from = from;
        message.to = to;
        message.term = term;
        let snapshot = message.mut_snapshot();
        snapshot.mut_metadata().index = index;
        snapshot.mut_metadata().term = term;
        snapshot.data = SnapshotDescriptor { index, term, bytes }.encode().into();
        message
    }

    /// A whole stream as a sender writes it: magic, message, `chunks`,
    /// end marker.
    fn stream_bytes(message: &Message, chunks: &[&[u8]]) -> Vec<u8> {
        let mut out = stream_header(message).expect("stream header");
        for chunk in chunks {
            out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out.extend_from_slice(&0u32.to_be_bytes());
        out
    }

    /// Writes `bytes` on a new connection to `addr`; answers what came back
    /// before the connection closed.
    async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
        let mut raw = TcpStream::connect(addr).await.expect("connect");
        // Refusing before the end is what some cases are about: the write
        // may fail, and a reset counts as closed.
        let _ = raw.write_all(bytes).await;
        let mut reply = Vec::new();
        let _ = timeout(DEADLINE, raw.read_to_end(&mut reply))
            .await
            .expect("the receiver should close the connection");
        reply
    }

    fn dir_entries(dir: &SnapshotDir) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .expect("read the snapshot dir")
            .map(|entry| {
                entry
                    .expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    /// Shuts the transports down and removes their snapshot directories
    /// (the files of these tests are megabytes).
    async fn stop(transports: &[&RaftTransport]) {
        for transport in transports {
            transport.shutdown().await;
            let _ = fs::remove_dir_all(transport.snapshot_dir().path());
        }
    }

    fn same_file(a: &Path, b: &Path) -> bool {
        fs::read(a).expect("read a") == fs::read(b).expect("read b")
    }

    #[test]
    fn the_dump_check_takes_any_split_and_catches_any_flip() {
        let dump = dump_bytes(1000);
        let len = dump.len() as u64;
        let check = |bytes: &[u8], split: usize| {
            let mut check = DumpCheck::new(len)?;
            for chunk in bytes.chunks(split) {
                check.admit(chunk.len())?;
                check.update(chunk);
            }
            check.finish()
        };
        for split in [1, 2, 3, 4, 5, 7, 64, 1000, dump.len() - 3, dump.len()] {
            assert!(check(&dump, split).is_ok(), "split {split}");
        }
        for at in [
            0,
            16,
            dump.len() / 2,
            dump.len() - 5,
            dump.len() - 4,
            dump.len() - 1,
        ] {
            let mut flipped = dump.clone();
            flipped[at] ^= 0x10;
            assert!(
                matches!(
                    check(&flipped, 3),
                    Err(SnapshotReceiveError::ChecksumMismatch { .. })
                ),
                "flipped byte {at}"
            );
        }
        assert!(matches!(
            check(&dump[..dump.len() - 1], 64),
            Err(SnapshotReceiveError::ShorterThanDescriptor { .. })
        ));
        let mut longer = dump.clone();
        longer.push(0);
        assert!(matches!(
            check(&longer, 64),
            Err(SnapshotReceiveError::LongerThanDescriptor { .. })
        ));
        assert!(DumpCheck::new(3).is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_20_mb_snapshot_arrives_whole_and_reaches_raft() {
        let nodes = cluster(2, &Faults::default()).await;
        let (t1, _) = &nodes[0];
        let (t2, rx2) = &nodes[1];
        let bytes = write_outgoing(t1.snapshot_dir(), 42, 5, 20 * 1024 * 1024);
        let message = snapshot_message(1, 2, 42, 5, bytes);
        t1.send(vec![message.clone()]);

        let received = recv_n(rx2, 1).await;
        assert_eq!(received[0], message);
        // Raft gets the message only once the file is whole: no waiting.
        let incoming = t2.snapshot_dir().file(Side::Incoming, 42, 5);
        assert!(same_file(
            &t1.snapshot_dir().file(Side::Outgoing, 42, 5),
            &incoming
        ));
        assert_eq!(dir_entries(t2.snapshot_dir()), vec!["in-42-5.dump"]);
        // The sender counts once it has read the answer.
        wait_until("the snapshot acknowledged", || {
            t1.stats().snapshots_sent == 1
        })
        .await;
        let sent = t1.stats();
        assert_eq!(sent.snapshot_bytes_sent, bytes);
        assert_eq!(sent.snapshot_send_failures, 0);
        assert_eq!((sent.frames_sent, sent.messages_sent), (0, 0));
        let got = t2.stats();
        assert_eq!(got.snapshots_received, 1);
        assert_eq!(got.snapshot_receive_failures, 0);
        assert_eq!(got.frames_received, 0);
        let reported = t1.take_send_failures();
        assert_eq!(reported.snapshot_finished, vec![2], "raft hears it arrived");
        assert!(reported.snapshot_failed.is_empty() && reported.unreachable.is_empty());
        stop(&[t1, t2]).await;
    }

    /// A peer that is only a listener: the messages of its frame
    /// connections are decoded onto `frames`, and its snapshot streams are
    /// handed over unread on `snapshot_streams`, so that a test can hold a
    /// transfer in the middle.
    struct FakePeer {
        addr: SocketAddr,
        frames: UnboundedReceiver<Message>,
        snapshot_streams: UnboundedReceiver<TcpStream>,
    }

    async fn fake_peer() -> FakePeer {
        let listener = TcpListener::bind(any_port()).await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (frames_tx, frames) = unbounded_channel();
        let (streams_tx, snapshot_streams) = unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let frames_tx = frames_tx.clone();
                let streams_tx = streams_tx.clone();
                tokio::spawn(async move {
                    let mut first = [0u8; 4];
                    if stream.read_exact(&mut first).await.is_err() {
                        return;
                    }
                    if u32::from_be_bytes(first) == SNAPSHOT_STREAM_MAGIC {
                        let _ = streams_tx.send(stream);
                        return;
                    }
                    let mut reader = io::Cursor::new(first).chain(stream);
                    while let Ok(Some(payload)) = read_frame(&mut reader).await {
                        for message in decode_batch(&payload).expect("a valid batch") {
                            let _ = frames_tx.send(message);
                        }
                    }
                });
            }
        });
        FakePeer {
            addr,
            frames,
            snapshot_streams,
        }
    }

    /// Reads a snapshot stream after its magic, as a receiver would, without
    /// answering; answers the message and the file bytes.
    async fn read_stream(stream: &mut TcpStream) -> (Message, Vec<u8>) {
        let read = async {
            let len = stream.read_u32().await.expect("message length") as usize;
            let mut encoded = vec![0u8; len];
            stream.read_exact(&mut encoded).await.expect("message");
            let message = Message::parse_from_bytes(&encoded).expect("a raft message");
            let mut file = Vec::new();
            loop {
                let len = stream.read_u32().await.expect("chunk length") as usize;
                if len == 0 {
                    break;
                }
                assert!(len <= SNAPSHOT_CHUNK_BYTES, "a chunk of {len} bytes");
                let start = file.len();
                file.resize(start + len, 0);
                stream.read_exact(&mut file[start..]).await.expect("chunk");
            }
            (message, file)
        };
        timeout(DEADLINE, read).await.expect("the whole stream")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn heartbeats_flow_while_a_snapshot_streams() {
        let mut peer = fake_peer().await;
        let (t1, _rx1) = start(
            1,
            any_port(),
            HashMap::from([(2, peer.addr)]),
            Faults::default(),
        )
        .await;
        let bytes = write_outgoing(t1.snapshot_dir(), 7, 2, 8 * 1024 * 1024);
        let message = snapshot_message(1, 2, 7, 2, bytes);
        t1.send(vec![message.clone()]);
        let mut snapshot_stream = timeout(DEADLINE, peer.snapshot_streams.recv())
            .await
            .expect("a snapshot stream")
            .expect("the fake peer runs");

        // The stream is held unread, its sender blocked on it or waiting
        // for the answer: the heartbeats still arrive.
        t1.send((0..50).map(|seq| heartbeat(1, 2, seq)).collect());
        let mut heartbeats = Vec::new();
        while heartbeats.len() < 50 {
            let next = timeout(DEADLINE, peer.frames.recv())
                .await
                .expect("heartbeats while the snapshot is held")
                .expect("the fake peer runs");
            heartbeats.push(next);
        }
        assert_eq!(seqs(&heartbeats), (0..50).collect::<Vec<_>>());
        assert_eq!(t1.stats().snapshots_sent, 0);

        // A second snapshot meanwhile is refused and reported, and opens
        // no connection.
        t1.send(vec![snapshot_message(1, 2, 8, 2, bytes)]);
        wait_until("the second snapshot refused", || {
            t1.stats().snapshot_send_failures == 1
        })
        .await;
        assert_eq!(t1.take_send_failures().snapshot_failed, vec![2]);

        // The held stream then completes.
        let (streamed, file) = read_stream(&mut snapshot_stream).await;
        assert_eq!(streamed, message);
        assert!(file == fs::read(t1.snapshot_dir().file(Side::Outgoing, 7, 2)).expect("read"));
        snapshot_stream.write_all(&[ACK]).await.expect("answer");
        wait_until("the snapshot acknowledged", || {
            t1.stats().snapshots_sent == 1
        })
        .await;
        assert_eq!(t1.stats().snapshot_send_failures, 1);
        assert!(peer.snapshot_streams.try_recv().is_err());
        let reported = t1.take_send_failures();
        assert_eq!(
            reported.snapshot_finished,
            vec![2],
            "the held stream finished"
        );
        assert!(reported.snapshot_failed.is_empty());
        stop(&[&t1]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_snapshot_is_reported() {
        let mut peer = fake_peer().await;
        let (t1, _rx1) = start(
            1,
            any_port(),
            HashMap::from([(2, peer.addr)]),
            Faults::default(),
        )
        .await;
        let bytes = write_outgoing(t1.snapshot_dir(), 3, 1, 1000);
        t1.send(vec![snapshot_message(1, 2, 3, 1, bytes)]);
        let mut stream = timeout(DEADLINE, peer.snapshot_streams.recv())
            .await
            .expect("a snapshot stream")
            .expect("the fake peer runs");
        read_stream(&mut stream).await;
        stream.write_all(&[NACK]).await.expect("answer");
        wait_until("the refusal", || t1.stats().snapshot_send_failures == 1).await;
        assert_eq!(t1.take_send_failures().snapshot_failed, vec![2]);
        assert_eq!(t1.stats().snapshots_sent, 0);
        stop(&[&t1]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_snapshot_file_is_reported_and_nothing_is_delivered() {
        let nodes = cluster(2, &Faults::default()).await;
        let (t1, _) = &nodes[0];
        let (t2, rx2) = &nodes[1];
        t1.send(vec![snapshot_message(1, 2, 9, 4, 1000)]);
        wait_until("the failure", || t1.stats().snapshot_send_failures == 1).await;
        assert_eq!(t1.take_send_failures().snapshot_failed, vec![2]);
        assert_eq!(t1.stats().snapshots_sent, 0);

        // Only what is sent next arrives.
        t1.send(vec![heartbeat(1, 2, 77)]);
        assert_eq!(seqs(&recv_n(rx2, 1).await), vec![77]);
        assert!(rx2.try_recv().is_err());
        let got = t2.stats();
        assert_eq!(
            (got.snapshots_received, got.snapshot_receive_failures),
            (0, 0)
        );
        assert!(dir_entries(t2.snapshot_dir()).is_empty());
        stop(&[t1, t2]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refused_streams_leave_no_file_and_reach_no_one() {
        let (t2, rx2) = start(2, any_port(), HashMap::new(), Faults::default()).await;
        let addr = t2.local_addr();
        let dump = dump_bytes(300 * 1024);
        let len = dump.len() as u64;
        let good = snapshot_message(1, 2, 10, 3, len);
        let chunks: Vec<&[u8]> = dump.chunks(64 * 1024).collect();

        let mut flipped = dump.clone();
        flipped[dump.len() / 2] ^= 0x01;
        let mut longer = dump.clone();
        longer.extend_from_slice(&[0; 10]);
        let mut wrong_crc = dump.clone();
        let last = wrong_crc.len() - 1;
        wrong_crc[last] ^= 0x80;
        let mut not_a_snapshot = heartbeat(1, 2, 0);
        not_a_snapshot.mut_snapshot().data = good.get_snapshot().data.clone();
        let mut mismatched = good.clone();
        mismatched.mut_snapshot().mut_metadata().index = 11;
        let mut oversized_chunk = stream_header(&good).expect("header");
        oversized_chunk.extend_from_slice(&(SNAPSHOT_CHUNK_BYTES as u32 + 1).to_be_bytes());
        let mut oversized_message = SNAPSHOT_STREAM_MAGIC.to_be_bytes().to_vec();
        oversized_message.extend_from_slice(&(MAX_SNAPSHOT_MESSAGE_BYTES as u32 + 1).to_be_bytes());
        let mut garbage_message = SNAPSHOT_STREAM_MAGIC.to_be_bytes().to_vec();
        garbage_message.extend_from_slice(&[0, 0, 0, 3, 0xff, 0xff, 0xff]);
        let tiny = snapshot_message(1, 2, 10, 3, 3);

        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("a flipped byte", stream_bytes(&good, &[&flipped])),
            ("a wrong checksum", stream_bytes(&good, &[&wrong_crc])),
            (
                "more bytes than the descriptor",
                stream_bytes(&good, &[&longer]),
            ),
            (
                "fewer bytes than the descriptor",
                stream_bytes(&good, &chunks[1..]),
            ),
            ("a heartbeat", stream_bytes(&not_a_snapshot, &chunks)),
            (
                "another node's",
                stream_bytes(&snapshot_message(1, 99, 10, 3, len), &chunks),
            ),
            (
                "metadata unlike the descriptor",
                stream_bytes(&mismatched, &chunks),
            ),
            (
                "a file too small for a checksum",
                stream_bytes(&tiny, &[&dump[..3]]),
            ),
            ("a chunk over the limit", oversized_chunk),
            ("a message over the limit", oversized_message),
            ("a message that is not protobuf", garbage_message),
        ];
        let count = cases.len() as u64;
        for (case, bytes) in cases {
            let reply = send_raw(addr, &bytes).await;
            assert!(
                reply.is_empty() || reply == [NACK],
                "{case}: answered {reply:?}"
            );
        }
        wait_until("every stream refused", || {
            t2.stats().snapshot_receive_failures == count
        })
        .await;
        assert!(rx2.try_recv().is_err());
        assert!(dir_entries(t2.snapshot_dir()).is_empty());
        assert_eq!(t2.stats().snapshots_received, 0);

        // The listener still serves frames...
        let mut raw = TcpStream::connect(addr).await.expect("connect");
        let (frames, _) = encode_frames(&[heartbeat(1, 2, 5)], SOFT_FRAME_BYTES, MAX_FRAME_BYTES);
        raw.write_all(&frames[0].bytes)
            .await
            .expect("write a frame");
        assert_eq!(seqs(&recv_n(&rx2, 1).await), vec![5]);
        // ...and takes a good stream of the same snapshot.
        assert_eq!(send_raw(addr, &stream_bytes(&good, &chunks)).await, [ACK]);
        assert_eq!(recv_n(&rx2, 1).await, vec![good]);
        assert!(fs::read(t2.snapshot_dir().file(Side::Incoming, 10, 3)).expect("read") == dump);
        assert_eq!(dir_entries(t2.snapshot_dir()), vec!["in-10-3.dump"]);
        assert_eq!(t2.stats().snapshots_received, 1);
        stop(&[&t2]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_stream_at_a_time_per_sender_and_per_snapshot() {
        let (t2, rx2) = start(2, any_port(), HashMap::new(), Faults::default()).await;
        let addr = t2.local_addr();
        let dump = dump_bytes(200 * 1024);
        let good = snapshot_message(1, 2, 20, 4, dump.len() as u64);
        let (head, rest) = dump.split_at(1000);

        // A first stream, held after its first chunk.
        let mut first = TcpStream::connect(addr).await.expect("connect");
        let mut opening = stream_header(&good).expect("header");
        opening.extend_from_slice(&(head.len() as u32).to_be_bytes());
        opening.extend_from_slice(head);
        first.write_all(&opening).await.expect("write");
        let partial = t2.snapshot_dir().partial(Side::Incoming, 20, 4);
        wait_until("the partial file", || partial.exists()).await;

        // Same sender, another snapshot; another sender, same snapshot.
        let other_snapshot = snapshot_message(1, 2, 21, 4, dump.len() as u64);
        let mut other_sender = good.clone();
        other_sender.from = 3;
        for busy in [other_snapshot, other_sender] {
            let reply = send_raw(addr, &stream_bytes(&busy, &[&dump])).await;
            assert!(reply.is_empty() || reply == [NACK], "answered {reply:?}");
        }
        wait_until("both refused", || t2.stats().snapshot_receive_failures == 2).await;

        // The first stream was not disturbed.
        let mut closing = Vec::new();
        for chunk in rest.chunks(64 * 1024) {
            closing.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
            closing.extend_from_slice(chunk);
        }
        closing.extend_from_slice(&0u32.to_be_bytes());
        first.write_all(&closing).await.expect("write");
        let answer = timeout(DEADLINE, first.read_u8()).await.expect("an answer");
        assert_eq!(answer.expect("answer"), ACK);
        assert_eq!(recv_n(&rx2, 1).await, vec![good]);
        assert_eq!(dir_entries(t2.snapshot_dir()), vec!["in-20-4.dump"]);
        stop(&[&t2]).await;
    }

    #[test]
    fn the_magic_is_no_frame_length() {
        // What the frame reader makes of a snapshot stream: a refusal.
        let mut stream: &[u8] = &SNAPSHOT_STREAM_MAGIC.to_be_bytes();
        let read = futures::executor::block_on(read_frame(&mut stream));
        assert!(matches!(read, Err(error) if error.kind() == io::ErrorKind::InvalidData));
    }

    /// Node 1 of `nodes` streams a snapshot of `size` bytes to node 2,
    /// which receives it whole, refusing nothing; stops both.
    async fn a_snapshot_streams(nodes: Vec<(RaftTransport, mpsc::Receiver<Message>)>, size: usize) {
        let (t1, _) = &nodes[0];
        let (t2, rx2) = &nodes[1];
        let bytes = write_outgoing(t1.snapshot_dir(), 4, 2, size);
        let message = snapshot_message(1, 2, 4, 2, bytes);
        t1.send(vec![message.clone()]);
        assert_eq!(recv_n(rx2, 1).await, vec![message]);
        wait_until("the snapshot acknowledged", || {
            t1.stats().snapshots_sent == 1
        })
        .await;
        assert_eq!(t2.stats().snapshots_received, 1);
        assert_eq!(t2.stats().handshakes_refused, 0);
        assert_eq!(dir_entries(t2.snapshot_dir()), vec!["in-4-2.dump"]);
        stop(&[t1, t2]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_snapshot_streams_between_nodes_with_the_secret() {
        let key = |_| Some(RaftKey::from_secret(b"secret"));
        let nodes = cluster_with(2, &Faults::default(), key).await;
        a_snapshot_streams(nodes, 2 * 1024 * 1024).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_snapshot_streams_between_nodes_over_mutual_tls() {
        use super::super::{tests::cluster_secured, tls_tests};
        let ca = tls_tests::TestCa::new("cluster");
        let nodes = cluster_secured(2, &Faults::default(), |_| tls_tests::secured(&ca)).await;
        // Several chunks, and a last one that is not whole.
        a_snapshot_streams(nodes, 3 * SNAPSHOT_CHUNK_BYTES + 12_345).await;
    }

    /// Node 2 with the secret, knowing nodes 1 and 3.
    async fn secret_receiver() -> (RaftTransport, mpsc::Receiver<Message>) {
        let peers = HashMap::from([(1, any_port()), (3, any_port())]);
        let key = Some(RaftKey::from_secret(b"secret"));
        start_with(2, any_port(), peers, Faults::default(), key).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_forged_snapshot_stream_without_handshake_is_refused() {
        let (t2, rx2) = secret_receiver().await;
        let dump = dump_bytes(4000);
        let message = snapshot_message(1, 2, 9, 9, dump.len() as u64);
        let reply = send_raw(t2.local_addr(), &stream_bytes(&message, &[&dump])).await;
        assert!(!reply.contains(&ACK), "answered {reply:?}");
        wait_until("the stream refused", || t2.stats().handshakes_refused == 1).await;
        let stats = t2.stats();
        assert_eq!(stats.snapshots_received, 0);
        assert!(rx2.try_recv().is_err());
        assert!(dir_entries(t2.snapshot_dir()).is_empty());
        stop(&[&t2]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_snapshot_from_another_id_than_the_handshake_is_refused() {
        let (t2, rx2) = secret_receiver().await;
        let dump = dump_bytes(4000);
        let stream_from = |from| {
            stream_bytes(
                &snapshot_message(from, 2, 9, 9, dump.len() as u64),
                &[&dump],
            )
        };
        let send_as = |id, bytes: Vec<u8>| {
            let addr = t2.local_addr();
            async move {
                let mut raw = TcpStream::connect(addr).await.expect("connect");
                handshake::client(&mut raw, &RaftKey::from_secret(b"secret"), id, 2)
                    .await
                    .expect("handshake");
                let _ = raw.write_all(&bytes).await;
                let mut reply = Vec::new();
                let _ = timeout(DEADLINE, raw.read_to_end(&mut reply))
                    .await
                    .expect("the receiver should close the connection");
                reply
            }
        };
        // Authenticated as node 1, the stream claims node 3: refused.
        let reply = send_as(1, stream_from(3)).await;
        assert!(!reply.contains(&ACK), "answered {reply:?}");
        wait_until("the stream refused", || {
            t2.stats().snapshot_receive_failures == 1
        })
        .await;
        assert!(rx2.try_recv().is_err());
        assert!(dir_entries(t2.snapshot_dir()).is_empty());
        // The same stream from the id it authenticated as is taken.
        assert_eq!(send_as(1, stream_from(1)).await, vec![ACK]);
        assert_eq!(recv_n(&rx2, 1).await[0].from, 1);
        stop(&[&t2]).await;
    }
}
