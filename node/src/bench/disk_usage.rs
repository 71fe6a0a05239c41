//! Disk space of a directory tree as `du` counts it: the blocks its files
//! take (sparse files count what is allocated, not their length), beside
//! their lengths, and per entry of the top directory. Symbolic links are
//! not followed; files that vanish during the walk (a store compacting)
//! are skipped.

use std::{collections::BTreeMap, io, os::unix::fs::MetadataExt, path::Path};

/// What a directory tree takes.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DiskUsage {
    /// Blocks allocated on disk, in bytes (`du`).
    pub bytes: u64,
    /// Sum of the files' lengths (`du --apparent-size`).
    pub apparent_bytes: u64,
    /// `bytes` per entry of the top directory (`state`, `snapshots`, ...).
    pub by_entry: BTreeMap<String, u64>,
}

/// The usage of `dir`. An error if `dir` itself cannot be read.
pub fn disk_usage(dir: &Path) -> io::Result<DiskUsage> {
    let mut usage = DiskUsage::default();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let (bytes, apparent) = tree_usage(&entry.path())?;
        usage.bytes += bytes;
        usage.apparent_bytes += apparent;
        usage
            .by_entry
            .insert(entry.file_name().to_string_lossy().into_owned(), bytes);
    }
    Ok(usage)
}

/// (allocated, apparent) bytes of `path` and everything under it.
fn tree_usage(path: &Path) -> io::Result<(u64, u64)> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(e),
    };
    if !metadata.is_dir() {
        // `st_blocks` is in 512-byte units whatever the block size.
        return Ok((metadata.blocks() * 512, metadata.len()));
    }
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(e),
    };
    let (mut bytes, mut apparent) = (0, 0);
    for entry in entries {
        let (b, a) = tree_usage(&entry?.path())?;
        bytes += b;
        apparent += a;
    }
    Ok((bytes, apparent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_the_tree() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("state/deep"))?;
        std::fs::write(dir.path().join("state/a"), vec![1u8; 10_000])?;
        std::fs::write(dir.path().join("state/deep/b"), vec![2u8; 5_000])?;
        std::fs::write(dir.path().join("lock"), b"x")?;
        std::fs::create_dir(dir.path().join("empty"))?;
        // A sparse file: long, nearly nothing allocated.
        let sparse = std::fs::File::create(dir.path().join("sparse"))?;
        sparse.set_len(100 * 1024 * 1024)?;
        std::os::unix::fs::symlink("/", dir.path().join("link"))?;

        let usage = disk_usage(dir.path())?;
        // The files, and the link's own length (its target "/").
        assert_eq!(usage.apparent_bytes, 15_001 + 100 * 1024 * 1024 + 1);
        let state = usage.by_entry.get("state").copied().unwrap_or_default();
        assert!(state >= 15_000, "{usage:?}");
        assert_eq!(usage.by_entry.get("empty"), Some(&0));
        assert!(usage.by_entry.get("sparse").copied().unwrap_or(u64::MAX) < 1024 * 1024);
        assert_eq!(usage.bytes, usage.by_entry.values().sum::<u64>());
        assert!(usage.bytes < 2 * 1024 * 1024, "the link is not followed");
        Ok(())
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        assert!(disk_usage(Path::new("/nonexistent/cronmesh-bench")).is_err());
    }
}
