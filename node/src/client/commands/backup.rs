//! `cronmesh backup --out FILE`: the node's `GET /v1/backup`, written to a
//! file that appears only once complete.

use std::{io::Write, path::Path};

use super::Ctx;
use crate::client::error::CliError;

pub(super) async fn execute(ctx: &Ctx, out: &Path) -> Result<Vec<u8>, CliError> {
    let url = ctx.api.url(&["v1", "backup"], &[]);
    let backup = ctx.api.get(url).await?;
    let partial = out.with_extension("partial");
    let written = std::fs::File::create(&partial)
        .and_then(|mut file| {
            file.write_all(&backup)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&partial, out));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(CliError::Output(format!("{}: {e}", out.display())));
    }
    Ok(format!(
        "wrote a backup of {} bytes to {}\n",
        backup.len(),
        out.display()
    )
    .into_bytes())
}
