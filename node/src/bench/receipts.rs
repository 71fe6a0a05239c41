//! Reading the executors' receipt files (see `--receipts` of `cronmesh
//! executor`): one line per run admitted as new.

use std::path::Path;

use anyhow::Context;

use super::clock::Nanos;

/// One run as an executor received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub run_id: String,
    pub job_id: String,
    pub scheduled_at: Nanos,
    pub received_at: Nanos,
    pub attempt: u32,
    pub shard_index: u32,
    /// Which executor (its index among the bench's executors) got it.
    pub executor: usize,
}

/// What the files held.
#[derive(Debug, Default)]
pub struct Receipts {
    pub receipts: Vec<Receipt>,
    /// Lines that are not receipts (a line cut short by a kill, say).
    pub malformed_lines: u64,
}

/// Reads every file, in order; a missing file (an executor that never
/// received anything before it was stopped) holds no receipts.
pub fn read_all(files: &[impl AsRef<Path>]) -> anyhow::Result<Receipts> {
    let mut out = Receipts::default();
    for (executor, file) in files.iter().enumerate() {
        let file = file.as_ref();
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match parse_line(line, executor) {
                Some(receipt) => out.receipts.push(receipt),
                None => out.malformed_lines += 1,
            }
        }
    }
    Ok(out)
}

/// `run_id job_id scheduled_at received_at attempt shard_index`.
pub fn parse_line(line: &str, executor: usize) -> Option<Receipt> {
    let mut fields = line.split(' ');
    let receipt = Receipt {
        run_id: fields.next()?.to_string(),
        job_id: fields.next()?.to_string(),
        scheduled_at: fields.next()?.parse().ok()?,
        received_at: fields.next()?.parse().ok()?,
        attempt: fields.next()?.parse().ok()?,
        shard_index: fields.next()?.parse().ok()?,
        executor,
    };
    fields.next().is_none().then_some(receipt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_and_counts_bad_ones() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(
            &a,
            "r1 bench-1 1000 1500 1 0\nr2 bench-2 2000 2100 1 0\nr3 bench-3 30\n",
        )?;
        std::fs::write(&b, "r4 bench-1 3000 3200 2 0\n")?;
        let missing = dir.path().join("missing");
        let read = read_all(&[&a, &b, &missing])?;
        assert_eq!(read.receipts.len(), 3);
        assert_eq!(read.malformed_lines, 1);
        assert_eq!(
            read.receipts[2],
            Receipt {
                run_id: "r4".into(),
                job_id: "bench-1".into(),
                scheduled_at: 3000,
                received_at: 3200,
                attempt: 2,
                shard_index: 0,
                executor: 1,
            }
        );
        Ok(())
    }
}
