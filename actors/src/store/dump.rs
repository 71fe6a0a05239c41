//! The file format of a whole state: Raft snapshots and backups.
//!
//! ```text
//! "cronmesh-backup2"                       16 bytes
//! { u32 key length, key, u32 value length, value }*
//! u32 0xFFFF_FFFF                          end of the records
//! u64 record count
//! u32 CRC-32 of every byte before it
//! ```
//!
//! Integers are big-endian. A reader holds one record at a time, so memory
//! stays flat whatever the size of the state, and a record longer than
//! [`MAX_RECORD`] is refused before anything is allocated: a dump may come
//! from the network. Backups of the first format (`cronmesh-backup1`: the
//! records only, no end, count or checksum) are still read.

use std::io::{self, Read, Write};

use super::StoreError;

/// The first bytes of a dump, with the format's version.
pub const MAGIC: &[u8; 16] = b"cronmesh-backup2";
/// The first bytes of a backup of the first format.
pub const MAGIC_V1: &[u8; 16] = b"cronmesh-backup1";
/// The length that ends the records.
const END: u32 = u32::MAX;
/// Longest key or value a reader accepts (a job is at most a few hundred
/// KiB, a run's output 64 KiB).
pub const MAX_RECORD: usize = 16 * 1024 * 1024;

/// Writes a dump, counting its bytes and its checksum as they go.
pub struct DumpWriter<W: Write> {
    out: W,
    crc: crc32fast::Hasher,
    records: u64,
    bytes: u64,
}

impl<W: Write> DumpWriter<W> {
    pub fn new(out: W) -> Result<Self, StoreError> {
        let mut writer = Self {
            out,
            crc: crc32fast::Hasher::new(),
            records: 0,
            bytes: 0,
        };
        writer.put(MAGIC)?;
        Ok(writer)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.crc.update(bytes);
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    pub fn record(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        for part in [key, value] {
            if part.len() > MAX_RECORD {
                return Err(corrupt("a record is larger than a dump may hold"));
            }
            self.put(&(part.len() as u32).to_be_bytes())?;
            self.put(part)?;
        }
        self.records += 1;
        Ok(())
    }

    /// Ends the dump; answers (records, bytes).
    pub fn finish(mut self) -> Result<(u64, u64), StoreError> {
        self.put(&END.to_be_bytes())?;
        self.put(&self.records.to_be_bytes())?;
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_be_bytes())?;
        self.out.flush()?;
        Ok((self.records, self.bytes + 4))
    }
}

/// One record: a key and its value.
pub type Record = (Vec<u8>, Vec<u8>);

/// Reads a dump record by record, checking its end and checksum.
pub struct DumpReader<R: Read> {
    input: R,
    crc: crc32fast::Hasher,
    /// First format: no end marker, the records stop at the end of the file.
    legacy: bool,
    records: u64,
    done: bool,
}

impl<R: Read> DumpReader<R> {
    pub fn new(mut input: R) -> Result<Self, StoreError> {
        let mut magic = [0u8; 16];
        input
            .read_exact(&mut magic)
            .map_err(|_| corrupt("not a cronmesh backup or snapshot (too short)"))?;
        let legacy = match &magic {
            m if m == MAGIC => false,
            m if m == MAGIC_V1 => true,
            _ => {
                return Err(corrupt(
                    "not a cronmesh backup or snapshot (its first bytes are wrong)",
                ))
            }
        };
        let mut crc = crc32fast::Hasher::new();
        crc.update(&magic);
        Ok(Self {
            input,
            crc,
            legacy,
            records: 0,
            done: false,
        })
    }

