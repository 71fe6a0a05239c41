//! The raft log and raft metadata kept in sled: [`RaftStorage`], the
//! raft-rs [`Storage`](::raft::Storage) of a scheduler node.
//!
//! The log and the metadata live in two trees of the node's one sled
//! database (the state machine uses the same `Db`), so one process has one
//! database, one lock file and one `sync` to make everything durable:
//!
//! - `raft-log`: key = entry index as 8 big-endian bytes (so sled's key order
//!   is log order and a range scan is a slice of the log), value = the
//!   protobuf-encoded [`Entry`].
//! - `raft-meta`: `hard_state` and `conf_state` (protobuf), and `snapshot`
//!   (16 bytes: index and term, big-endian) = the point up to which the log
//!   has been compacted or replaced by an installed snapshot.
//!
//! The log is always the contiguous range `snapshot index + 1 ..= last
//! index`; the term of the snapshot index is kept in the metadata so raft can
//! still match against the entry just before the first one (raft-rs'
//! "dummy entry", see its `MemStorage`).
//!
//! Writes that touch several records are atomic: [`RaftStorage::append`]
//! is one sled batch on the log tree, and [`RaftStorage::compact`] /
//! [`RaftStorage::apply_snapshot`] are one sled transaction over both trees,
//! so a crash never leaves a log that disagrees with its snapshot point.
//! Durability (surviving power loss rather than a process crash) is a
//! separate, explicit step: [`RaftStorage::sync`] with a [`Durability`].

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use ::raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use ::raft::{Error as RaftError, GetEntriesContext, RaftState, StorageError};
use anyhow::{anyhow, bail, Context as _};
use protobuf::Message as _;
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

/// Name of the sled tree holding the log entries.
const LOG_TREE: &str = "raft-log";
/// Name of the sled tree holding hard state, conf state and snapshot point.
const META_TREE: &str = "raft-meta";
/// `raft-meta` key of the protobuf [`HardState`].
const HARD_STATE_KEY: &[u8] = b"hard_state";
/// `raft-meta` key of the protobuf [`ConfState`].
const CONF_STATE_KEY: &[u8] = b"conf_state";
/// `raft-meta` key of the snapshot point: index then term, 8 big-endian bytes each.
const SNAPSHOT_KEY: &[u8] = b"snapshot";

/// How hard [`RaftStorage::sync`] works to make the written raft state durable.
///
/// Raft may only acknowledge (vote, answer an append, count itself in a
/// quorum) what is durable, and an API write is only acknowledged once a
/// quorum has it (invariant 4), so this choice is the node's real promise and
/// is made explicit in the configuration rather than hidden.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// sled's `flush`: the data is written to the file and sled waits for the
    /// page cache write-back of that range (`sync_file_range`). Survives a
    /// crash or kill -9 of the process; does not flush the disk's cache or
    /// the file's metadata, so a power loss may lose it. The default: it is
    /// what sled itself calls durable, and a minority of nodes losing power
    /// at once is what raft already tolerates.
    #[default]
    Flush,
    /// sled's `flush`, then `fdatasync` of sled's log file (and of any new
    /// blob files and their directory): survives power loss of every node.
    Fsync,
    /// Nothing: the data reaches the file whenever sled's background flusher
    /// runs (every 500 ms by default). For tests and benchmarks only; a
    /// crash can lose acknowledged writes.
    None,
}

/// Where [`RaftStorage`]'s [`Storage::snapshot`](::raft::Storage::snapshot)
/// gets a snapshot: the snapshot builder.
///
/// The storage only knows the log; a snapshot sent to a lagging follower is
/// the state machine's contents, which the builder writes to a file in the
/// background (see `raft::snapshot`).
pub trait SnapshotSource: Send + Sync {
    /// A snapshot for peer `to` at index `oldest` or later, whose metadata
    /// names the members as of its index; `None` while none is at hand (one
    /// is then being made, and raft asks again). `log` is the log as it is
    /// now, for a snapshot that begins now.
    fn snapshot_for(
        &self,
        to: u64,
        oldest: u64,
        log: &LogView<'_>,
    ) -> anyhow::Result<Option<Snapshot>>;
}

/// What a snapshot source may need of the log when a snapshot begins: the
/// members now, and the term of an entry (`None`: compacted or not yet
/// written).
pub struct LogView<'a> {
    pub conf_state: &'a ConfState,
    pub term_of: &'a dyn Fn(u64) -> Option<u64>,
}

/// The raft-rs [`Storage`](::raft::Storage) of a node, over two trees of
/// the node's sled database (see the module docs for the layout).
///
/// A cheap handle: clones share one state, so the raft engine gives one to
/// `RawNode` (which reads through the trait) and keeps one to write with.
/// Metadata reads are answered from memory; only entry reads touch sled.
#[derive(Clone)]
pub struct RaftStorage {
    /// Shared by all clones.
    inner: Arc<Inner>,
}

/// What the clones of a [`RaftStorage`] share.
struct Inner {
    /// The database, kept for `flush` (durability is database-wide in sled).
    db: sled::Db,
    /// `raft-log`: the entries.
    log: sled::Tree,
    /// `raft-meta`: hard state, conf state, snapshot point.
    meta: sled::Tree,
    /// In-memory copy of all metadata, so raft's frequent calls to
    /// `first_index`, `last_index`, `term(last)` and `initial_state` never
    /// touch disk. Writers hold the write lock across the disk write and the
    /// cache update, so readers never see the two disagree.
    cache: RwLock<Cache>,
    /// The state machine, for `Storage::snapshot`; set once the state
    /// machine exists (it is created after the storage).
    source: RwLock<Option<Arc<dyn SnapshotSource>>>,
    /// Files that `Durability::Fsync` fdatasyncs, reached past sled's API.
    fsync: Mutex<FsyncTargets>,
}

/// The in-memory copy of the raft metadata.
#[derive(Clone, Debug, Default)]
struct Cache {
    /// Last written hard state (term, vote, commit).
    hard_state: HardState,
    /// Last written conf state (voters, learners, joint config).
    conf_state: ConfState,
    /// Index of the last compaction or installed snapshot: the log starts
    /// right after it. 0 for a fresh log.
    snapshot_index: u64,
    /// Term of the entry at `snapshot_index`, kept because raft matches the
    /// entry before the first one it sends.
    snapshot_term: u64,
    /// Index of the last entry, or `snapshot_index` when the log is empty.
    last_index: u64,
    /// Term of the last entry (or `snapshot_term`): raft asks for it on
    /// every append and every vote.
    last_term: u64,
    /// Whether a hard state or conf state has ever been written.
    initialized: bool,
    /// Bytes of entries appended since [`RaftStorage::take_appended_bytes`]
    /// was last called: large entries fill a byte-bounded tail long before
    /// a count of entries says to compact.
    appended_bytes: u64,
}

impl Cache {
    /// The first index that `entries` can return.
    fn first_index(&self) -> u64 {
        self.snapshot_index + 1
    }
}

/// sled's own files, opened a second time so that `Durability::Fsync` can
/// `fdatasync` them: sled 0.34's `flush` only calls `sync_file_range`, and
/// its API gives no way to fsync. On Linux `fdatasync` acts on the file, not
/// on the descriptor, so a descriptor of our own flushes what sled wrote
/// through its own descriptor.
struct FsyncTargets {
    /// The database directory (sled's `Config::path`).
    dir: PathBuf,
    /// sled's log file (`<dir>/db`), or why it could not be opened (then
    /// `Durability::Fsync` fails loudly instead of pretending).
    log_file: Result<File, String>,
    /// Whether the directory itself has been fsynced once, which makes the
    /// entries of `db`, `conf` and `blobs` durable when they were just created.
    dir_synced: bool,
    /// Blob files (values too large for sled's log, written as separate
    /// files that sled never fsyncs) already fdatasynced.
    synced_blobs: HashSet<OsString>,
}

