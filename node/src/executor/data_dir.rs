//! `--data-dir`: what an executor keeps across restarts, and the lock that
//! makes the directory one executor's alone.
//!
//! Its files sit beside a scheduler's `state/`, so one directory may serve
//! a scheduler and an executor on the same host:
//!
//! - `executor.lock`: held (flock) while the executor runs. Two executors
//!   on one directory would kill each other's runs at start-up, taking
//!   them for runs a crash left behind, so the second one refuses to start.
//! - `executor-term`: the highest leader term seen (see `fence`).
//! - `executor-runs/`: one record per shell run whose final report no
//!   scheduler has taken yet (see `ledger`).

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
};

use anyhow::Context;
use nix::{
    errno::Errno,
    fcntl::{Flock, FlockArg},
};

const LOCK_FILE: &str = "executor.lock";
const TERM_FILE: &str = "executor-term";
const RUNS_DIR: &str = "executor-runs";

/// An open data directory, locked for this executor until dropped.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: Flock<File>,
}

impl DataDir {
    /// Creates the directory if needed and takes its lock; fails naming the
    /// directory when another executor holds it.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create the data directory {}", path.display()))?;
        let lock_path = path.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((_, Errno::EWOULDBLOCK)) => anyhow::bail!(
                "the data directory {} is in use by another executor; give each executor \
                 a directory of its own",
                path.display()
            ),
            Err((_, errno)) => {
                return Err(io::Error::from(errno))
                    .with_context(|| format!("cannot lock {}", lock_path.display()))
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the leader-term fence is kept.
    pub fn term_file(&self) -> PathBuf {
        self.path.join(TERM_FILE)
    }

    /// Where the records of shell runs are kept.
    pub fn runs_dir(&self) -> PathBuf {
        self.path.join(RUNS_DIR)
    }
}

/// Replaces `path` with `bytes` so that a reader (or a restart after a
/// crash) sees the old content or the new one, never a mix: written to a
/// temporary file beside it, then renamed over it. `durable` also syncs
/// the file and the directory, for content that must survive a power loss,
/// not only a crash of this process.
pub fn write_atomically(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = File::create(&temporary)?;
    file.write_all(bytes)?;
    if durable {
        file.sync_all()?;
    }
    drop(file);
    std::fs::rename(&temporary, path)?;
    if durable {
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_executor_cannot_take_the_directory() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let first = DataDir::open(dir.path())?;
        let err = DataDir::open(dir.path())
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(err.contains("in use by another executor"), "{err}");
        drop(first);
        DataDir::open(dir.path())?;
        Ok(())
    }

    #[test]
    fn atomic_writes_replace_the_whole_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f");
        write_atomically(&path, b"a longer first version", true)?;
        write_atomically(&path, b"second", false)?;
        assert_eq!(std::fs::read_to_string(&path)?, "second");
        let names: Vec<_> = std::fs::read_dir(dir.path())?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        assert_eq!(names, ["f"], "no temporary file is left behind");
        Ok(())
    }
}
