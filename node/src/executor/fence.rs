//! The leader-term fence: the highest Raft term of a scheduler leader this
//! executor has heard of, from dispatches, kills and the schedulers' gossip.
//!
//! A leader cut off from its followers goes on believing it leads until it
//! notices, and meanwhile a new leader of a higher term may hand the same
//! work out again. A request carrying a term lower than the fence comes
//! from such a deposed leader: the executor refuses it (HTTP 409, see
//! docs/EXECUTOR-PROTOCOL.md), so a deposed leader can neither start runs
//! the new leader owns nor kill them. Term 0 is a sender that does not
//! fence (an older scheduler, a test tool) and is always admitted.
//!
//! With a data directory the fence survives a restart, so a restarted
//! executor does not fall for a leader it had already seen deposed. It is
//! written when it rises, which happens once per election, not per request.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
};

use anyhow::Context;

use super::data_dir::write_atomically;

/// A request from a leader older than one this executor has seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "term {term} is stale: this executor has seen a leader of term {fence}, so the sender \
     was deposed"
)]
pub struct StaleTerm {
    /// The term the request carried.
    pub term: u64,
    /// The highest term this executor has seen.
    pub fence: u64,
}

/// The highest leader term seen; shared by the HTTP workers.
#[derive(Debug)]
pub struct TermFence {
    highest: AtomicU64,
    file: Option<FenceFile>,
}

#[derive(Debug)]
struct FenceFile {
    path: PathBuf,
    /// The term last written: writes happen under this lock, and a writer
    /// that finds a higher term written already has nothing to do, so
    /// concurrent rises never leave a lower term in the file.
    written: Mutex<u64>,
}

impl TermFence {
    /// A fence that starts at 0 and is forgotten with the process.
    pub fn in_memory() -> Self {
        Self {
            highest: AtomicU64::new(0),
            file: None,
        }
    }

    /// A fence kept in `path`: the term there (0 when the file is missing),
    /// raised and written back as higher terms arrive. A file that does not
    /// hold a term stops the start: it was written whole or not at all, so
    /// something else wrote it, and guessing could let a deposed leader in.
    pub fn persistent(path: &Path) -> anyhow::Result<Self> {
        let term = match std::fs::read_to_string(path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|e| {
                anyhow::anyhow!(
                    "{} holds {:?}, not a leader term ({e}); delete it to start from term 0",
                    path.display(),
                    text.chars().take(64).collect::<String>()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        Ok(Self {
            highest: AtomicU64::new(term),
            file: Some(FenceFile {
                path: path.to_path_buf(),
                written: Mutex::new(term),
            }),
        })
    }

    /// The highest term seen.
    pub fn current(&self) -> u64 {
        self.highest.load(Ordering::SeqCst)
    }

    /// Admits a request of one term, or a frame whose entries carry
    /// `terms` (one leader sends a frame, so they agree): refused whole if
    /// any is stale, else the fence rises to the highest.
    pub fn admit_all(&self, terms: impl IntoIterator<Item = u64>) -> Result<(), StaleTerm> {
        let (lowest, highest) = terms
            .into_iter()
            .filter(|term| *term != 0)
            .fold((u64::MAX, 0), |(low, high), term| {
                (low.min(term), high.max(term))
            });
        let mut fence = self.current();
        loop {
            if lowest < fence {
                return Err(StaleTerm {
                    term: lowest,
                    fence,
                });
            }
            if highest <= fence {
                return Ok(());
            }
            match self
                .highest
                .compare_exchange(fence, highest, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => {
                    self.persist();
                    return Ok(());
                }
                Err(actual) => fence = actual,
            }
        }
    }

    /// Raises the fence to `term` if it is higher (a term gossiped by a
    /// scheduler); returns whether it rose.
    pub fn raise(&self, term: u64) -> bool {
        let before = self.highest.fetch_max(term, Ordering::SeqCst);
        if term > before {
            self.persist();
            return true;
        }
        false
    }

    /// Writes the current term unless a term as high is written already. A
    /// failed write leaves the fence working in memory and is logged.
    fn persist(&self) {
        let Some(file) = &self.file else {
            return;
        };
        let mut written = file
            .written
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let term = self.current();
        if term <= *written {
            return;
        }
        match write_atomically(&file.path, format!("{term}\n").as_bytes(), true) {
            Ok(()) => *written = term,
            Err(e) => tracing::error!(
                path = %file.path.display(),
                term,
                "cannot record the leader term; it holds until this executor restarts: {e}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_terms_are_refused_and_higher_ones_raise_it() {
        let fence = TermFence::in_memory();
        assert_eq!(fence.admit_all([5]), Ok(()));
        assert_eq!(fence.current(), 5);
        assert_eq!(fence.admit_all([5]), Ok(()));
        assert_eq!(fence.admit_all([4]), Err(StaleTerm { term: 4, fence: 5 }));
        assert_eq!(fence.admit_all([0]), Ok(()), "term 0 does not fence");
        assert_eq!(fence.current(), 5);
        assert_eq!(fence.admit_all([6]), Ok(()));
        assert_eq!(fence.current(), 6);
        assert!(!fence.raise(3), "a lower gossiped term changes nothing");
        assert!(fence.raise(9));
        assert_eq!(fence.admit_all([8]), Err(StaleTerm { term: 8, fence: 9 }));
    }

    #[test]
    fn a_frame_with_one_stale_entry_is_refused_and_raises_nothing() {
        let fence = TermFence::in_memory();
        assert_eq!(fence.admit_all([5]), Ok(()));
        assert_eq!(
            fence.admit_all([7, 0, 4]),
            Err(StaleTerm { term: 4, fence: 5 })
        );
        assert_eq!(fence.current(), 5);
        assert_eq!(fence.admit_all([0, 7, 6]), Ok(()));
        assert_eq!(fence.current(), 7);
        assert_eq!(fence.admit_all([]), Ok(()));
    }

    #[test]
    fn the_file_keeps_the_highest_term() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("term");
        let fence = TermFence::persistent(&path)?;
        assert_eq!(fence.current(), 0);
        assert!(!path.exists(), "nothing is written before a term arrives");
        fence.admit_all([3])?;
        fence.raise(2);
        assert_eq!(std::fs::read_to_string(&path)?, "3\n");
        assert_eq!(TermFence::persistent(&path)?.current(), 3);
        fence.raise(4);
        assert_eq!(TermFence::persistent(&path)?.current(), 4);

        std::fs::write(&path, "three")?;
        let err = TermFence::persistent(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("not a leader term"), "{err}");
        Ok(())
    }
}