impl FsyncTargets {
    /// Finds sled's files for `db`.
    fn new(db: &sled::Db) -> Self {
        // `Db::context` and `get_path` are public but `#[doc(hidden)]` in
        // sled 0.34.7 (the workspace pins 0.34.7 through Cargo.lock); sled
        // keeps its log in the file `db` of that directory and large values
        // in `blobs/`.
        let dir = db.context.get_path();
        let path = dir.join("db");
        let log_file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open sled's log file {}: {e}", path.display()));
        Self {
            dir,
            log_file,
            dir_synced: false,
            synced_blobs: HashSet::new(),
        }
    }

    /// `fdatasync`s sled's log file, the blob files not synced yet (and then
    /// their directory), and the database directory the first time.
    fn sync(&mut self) -> anyhow::Result<()> {
        let file = self
            .log_file
            .as_ref()
            .map_err(|e| anyhow!("durability fsync is not available: {e}"))?;
        file.sync_data()
            .context("fdatasync of sled's log file failed")?;

        let blob_dir = self.dir.join("blobs");
        match std::fs::read_dir(&blob_dir) {
            Ok(listing) => {
                let mut present = HashSet::new();
                let mut new_blob = false;
                for item in listing {
                    let item = item.with_context(|| format!("listing {}", blob_dir.display()))?;
                    let name = item.file_name();
                    if !self.synced_blobs.contains(&name) {
                        match File::open(item.path()) {
                            Ok(f) => f.sync_data().with_context(|| {
                                format!("fdatasync of {} failed", item.path().display())
                            })?,
                            // Removed by sled's blob GC in the meantime: nothing to keep.
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                            Err(e) => {
                                return Err(e)
                                    .with_context(|| format!("opening {}", item.path().display()))
                            }
                        }
                        new_blob = true;
                    }
                    present.insert(name);
                }
                if new_blob {
                    sync_dir(&blob_dir)?;
                }
                self.synced_blobs = present;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("listing {}", blob_dir.display())),
        }

        if !self.dir_synced {
            sync_dir(&self.dir)?;
            self.dir_synced = true;
        }
        Ok(())
    }
}

/// fsyncs a directory so that the names of the files in it are durable.
fn sync_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("fsync of directory {} failed", dir.display()))
}

/// A `raft::Error` for a record that cannot be what it claims to be.
fn corrupt(msg: String) -> RaftError {
    RaftError::Store(StorageError::Other(msg.into()))
}

/// A `raft::Error` for a failure of sled itself.
fn sled_err(what: &str, e: sled::Error) -> RaftError {
    RaftError::Store(StorageError::Other(
        format!("raft storage: {what}: {e}").into(),
    ))
}