    /// The next record, or `None` once the dump ended whole.
    pub fn next_record(&mut self) -> Result<Option<Record>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let Some(key_len) = self.length()? else {
            self.done = true;
            return Ok(None);
        };
        let key = self.part(key_len)?;
        let value_len = self
            .length()?
            .ok_or_else(|| corrupt("a record has no value"))?;
        let value = self.part(value_len)?;
        self.records += 1;
        Ok(Some((key, value)))
    }

    /// A record's length, or `None` at the end of the records (checked).
    fn length(&mut self) -> Result<Option<usize>, StoreError> {
        let mut len = [0u8; 4];
        if self.legacy {
            match read_full(&mut self.input, &mut len)? {
                0 => return Ok(None),
                4 => {}
                _ => return Err(corrupt("truncated length")),
            }
        } else {
            self.input
                .read_exact(&mut len)
                .map_err(|_| corrupt("truncated: the dump ends before its end marker"))?;
            self.crc.update(&len);
        }
        let len = u32::from_be_bytes(len);
        if len == END && !self.legacy {
            self.check_end()?;
            return Ok(None);
        }
        let len = len as usize;
        if len > MAX_RECORD {
            return Err(corrupt("a record is longer than a dump may hold"));
        }
        Ok(Some(len))
    }

    fn part(&mut self, len: usize) -> Result<Vec<u8>, StoreError> {
        let mut part = vec![0u8; len];
        self.input
            .read_exact(&mut part)
            .map_err(|_| corrupt("truncated record"))?;
        if !self.legacy {
            self.crc.update(&part);
        }
        Ok(part)
    }

    fn check_end(&mut self) -> Result<(), StoreError> {
        let mut count = [0u8; 8];
        self.input
            .read_exact(&mut count)
            .map_err(|_| corrupt("truncated record count"))?;
        self.crc.update(&count);
        if u64::from_be_bytes(count) != self.records {
            return Err(corrupt("the record count does not match the records"));
        }
        let mut crc = [0u8; 4];
        self.input
            .read_exact(&mut crc)
            .map_err(|_| corrupt("truncated checksum"))?;
        if u32::from_be_bytes(crc) != self.crc.clone().finalize() {
            return Err(corrupt("the checksum does not match the contents"));
        }
        let mut extra = [0u8; 1];
        if read_full(&mut self.input, &mut extra)? != 0 {
            return Err(corrupt("bytes follow the checksum"));
        }
        Ok(())
    }
}

/// Reads until `buf` is full or the input ends; answers the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> Result<usize, StoreError> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(filled)
}

fn corrupt(reason: &str) -> StoreError {
    StoreError::Corrupt {
        key: "dump".into(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(records: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer = DumpWriter::new(&mut out).unwrap();
        for (k, v) in records {
            writer.record(k, v).unwrap();
        }
        let (count, bytes) = writer.finish().unwrap();
        assert_eq!(count, records.len() as u64);
        assert_eq!(bytes, out.len() as u64);
        out
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Record>, StoreError> {
        let mut reader = DumpReader::new(bytes)?;
        let mut out = Vec::new();
        while let Some(record) = reader.next_record()? {
            out.push(record);
        }
        Ok(out)
    }

    #[test]
    fn records_round_trip() {
        let bytes = dump(&[(b"a", b"1"), (b"b", b""), (b"", b"3")]);
        let records = read_all(&bytes).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0], (b"a".to_vec(), b"1".to_vec()));
        assert_eq!(records[2], (Vec::new(), b"3".to_vec()));
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused() {
        let bytes = dump(&[(b"key", b"value"), (b"k2", b"v2")]);
        for len in 0..bytes.len() {
            assert!(read_all(&bytes[..len]).is_err(), "truncated at {len}");
        }
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x01;
            assert!(read_all(&bad).is_err(), "flipped byte {at}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(read_all(&longer).is_err(), "a byte after the checksum");
    }

    #[test]
    fn a_huge_announced_length_is_refused_before_it_is_allocated() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&(u32::MAX - 1).to_be_bytes());
        let error = read_all(&bytes).unwrap_err().to_string();
        assert!(error.contains("longer than"), "{error}");
    }

    #[test]
    fn first_format_backups_are_read() {
        let mut bytes = MAGIC_V1.to_vec();
        for part in [b"k".as_slice(), b"v"] {
            bytes.extend_from_slice(&(part.len() as u32).to_be_bytes());
            bytes.extend_from_slice(part);
        }
        assert_eq!(
            read_all(&bytes).unwrap(),
            vec![(b"k".to_vec(), b"v".to_vec())]
        );
        assert!(read_all(&bytes[..bytes.len() - 1]).is_err());
    }
}
