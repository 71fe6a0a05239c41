//! The shared secret of the executor protocol, read the same way by
//! schedulers and executors so the two sides always agree on its bytes.

use anyhow::{bail, Context};

/// Reads a secret file; a trailing newline (as editors and `echo` leave)
/// is not part of the secret.
pub fn read_secret_file(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the secret file {}", path.display()))?;
    while matches!(bytes.last(), Some(b'\n' | b'\r')) {
        bytes.pop();
    }
    if bytes.is_empty() {
        bail!("the secret file {} is empty", path.display());
    }
    Ok(bytes)
}
