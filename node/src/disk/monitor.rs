//! The disk monitor: a thread of its own reads the data directory's file
//! system and the store's write in progress every [`POLL`] (a `statvfs`
//! on a sick disk may block; the async workers must not), keeps a
//! [`DiskCore`] and publishes its status; it logs each change of state
//! once. Two things act on the status:
//!
//! - [`hand_over_when_short`]: a Raft leader whose disk is short hands
//!   leadership to a follower, so that a node with room fires;
//! - the thread itself, when the store is wedged and room is back: it
//!   starts the process over in place (same pid, arguments and
//!   environment), since sled cannot finish or drop a wedged write.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    thread,
    time::Duration,
};

use actors::store::StateMachine;
use protocol::api::{StorageState, StorageStatus};
use tokio::sync::watch;

use super::{
    phase::{DiskCore, Space, Writes},
    SpaceFloor,
};
use crate::{metrics::Metrics, raft::engine::EngineHandle};

/// How often the disk is read: a write refused for want of room is
/// refused within this of the disk filling.
pub const POLL: Duration = Duration::from_millis(200);

/// How often a leader short of room tries to hand leadership over.
const HANDOVER_EVERY: Duration = Duration::from_secs(5);
/// How long one handover may take.
const HANDOVER_WAIT: Duration = Duration::from_secs(3);

/// The disk's status as the monitor last published it.
#[derive(Clone, Debug)]
pub struct DiskHandle {
    status: watch::Receiver<StorageStatus>,
}

impl DiskHandle {
    pub fn status(&self) -> StorageStatus {
        self.status.borrow().clone()
    }

    /// `f` of the status, without copying it (every proposal asks).
    pub fn with_status<T>(&self, f: impl FnOnce(&StorageStatus) -> T) -> T {
        f(&self.status.borrow())
    }

    pub fn changes(&self) -> watch::Receiver<StorageStatus> {
        self.status.clone()
    }

    /// A handle fed by `status` instead of a monitor (tests).
    pub fn fed_by(status: watch::Receiver<StorageStatus>) -> Self {
        Self { status }
    }
}

/// What the monitor watches and what it may do.
pub struct MonitorSettings {
    /// The data directory; its file system is the one read.
    pub dir: PathBuf,
    pub floor: SpaceFloor,
    /// Whether a wedged store with room again starts the process over.
    /// The `server` and `dev` commands do; a node started inside another
    /// program (a test) must not replace that program.
    pub start_over: bool,
}

/// Starts the monitor thread; the first reading is taken before it
/// returns.
pub fn start(
    settings: MonitorSettings,
    store: Arc<StateMachine>,
    metrics: Metrics,
) -> anyhow::Result<DiskHandle> {
    let mut core = DiskCore::new(settings.floor);
    core.observe(read_space(&settings.dir), writes(&store));
    if core.state() != StorageState::Ok {
        log_change(StorageState::Ok, &core);
    }
    let (tx, rx) = watch::channel(core.status());
    thread::Builder::new()
        .name("cronmesh-disk".into())
        .spawn(move || loop {
            thread::sleep(POLL);
            let space = read_space(&settings.dir);
            if let Some(before) = core.observe(space, writes(&store)) {
                log_change(before, &core);
                if core.state() == StorageState::Stalled {
                    metrics.storage_error("stalled");
                }
            }
            if settings.start_over && core.room_to_start_over() {
                tracing::error!("room is back but the store is wedged; starting the node over");
                let error = start_over();
                tracing::error!(error = %error, "could not start the node over; restart it");
            }
            if tx.send(core.status()).is_err() {
                break;
            }
        })?;
    Ok(DiskHandle { status: rx })
}

/// How the store's writes are going now.
fn writes(store: &StateMachine) -> Writes {
    let watch = store.write_watch();
    Writes {
        going_for: watch.stuck_for(),
        failure: watch.failure(),
    }
}

/// Free and total bytes of the file system holding `dir`.
fn read_space(dir: &Path) -> Result<Space, String> {
    let stats = nix::sys::statvfs::statvfs(dir).map_err(|e| e.to_string())?;
    let block = stats.fragment_size();
    Ok(Space {
        free: stats.blocks_available().saturating_mul(block),
        total: stats.blocks().saturating_mul(block),
    })
}

fn log_change(before: StorageState, core: &DiskCore) {
    let status = core.status();
    let (free, floor) = (status.free_bytes, status.floor_bytes);
    let reason = status.reason.unwrap_or_default();
    match core.state() {
        StorageState::Ok => tracing::info!(
            free_bytes = free,
            floor_bytes = floor,
            was = before.as_str(),
            "storage: room again; every write is taken"
        ),
        StorageState::LowSpace => {
            tracing::warn!(free_bytes = free, floor_bytes = floor, "storage: {reason}")
        }
        StorageState::Critical | StorageState::Stalled => {
            tracing::error!(free_bytes = free, floor_bytes = floor, "storage: {reason}")
        }
    }
}

/// Replaces this process with a new run of the same program, arguments
/// and environment. Returns only if that failed.
fn start_over() -> std::io::Error {
    use std::os::unix::process::CommandExt;
    match std::env::current_exe() {
        Ok(program) => std::process::Command::new(program)
            .args(std::env::args_os().skip(1))
            .exec(),
        Err(e) => e,
    }
}

/// While this node's disk is short of room and it leads, it hands
/// leadership to a follower every [`HANDOVER_EVERY`].
pub async fn hand_over_when_short(disk: DiskHandle, engine: EngineHandle) {
    let mut changes = disk.changes();
    let mut failures_told = false;
    loop {
        let short = changes.wait_for(|s| s.state != StorageState::Ok).await;
        if short.is_err() {
            return;
        }
        let leads = engine.leader.borrow().leader_id == Some(engine.node_id);
        if leads {
            match engine.transfer_leadership(HANDOVER_WAIT).await {
                Ok(Some(to)) => {
                    tracing::warn!(to, "storage is short of room: leadership handed over");
                    failures_told = false;
                }
                Ok(None) => {}
                // Told once per stretch of failures, not every attempt.
                Err(e) if !failures_told => {
                    tracing::warn!(error = %e, "storage is short of room, but leadership could not be handed over; trying again");
                    failures_told = true;
                }
                Err(_) => {}
            }
        }
        tokio::time::sleep(HANDOVER_EVERY).await;
    }
}
