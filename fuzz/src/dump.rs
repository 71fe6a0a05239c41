//! Target `dump`: a state dump as a follower receives it from the network
//! (a Raft snapshot) or an operator restores it (a backup), through
//! `actors::store::dump::DumpReader`, record by record to its end.
//!
//! Invariants:
//! - no record is longer than `MAX_RECORD`;
//! - a dump read whole is canonical: writing its records again gives the
//!   same bytes (the first format, which has no end, re-encodes as its
//!   records), so no two byte strings are taken as the same state.

use actors::store::dump::{DumpReader, DumpWriter, MAGIC, MAGIC_V1, MAX_RECORD};

pub fn run(data: &[u8]) {
    let Ok(mut reader) = DumpReader::new(data) else {
        return;
    };
    let mut records = Vec::new();
    loop {
        match reader.next_record() {
            Ok(Some((key, value))) => {
                assert!(key.len() <= MAX_RECORD && value.len() <= MAX_RECORD);
                records.push((key, value));
            }
            Ok(None) => break,
            Err(_) => return,
        }
    }
    let again = if data.starts_with(MAGIC) {
        let mut out = Vec::new();
        let mut writer = DumpWriter::new(&mut out).expect("a dump writes to memory");
        for (key, value) in &records {
            writer
                .record(key, value)
                .expect("a record read writes back");
        }
        writer.finish().expect("a dump ends in memory");
        out
    } else {
        let mut out = MAGIC_V1.to_vec();
        for part in records.iter().flat_map(|(k, v)| [k, v]) {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    };
    assert_eq!(
        again, data,
        "a dump read whole writes back to the same bytes"
    );
}