/// The `raft-log` key of an index.
fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The index of a `raft-log` key.
fn key_index(key: &[u8]) -> ::raft::Result<u64> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| {
        corrupt(format!(
            "raft log key {key:02x?} is {} bytes, expected 8",
            key.len()
        ))
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// Decodes the entry stored under `index`, checking that it is that entry.
fn decode_entry(index: u64, bytes: &[u8]) -> ::raft::Result<Entry> {
    let entry = Entry::parse_from_bytes(bytes)
        .map_err(|e| corrupt(format!("raft log entry {index} cannot be decoded: {e}")))?;
    if entry.index != index {
        return Err(corrupt(format!(
            "raft log key {index} holds an entry with index {}",
            entry.index
        )));
    }
    Ok(entry)
}

/// Encodes a protobuf record for sled.
fn encode<M: protobuf::Message>(what: &str, m: &M) -> anyhow::Result<Vec<u8>> {
    m.write_to_bytes()
        .with_context(|| format!("encoding the raft {what}"))
}

/// Decodes a protobuf metadata record.
fn decode_meta<M: protobuf::Message>(what: &str, bytes: &[u8]) -> ::raft::Result<M> {
    M::parse_from_bytes(bytes)
        .map_err(|e| corrupt(format!("raft {what} record cannot be decoded: {e}")))
}

/// Encodes the snapshot point (index, term).
fn encode_snapshot_point(index: u64, term: u64) -> [u8; 16] {
    let mut out = [0; 16];
    out[..8].copy_from_slice(&index.to_be_bytes());
    out[8..].copy_from_slice(&term.to_be_bytes());
    out
}

/// Decodes the snapshot point (index, term).
fn decode_snapshot_point(bytes: &[u8]) -> ::raft::Result<(u64, u64)> {
    let bytes: [u8; 16] = bytes.try_into().map_err(|_| {
        corrupt(format!(
            "raft snapshot point record is {} bytes, expected 16",
            bytes.len()
        ))
    })?;
    let mut index = [0; 8];
    let mut term = [0; 8];
    index.copy_from_slice(&bytes[..8]);
    term.copy_from_slice(&bytes[8..]);
    Ok((u64::from_be_bytes(index), u64::from_be_bytes(term)))
}

/// Applies a log batch and a meta batch in one sled transaction.
fn transact(
    log: &sled::Tree,
    meta: &sled::Tree,
    log_batch: &sled::Batch,
    meta_batch: &sled::Batch,
) -> anyhow::Result<()> {
    (log, meta)
        .transaction(|(log, meta)| {
            log.apply_batch(log_batch)?;
            meta.apply_batch(meta_batch)?;
            Ok::<(), ConflictableTransactionError<()>>(())
        })
        .map_err(|e| match e {
            TransactionError::Storage(e) => anyhow::Error::new(sled_err("transaction", e)),
            TransactionError::Abort(()) => anyhow!("raft storage: transaction aborted"),
        })
}

impl RaftStorage {
    /// Opens (or creates) the raft state inside `db`.
    ///
    /// Reads the metadata into memory and checks the log against it: the
    /// first stored entry must follow the snapshot point, the entries must be
    /// contiguous and the last one must decode. Fails (rather than starting
    /// raft on a damaged log) if any of that does not hold.
    pub fn open(db: &sled::Db) -> anyhow::Result<Self> {
        let log = db
            .open_tree(LOG_TREE)
            .context("opening the raft-log tree")?;
        let meta = db
            .open_tree(META_TREE)
            .context("opening the raft-meta tree")?;
        let mut cache = Cache::default();

        let get = |key: &[u8]| {
            meta.get(key)
                .map_err(|e| sled_err("reading raft metadata", e))
        };
        if let Some(bytes) = get(HARD_STATE_KEY)? {
            cache.hard_state = decode_meta("hard state", &bytes)?;
            cache.initialized = true;
        }
        if let Some(bytes) = get(CONF_STATE_KEY)? {
            cache.conf_state = decode_meta("conf state", &bytes)?;
            cache.initialized = true;
        }
        if let Some(bytes) = get(SNAPSHOT_KEY)? {
            (cache.snapshot_index, cache.snapshot_term) = decode_snapshot_point(&bytes)?;
        }

        // Entries at or below the snapshot point are dead: every write that
        // moves the point removes them in the same transaction, so finding
        // some means a write path outside this type; drop them.
        let stale: Vec<sled::IVec> = log
            .range(..=log_key(cache.snapshot_index))
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|e| sled_err("scanning the raft log", e))?;
        if !stale.is_empty() {
            tracing::warn!(
                count = stale.len(),
                snapshot_index = cache.snapshot_index,
                "raft log held entries at or below its snapshot point; removing them"
            );
            let mut batch = sled::Batch::default();
            for key in stale {
                batch.remove(key);
            }
            log.apply_batch(batch)
                .map_err(|e| sled_err("cleaning the raft log", e))?;
        }

        cache.last_index = cache.snapshot_index;
        cache.last_term = cache.snapshot_term;
        let mut expected = cache.first_index();
        for key in log.iter().keys() {
            let key = key.map_err(|e| sled_err("scanning the raft log", e))?;
            let index = key_index(&key)?;
            if index != expected {
                bail!(corrupt(format!(
                    "raft log is not contiguous: expected entry {expected}, found {index} \
                     (snapshot index {})",
                    cache.snapshot_index
                )));
            }
            expected += 1;
        }
        if expected > cache.first_index() {
            let last = expected - 1;
            let bytes = log
                .get(log_key(last))
                .map_err(|e| sled_err("reading the raft log", e))?
                .ok_or_else(|| corrupt(format!("raft log entry {last} vanished while opening")))?;
            let entry = decode_entry(last, &bytes)?;
            cache.last_index = last;
            cache.last_term = entry.term;
        }

        Ok(Self {
            inner: Arc::new(Inner {
                db: db.clone(),
                log,
                meta,
                cache: RwLock::new(cache),
                source: RwLock::new(None),
                fsync: Mutex::new(FsyncTargets::new(db)),
            }),
        })
    }

    /// The cache, for reading. A poisoned lock is recovered: the cache is
    /// only ever updated after a successful disk write, by plain assignments.
    fn rl(&self) -> RwLockReadGuard<'_, Cache> {
        self.inner
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The cache, for writing (held across the disk write it mirrors).
    fn wl(&self) -> RwLockWriteGuard<'_, Cache> {
        self.inner
            .cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// True once a hard state or conf state has been written (the node has
    /// been part of a cluster).
    ///
    /// Decides whether a starting node bootstraps (first start of a member
    /// listed in `--peers`) or resumes from what it has; a node that joins an
    /// existing cluster starts uninitialized and becomes initialized with the
    /// first hard state raft hands it.
    pub fn is_initialized(&self) -> bool {
        self.rl().initialized
    }

    /// First start of a single voter whose state machine already holds a
    /// state that no log entry made (a restored backup): the log starts
    /// after a snapshot point at `index` (and term `index`), so a follower
    /// with an empty log is sent a snapshot rather than entries.
    pub fn bootstrap_at(&self, voters: &[u64], index: u64) -> anyhow::Result<()> {
        if self.is_initialized() {
            bail!("raft storage is already initialized; refusing to bootstrap it again");
        }
        let mut point = Snapshot::default();
        let meta = point.mut_metadata();
        meta.index = index;
        meta.term = index;
        meta.mut_conf_state().voters = voters.to_vec();
        self.apply_snapshot(&point)
    }

    /// First start of a cluster member listed in `--peers`: conf state with
    /// these voters, nothing else.
    ///
    /// Every initial member must bootstrap with the same voters: raft then
    /// starts from an empty log with index 0 as the common point. Fails if
    /// the storage is already initialized (bootstrapping twice would let a
    /// node forget its votes) or `voters` is empty.
    pub fn bootstrap(&self, voters: &[u64]) -> anyhow::Result<()> {
        if voters.is_empty() {
            bail!("raft bootstrap needs at least one voter");
        }
        let mut cache = self.wl();
        if cache.initialized {
            bail!("raft storage is already initialized; refusing to bootstrap it again");
        }
        let cs = ConfState {
            voters: voters.to_vec(),
            ..Default::default()
        };
        self.inner
            .meta
            .insert(CONF_STATE_KEY, encode("conf state", &cs)?)
            .map_err(|e| sled_err("writing the conf state", e))?;
        cache.conf_state = cs;
        cache.initialized = true;
        Ok(())
    }

    /// Appends entries, first truncating any stored entries at or after
    /// `entries[0].index` (raft may overwrite an uncommitted suffix).
    ///
    /// Errors if `entries[0].index` would leave a gap after the last entry,
    /// would overwrite compacted or committed entries, or if `entries` are
    /// not contiguous. The truncation and the new entries are one atomic
    /// sled batch. Not durable until [`sync`](Self::sync).
    ///
    /// For one `Ready`, call this before [`set_hard_state`](Self::set_hard_state):
    /// the new entries always lie above the stored commit index, and a
    /// commit index written first could cover them.
    pub fn append(&self, entries: &[Entry]) -> anyhow::Result<()> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        for (offset, e) in entries.iter().enumerate() {
            if e.index != first.index + offset as u64 {
                bail!(
                    "raft append: entries are not contiguous: entry {offset} has index {}, \
                     expected {}",
                    e.index,
                    first.index + offset as u64
                );
            }
        }
        let mut cache = self.wl();
        if first.index < cache.first_index() {
            bail!(
                "raft append at {} would overwrite compacted entries (first index {})",
                first.index,
                cache.first_index()
            );
        }
        if first.index > cache.last_index + 1 {
            bail!(
                "raft append at {} would leave a gap after the last entry {}",
                first.index,
                cache.last_index
            );
        }
        if first.index <= cache.hard_state.commit {
            bail!(
                "raft append at {} would overwrite committed entries (commit {})",
                first.index,
                cache.hard_state.commit
            );
        }
        let mut batch = sled::Batch::default();
        for e in entries {
            let bytes = encode("log entry", e)?;
            cache.appended_bytes += bytes.len() as u64;
            batch.insert(&log_key(e.index), bytes);
        }
        for index in last.index + 1..=cache.last_index {
            batch.remove(&log_key(index));
        }
        self.inner
            .log
            .apply_batch(batch)
            .map_err(|e| sled_err("appending to the raft log", e))?;
        cache.last_index = last.index;
        cache.last_term = last.term;
        Ok(())
    }

    /// Writes the hard state (term, vote, commit) raft handed out in a `Ready`.
    pub fn set_hard_state(&self, hs: &HardState) -> anyhow::Result<()> {
        let mut cache = self.wl();
        self.write_hard_state(&mut cache, hs.clone())
    }

    /// Writes a new commit index (from a `LightReady`), keeping term and vote.
    pub fn set_commit(&self, commit: u64) -> anyhow::Result<()> {
        let mut cache = self.wl();
        let hs = HardState {
            commit,
            ..cache.hard_state.clone()
        };
        self.write_hard_state(&mut cache, hs)
    }

    /// Writes `hs` and mirrors it in the locked cache.
    fn write_hard_state(&self, cache: &mut Cache, hs: HardState) -> anyhow::Result<()> {
        self.inner
            .meta
            .insert(HARD_STATE_KEY, encode("hard state", &hs)?)
            .map_err(|e| sled_err("writing the hard state", e))?;
        cache.hard_state = hs;
        cache.initialized = true;
        Ok(())
    }

    /// Writes the conf state that applying a conf change produced.
    pub fn set_conf_state(&self, cs: &ConfState) -> anyhow::Result<()> {
        let mut cache = self.wl();
        self.inner
            .meta
            .insert(CONF_STATE_KEY, encode("conf state", cs)?)
            .map_err(|e| sled_err("writing the conf state", e))?;
        cache.conf_state = cs.clone();
        cache.initialized = true;
        Ok(())
    }

    /// The last written hard state (from memory).
    pub fn hard_state(&self) -> HardState {
        self.rl().hard_state.clone()
    }

    /// The last written conf state (from memory).
    pub fn conf_state(&self) -> ConfState {
        self.rl().conf_state.clone()
    }

    /// The index and term of the last compaction or installed snapshot: the
    /// log starts right after it. (0, 0) for a log never compacted.
    pub fn snapshot_point(&self) -> (u64, u64) {
        let cache = self.rl();
        (cache.snapshot_index, cache.snapshot_term)
    }

    /// Bytes of entries appended since the last call (a hint for when to
    /// look at compaction; appends that replaced entries count in full).
    pub fn take_appended_bytes(&self) -> u64 {
        std::mem::take(&mut self.wl().appended_bytes)
    }

    /// The first index of the longest run of entries ending at `last` whose
    /// encoded bytes stay within `max_bytes` (`last + 1` when even the
    /// entry at `last` alone is larger). Reads the entries' sizes from the
    /// newest back, so it costs the entries it keeps.
    pub fn first_within_bytes(&self, last: u64, max_bytes: u64) -> anyhow::Result<u64> {
        let first = self.rl().first_index();
        let mut kept = 0u64;
        let mut start = last + 1;
        for item in self.inner.log.range(log_key(first)..=log_key(last)).rev() {
            let (key, value) = item.map_err(|e| sled_err("raft log read", e))?;
            kept += value.len() as u64;
            if kept > max_bytes {
                break;
            }
            start = key_index(&key)?;
        }
        Ok(start)
    }

    /// Drops log entries up to and including `index` (which must be <= the
    /// applied index the caller passes in, and > current snapshot index);
    /// remembers (index, term of index) as the snapshot point.
    ///
    /// An `index` at or below the current snapshot point is a no-op (a
    /// snapshot installed meanwhile already compacted further). Errors if
    /// `index` is above the last entry or above the stored commit index (a
    /// state machine cannot have applied what is not committed, and
    /// uncommitted entries may still be needed by raft). One sled
    /// transaction: the entries and the new point change together.
    pub fn compact(&self, index: u64) -> anyhow::Result<()> {
        let mut cache = self.wl();
        if index <= cache.snapshot_index {
            return Ok(());
        }
        if index > cache.last_index {
            bail!(
                "raft compact to {index}: beyond the last entry {}",
                cache.last_index
            );
        }
        if index > cache.hard_state.commit {
            bail!(
                "raft compact to {index}: beyond the commit index {}",
                cache.hard_state.commit
            );
        }
        let term = self.term_locked(&cache, index)?;
        let mut log_batch = sled::Batch::default();
        for i in cache.first_index()..=index {
            log_batch.remove(&log_key(i));
        }
        let mut meta_batch = sled::Batch::default();
        meta_batch.insert(SNAPSHOT_KEY, &encode_snapshot_point(index, term));
        transact(&self.inner.log, &self.inner.meta, &log_batch, &meta_batch)?;
        cache.snapshot_index = index;
        cache.snapshot_term = term;
        if cache.last_index == index {
            cache.last_term = term;
        }
        Ok(())
    }

    /// Installs a snapshot received from the leader: sets snapshot metadata,
    /// conf state, commit (`hard_state.commit = max(commit, snapshot
    /// index)`, and the term likewise), and clears the log (first index
    /// becomes snapshot index + 1). The caller installs the state machine
    /// from the snapshot's file first (see the engine's `install`), so a
    /// crash between the two leaves the state ahead of the log, never
    /// behind it.
    ///
    /// A snapshot at or below the current snapshot point fails with a
    /// wrapped `raft::Error::Store(StorageError::SnapshotOutOfDate)`
    /// (`downcast_ref::<raft::Error>()` finds it). One sled transaction.
    pub fn apply_snapshot(&self, snapshot: &Snapshot) -> anyhow::Result<()> {
        let meta = snapshot.get_metadata();
        let (index, term) = (meta.index, meta.term);
        let mut cache = self.wl();
        if index < cache.first_index() {
            return Err(anyhow::Error::new(RaftError::Store(
                StorageError::SnapshotOutOfDate,
            )))
            .with_context(|| {
                format!(
                    "raft snapshot at {index} is not newer than the snapshot point {}",
                    cache.snapshot_index
                )
            });
        }
        let hs = HardState {
            term: cache.hard_state.term.max(term),
            commit: cache.hard_state.commit.max(index),
            ..cache.hard_state.clone()
        };
        let cs = meta.get_conf_state().clone();

        let mut log_batch = sled::Batch::default();
        for i in cache.first_index()..=cache.last_index {
            log_batch.remove(&log_key(i));
        }
        let mut meta_batch = sled::Batch::default();
        meta_batch.insert(HARD_STATE_KEY, encode("hard state", &hs)?);
        meta_batch.insert(CONF_STATE_KEY, encode("conf state", &cs)?);
        meta_batch.insert(SNAPSHOT_KEY, &encode_snapshot_point(index, term));
        transact(&self.inner.log, &self.inner.meta, &log_batch, &meta_batch)?;

        cache.hard_state = hs;
        cache.conf_state = cs;
        cache.snapshot_index = index;
        cache.snapshot_term = term;
        cache.last_index = index;
        cache.last_term = term;
        cache.initialized = true;
        Ok(())
    }

    /// Makes everything written so far durable, to the degree `mode` says
    /// (see [`Durability`]), and returns how long it took so the caller can
    /// measure it.
    ///
    /// - `Fsync`: sled `flush`, then `fdatasync` of sled's log file, of blob
    ///   files written since the last call (plus their directory) and, the
    ///   first time, of the database directory. sled's API offers no fsync
    ///   (0.34 `flush` is `sync_file_range`), so the files are reached
    ///   through sled's hidden `Db::context` path and opened a second time;
    ///   fdatasync on Linux flushes the file whatever descriptor wrote it.
    ///   One caveat: a write-back error that happened before this storage
    ///   opened its descriptor may not be reported on kernels older than
    ///   4.13.
    /// - `Flush`: sled `flush` only. `None`: nothing.
    ///
    /// Covers the whole database, so state machine writes are synced too.
    pub fn sync(&self, mode: Durability) -> anyhow::Result<Duration> {
        let start = Instant::now();
        match mode {
            Durability::None => {}
            Durability::Flush => {
                self.inner.db.flush().context("flushing sled")?;
            }
            Durability::Fsync => {
                self.inner.db.flush().context("flushing sled")?;
                self.inner
                    .fsync
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .sync()?;
            }
        }
        Ok(start.elapsed())
    }

    /// Where the raft Storage trait gets snapshot data from (the state
    /// machine). Until it is set, `Storage::snapshot` answers "temporarily
    /// unavailable" and raft retries later.
    pub fn set_snapshot_source(&self, source: Arc<dyn SnapshotSource>) {
        *self
            .inner
            .source
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(source);
    }

    /// The term of `idx`, with the cache locked by the caller.
    fn term_locked(&self, cache: &Cache, idx: u64) -> ::raft::Result<u64> {
        if idx == cache.snapshot_index {
            return Ok(cache.snapshot_term);
        }
        if idx < cache.first_index() {
            return Err(RaftError::Store(StorageError::Compacted));
        }
        if idx > cache.last_index {
            return Err(RaftError::Store(StorageError::Unavailable));
        }
        if idx == cache.last_index {
            return Ok(cache.last_term);
        }
        let bytes = self
            .inner
            .log
            .get(log_key(idx))
            .map_err(|e| sled_err("reading the raft log", e))?
            .ok_or_else(|| corrupt(format!("raft log entry {idx} is missing")))?;
        Ok(decode_entry(idx, &bytes)?.term)
    }
}

