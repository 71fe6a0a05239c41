//! `GET /v1/backup`: the whole state as of one applied index, streamed.
//!
//! The state is read from a point-in-time view (applies wait only while it
//! begins) by a thread of its own that writes the dump in chunks into a
//! small channel; the answer's body reads from it. Memory stays flat in the
//! size of the state, and a client that goes away stops the thread at its
//! next chunk. The applied index travels in `x-cronmesh-applied-index`; the
//! dump's own end marker and checksum tell a client whether it got it all.

use std::{
    io::{self, Write},
    sync::{Arc, LazyLock},
};

use actix_web::{web, HttpResponse};
use bytes::Bytes;
use tokio::sync::{mpsc, Semaphore};

use super::{
    error::{ApiError, ApiResult},
    AppState,
};

/// Bytes per chunk of the answer.
const CHUNK_BYTES: usize = 256 * 1024;
/// Chunks written ahead of the client.
const CHUNKS_AHEAD: usize = 4;
/// Backups written at once; more get 503.
const AT_ONCE: usize = 2;

static RUNNING: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(AT_ONCE)));

pub async fn backup(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let running = RUNNING
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::unavailable("backups are being written already; retry later"))?;
    let store = state.store.clone();
    let view = web::block(move || store.view())
        .await
        .map_err(|e| ApiError::internal(format!("the backup did not begin: {e}")))?
        .map_err(|e| ApiError::internal(format!("the backup did not begin: {e}")))?;
    let index = view.index();
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(CHUNKS_AHEAD);
    std::thread::Builder::new()
        .name("cronmesh-backup".into())
        .spawn(move || {
            let _running = running;
            let mut out = ChunkSender {
                tx: tx.clone(),
                buffer: Vec::with_capacity(CHUNK_BYTES),
            };
            let written = view
                .write_dump(&mut out, |_, _| true)
                .map_err(io::Error::other)
                .and_then(|_| out.flush());
            if let Err(e) = written {
                tracing::warn!(error = %e, "backup stopped before its end");
                let _ = tx.blocking_send(Err(e));
            }
        })
        .map_err(|e| ApiError::internal(format!("cannot start the backup: {e}")))?;
    let body = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            "content-disposition",
            "attachment; filename=\"cronmesh.backup\"",
        ))
        .insert_header(("x-cronmesh-applied-index", index.to_string()))
        .streaming(body))
}

/// Writes into the answer's channel a chunk at a time; fails once the
/// answer is gone.
struct ChunkSender {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl ChunkSender {
    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK_BYTES),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChunkSender {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = CHUNK_BYTES - self.buffer.len();
        let taken = bytes.len().min(room);
        self.buffer.extend_from_slice(&bytes[..taken]);
        if self.buffer.len() >= CHUNK_BYTES {
            self.send_buffer()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}
