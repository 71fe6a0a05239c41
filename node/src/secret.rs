//! The shared secret of the executor protocol, read the same way by
//! schedulers and executors so the two sides always agree on its bytes.

use anyhow::{bail, Context};

/// Why a `server` or `executor` without a secret does not start.
pub const SECRET_REQUIRED: &str = "the executor protocol needs a shared secret: give \
     --secret-file FILE (or CRONMESH_SECRET_FILE) with the same secret on every scheduler and \
     executor (e.g. `head -c 32 /dev/urandom | base64 > secret`), or --unsigned for a test \
     setup on a trusted network";

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
