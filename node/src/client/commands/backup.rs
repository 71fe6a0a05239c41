//! `cronmesh backup --out FILE`: the node's `GET /v1/backup`, streamed to
//! a file that appears only once complete and checked whole (its end
//! marker, record count and checksum).

use std::{
    io::{BufReader, BufWriter, Write},
    path::Path,
};

use actors::store::dump::DumpReader;

use super::Ctx;
use crate::client::error::CliError;

pub(super) async fn execute(ctx: &Ctx, out: &Path) -> Result<Vec<u8>, CliError> {
    let url = ctx.api.url(&["v1", "backup"], &[]);
    let partial = out.with_extension("partial");
    let failed = |e: String| {
        let _ = std::fs::remove_file(&partial);
        CliError::Output(format!("{}: {e}", out.display()))
    };
    let file = std::fs::File::create(&partial).map_err(|e| failed(e.to_string()))?;
    let mut writer = BufWriter::with_capacity(1024 * 1024, file);
    let bytes = match ctx.api.download(url, &mut writer).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    let file = writer
        .into_inner()
        .map_err(|e| failed(e.error().to_string()))?;
    file.sync_all().map_err(|e| failed(e.to_string()))?;
    let records =
        check_whole(&partial).map_err(|e| failed(format!("the backup is not whole: {e}")))?;
    std::fs::rename(&partial, out).map_err(|e| failed(e.to_string()))?;
    let mut said = Vec::new();
    let _ = writeln!(
        said,
        "wrote a backup of {bytes} bytes ({records} records) to {}",
        out.display()
    );
    Ok(said)
}

/// Reads a written backup through to its checksum; answers its records.
fn check_whole(path: &Path) -> Result<u64, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut reader =
        DumpReader::new(BufReader::with_capacity(1024 * 1024, file)).map_err(|e| e.to_string())?;
    let mut records = 0;
    while reader.next_record().map_err(|e| e.to_string())?.is_some() {
        records += 1;
    }
    Ok(records)
}
