//! Where snapshot files live: `<data dir>/snapshots/`.
//!
//! ```text
//! out-{index}-{term}.dump    built here, sent to followers (leader)
//! in-{index}-{term}.part     being received
//! in-{index}-{term}.dump     received whole and checked; installed next
//! ```
//!
//! A received file only takes its final name once every byte is on disk
//! and its checksum matched, so a file named `.dump` is always whole.

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

/// The snapshot directory of one node.
#[derive(Clone, Debug)]
pub struct SnapshotDir {
    path: PathBuf,
}

/// Which of the snapshot files a node has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Built here, to be sent.
    Outgoing,
    /// Received from a leader.
    Incoming,
}

impl SnapshotDir {
    /// Opens (creating) `dir` and removes what a crash left half-written:
    /// partly received files. Whole files stay (a received one may not be
    /// installed yet).
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let path = dir.into();
        fs::create_dir_all(&path)?;
        for entry in fs::read_dir(&path)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".part") || name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file of the snapshot at (index, term) on `side`.
    pub fn file(&self, side: Side, index: u64, term: u64) -> PathBuf {
        self.path
            .join(format!("{}-{index}-{term}.dump", prefix(side)))
    }

    /// Where a snapshot is written before it is whole.
    pub fn partial(&self, side: Side, index: u64, term: u64) -> PathBuf {
        self.path
            .join(format!("{}-{index}-{term}.part", prefix(side)))
    }

    /// Makes a partial file whole: syncs it, renames it to its final name
    /// and syncs the directory, so the name survives a crash.
    pub fn complete(&self, side: Side, index: u64, term: u64) -> io::Result<PathBuf> {
        let partial = self.partial(side, index, term);
        fs::File::open(&partial)?.sync_all()?;
        let whole = self.file(side, index, term);
        fs::rename(&partial, &whole)?;
        fs::File::open(&self.path)?.sync_all()?;
        Ok(whole)
    }

    /// Removes every file of `side` but the snapshot at (index, term).
    pub fn remove_others(&self, side: Side, keep: Option<(u64, u64)>) {
        let kept = keep.map(|(index, term)| self.file(side, index, term));
        let Ok(entries) = fs::read_dir(&self.path) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let ours = entry
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{}-", prefix(side)));
            if ours && Some(&path) != kept.as_ref() {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

fn prefix(side: Side) -> &'static str {
    match side {
        Side::Outgoing => "out",
        Side::Incoming => "in",
    }
}

/// A file being written that syncs before it is made whole.
pub fn create(path: &Path) -> io::Result<io::BufWriter<fs::File>> {
    let file = fs::File::create(path)?;
    Ok(io::BufWriter::with_capacity(1024 * 1024, file))
}

/// Flushes a writer made by [`create`] and hands the file back.
pub fn finish(writer: io::BufWriter<fs::File>) -> io::Result<fs::File> {
    let mut writer = writer;
    writer.flush()?;
    writer.into_inner().map_err(|e| e.into_error())
}
