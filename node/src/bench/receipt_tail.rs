//! The executors' receipt files read as they grow, for the soak: each read
//! takes the whole lines written since the previous one, from the offset
//! where that one stopped, so a long run reads every byte about once and
//! holds no more than one read's lines. A line still being written (no
//! newline yet) waits for the next read, except at the last one.

use std::{
    io::{Read, Seek, SeekFrom},
    path::PathBuf,
};

use anyhow::Context;

use super::receipts::{parse_line, Receipt};

/// One receipt file and how far it was read.
#[derive(Debug)]
struct Followed {
    path: PathBuf,
    /// Bytes of whole lines read so far: the next read starts here.
    offset: u64,
}

/// Every executor's receipt file, read from where the last read stopped.
#[derive(Debug)]
pub struct ReceiptTail {
    /// In the executors' order: a receipt's `executor` is its index here.
    files: Vec<Followed>,
    /// Lines that are not receipts (a line cut short by a kill, say).
    pub malformed_lines: u64,
}

impl ReceiptTail {
    pub fn new(files: &[PathBuf]) -> Self {
        Self {
            files: files
                .iter()
                .map(|path| Followed {
                    path: path.clone(),
                    offset: 0,
                })
                .collect(),
            malformed_lines: 0,
        }
    }

    /// Hands `each` every receipt written since the last read, file by
    /// file; answers how many. With `last`, a line without its newline
    /// counts too (nothing will finish it). A missing file (an executor
    /// that received nothing yet) holds nothing.
    pub fn read_new(&mut self, last: bool, mut each: impl FnMut(Receipt)) -> anyhow::Result<u64> {
        let mut read = 0;
        for (executor, followed) in self.files.iter_mut().enumerate() {
            let Some(bytes) = read_from(followed)? else {
                continue;
            };
            let whole = if last {
                bytes.len()
            } else {
                bytes
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |at| at + 1)
            };
            followed.offset += whole as u64;
            let text = String::from_utf8_lossy(&bytes[..whole]);
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                match parse_line(line, executor) {
                    Some(receipt) => {
                        read += 1;
                        each(receipt);
                    }
                    None => self.malformed_lines += 1,
                }
            }
        }
        Ok(read)
    }
}

/// The bytes of `followed` from its offset to its end; `None` if the file
/// does not exist (yet).
fn read_from(followed: &Followed) -> anyhow::Result<Option<Vec<u8>>> {
    let path = &followed.path;
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    };
    file.seek(SeekFrom::Start(followed.offset))
        .with_context(|| format!("cannot seek in {}", path.display()))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn ids(tail: &mut ReceiptTail, last: bool) -> anyhow::Result<Vec<(String, usize)>> {
        let mut seen = Vec::new();
        tail.read_new(last, |r| seen.push((r.run_id, r.executor)))?;
        Ok(seen)
    }

    #[test]
    fn reads_each_whole_line_once() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        let mut tail = ReceiptTail::new(&[a.clone(), b.clone()]);
        assert!(ids(&mut tail, false)?.is_empty(), "no file yet");

        std::fs::write(&a, "r1 bench-1 1000 1500 1 0\nr2 bench-2 20")?;
        assert_eq!(ids(&mut tail, false)?, [("r1".to_string(), 0)]);
        let mut file = std::fs::OpenOptions::new().append(true).open(&a)?;
        file.write_all(b"00 2100 1 0\nbroken\n")?;
        std::fs::write(&b, "r3 bench-1 3000 3200 2 0\n")?;
        assert_eq!(
            ids(&mut tail, false)?,
            [("r2".to_string(), 0), ("r3".to_string(), 1)]
        );
        assert_eq!(tail.malformed_lines, 1);
        assert!(ids(&mut tail, false)?.is_empty(), "nothing new");

        // Cut short by a kill: only the last read takes it.
        file.write_all(b"r4 bench-3 4000 4100 1 0")?;
        assert!(ids(&mut tail, false)?.is_empty());
        assert_eq!(ids(&mut tail, true)?, [("r4".to_string(), 0)]);
        Ok(())
    }
}
