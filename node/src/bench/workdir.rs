//! The bench's directory: node data, child logs, receipt files and the
//! shared secret, in one place that is removed afterwards unless kept.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The directory of one bench run.
pub struct WorkDir {
    /// Everything of this run lives under it.
    pub path: PathBuf,
    /// Removed by [`WorkDir::finish`] unless the user asked to keep it.
    keep: bool,
}

impl WorkDir {
    /// Uses `chosen` (which must be empty or missing) or a new directory
    /// under the system's temporary directory.
    pub fn create(chosen: Option<&Path>, keep: bool) -> anyhow::Result<Self> {
        let path = match chosen {
            Some(dir) => {
                let used = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
                if used {
                    bail!(
                        "--data-dir {} is not empty; the bench needs a fresh directory",
                        dir.display()
                    );
                }
                dir.to_path_buf()
            }
            None => std::env::temp_dir().join(format!(
                "cronmesh-bench-{}-{}",
                std::process::id(),
                chrono::Utc::now().timestamp_millis()
            )),
        };
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self { path, keep })
    }

    /// Writes a random shared secret and returns its file.
    pub fn write_secret(&self) -> anyhow::Result<PathBuf> {
        use rand::Rng;
        let secret: String = rand::rng()
            .sample_iter(&rand::distr::Alphanumeric)
            .take(40)
            .map(char::from)
            .collect();
        let file = self.path.join("secret");
        std::fs::write(&file, secret)
            .with_context(|| format!("cannot write {}", file.display()))?;
        Ok(file)
    }

    pub fn is_kept(&self) -> bool {
        self.keep
    }

    /// Removes the directory unless it is kept; `failed` keeps it too,
    /// so the logs can tell what went wrong.
    pub fn finish(&self, failed: bool) {
        if self.keep || failed {
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("cronmesh bench: cannot remove {}: {e}", self.path.display());
        }
    }
}
