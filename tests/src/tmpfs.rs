//! A small tmpfs of its own for a test that fills a node's disk: mounted
//! on a temporary directory, grown in place (`remount,size=`), filled by a
//! file written until only so much is left, and unmounted on drop.
//!
//! Mounting needs root (CI runs as root); without it the test fails and
//! says so rather than pass without having filled anything.

use std::{
    fs::{self, File},
    io::Write,
    path::{Path, PathBuf},
    process::Command,
};

pub const MIB: u64 = 1 << 20;

pub struct Tmpfs {
    path: PathBuf,
    /// The temporary directory mounted on, when the tmpfs made it.
    _dir: Option<tempfile::TempDir>,
    fillers: u32,
}

fn run(argv: &[&str]) -> Result<String, String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| format!("{}: {e}", argv.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Tmpfs {
    /// A tmpfs of `mib` MiB on a new temporary directory.
    pub fn mount(mib: u64) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut tmpfs = Self::mount_at(dir.path(), mib);
        tmpfs._dir = Some(dir);
        tmpfs
    }

    /// A tmpfs of `mib` MiB on `path` (created if missing, and empty), such
    /// as the data directory a cluster node is about to start on.
    pub fn mount_at(path: &Path, mib: u64) -> Self {
        fs::create_dir_all(path).expect("mount point");
        let mount_point = path.to_string_lossy().to_string();
        let path = mount_point.as_str();
        let size = format!("size={mib}m");
        if let Err(e) = run(&["mount", "-t", "tmpfs", "-o", &size, "cronmesh-test", path]) {
            panic!(
                "the disk-full tests mount a small tmpfs and need root for it \
                 (CI runs as root): {e}"
            );
        }
        Self {
            path: PathBuf::from(path),
            _dir: None,
            fillers: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Grows (or shrinks) the file system to `mib` MiB, its files kept.
    pub fn resize(&self, mib: u64) {
        let path = self.path().to_string_lossy().to_string();
        run(&["mount", "-o", &format!("remount,size={mib}m"), &path])
            .unwrap_or_else(|e| panic!("resizing the tmpfs: {e}"));
    }

    /// Bytes free for writing.
    pub fn free(&self) -> u64 {
        let path = self.path().to_string_lossy().to_string();
        let out = run(&["stat", "-f", "-c", "%a %S", &path]).expect("stat -f");
        let mut fields = out
            .split_whitespace()
            .map(|f| f.parse::<u64>().unwrap_or(0));
        fields.next().unwrap_or(0) * fields.next().unwrap_or(0)
    }

    /// Writes a file of zeros until at most `left` bytes are free (or the
    /// file system is full); its path. It goes beside the data a node
    /// keeps on the file system, as a runaway log would.
    pub fn fill_leaving(&mut self, left: u64) -> PathBuf {
        self.fillers += 1;
        let path = self.path().join(format!("filler-{}", self.fillers));
        let mut file = File::create(&path).expect("filler file");
        let chunk = vec![0u8; 256 * 1024];
        loop {
            let free = self.free();
            if free <= left {
                break;
            }
            let n = (free - left).min(chunk.len() as u64) as usize;
            if file.write_all(&chunk[..n]).is_err() {
                break;
            }
        }
        let _ = file.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a process killed a moment ago may still hold a file.
        let path = self.path().to_string_lossy().to_string();
        let _ = run(&["umount", "-l", &path]);
    }
}