/// Semantics follow raft-rs' `MemStorage`: `first_index` is one past the
/// snapshot index, `term(snapshot index)` is the snapshot term, below that
/// is `Compacted`, above the last index is `Unavailable`. Where `MemStorage`
/// panics (`entries` past the last index) this returns `Unavailable`, and a
/// record that cannot be decoded is `StorageError::Other`, never a panic.
impl ::raft::Storage for RaftStorage {
    fn initial_state(&self) -> ::raft::Result<RaftState> {
        let cache = self.rl();
        Ok(RaftState::new(
            cache.hard_state.clone(),
            cache.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> ::raft::Result<Vec<Entry>> {
        let max_size = max_size.into();
        let cache = self.rl();
        if low < cache.first_index() {
            return Err(RaftError::Store(StorageError::Compacted));
        }
        if high > cache.last_index + 1 {
            return Err(RaftError::Store(StorageError::Unavailable));
        }
        if low > high {
            return Err(RaftError::Store(StorageError::Other(
                format!("raft entries: low {low} > high {high}").into(),
            )));
        }
        let mut out = Vec::new();
        let mut size = 0u64;
        let mut expected = low;
        let mut limited = false;
        for item in self.inner.log.range(log_key(low)..log_key(high)) {
            let (key, value) = item.map_err(|e| sled_err("reading the raft log", e))?;
            let index = key_index(&key)?;
            if index != expected {
                return Err(corrupt(format!("raft log entry {expected} is missing")));
            }
            let entry = decode_entry(index, &value)?;
            size = size.saturating_add(u64::from(entry.compute_size()));
            out.push(entry);
            expected += 1;
            // Stop reading once past the limit; limit_size then cuts exactly
            // as raft expects (always at least one entry).
            if matches!(max_size, Some(max) if size > max) {
                limited = true;
                break;
            }
        }
        if !limited && expected != high {
            return Err(corrupt(format!("raft log entry {expected} is missing")));
        }
        ::raft::util::limit_size(&mut out, max_size);
        Ok(out)
    }

    fn term(&self, idx: u64) -> ::raft::Result<u64> {
        let cache = self.rl();
        self.term_locked(&cache, idx)
    }

    fn first_index(&self) -> ::raft::Result<u64> {
        Ok(self.rl().first_index())
    }

    fn last_index(&self) -> ::raft::Result<u64> {
        Ok(self.rl().last_index)
    }

    fn snapshot(&self, request_index: u64, to: u64) -> ::raft::Result<Snapshot> {
        // raft-rs treats any other error from here as fatal (it panics), so
        // everything that can pass (no source yet, a snapshot being built,
        // a failing build) is "temporarily unavailable" and logged; raft
        // asks again later.
        let unavailable = || RaftError::Store(StorageError::SnapshotTemporarilyUnavailable);
        let source = self
            .inner
            .source
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(source) = source else {
            tracing::warn!(to, "raft snapshot requested but no snapshot source is set");
            return Err(unavailable());
        };
        let cache = self.rl();
        // After installing the snapshot the follower needs the entries that
        // follow it, so it must not be older than the log's start.
        let oldest = request_index.max(cache.snapshot_index);
        let term_of = |index: u64| self.term_locked(&cache, index).ok();
        let log = LogView {
            conf_state: &cache.conf_state,
            term_of: &term_of,
        };
        let snapshot = match source.snapshot_for(to, oldest, &log) {
            Ok(Some(snapshot)) => snapshot,
            Ok(None) => return Err(unavailable()),
            Err(e) => {
                tracing::warn!(to, error = %format!("{e:#}"), "raft snapshot could not begin");
                return Err(unavailable());
            }
        };
        let meta = snapshot.get_metadata();
        if meta.index < oldest {
            tracing::debug!(to, index = meta.index, oldest, "raft snapshot is too old");
            return Err(unavailable());
        }
        match self.term_locked(&cache, meta.index) {
            Ok(term) if term == meta.term => Ok(snapshot),
            Ok(term) => Err(corrupt(format!(
                "raft snapshot at {} says term {} but the log has {term}",
                meta.index, meta.term
            ))),
            Err(RaftError::Store(StorageError::Unavailable)) => Err(corrupt(format!(
                "raft snapshot at {} is beyond the last log entry {}",
                meta.index, cache.last_index
            ))),
            Err(_) => Err(unavailable()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use ::raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
    use ::raft::{Error as RaftError, GetEntriesContext, Storage, StorageError};
    use protobuf::Message as _;

    use super::{Durability, LogView, RaftStorage, SnapshotSource, LOG_TREE};

    fn new_entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Default::default()
        }
    }

    fn new_snapshot(index: u64, term: u64, voters: Vec<u64>) -> Snapshot {
        let mut s = Snapshot::default();
        s.mut_metadata().index = index;
        s.mut_metadata().term = term;
        s.mut_metadata().mut_conf_state().voters = voters;
        s
    }

    fn size_of(e: &Entry) -> u64 {
        u64::from(e.compute_size())
    }

    fn open_db(dir: &Path) -> sled::Db {
        sled::Config::new().path(dir).open().expect("open sled")
    }

    /// A fresh storage in its own directory.
    fn fresh() -> (tempfile::TempDir, sled::Db, RaftStorage) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open_db(dir.path());
        let storage = RaftStorage::open(&db).expect("open storage");
        (dir, db, storage)
    }

    /// The state of raft-rs' MemStorage tests, `entries = [3/3, 4/4, 5/5]`,
    /// made the only way a real log gets there: a snapshot at 2/2, then appends.
    fn with_3_4_5() -> (tempfile::TempDir, sled::Db, RaftStorage) {
        let (dir, db, s) = fresh();
        s.apply_snapshot(&new_snapshot(2, 2, vec![1, 2, 3]))
            .expect("snapshot");
        s.append(&[new_entry(3, 3), new_entry(4, 4), new_entry(5, 5)])
            .expect("append");
        (dir, db, s)
    }

    fn all_entries(s: &RaftStorage) -> Vec<Entry> {
        let (first, last) = (s.first_index().unwrap(), s.last_index().unwrap());
        s.entries(first, last + 1, None, GetEntriesContext::empty(false))
            .expect("entries")
    }

    fn is_other(e: &RaftError) -> bool {
        matches!(e, RaftError::Store(StorageError::Other(_)))
    }

    /// Offers the snapshot at its index with the term and members the
    /// log gives, like the builder.
    struct FixedSource(u64, Vec<u8>);

    impl SnapshotSource for FixedSource {
        fn snapshot_for(
            &self,
            _to: u64,
            _oldest: u64,
            log: &LogView<'_>,
        ) -> anyhow::Result<Option<Snapshot>> {
            let Some(term) = (log.term_of)(self.0) else {
                return Ok(None);
            };
            let mut snapshot = Snapshot {
                data: self.1.clone().into(),
                ..Default::default()
            };
            snapshot.mut_metadata().index = self.0;
            snapshot.mut_metadata().term = term;
            snapshot
                .mut_metadata()
                .set_conf_state(log.conf_state.clone());
            Ok(Some(snapshot))
        }
    }

    struct FailingSource;

    impl SnapshotSource for FailingSource {
        fn snapshot_for(
            &self,
            _to: u64,
            _oldest: u64,
            _log: &LogView<'_>,
        ) -> anyhow::Result<Option<Snapshot>> {
            anyhow::bail!("state machine is closed")
        }
    }

    /// Offers a snapshot whose term disagrees with the log.
    struct WrongTerm;

    impl SnapshotSource for WrongTerm {
        fn snapshot_for(
            &self,
            _to: u64,
            _oldest: u64,
            _log: &LogView<'_>,
        ) -> anyhow::Result<Option<Snapshot>> {
            let mut snapshot = Snapshot::default();
            snapshot.mut_metadata().index = 4;
            snapshot.mut_metadata().term = 9;
            Ok(Some(snapshot))
        }
    }

    #[test]
    fn fresh_storage_is_empty_and_uninitialized() {
        let (_dir, _db, s) = fresh();
        assert!(!s.is_initialized());
        assert_eq!(s.first_index(), Ok(1));
        assert_eq!(s.last_index(), Ok(0));
        assert_eq!(s.term(0), Ok(0));
        assert_eq!(s.term(1), Err(RaftError::Store(StorageError::Unavailable)));
        let state = s.initial_state().unwrap();
        assert_eq!(state.hard_state, HardState::default());
        assert_eq!(state.conf_state, ConfState::default());
        assert_eq!(
            s.entries(1, 1, None, GetEntriesContext::empty(false)),
            Ok(vec![])
        );
    }

    // Port of raft-rs `test_storage_term`. MemStorage's fixture has no
    // snapshot point, so there term(2) is Compacted; here the log really is
    // compacted at 2/2 and term(2) is that snapshot term.
    #[test]
    fn term() {
        let (_dir, _db, s) = with_3_4_5();
        let tests = vec![
            (1, Err(RaftError::Store(StorageError::Compacted))),
            (2, Ok(2)),
            (3, Ok(3)),
            (4, Ok(4)),
            (5, Ok(5)),
            (6, Err(RaftError::Store(StorageError::Unavailable))),
        ];
        for (i, (idx, want)) in tests.into_iter().enumerate() {
            assert_eq!(s.term(idx), want, "#{i}: term({idx})");
        }
    }

    // Port of raft-rs `test_storage_entries`.
    #[test]
    fn entries_with_size_limits() {
        let (_dir, _db, s) = fresh();
        s.apply_snapshot(&new_snapshot(2, 2, vec![1])).unwrap();
        let ents = vec![
            new_entry(3, 3),
            new_entry(4, 4),
            new_entry(5, 5),
            new_entry(6, 6),
        ];
        s.append(&ents).unwrap();
        let max = u64::MAX;
        let tests = vec![
            (2, 6, max, Err(RaftError::Store(StorageError::Compacted))),
            (3, 4, max, Ok(vec![new_entry(3, 3)])),
            (4, 5, max, Ok(vec![new_entry(4, 4)])),
            (4, 6, max, Ok(vec![new_entry(4, 4), new_entry(5, 5)])),
            (
                4,
                7,
                max,
                Ok(vec![new_entry(4, 4), new_entry(5, 5), new_entry(6, 6)]),
            ),
            // even if maxsize is zero, the first entry should be returned
            (4, 7, 0, Ok(vec![new_entry(4, 4)])),
            // limit to 2
            (
                4,
                7,
                size_of(&ents[1]) + size_of(&ents[2]),
                Ok(vec![new_entry(4, 4), new_entry(5, 5)]),
            ),
            (
                4,
                7,
                size_of(&ents[1]) + size_of(&ents[2]) + size_of(&ents[3]) / 2,
                Ok(vec![new_entry(4, 4), new_entry(5, 5)]),
            ),
            (
                4,
                7,
                size_of(&ents[1]) + size_of(&ents[2]) + size_of(&ents[3]) - 1,
                Ok(vec![new_entry(4, 4), new_entry(5, 5)]),
            ),
            // all
            (
                4,
                7,
                size_of(&ents[1]) + size_of(&ents[2]) + size_of(&ents[3]),
                Ok(vec![new_entry(4, 4), new_entry(5, 5), new_entry(6, 6)]),
            ),
            // beyond the last entry: raft-rs' MemStorage panics, this errors
            (4, 8, max, Err(RaftError::Store(StorageError::Unavailable))),
            (7, 7, max, Ok(vec![])),
        ];
        for (i, (lo, hi, max_size, want)) in tests.into_iter().enumerate() {
            let got = s.entries(lo, hi, max_size, GetEntriesContext::empty(false));
            assert_eq!(got, want, "#{i}: entries({lo}, {hi}, {max_size})");
        }
        // No limit at all.
        assert_eq!(
            s.entries(3, 7, None, GetEntriesContext::empty(false)),
            Ok(ents)
        );
    }

    // Ports of raft-rs `test_storage_last_index` and `test_storage_first_index`.
    #[test]
    fn first_and_last_index() {
        let (_dir, _db, s) = with_3_4_5();
        assert_eq!(s.first_index(), Ok(3));
        assert_eq!(s.last_index(), Ok(5));
        s.append(&[new_entry(6, 5)]).unwrap();
        assert_eq!(s.last_index(), Ok(6));
        s.set_commit(6).unwrap();
        // Here compact(i) drops i itself: MemStorage's compact(4) is our compact(3).
        s.compact(3).unwrap();
        assert_eq!(s.first_index(), Ok(4));
        assert_eq!(s.last_index(), Ok(6));
    }

    // Port of raft-rs `test_storage_compact`, with this API's "up to and
    // including" meaning: (compact index, want first index, want term of
    // first, want entry count).
    #[test]
    fn compact() {
        let tests = vec![(2, 3, 3, 3), (3, 4, 4, 2), (4, 5, 5, 1), (5, 6, 0, 0)];
        for (i, (idx, wfirst, wterm, wlen)) in tests.into_iter().enumerate() {
            let (_dir, _db, s) = with_3_4_5();
            s.set_commit(5).unwrap();
            s.compact(idx).unwrap();
            let first = s.first_index().unwrap();
            assert_eq!(first, wfirst, "#{i}: first index");
            let term = s
                .entries(first, first + 1, 1, GetEntriesContext::empty(false))
                .ok()
                .and_then(|v| v.first().map(|e| e.term))
                .unwrap_or(0);
            assert_eq!(term, wterm, "#{i}: term of first entry");
            assert_eq!(all_entries(&s).len(), wlen, "#{i}: entry count");
            // The compaction point keeps its term; everything below is gone.
            assert_eq!(s.term(idx.max(2)), Ok(idx.max(2)), "#{i}: snapshot term");
            assert_eq!(
                s.term(idx.max(2) - 1),
                Err(RaftError::Store(StorageError::Compacted)),
                "#{i}"
            );
            assert_eq!(s.snapshot_point(), (idx.max(2), idx.max(2)), "#{i}");
        }
    }

    #[test]
    fn the_tail_within_a_byte_budget_is_counted_from_the_newest_entry() {
        let (_dir, _db, s) = with_3_4_5();
        let entry = size_of(&new_entry(3, 3));
        assert_eq!(s.first_within_bytes(5, u64::MAX).unwrap(), 3, "all of it");
        assert_eq!(s.first_within_bytes(5, 2 * entry).unwrap(), 4);
        assert_eq!(s.first_within_bytes(5, 2 * entry - 1).unwrap(), 5);
        assert_eq!(s.first_within_bytes(5, 0).unwrap(), 6, "not even one");
        assert_eq!(s.first_within_bytes(4, entry).unwrap(), 4);
    }

    #[test]
    fn compact_refuses_uncommitted_and_missing_entries() {
        let (_dir, _db, s) = with_3_4_5();
        s.set_commit(4).unwrap();
        assert!(s.compact(5).is_err(), "entry 5 is not committed");
        assert!(s.compact(6).is_err(), "entry 6 does not exist");
        s.compact(4).unwrap();
        // At or below the snapshot point: nothing to do.
        s.compact(3).unwrap();
        s.compact(4).unwrap();
        assert_eq!(s.first_index(), Ok(5));
        assert_eq!(all_entries(&s), vec![new_entry(5, 5)]);
    }

    // Port of raft-rs `test_storage_append`; `None` = must fail (MemStorage
    // panics there).
    #[test]
    fn append_with_truncation_and_overlap() {
        let tests = vec![
            (
                vec![new_entry(3, 3), new_entry(4, 4), new_entry(5, 5)],
                Some(vec![new_entry(3, 3), new_entry(4, 4), new_entry(5, 5)]),
            ),
            (
                vec![new_entry(3, 3), new_entry(4, 6), new_entry(5, 6)],
                Some(vec![new_entry(3, 3), new_entry(4, 6), new_entry(5, 6)]),
            ),
            (
                vec![
                    new_entry(3, 3),
                    new_entry(4, 4),
                    new_entry(5, 5),
                    new_entry(6, 5),
                ],
                Some(vec![
                    new_entry(3, 3),
                    new_entry(4, 4),
                    new_entry(5, 5),
                    new_entry(6, 5),
                ]),
            ),
            // overwrite compacted raft logs is not allowed
            (
                vec![new_entry(2, 3), new_entry(3, 3), new_entry(4, 5)],
                None,
            ),
            // truncate the existing entries and append
            (
                vec![new_entry(4, 5)],
                Some(vec![new_entry(3, 3), new_entry(4, 5)]),
            ),
            // direct append
            (
                vec![new_entry(6, 6)],
                Some(vec![
                    new_entry(3, 3),
                    new_entry(4, 4),
                    new_entry(5, 5),
                    new_entry(6, 6),
                ]),
            ),
            // a gap after the last entry
            (vec![new_entry(7, 6)], None),
            // a batch that is not contiguous
            (vec![new_entry(6, 6), new_entry(8, 6)], None),
        ];
        for (i, (entries, want)) in tests.into_iter().enumerate() {
            let (dir, db, s) = with_3_4_5();
            let res = s.append(&entries);
            let want = match want {
                Some(want) => {
                    res.unwrap_or_else(|e| panic!("#{i}: {e:#}"));
                    want
                }
                None => {
                    assert!(res.is_err(), "#{i}: append should fail");
                    vec![new_entry(3, 3), new_entry(4, 4), new_entry(5, 5)]
                }
            };
            assert_eq!(all_entries(&s), want, "#{i}");
            let last = want.last().unwrap();
            assert_eq!(s.term(last.index), Ok(last.term), "#{i}: last term");
            // The truncated suffix is gone from disk too.
            drop((s, db));
            let db = open_db(dir.path());
            let s = RaftStorage::open(&db).unwrap();
            assert_eq!(all_entries(&s), want, "#{i}: after reopen");
            assert_eq!(
                s.term(last.index),
                Ok(last.term),
                "#{i}: last term after reopen"
            );
        }
    }

    #[test]
    fn append_refuses_to_overwrite_committed_entries() {
        let (_dir, _db, s) = with_3_4_5();
        s.set_commit(4).unwrap();
        assert!(s.append(&[new_entry(4, 9)]).is_err());
        s.append(&[new_entry(5, 9)]).unwrap();
        assert_eq!(s.term(5), Ok(9));
    }

    // Port of raft-rs `test_storage_apply_snapshot`, plus what installing does.
    #[test]
    fn apply_snapshot() {
        let (_dir, _db, s) = fresh();
        let nodes = vec![1, 2, 3];
        s.append(&[new_entry(1, 1), new_entry(2, 1), new_entry(3, 2)])
            .unwrap();
        s.set_hard_state(&HardState {
            term: 7,
            vote: 2,
            commit: 2,
            ..Default::default()
        })
        .unwrap();

        s.apply_snapshot(&new_snapshot(4, 4, nodes.clone()))
            .unwrap();
        assert_eq!(s.first_index(), Ok(5));
        assert_eq!(s.last_index(), Ok(4));
        assert_eq!(s.term(4), Ok(4));
        assert_eq!(s.term(3), Err(RaftError::Store(StorageError::Compacted)));
        assert_eq!(all_entries(&s), vec![]);
        assert_eq!(s.conf_state().voters, nodes);
        let hs = s.hard_state();
        assert_eq!((hs.term, hs.vote, hs.commit), (7, 2, 4));
        assert_eq!(s.snapshot_point(), (4, 4));
        // The log goes on after the snapshot.
        s.append(&[new_entry(5, 7)]).unwrap();
        assert_eq!(s.term(5), Ok(7));

        // Out of date: at or below the snapshot point.
        for index in [3, 4] {
            let err = s
                .apply_snapshot(&new_snapshot(index, 3, nodes.clone()))
                .unwrap_err();
            assert_eq!(
                err.downcast_ref::<RaftError>(),
                Some(&RaftError::Store(StorageError::SnapshotOutOfDate)),
                "{err:#}"
            );
        }

        // A newer snapshot replaces log entries past the old point, and keeps
        // a higher commit.
        s.set_commit(9).unwrap();
        s.apply_snapshot(&new_snapshot(5, 8, vec![1, 2])).unwrap();
        let hs = s.hard_state();
        assert_eq!((hs.term, hs.commit), (8, 9));
        assert_eq!(s.conf_state().voters, vec![1, 2]);
        assert_eq!((s.first_index(), s.last_index()), (Ok(6), Ok(5)));
    }

    // Port of raft-rs `test_storage_create_snapshot`, with the data coming
    // from the state machine.
    #[test]
    fn snapshot_comes_from_the_source() {
        let (_dir, _db, s) = with_3_4_5();
        s.set_conf_state(&ConfState {
            voters: vec![1, 2, 3],
            ..Default::default()
        })
        .unwrap();
        let unavailable = || {
            Err(RaftError::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ))
        };

        // No source yet.
        assert_eq!(s.snapshot(0, 2), unavailable());

        let want = |index: u64, term: u64| {
            let mut snap = new_snapshot(index, term, vec![1, 2, 3]);
            snap.data = format!("state@{index}").into_bytes().into();
            Ok(snap)
        };
        // (state machine index, request index, want)
        let tests = vec![
            (4, 0, want(4, 4)),
            (5, 5, want(5, 5)),
            (5, 6, unavailable()),
            // the snapshot point itself: its term is remembered, and the
            // entries after it are all in the log
            (2, 0, want(2, 2)),
            // behind the compacted log: cannot name a term
            (1, 0, unavailable()),
        ];
        for (i, (index, request, want)) in tests.into_iter().enumerate() {
            s.set_snapshot_source(Arc::new(FixedSource(
                index,
                format!("state@{index}").into_bytes(),
            )));
            assert_eq!(s.snapshot(request, 2), want, "#{i}");
        }

        // Ahead of the log: no term to name, raft asks again.
        s.set_snapshot_source(Arc::new(FixedSource(9, vec![])));
        assert_eq!(s.snapshot(0, 2), unavailable());
        // A term the log disagrees with: a real inconsistency, not a retry.
        s.set_snapshot_source(Arc::new(WrongTerm));
        assert!(is_other(&s.snapshot(0, 2).unwrap_err()));

        // A failing state machine: raft retries later instead of panicking.
        s.set_snapshot_source(Arc::new(FailingSource));
        assert_eq!(s.snapshot(0, 2), unavailable());
    }

    #[test]
    fn bootstrap_then_initial_state() {
        let (dir, db, s) = fresh();
        assert!(s.bootstrap(&[]).is_err());
        s.bootstrap(&[1, 2, 3]).unwrap();
        assert!(s.is_initialized());
        let state = s.initial_state().unwrap();
        assert_eq!(state.conf_state.voters, vec![1, 2, 3]);
        assert_eq!(state.hard_state, HardState::default());
        assert_eq!((s.first_index(), s.last_index()), (Ok(1), Ok(0)));
        assert!(s.bootstrap(&[1, 2, 3]).is_err(), "bootstrap twice");

        drop((s, db));
        let db = open_db(dir.path());
        let s = RaftStorage::open(&db).unwrap();
        assert!(s.is_initialized());
        assert_eq!(s.initial_state().unwrap().conf_state.voters, vec![1, 2, 3]);
        assert!(s.bootstrap(&[1]).is_err(), "bootstrap after restart");
    }

    #[test]
    fn hard_state_alone_initializes() {
        let (_dir, _db, s) = fresh();
        s.set_hard_state(&HardState {
            term: 1,
            ..Default::default()
        })
        .unwrap();
        assert!(s.is_initialized());
    }

    #[test]
    fn everything_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let entries: Vec<Entry> = (1..=10)
            .map(|i| Entry {
                index: i,
                term: 1 + i / 4,
                data: format!("cmd {i}").into_bytes().into(),
                ..Default::default()
            })
            .collect();
        let hs = HardState {
            term: 3,
            vote: 1,
            commit: 8,
            ..Default::default()
        };
        let cs = ConfState {
            voters: vec![1, 2, 3],
            learners: vec![4],
            ..Default::default()
        };
        {
            let db = open_db(dir.path());
            let s = RaftStorage::open(&db).unwrap();
            s.bootstrap(&[1, 2, 3]).unwrap();
            s.append(&entries).unwrap();
            s.set_hard_state(&hs).unwrap();
            s.set_conf_state(&cs).unwrap();
            s.compact(5).unwrap();
            s.sync(Durability::Fsync).unwrap();
        }
        let db = open_db(dir.path());
        let s = RaftStorage::open(&db).unwrap();
        assert!(s.is_initialized());
        assert_eq!(s.hard_state(), hs);
        assert_eq!(s.conf_state(), cs);
        assert_eq!(s.snapshot_point(), (5, entries[4].term));
        assert_eq!((s.first_index(), s.last_index()), (Ok(6), Ok(10)));
        assert_eq!(s.term(5), Ok(entries[4].term));
        assert_eq!(s.term(10), Ok(entries[9].term));
        assert_eq!(s.term(4), Err(RaftError::Store(StorageError::Compacted)));
        assert_eq!(all_entries(&s), entries[5..].to_vec());
        let state = s.initial_state().unwrap();
        assert_eq!((state.hard_state, state.conf_state), (hs, cs));
    }

    #[test]
    fn installed_snapshot_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = open_db(dir.path());
            let s = RaftStorage::open(&db).unwrap();
            s.append(&[new_entry(1, 1), new_entry(2, 1)]).unwrap();
            s.apply_snapshot(&new_snapshot(7, 3, vec![1, 2, 3]))
                .unwrap();
            s.append(&[new_entry(8, 3)]).unwrap();
            s.sync(Durability::Flush).unwrap();
        }
        let db = open_db(dir.path());
        let s = RaftStorage::open(&db).unwrap();
        assert_eq!(s.snapshot_point(), (7, 3));
        assert_eq!((s.first_index(), s.last_index()), (Ok(8), Ok(8)));
        assert_eq!(s.hard_state().commit, 7);
        assert_eq!(s.conf_state().voters, vec![1, 2, 3]);
        assert_eq!(all_entries(&s), vec![new_entry(8, 3)]);
    }

    #[test]
    fn corrupt_log_records_are_errors_not_panics() {
        let (dir, db, s) = with_3_4_5();
        let log = db.open_tree(LOG_TREE).unwrap();

        // Bytes that are not a protobuf Entry.
        log.insert(4u64.to_be_bytes(), &[0xff, 0xff, 0xff][..])
            .unwrap();
        let err = s
            .entries(3, 6, None, GetEntriesContext::empty(false))
            .unwrap_err();
        assert!(is_other(&err), "{err:?}");
        assert!(err.to_string().contains("entry 4"), "{err}");
        assert!(is_other(&s.term(4).unwrap_err()));

        // A valid Entry under the wrong key (empty bytes decode as index 0).
        log.insert(4u64.to_be_bytes(), &[][..]).unwrap();
        let err = s.term(4).unwrap_err();
        assert!(is_other(&err), "{err:?}");
        assert!(err.to_string().contains("index 0"), "{err}");

        // A missing entry in the middle of the log.
        log.remove(4u64.to_be_bytes()).unwrap();
        assert!(is_other(
            &s.entries(3, 6, None, GetEntriesContext::empty(false))
                .unwrap_err()
        ));
        assert!(is_other(&s.term(4).unwrap_err()));

        // Reopening refuses a log with a hole, and a corrupt last entry.
        drop((s, log, db));
        let db = open_db(dir.path());
        let err = RaftStorage::open(&db).err().expect("hole must fail open");
        assert!(format!("{err:#}").contains("not contiguous"), "{err:#}");
        let log = db.open_tree(LOG_TREE).unwrap();
        log.insert(
            4u64.to_be_bytes(),
            new_entry(4, 4).write_to_bytes().unwrap(),
        )
        .unwrap();
        log.insert(5u64.to_be_bytes(), &b"garbage"[..]).unwrap();
        let err = RaftStorage::open(&db).err().expect("corrupt last entry");
        assert!(
            err.downcast_ref::<RaftError>().is_some_and(is_other),
            "{err:#}"
        );
        // A key that is not an index.
        log.insert(
            5u64.to_be_bytes(),
            new_entry(5, 5).write_to_bytes().unwrap(),
        )
        .unwrap();
        RaftStorage::open(&db).expect("repaired log opens");
        log.insert(&b"bad"[..], &b"x"[..]).unwrap();
        assert!(RaftStorage::open(&db).is_err());
    }

    #[test]
    fn corrupt_meta_records_fail_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(dir.path());
        let meta = db.open_tree(super::META_TREE).unwrap();
        for key in [
            super::HARD_STATE_KEY,
            super::CONF_STATE_KEY,
            super::SNAPSHOT_KEY,
        ] {
            meta.insert(key, &[0xff, 0xff, 0xff][..]).unwrap();
            let err = RaftStorage::open(&db).err().expect("corrupt meta");
            assert!(
                err.downcast_ref::<RaftError>().is_some_and(is_other),
                "{err:#}"
            );
            meta.remove(key).unwrap();
        }
        RaftStorage::open(&db).expect("clean meta opens");
    }

    #[test]
    fn sync_modes_work() {
        let (_dir, _db, s) = with_3_4_5();
        for mode in [Durability::None, Durability::Flush, Durability::Fsync] {
            s.append(&[new_entry(6, 6)]).unwrap();
            s.sync(mode).unwrap_or_else(|e| panic!("{mode:?}: {e:#}"));
        }
        // A value large enough to become a sled blob file, then fsync.
        let big = Entry {
            index: 7,
            term: 6,
            data: vec![7u8; 1 << 20].into(),
            ..Default::default()
        };
        s.append(std::slice::from_ref(&big)).unwrap();
        s.sync(Durability::Fsync).unwrap();
        {
            let targets = s.inner.fsync.lock().unwrap();
            assert!(targets.log_file.is_ok(), "sled's log file was found");
            assert!(targets.dir_synced);
            assert!(
                !targets.synced_blobs.is_empty(),
                "a 1 MiB value is a sled blob file, and it was fsynced"
            );
        }
        assert_eq!(
            s.entries(7, 8, None, GetEntriesContext::empty(false)),
            Ok(vec![big])
        );
    }

    #[test]
    fn durability_config_names() {
        assert_eq!(Durability::default(), Durability::Flush);
        let names: Vec<String> = [Durability::Flush, Durability::Fsync, Durability::None]
            .iter()
            .map(|d| serde_json::to_string(d).unwrap())
            .collect();
        assert_eq!(names, [r#""flush""#, r#""fsync""#, r#""none""#]);
        assert_eq!(
            serde_json::from_str::<Durability>(r#""fsync""#).unwrap(),
            Durability::Fsync
        );
    }

    /// raft-rs itself driving the storage: a single voter elects itself,
    /// commits a proposal, and a restarted node resumes from what it stored.
    #[test]
    fn raw_node_elects_commits_and_restarts() {
        use ::raft::{Config, RawNode};

        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let config = Config {
            id: 1,
            election_tick: 10,
            heartbeat_tick: 3,
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();

        // Runs ready loops until none is pending; returns applied data.
        fn drive(node: &mut RawNode<RaftStorage>, s: &RaftStorage) -> Vec<Vec<u8>> {
            let mut applied = Vec::new();
            let mut apply = |entries: Vec<Entry>| {
                for e in entries {
                    if !e.data.is_empty() {
                        applied.push(e.data.to_vec());
                    }
                }
            };
            while node.has_ready() {
                let mut ready = node.ready();
                if !ready.snapshot().is_empty() {
                    s.apply_snapshot(ready.snapshot()).unwrap();
                }
                apply(ready.take_committed_entries());
                s.append(ready.entries()).unwrap();
                if let Some(hs) = ready.hs() {
                    s.set_hard_state(hs).unwrap();
                }
                s.sync(Durability::Flush).unwrap();
                let mut light = node.advance(ready);
                if let Some(commit) = light.commit_index() {
                    s.set_commit(commit).unwrap();
                }
                apply(light.take_committed_entries());
                node.advance_apply();
            }
            applied
        }

        let last_index;
        {
            let db = open_db(dir.path());
            let s = RaftStorage::open(&db).unwrap();
            s.bootstrap(&[1]).unwrap();
            let mut node = RawNode::new(&config, s.clone(), &logger).unwrap();
            node.campaign().unwrap();
            drive(&mut node, &s);
            assert_eq!(node.raft.state, ::raft::StateRole::Leader);
            node.propose(vec![], b"job created".to_vec()).unwrap();
            assert_eq!(drive(&mut node, &s), vec![b"job created".to_vec()]);
            last_index = s.last_index().unwrap();
            assert_eq!(s.hard_state().commit, last_index);
        }

        let db = open_db(dir.path());
        let s = RaftStorage::open(&db).unwrap();
        assert!(s.is_initialized());
        assert_eq!(s.last_index(), Ok(last_index));
        let mut node = RawNode::new(&config, s.clone(), &logger).unwrap();
        assert_eq!(node.raft.raft_log.committed, last_index);
        // Nothing was applied yet in this incarnation: raft hands the
        // committed entries out again (config.applied = 0).
        assert_eq!(drive(&mut node, &s), vec![b"job created".to_vec()]);
        // And compaction of the applied log works under a live node.
        s.compact(last_index).unwrap();
        assert_eq!(s.first_index(), Ok(last_index + 1));
    }

    /// Not a test: measures how long `sync` takes after each single-entry
    /// append, per durability mode. Run with
    /// `cargo test -p cronmesh --lib raft::storage::tests::measure_sync -- --ignored --nocapture`
    /// (`CRONMESH_BENCH_DIR` chooses the disk; default: the temp dir).
    #[test]
    #[ignore]
    fn measure_sync() {
        let base = std::env::var_os("CRONMESH_BENCH_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        for mode in [Durability::Flush, Durability::Fsync, Durability::None] {
            let dir = tempfile::tempdir_in(&base).unwrap();
            let db = open_db(dir.path());
            let s = RaftStorage::open(&db).unwrap();
            s.bootstrap(&[1]).unwrap();
            let mut times = Vec::with_capacity(1000);
            for i in 1..=1000u64 {
                let e = Entry {
                    index: i,
                    term: 1,
                    data: vec![b'x'; 256].into(),
                    ..Default::default()
                };
                s.append(&[e]).unwrap();
                times.push(s.sync(mode).unwrap());
            }
            times.sort();
            let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
            println!(
                "sync {mode:?}: 1000 single-entry appends of 256 B in {}: \
                 p50 {:?}, p99 {:?}, max {:?}",
                base.display(),
                pct(50),
                pct(99),
                times[times.len() - 1]
            );
        }
    }
}
